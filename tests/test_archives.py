"""RFC 5005 archives: a reader who follows the chain from any feed, over HTTP from the real
server, gets every published post of that feed exactly once; pages keep their bytes when posts
come, go or change elsewhere, and are cached for good once a newer page exists."""

from __future__ import annotations

import json
import shutil
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from syndicator import urls
from syndicator.config import Settings, load_settings
from syndicator.errors import ConfigError
from syndicator.pipeline.build import Builder, build
from syndicator.pipeline.plan import OutputPlanner
from syndicator.store.sqlite import FILE_NAME, SQLiteStore
from tests import feedcheck
from tests.serverproc import ServerProcess, nginx_binary, nginx_in_front

ATOM = "{http://www.w3.org/2005/Atom}"
FH = "{http://purl.org/syndication/history/1.0}"
SHOWN, PAGE = 5, 3
START = datetime(2024, 3, 1, 8, tzinfo=UTC)
#: older than every post: `updated` is each post's own date, as a cold build elsewhere has it
CLOCK = datetime(2020, 1, 1, tzinfo=UTC)


def _topics(i: int) -> list[str]:
    """Overlapping topics of several sizes: `tiny` fits in one feed (fh:complete)."""
    tags = [name for name, every in (("Red", 2), ("Blue", 3), ("Green", 7)) if i % every == 0]
    return tags + (["Tiny"] if i in (4, 9) else [])


def _write(seeds: Path, i: int, title: str | None = None, when: datetime | None = None) -> None:
    when = when or START + timedelta(hours=i)
    text = (f"---\ntitle: {title or f'Post {i}'}\ndate: {when.isoformat()}\nid: urn:test:{i}\n"
            f"tags: [{', '.join(_topics(i))}]\n---\n\nBody of post {i}.\n")
    (seeds / f"p{i:03d}.md").write_text(text, encoding="utf-8")


def _expected(ids: set[int]) -> dict[str, set[str]]:
    """Feed stem -> the ids of the posts it must hold, from what was written."""
    out: dict[str, set[str]] = {"all": {f"urn:test:{i}" for i in ids}}
    for i in ids:
        for name in _topics(i):
            out.setdefault(urls.topic_stem(name.lower()), set()).add(f"urn:test:{i}")
    return out


def _settings(tmp_path: Path) -> Settings:
    return load_settings(env={}, overrides={
        "seeds_dir": tmp_path / "seeds", "feeds_dir": tmp_path / "feeds", "state_dir": tmp_path / "var",
        "items_per_feed": SHOWN, "archive_page_size": PAGE, "base_url": "https://feeds.example.org/"})


# ---- the chain, over HTTP --------------------------------------------------------------------


def _links(doc: etree._Element, fmt: str) -> dict[str, str]:
    parent = doc.find("channel") if fmt == "rss" else doc
    return {e.get("rel"): e.get("href") for e in parent.findall(f"{ATOM}link")}


def _marker(doc: etree._Element, fmt: str) -> set[str]:
    parent = doc.find("channel") if fmt == "rss" else doc
    return {e.tag.removeprefix(FH) for e in parent if isinstance(e.tag, str) and e.tag.startswith(FH)}


def _ids(doc: etree._Element, fmt: str) -> list[str]:
    if fmt == "rss":
        return [i.findtext("guid") for i in doc.find("channel").findall("item")]
    return [e.findtext(f"{ATOM}id") for e in doc.findall(f"{ATOM}entry")]


def _follow(srv: ServerProcess, stem: str, fmt: str) -> list[list[str]]:
    """The ids of each document of the chain from the feed at `stem`, the feed first."""
    url, docs, seen = srv.url(f"{stem}.{fmt}"), [], set()
    home = srv.url(urls.feed_page(stem))  # every document's home link: the feed's page
    current = url
    while url is not None:
        assert url not in seen, f"the chain loops at {url}"
        seen.add(url)
        status, headers, body = srv.request("GET", url.removeprefix(srv.base_url.rstrip("/")))
        assert status == 200, (url, status)
        archive = url != current
        cache = headers["Cache-Control"]
        if fmt == "json":
            doc = json.loads(body)
            feedcheck.check_json(body, url, home)
            docs.append([item["id"] for item in doc["items"]])
            nxt = doc.get("next_url")
        else:
            feedcheck.CHECKS[fmt](body, url, home)
            doc = etree.fromstring(body)
            links = _links(doc, fmt)
            docs.append(_ids(doc, fmt))
            nxt = links.get("prev-archive")
            if archive:
                assert _marker(doc, fmt) == {"archive"}
                assert links["current"] == current
            else:
                assert _marker(doc, fmt) == ({"complete"} if nxt is None else set())
        if archive and len(docs) > 2:  # a newer page exists: cached for good
            assert cache == "public, max-age=31536000, immutable", (url, cache)
        else:
            assert "immutable" not in cache, (url, cache)
        url = nxt
    return docs


def _check_chain(docs: list[list[str]], expected: set[str]) -> None:
    """Every post once: no post in two archive pages, and the feed overlaps only the newest
    page (RFC 5005 4.2: the newest document's copy wins), by fewer than a page."""
    feed, pages = docs[0], docs[1:]
    archived = Counter(i for page in pages for i in page)
    assert all(n == 1 for n in archived.values()), [i for i, n in archived.items() if n > 1]
    assert set(feed) | set(archived) == expected
    overlap = set(feed) & set(archived)
    assert not pages or overlap <= set(pages[0]) and len(overlap) < PAGE
    assert all(len(page) == PAGE for page in pages)  # no edits or deletions yet: pages are full
    assert len(feed) == min(SHOWN, len(expected))


def test_following_the_chain_over_http_gives_every_post_once(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for i in range(40):
        _write(seeds, i)
    config = {"items_per_feed": SHOWN, "archive_page_size": PAGE}
    with ServerProcess(tmp_path, seeds=None, config=config) as srv:
        expected = _expected(set(range(40)))
        _, _, opml = srv.request("GET", "/feeds.opml")
        _, _, index = srv.request("GET", "/")
        assert b"/archive/" not in opml and b"/archive/" not in index  # nobody subscribes to a page
        for stem, ids in expected.items():
            for fmt in ("rss", "atom", "json"):
                docs = _follow(srv, stem, fmt)
                _check_chain(docs, ids)
                assert (len(docs) == 1) == (len(ids) <= SHOWN), (stem, fmt)
        # the running service closes a new page as posts come
        for i in range(40, 44):
            _write(seeds, i)
        expected = _expected(set(range(44)))
        deadline = datetime.now() + timedelta(seconds=20)
        while datetime.now() < deadline:
            docs = _follow(srv, "all", "atom")
            if set(docs[0]) >= {"urn:test:43"}:
                break
            time.sleep(0.2)
        _check_chain(_follow(srv, "all", "atom"), expected["all"])
        _check_chain(_follow(srv, "all", "json"), expected["all"])


# ---- stability --------------------------------------------------------------------------------


def _pages(feeds: Path) -> dict[str, bytes]:
    return {p.relative_to(feeds).as_posix(): p.read_bytes() for p in sorted(feeds.rglob("*"))
            if p.is_file() and "/archive/" in p.as_posix()}


def _changed(before: dict[str, bytes], after: dict[str, bytes]) -> set[str]:
    return {rel for rel in before.keys() | after.keys() if before.get(rel) != after.get(rel)}


def test_pages_keep_their_bytes_and_bounds(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    seeds, feeds = settings.seeds_dir, settings.feeds_dir
    seeds.mkdir()
    for i in range(30):
        _write(seeds, i)
    builder = Builder(settings, clock=lambda: CLOCK)
    builder.build()
    first = _pages(feeds)
    assert "all/archive/8.atom" in first and not any(rel.startswith("topics/tiny/") for rel in first)
    assert not any(rel.endswith(".gz") for rel in first)

    # a restart, and a cold build over the same folder: no page rewritten
    assert not [rel for rel in Builder(settings, clock=lambda: CLOCK).build().written if "/archive/" in rel]
    assert not [rel for rel in build(settings, clock=lambda: CLOCK).written if "/archive/" in rel]

    # a post that only the feeds show: no page changes
    _write(seeds, 29, title="Post 29, edited")
    builder.rebuild_paths([str(seeds / "p029.md")])
    assert _pages(feeds) == first

    # new posts: pages are added, the newest existing one gains its next-archive link, no
    # other page moves
    for i in range(30, 36):
        _write(seeds, i)
    builder.build()
    grown = _pages(feeds)
    changed = _changed(first, grown)
    newest = {}
    for rel in first:
        stem, n, _ = urls.archive_page(rel) or ("", 0, "")
        newest[stem] = max(newest.get(stem, 0), n)
    rewritten = {urls.archive_page(rel) for rel in changed if rel in first}
    assert {(stem, n) for stem, n, _ in rewritten} <= set(newest.items())  # only each feed's newest page
    assert {f"all/archive/9.{fmt}" for fmt in ("rss", "atom", "json")} <= changed
    assert {"all/archive/10.atom", "all/archive/11.atom"} <= changed and "all/archive/12.atom" not in grown

    # an edit of an archived post rewrites its page in each feed it is in, and only those
    _write(seeds, 6, title="Post 6, edited")  # Red, Blue: pages 3 of all, 2 of red, 1 of blue
    builder.rebuild_paths([str(seeds / "p006.md")])
    edited = _pages(feeds)
    assert {rel.rsplit(".", 1)[0] for rel in _changed(grown, edited)} == {
        "all/archive/3", "topics/red/archive/2", "topics/blue/archive/1"}
    assert b"Post 6, edited" in edited["all/archive/3.rss"]

    # a deletion empties one slot of one page: nothing shifts into it
    (seeds / "p001.md").unlink()
    builder.rebuild_paths([str(seeds / "p001.md")])
    after = _pages(feeds)
    assert {rel.rsplit(".", 1)[0] for rel in _changed(edited, after)} == {"all/archive/1"}
    assert len(json.loads(after["all/archive/1.json"])["items"]) == PAGE - 1

    # and a cold build elsewhere from the same site record publishes the very same pages
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(feeds / ".site.json", other / ".site.json")
    build(load_settings(env={}, overrides={**{k: getattr(settings, k) for k in (
        "seeds_dir", "items_per_feed", "archive_page_size", "base_url")}, "feeds_dir": other,
        "state_dir": tmp_path / "var2"}), clock=lambda: CLOCK)
    assert _pages(other) == after


def test_a_restart_checks_pages_as_a_whole_and_still_catches_every_change(tmp_path: Path) -> None:
    """A restart over the state looks at a feed's pages through one digest of all of them: when
    it holds, no page is planned; an edit while down, a page file gone, and an edit made while
    running then undone while down are each caught (the page has what its posts say)."""
    settings = _settings(tmp_path)
    seeds, feeds = settings.seeds_dir, settings.feeds_dir
    seeds.mkdir()
    for i in range(30):
        _write(seeds, i)

    def restart() -> tuple[Builder, set[str]]:
        state = SQLiteStore(settings.state_dir / FILE_NAME, "test")
        builder = Builder(settings, clock=lambda: CLOCK, state=state)
        return builder, {rel.rsplit(".", 1)[0] for rel in builder.build().written if "/archive/" in rel}

    first, _ = restart()
    planned: list[str] = []
    real = OutputPlanner._plan_archive_page

    def spy(self: OutputPlanner, plan: Any, feed: Any, page_stem: str, *args: Any) -> None:
        planned.append(page_stem)
        real(self, plan, feed, page_stem, *args)

    OutputPlanner._plan_archive_page = spy  # type: ignore[method-assign]
    try:
        assert restart()[1] == set() and planned == []  # nothing changed: no page even planned

        _write(seeds, 6, title="Post 6, edited while down")
        assert restart()[1] == {"all/archive/3", "topics/red/archive/2", "topics/blue/archive/1"}
        assert b"Post 6, edited while down" in (feeds / "all/archive/3.rss").read_bytes()

        (feeds / "topics/red/archive/1.json").unlink()
        planned.clear()
        assert restart()[1] == {"topics/red/archive/1"} and "topics/blue/archive/1" not in planned

        running, _ = restart()
        _write(seeds, 29, title="Post 29, edited while running")  # only the feeds show it
        running.rebuild_paths([str(seeds / "p029.md")])
        planned.clear()
        assert restart()[1] == set() and planned == []

        _write(seeds, 6, title="Post 6, edited while running")
        running.rebuild_paths([str(seeds / "p006.md")])
        assert b"while running" in (feeds / "all/archive/3.rss").read_bytes()
        _write(seeds, 6, title="Post 6, edited while down")  # back to what the last start saw
        assert restart()[1] == {"all/archive/3", "topics/red/archive/2", "topics/blue/archive/1"}
        assert b"Post 6, edited while down" in (feeds / "all/archive/3.rss").read_bytes()
    finally:
        OutputPlanner._plan_archive_page = real  # type: ignore[method-assign]


@pytest.mark.parametrize("size", [1, 2, 5, 50])
def test_every_page_size_covers_the_history(tmp_path: Path, size: int) -> None:
    """Page sizes up to items_per_feed (a larger one is taken as items_per_feed)."""
    settings = _settings(tmp_path).with_overrides(archive_page_size=size)
    settings.seeds_dir.mkdir()
    for i in range(23):
        _write(settings.seeds_dir, i)
    build(settings)
    feeds = settings.feeds_dir
    for stem, ids in _expected(set(range(23))).items():
        seen: Counter[str] = Counter(i["id"] for i in json.loads((feeds / f"{stem}.json").read_bytes())["items"])
        pages = sorted(feeds.glob(f"{stem}/archive/*.json"), key=lambda p: int(p.stem))
        archived = Counter(i["id"] for p in pages for i in json.loads(p.read_bytes())["items"])
        assert set(seen) | set(archived) == ids and max(archived.values(), default=1) == 1
        assert all(len(json.loads(p.read_bytes())["items"]) == min(size, SHOWN) for p in pages)


def test_nginx_passes_the_archive_cache_headers_through(tmp_path: Path) -> None:
    """contrib/nginx.conf hands archive pages to syndicator, which alone knows which are final:
    one Cache-Control, the same as syndicator's."""
    if nginx_binary() is None:
        pytest.skip("nginx is not installed")
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for i in range(20):
        _write(seeds, i)
    with ServerProcess(tmp_path / "srv", seeds=seeds, config={"items_per_feed": SHOWN,
                                                             "archive_page_size": PAGE}) as srv, \
            nginx_in_front(srv, tmp_path) as ngx:
        seen = set()
        for page in ("/all/archive/1.atom", "/all/archive/5.json", "/topics/red/archive/1.rss"):
            status, theirs, body = ngx.request("GET", page)
            _, ours, own = srv.request("GET", page)
            assert status == 200 and body == own
            assert theirs.get_all("Cache-Control") == [ours["Cache-Control"]], page
            assert theirs["X-Content-Type-Options"] == "nosniff"
            seen.add(ours["Cache-Control"])
        assert seen == {"public, max-age=31536000, immutable", "public, max-age=300"}


# ---- WebSub: advertised hubs ------------------------------------------------------------------


def test_feeds_advertise_their_hubs_and_themselves(tmp_path: Path) -> None:
    """rel=hub and rel=self in all three formats and in the HTTP Link header (the W3C WebSub
    discovery rules); archive pages, which never announce news, name no hub."""
    hubs = ["https://hub.example.net/", "https://other.example.org/hub"]
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for i in range(9):
        _write(seeds, i)
    config = {"items_per_feed": SHOWN, "archive_page_size": PAGE, "websub_hubs": hubs}
    with ServerProcess(tmp_path, seeds=None, config=config) as srv:
        for rel in ("all.rss", "all.atom", "topics/red.rss", "topics/tiny.json"):
            status, headers, body = srv.request("GET", "/" + rel)
            assert status == 200
            assert headers["Link"] == ", ".join([*(f'<{h}>; rel="hub"' for h in hubs), f'<{srv.url(rel)}>; rel="self"'])
            if rel.endswith(".json"):
                doc = json.loads(body)
                assert doc["hubs"] == [{"type": "WebSub", "url": h} for h in hubs] and doc["feed_url"] == srv.url(rel)
            else:
                doc = etree.fromstring(body)
                links = (doc.find("channel") if rel.endswith(".rss") else doc).findall(f"{ATOM}link")
                assert [e.get("href") for e in links if e.get("rel") == "hub"] == hubs
                assert [e.get("href") for e in links if e.get("rel") == "self"] == [srv.url(rel)]
        status, headers, body = srv.request("GET", "/all/archive/1.atom")
        assert status == 200 and "Link" not in headers and b'rel="hub"' not in body
    with pytest.raises(ConfigError, match="websub_hubs"):
        load_settings(env={}, overrides={"websub_hubs": ["ftp://nope"]})
    assert load_settings(env={"SYNDICATOR_WEBSUB_HUBS": "https://a.example/, https://b.example/"}).websub_hubs == (
        "https://a.example/", "https://b.example/")


def _site_record(feeds: Path) -> dict[str, Any]:
    return json.loads((feeds / ".site.json").read_bytes())


def test_page_size_zero_turns_pages_off_and_takes_published_ones_down(tmp_path: Path) -> None:
    """archive_page_size 0: no pages; a feed that holds only its newest items neither links to
    pages nor says fh:complete (a reader would drop the older items it has); one whose history
    fits still says complete. Pages published before go, and come back when turned on again."""
    settings = _settings(tmp_path)
    settings.seeds_dir.mkdir()
    for i in range(23):
        _write(settings.seeds_dir, i)
    feeds = settings.feeds_dir
    build(settings)
    assert list(feeds.glob("all/archive/*.rss")) and _site_record(feeds)["archives"]
    before = {p.relative_to(feeds).as_posix() for p in feeds.rglob("*") if p.is_file()}

    build(settings.with_overrides(archive_page_size=0))
    after = {p.relative_to(feeds).as_posix() for p in feeds.rglob("*") if p.is_file()}
    assert not any("/archive/" in rel for rel in after)
    assert {rel for rel in before - after if not rel.startswith(".")} == {rel for rel in before if "/archive/" in rel}
    assert not _site_record(feeds).get("archives")
    for stem, ids in _expected(set(range(23))).items():
        for fmt in ("rss", "atom"):
            doc = etree.fromstring((feeds / f"{stem}.{fmt}").read_bytes())
            assert "prev-archive" not in _links(doc, fmt)
            assert _marker(doc, fmt) == ({"complete"} if len(ids) <= SHOWN else set()), (stem, fmt)
        assert "next_url" not in json.loads((feeds / f"{stem}.json").read_bytes())
    assert "/archive/" not in (feeds / ".manifest.json").read_text()

    build(settings)
    again = {p.relative_to(feeds).as_posix() for p in feeds.rglob("*") if p.is_file()}
    assert again == before


def test_page_size_zero_keeps_feeds_in_step_with_edits(tmp_path: Path) -> None:
    """A running service with pages off: new posts push old ones out of the feed, no page is
    made, and nothing says complete once the history overflows."""
    settings = _settings(tmp_path).with_overrides(archive_page_size=0)
    settings.seeds_dir.mkdir()
    for i in range(4):
        _write(settings.seeds_dir, i)
    builder = Builder(settings)
    builder.build()
    feeds = settings.feeds_dir
    doc = etree.fromstring((feeds / "all.atom").read_bytes())
    assert _marker(doc, "atom") == {"complete"}
    for i in range(4, 12):
        _write(settings.seeds_dir, i)
    builder.build()
    doc = etree.fromstring((feeds / "all.atom").read_bytes())
    assert _marker(doc, "atom") == set() and "prev-archive" not in _links(doc, "atom")
    assert _ids(doc, "atom") == [f"urn:test:{i}" for i in range(11, 11 - SHOWN, -1)]
    assert not list(feeds.rglob("archive"))
