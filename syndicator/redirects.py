"""Old feed URLs that answer 301 to their canonical one: topic aliases and renamed slugs.

Two sources, merged by the web app (and readable by anything else):

- `topic_aliases` in the settings: `slug(alias)` → `slug(canonical)` for every format;
- `feeds/.redirects.json` (`{"redirects": {"topics/old": "topics/new"}}`, stems without the
  format extension), a persisted map that the publisher keeps after each build (`updated()`), so a topic that
  an alias (or a hand edit) folded into another keeps redirecting even if the alias is later
  removed from the config. A dotfile: never served itself.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path

from syndicator import urls
from syndicator.slugs import legacy_slug, slug

REDIRECTS = ".redirects.json"
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


def from_renamed(topics: Iterable[str]) -> dict[str, str]:
    """Topics whose slug earlier versions spelled otherwise (Chinese read per character, now per
    word: `广告` was `yan-gao`, is `guang-gao`): the old feed URLs keep answering, with a 301."""
    out = {}
    for name in topics:
        old, new = legacy_slug(name), slug(name)
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
            topics: Iterable[str] = ()) -> dict[str, str]:
    """After a build: `table` with the alias and renamed-slug redirects added (`topics`: the names
    of the topics built) and the entries whose old stem is a real feed again dropped (a slug
    reused by a live topic wins).

    `current_stems` are the stems of the feeds just built (`all`, `topics/ai`, ...)."""
    live = set(current_stems)
    merged = {**table, **from_renamed(topics), **from_aliases(aliases)}
    return {old: new for old, new in sorted(merged.items()) if old not in live}


def dump(table: Mapping[str, str]) -> bytes:
    """The bytes of `.redirects.json` for `table`."""
    return (json.dumps({"redirects": dict(table)}, indent=1, ensure_ascii=False, sort_keys=True) + "\n").encode()
