"""Metadata churn never reaches readers: an edit of a front-matter field no output shows
(`heat`, `quality`, AMP URLs, `secured`, an alias another spelling overrides, …) changes no
file, not a byte and not an mtime; an edit of a field an output shows changes the feeds the post
is in. Data-driven over every key the normalizer reads, for news items, Jekyll posts with a site
URL and Jekyll posts that get a page of their own; real files, the real SQLite state, and one
real `syndicator serve` for the ETags."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from syndicator.config import Settings, load_settings
from syndicator.normalize import _KNOWN, _SECRET, ALIASES
from syndicator.pipeline import Builder
from syndicator.store.sqlite import FILE_NAME, SQLiteStore
from tests.serverproc import ServerProcess
from tests.test_daemon import wait_for
from tests.test_state import Clock

NEWS: dict[str, Any] = {
    "title": "Title {t}", "excerpt": "Excerpt of {t}", "publishedDateTime": "2022-05-01T10:00:00Z",
    "webUrl": "https://news.example/{t}", "topics": ["{t}"],
}
JEKYLL: dict[str, Any] = {"layout": "post", "title": "Title {t}", "date": "2022-05-01 10:00:00 +0000", "tags": ["{t}"]}
BODY = "Body of {t}.\n"

#: Field -> a value and an edit of it ("{t}": the case's own name).
VALUES: dict[str, tuple[Any, Any]] = {
    "id": ("urn:{t}:a", "urn:{t}:b"),
    "title": ("Title {t}", "Retitled {t}"),
    "summary": ("Summary of {t}", "Summary of {t}, edited"),
    "published": ("2022-05-01T10:00:00Z", "2022-05-02T10:00:00Z"),
    "updated": ("2022-06-01T00:00:00Z", "2023-06-01T00:00:00Z"),  # later: readers see it
    "url": ("https://news.example/{t}", "https://news.example/{t}/moved"),
    "news_topics": (["{t}"], ["{t}", "Extra"]),
    "categories": ("alpha", "alpha beta"),
    "tags": (["{t}"], ["{t}", "Extra"]),
    "images": ("https://img.example/{t}.jpg", "https://img.example/{t}-2.jpg"),
    "related": ([{"title": "Rel {t}", "webUrl": "https://rel.example/{t}"}],
                [{"title": "Rel {t}, edited", "webUrl": "https://rel.example/{t}"}]),
    "provider": ("Provider A", "Provider B"),
    "authors": ("Ann", "Bob"),
    "language": ("de", "fr"),
    "permalink": ("/a/:title/", "/b/:title/"),
    "slug": ("slug-a", "slug-b"),
}
#: The draft flag: each spelling's value and the edit that makes a draft.
DRAFT = {"published": (True, False), "draft": (False, True)}
#: Keys read by no field, kept aside or dropped: never shown.
UNSHOWN_KEYS: dict[str, tuple[Any, Any]] = {
    "layout": ("post", "single"), "type": ("article", "video"), "quality": (58, 59), "heat": (94, 95),
    "ampWebUrl": ("https://amp.example/a", "https://amp.example/b"),
    "cdnAmpWebUrl": ("https://cdn.example/a", "https://cdn.example/b"), "isCached": (True, False),
    "secured": ("c2VjcmV0IGE=", "c2VjcmV0IGI="), "comments": (True, False),
}


@dataclass
class Format:
    name: str
    folder: str
    template: dict[str, Any]
    body: str | None
    #: keys this shape does not read as their field (kept in `extra`, or not used)
    not_read: set[str]
    cases: list[Case] = field(default_factory=list)


@dataclass
class Case:
    label: str
    key: str
    before: dict[str, Any]
    after: dict[str, Any]
    shown: bool
    body: str | None = None
    body_after: str | None = None


FORMATS = [
    Format("news", "news", NEWS, None, {"categories", "category", "permalink", "slug"}),
    # a site URL (_config.yml): permalinks, so `permalink` and `slug` are shown
    # topics come from the same keys with or without a body (`topics`, `keywords` too)
    Format("jekyll", "blog", JEKYLL, BODY, {"related", "provider", "source", "url"}),
    # no site URL: the post gets a page of its own
    Format("jekyll-page", "notes", JEKYLL, BODY,
           {"related", "provider", "source", "url", "permalink", "slug"}),
]


def _fill(value: Any, t: str) -> Any:
    if isinstance(value, str):
        return value.replace("{t}", t)
    if isinstance(value, list):
        return [_fill(v, t) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, t) for k, v in value.items()}
    return value


def _without(template: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in template.items() if k not in keys}


def _alias_cases(fmt: Format) -> None:
    """Each spelling of each field alone (shown when the shape reads it), and after the first
    spelling (never shown: the first one wins)."""
    body = fmt.body
    for name, keys in ALIASES.items():
        a, b = VALUES.get(name, (None, None))
        for key in keys:
            if name == "draft":
                a, b = DRAFT[key]
            # alone: without the template's spellings of every field the key spells
            alone = _without(fmt.template, tuple(k for ks in ALIASES.values() if key in ks for k in ks))
            shown = key not in fmt.not_read
            fmt.cases.append(Case(f"{name}:{key}", key, {**alone, key: a}, {**alone, key: b}, shown, body))
            first = keys[0]
            if key != first and name != "draft" and first not in fmt.not_read:
                both = {**_without(fmt.template, keys), first: a}
                fmt.cases.append(Case(f"{name}:{key} after {first}", key, {**both, key: a}, {**both, key: b},
                                      False, body))
    for key, (a, b) in UNSHOWN_KEYS.items():
        fmt.cases.append(Case(f"unshown:{key}", key, {**fmt.template, key: a}, {**fmt.template, key: b}, False, body))


def _nested_news_cases(fmt: Format) -> None:
    img = [{"url": "https://img.example/1.jpg", "width": 100, "height": 50, "title": "A", "isCached": True},
           {"url": "https://img.example/2.jpg", "title": "A"}]
    rel = [{"title": "Rel", "webUrl": "https://rel.example/1", "originalUrl": "https://rel.example/o",
            "publishedDateTime": "2022-05-01T09:00:00Z", "excerpt": "x", "type": "article", "quality": 3,
            "provider": {"name": "Rel Provider", "domain": "rel.example"},
            "images": [{"url": "https://img.example/r.jpg"}]}]
    prov = {"name": "Provider", "domain": "provider.example", "url": "https://provider.example/"}
    edits: list[tuple[str, str, Callable[[dict[str, Any]], None], bool]] = [
        ("images[0].title", "images", lambda m: m["images"][0].update(title="B"), True),  # the lead image's alt
        ("images[0].width", "images", lambda m: m["images"][0].update(width=200), True),
        ("images[1].url", "images", lambda m: m["images"][1].update(url="https://img.example/3.jpg"), True),
        ("images[0].isCached", "images", lambda m: m["images"][0].update(isCached=False), False),
        ("images[1].title", "images", lambda m: m["images"][1].update(title="B"), False),
        ("related[0].publishedDateTime", "related", lambda m: m["related"][0].update(
            publishedDateTime="2022-05-03T09:00:00Z"), True),
        ("related[0].webUrl", "related", lambda m: m["related"][0].update(webUrl="https://rel.example/2"), True),
        ("related[0].provider.name", "related", lambda m: m["related"][0]["provider"].update(name="Other"), True),
        ("related[0].provider.domain", "related", lambda m: m["related"][0]["provider"].update(domain="x.example"),
         False),
        ("related[0].originalUrl", "related", lambda m: m["related"][0].update(originalUrl="https://rel.example/p"),
         False),
        ("related[0].excerpt", "related", lambda m: m["related"][0].update(excerpt="y"), False),
        ("related[0].type", "related", lambda m: m["related"][0].update(type="video"), False),
        ("related[0].quality", "related", lambda m: m["related"][0].update(quality=4), False),
        ("related[0].images", "related", lambda m: m["related"][0].update(images=[]), False),
        ("provider.name", "provider", lambda m: m["provider"].update(name="Renamed"), True),
        ("provider.domain", "provider", lambda m: m["provider"].update(domain="other.example"), False),
        ("provider.url", "provider", lambda m: m["provider"].update(url="https://other.example/"), False),
    ]
    for label, key, edit, shown in edits:
        before = {**NEWS, "images": img, "related": rel, "provider": prov}
        after = json.loads(json.dumps(before))
        edit(after)
        fmt.cases.append(Case(label, key, before, after, shown))
    # without a URL of its own an item shows no source line: its provider is not shown
    pageless = {**_without(NEWS, ("webUrl",)), "provider": "Provider A"}
    fmt.cases.append(Case("provider without webUrl", "provider", pageless, {**pageless, "provider": "B"}, False))


def _body_cases(fmt: Format) -> None:
    fmt.cases.append(Case("body", "(body)", fmt.template, fmt.template, True, BODY, "Body of {t}, edited.\n"))
    fmt.cases.append(Case("body: trailing blank lines", "(body)", fmt.template, fmt.template, False,
                          BODY, BODY + "\n\n"))


for _fmt in FORMATS:
    _alias_cases(_fmt)
    if _fmt.body is None:
        _nested_news_cases(_fmt)
    else:
        _body_cases(_fmt)


def _text(meta: dict[str, Any], body: str | None, t: str) -> str:
    head = yaml.safe_dump(_fill(meta, t), allow_unicode=True, sort_keys=False)
    return f"---\n{head}---\n" + (f"\n{_fill(body, t)}" if body is not None else "")


def _files(root: Path) -> dict[str, tuple[int, bytes]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(root.rglob("*")) if p.is_file()}


def _stats(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every file's inode, mtime and size: files are only ever replaced whole (a new inode),
    so an unchanged triple is an unchanged file, bytes and all."""
    return {p.relative_to(root).as_posix(): (st.st_ino, st.st_mtime_ns, st.st_size)
            for p in sorted(root.rglob("*")) if p.is_file() and (st := p.stat())}


def _settings(tmp_path: Path) -> Settings:
    return load_settings(env={}, overrides={
        "seeds_dir": tmp_path / "seeds", "feeds_dir": tmp_path / "feeds", "state_dir": tmp_path / "var",
        "items_per_feed": 3, "base_url": "https://feeds.example.org/"})


def _feeds_of(builder: Builder, rel: str, before: Any) -> set[str]:
    """The feeds the post at `rel` is or was in (each case has a topic of its own)."""
    posts = [p for p in (before, builder.records[rel].good) if p is not None]
    stems = {"all"} | {f"topics/{t.slug}" for p in posts for t in p.topics}
    return {f"{stem}.{ext}" for stem in stems for ext in ("rss", "atom", "json", "html")}


def _may_change(builder: Builder, rel: str, before: Any) -> set[str]:
    """Outputs a shown edit of `rel` may change: the feeds it is or was in, its page, the lists."""
    posts = [p for p in (before, builder.records[rel].good) if p is not None]
    names = _feeds_of(builder, rel, before) | {f"posts/{p.page_slug}.html" for p in posts if p.page_slug}
    names |= {"index.html", "feeds.opml"}
    names |= {f"{name.rsplit('.', 1)[0]}/archive/" for name in _feeds_of(builder, rel, before)}  # a prefix
    return names | {n + ".gz" for n in names} | {".manifest.json", ".site.json"}


def _stray(changed: set[str], allowed: set[str]) -> set[str]:
    """Changed files not allowed: named, or (archive pages of its feeds) under an allowed prefix."""
    prefixes = tuple(a for a in allowed if a.endswith("/"))
    return {n for n in changed if n not in allowed and not n.startswith(prefixes)}


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_every_key_the_normalizer_reads_is_covered(fmt: Format) -> None:
    read = {k for keys in ALIASES.values() for k in keys} | _KNOWN | _SECRET
    assert read <= {c.key for c in fmt.cases}


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: f.name)
def test_only_edits_readers_see_change_outputs(fmt: Format, tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    folder = settings.seeds_dir / fmt.folder
    folder.mkdir(parents=True)
    if fmt.name == "jekyll":
        (folder / "_config.yml").write_text("title: Blog\nurl: https://blog.example\n", encoding="utf-8")
    paths = {}
    for i, case in enumerate(fmt.cases):
        t = f"c{i:03d}"
        paths[case.label] = (f"{fmt.folder}/{t}.md", t)
        (folder / f"{t}.md").write_text(_text(case.before, case.body, t), encoding="utf-8")
    clock = Clock()
    builder = Builder(settings, clock=clock, state=SQLiteStore(settings.state_dir / FILE_NAME, "k"))
    first = builder.build()
    assert not first.errors, first.errors
    assert first.posts_read == len(fmt.cases)

    wrong = []
    mtime = 1_800_000_000
    for case in fmt.cases:
        rel, t = paths[case.label]
        text = _text(case.after, case.body_after or case.body, t)
        assert text != (settings.seeds_dir / rel).read_text(encoding="utf-8"), case.label
        before_files, before_post = _stats(settings.feeds_dir), builder.records[rel].good
        clock.tick()
        mtime += 10
        (settings.seeds_dir / rel).write_text(text, encoding="utf-8")
        os.utime(settings.seeds_dir / rel, (mtime, mtime))
        result = builder.rebuild_paths([rel])  # what the service's watcher does after a save
        assert result is not None and result.changed_paths == [rel] and not result.errors, case.label
        after_files = _stats(settings.feeds_dir)
        changed = {n for n in before_files.keys() | after_files.keys() if before_files.get(n) != after_files.get(n)}
        if not case.shown and changed:
            wrong.append(f"{case.label}: not shown, but changed {sorted(changed)[:4]}")
        elif case.shown and not _feeds_of(builder, rel, before_post) - {"all.rss", "all.atom", "all.json"} & changed:
            wrong.append(f"{case.label}: shown, but its topic feeds did not change")
        elif case.shown and (stray := _stray(changed, _may_change(builder, rel, before_post))):
            wrong.append(f"{case.label}: changed outputs it is not in: {sorted(stray)}")
    assert not wrong, "\n".join(wrong)


def test_served_feeds_keep_their_bytes_and_etags_when_heat_changes(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path, config={"scan_interval": 0.3}, args=["--log-format", "json"])
    seed = next(p for p in sorted(srv.seeds_dir.iterdir()) if "heat: " in p.read_text(encoding="utf-8"))

    def passes() -> int:
        return sum(1 for line in srv.log().splitlines() if line.startswith("{") and '"event": "rebuild"' in line)

    with srv:
        feeds = [f"/{rel}" for rel in ("all.rss", "all.atom", "all.json", "topics/ai.atom", "index.html")]
        etags = {path: srv.request("GET", path)[1]["ETag"] for path in feeds}
        before, seen = _files(srv.feeds_dir), passes()
        text = seed.read_text(encoding="utf-8")
        for old, new in (("heat: ", "heat: 1"), ("quality: ", "quality: 1"), ("type: article", "type: video")):
            text = text.replace(old, new, 1)
        seed.write_text(text.replace("secured: \"", "secured: \"AAAA", 1), encoding="utf-8")
        wait_for(lambda: passes() > seen, 10, "the pass over the edit")
        assert _files(srv.feeds_dir) == before
        assert {path: srv.request("GET", path)[1]["ETag"] for path in feeds} == etags

        seed.write_text(text.replace("title: \"", "title: \"Edited: ", 1), encoding="utf-8")  # readers see this
        # (a pass writes its files one after another, in path order: all.rss comes last of the three)
        wait_for(lambda: all(srv.request("GET", path)[1]["ETag"] != etags[path] for path in feeds[:3]), 10,
                 "the new title in all three formats")
