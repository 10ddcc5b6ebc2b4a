"""Old feed URLs that answer 301 to their canonical one: topic aliases and renamed slugs, the
URLs other tools publish feeds at (`known`), and the operator's own (`redirects` setting).

Two sources of feed stems, merged by the web app (and readable by anything else):

- `topic_aliases` in the settings: `slug(alias)` → `slug(canonical)` for every format;
- `feeds/.redirects.json` (`{"redirects": {"topics/old": "topics/new"}}`, stems without the
  format extension), a persisted map that the publisher keeps after each build (`updated()`), so a topic that
  an alias (or a hand edit) folded into another keeps redirecting even if the alias is later
  removed from the config. A dotfile: never served itself.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from urllib.parse import unquote

from syndicator import urls
from syndicator.errors import ConfigError
from syndicator.slugs import legacy_slug, slug

REDIRECTS = ".redirects.json"
#: The site record's key for the digest of what the table was last updated from (`inputs_key`).
RECORD_KEY = "redirects_from"
#: Longest chain followed when resolving old → new → newer.
MAX_HOPS = 8


def _safe_stem(stem: str) -> bool:
    parts = stem.split("/")
    return bool(stem) and all(p and not p.startswith(".") and "\\" not in p and "\x00" not in p for p in parts)


def from_aliases(aliases: Mapping[str, str]) -> dict[str, str]:
    """`{"Artificial Intelligence": "AI"}` → `{"topics/artificial-intelligence": "topics/ai"}`."""
    out = {}
    for alias, canonical in aliases.items():
        old, new = slug(alias), slug(canonical)
        if old != new:
            out[urls.topic_stem(old)] = urls.topic_stem(new)
    return out


def from_renamed(topics: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Topics (name, slug) whose slug earlier versions spelled otherwise (Chinese read per
    character, now per word: `广告` was `yan-gao`, is `guang-gao`): the old feed URLs keep
    answering, with a 301. (The slug as the topic has it: made again here, it would load the
    phrase tables on every pass.)"""
    out = {}
    for name, new in topics:
        old = legacy_slug(name)
        if old != new:
            out[urls.topic_stem(old)] = urls.topic_stem(new)
    return out


def load(feeds_dir: Path) -> dict[str, str]:
    """The persisted map; {} when missing or unreadable (never an exception)."""
    try:
        return loads((Path(feeds_dir) / REDIRECTS).read_text(encoding="utf-8"))
    except OSError:
        return {}


def loads(text: str) -> dict[str, str]:
    """The map `dump` wrote; {} when unreadable (never an exception)."""
    try:
        data = json.loads(text)
        table = data.get("redirects", {}) if isinstance(data, dict) else {}
        return {k: v for k, v in table.items()
                if isinstance(k, str) and isinstance(v, str) and _safe_stem(k) and _safe_stem(v) and k != v}
    except (ValueError, AttributeError):
        return {}


def resolve(table: Mapping[str, str], stem: str) -> str | None:
    """Follow old → new through the table; None when `stem` is not redirected (or loops)."""
    seen = {stem}
    target = table.get(stem)
    if target is None:
        return None
    for _ in range(MAX_HOPS):
        nxt = table.get(target)
        if nxt is None:
            return target
        if nxt in seen:
            return None
        seen.add(target)
        target = nxt
    return target


def updated(table: Mapping[str, str], aliases: Mapping[str, str], current_stems: Iterable[str],
            topics: Iterable[tuple[str, str]] = ()) -> dict[str, str]:
    """After a build: `table` with the alias and renamed-slug redirects added (`topics`: the names
    and slugs of the topics built) and the entries whose old stem is a real feed again dropped (a slug
    reused by a live topic wins).

    `current_stems` are the stems of the feeds just built (`all`, `topics/ai`, ...)."""
    live = set(current_stems)
    merged = {**table, **from_renamed(topics), **from_aliases(aliases)}
    return {old: new for old, new in sorted(merged.items()) if old not in live}


def inputs_key(table: Mapping[str, str], aliases: Mapping[str, str], current_stems: Iterable[str],
               topics: Iterable[tuple[str, str]]) -> str:
    """A digest of what `updated` makes its result from: kept in the site record (RECORD_KEY)
    with the table it made, so a pass whose table and feeds are the same need not update it."""
    text = json.dumps([dict(table), dict(aliases), sorted(current_stems), sorted(topics)],
                      ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def dump(table: Mapping[str, str]) -> bytes:
    """The bytes of `.redirects.json` for `table`."""
    return (json.dumps({"redirects": dict(table)}, indent=1, ensure_ascii=False, sort_keys=True) + "\n").encode()


# -- URLs other feed tools publish ----------------------------------------------------------------

#: Where WordPress, Jekyll (jekyll-feed), Hugo and Pelican put their feeds, from their docs, and
#: the names sites commonly give theirs: a site that moves here keeps its subscribers, whose
#: readers hold these URLs (they rarely follow a move on their own). Each pattern matches a
#: whole URL path (a trailing `/` optional where the tool writes one); a `t` group is a topic
#: (category or tag) as the tool spelled it in the URL, and the value is the format of ours
#: that answers. First match wins.
KNOWN: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(pattern), fmt) for pattern, fmt in (
    # WordPress: /feed/ (RSS 2.0), /feed/atom/, /feed/rss2/, /feed/rdf/; per category and tag
    (r"feed/atom/?", "atom"),
    (r"feed(/(rss2?|rdf))?/?", "rss"),
    (r"(category|tag)/(?P<t>[^/]+)/feed/atom/?", "atom"),
    (r"(category|tag)/(?P<t>[^/]+)/feed(/(rss2?|rdf))?/?", "rss"),
    # jekyll-feed: /feed.xml (Atom); /feed/<category>.xml, /feed/by_tag/<tag>.xml
    (r"feed\.xml", "atom"),
    (r"feed/by_tag/(?P<t>[^/]+)\.xml", "atom"),
    (r"feed/(?P<t>[^/]+)\.xml", "atom"),
    # Hugo: /index.xml (RSS); /tags/<t>/index.xml, /categories/<t>/index.xml
    (r"index\.xml", "rss"),
    (r"(tags|categories)/(?P<t>[^/]+)/index\.xml", "rss"),
    # Pelican: /feeds/all.atom.xml, /feeds/<category>.atom.xml, /feeds/<tag>.tag.atom.xml (and .rss.xml)
    (r"feeds/all\.atom\.xml", "atom"),
    (r"feeds/all\.rss\.xml", "rss"),
    (r"feeds/(?P<t>[^/]+?)(\.tag)?\.atom\.xml", "atom"),
    (r"feeds/(?P<t>[^/]+?)(\.tag)?\.rss\.xml", "rss"),
    # common names: Hexo and Octopress atom.xml, Ghost /rss/, Drupal rss.xml, JSON Feed feed.json
    (r"atom\.xml|feed\.atom|atom/?", "atom"),
    (r"rss\.xml|rss2\.xml|feed\.rss|rss/?", "rss"),
    (r"feed\.json", "json"),
))


def known(path: str) -> str | None:
    """The feed of ours (a path under feeds/) that a URL path of another tool's feed stands for;
    None when `path` is none of them. A topic is matched by our slug of its name as the tool
    wrote it in the URL (`machine-learning`, `Machine_Learning` and `%E4%BA%BA%E5%B7%A5%E6%99%BA%E8%83%BD`
    are read as `machine-learning`, `machine-learning` and `ren-gong-zhi-neng`), so each tool's
    own slugs of the same topic names land on ours."""
    rel = path.lstrip("/")
    for pattern, fmt in KNOWN:
        m = pattern.fullmatch(rel)
        if m is None:
            continue
        name = m.groupdict().get("t")
        if name is None:
            return urls.feed_path(urls.ALL_STEM, fmt)
        topic = slug(unquote(name))
        return urls.feed_path(urls.topic_stem(topic), fmt) if topic else None
    return None


# -- the operator's redirects ----------------------------------------------------------------------

def configured(value: Mapping[str, str]) -> dict[str, str]:
    """The `redirects` setting as old path -> new path, both relative to base_url (a leading or
    trailing `/` dropped); ValueError for an empty path, a target that is not a file we publish,
    or a loop."""
    table: dict[str, str] = {}
    for old, new in value.items():
        key, target = str(old).strip().strip("/"), str(new).strip().lstrip("/")
        if not key or not target:
            raise ValueError(f"has an empty path ({old!r}: {new!r})")
        if "." not in target.rpartition("/")[2] or not _safe_stem(target):
            raise ValueError(f"{old!r} goes to {new!r}, which is not a feed or page path like topics/ai.rss")
        table[key] = target
    for start in table:
        chain, at = [start], table[start]
        while at in table:
            chain.append(at)
            if at == start or len(chain) > MAX_HOPS:
                raise ValueError(f"loops: {' -> '.join(chain)}")
            at = table[at]
    return table


def check_targets(table: Mapping[str, str], exists: Callable[[str], bool]) -> None:
    """ConfigError naming the first configured redirect whose final target is not published."""
    for old in sorted(table):
        target = table[old]
        while target in table:
            target = table[target]
        if not exists(target):
            raise ConfigError(f"setting 'redirects': {old!r} goes to {target!r}, which is not published")
