"""Whole builds: seeds/ against tests/golden/seeds, feed rules, rebuilds, site fixtures."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from lxml import html as lxml_html

from syndicator.compress import gunzip, gzip_bytes
from syndicator.pipeline.build import build
from tests import feedcheck
from tests.regen_golden import ARCHIVED, GOLDEN, GOLDEN_ARCHIVED, build_seeds, golden_files, golden_settings

from .conftest import DATA, SEEDS

BASE = "http://127.0.0.1:8080/"
SITES = sorted(p for p in (DATA / "sites").iterdir() if (p / "expected.json").exists())
#: Read before conftest's autouse fixture clears SYNDICATOR_* from the environment.
VALIDATOR = os.environ.get("SYNDICATOR_FEEDVALIDATOR")

EXPECTED_COUNTS = {
    "all": 4, "topics/ai": 2, "topics/facebook-ai": 2, "topics/microsoft-ai": 2, "topics/ai-hardware": 1,
    "topics/azure": 1, "topics/zhitongcaijingwang": 1, "topics/zhi-tong-cai-jing-wang-xin-wen": 1,
}


@pytest.fixture(scope="module")
def seed_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, bytes]]:
    work = tmp_path_factory.mktemp("seedbuild")
    return work / "feeds", build_seeds(work)


def _json(feeds: Path, stem: str) -> dict[str, Any]:
    return json.loads((feeds / f"{stem}.json").read_bytes())


# ---- golden ----------------------------------------------------------------------------


def test_golden_feeds_match(seed_build: tuple[Path, dict[str, bytes]]) -> None:
    _, files = seed_build
    golden = golden_files(GOLDEN)
    assert sorted(files) == sorted(golden), "run `python -m tests.regen_golden` after an intended change"
    changed = [rel for rel in files if files[rel] != golden[rel]]
    assert not changed, f"differs from tests/golden/seeds: {changed}; regenerate with python -m tests.regen_golden"


def test_golden_archive_pages_match(tmp_path: Path) -> None:
    """Feeds of one item: every feed but the single-post topics has archive pages."""
    files = build_seeds(tmp_path, **ARCHIVED)
    golden = golden_files(GOLDEN_ARCHIVED)
    assert sorted(files) == sorted(golden), "run `python -m tests.regen_golden` after an intended change"
    assert "all/archive/3.atom" in files and "topics/ai/archive/1.rss" in files
    assert not any("/archive/" in rel for rel in files if rel.startswith("topics/azure"))
    changed = [rel for rel in files if files[rel] != golden[rel]]
    assert not changed, f"differs from {GOLDEN_ARCHIVED}: {changed}; regenerate with python -m tests.regen_golden"


def test_every_feed_parses_back(seed_build: tuple[Path, dict[str, bytes]]) -> None:
    feeds, files = seed_build
    parsed = feedcheck.check_tree(feeds, BASE)
    assert len(parsed) == 3 * len(EXPECTED_COUNTS)


# ---- feed rules on the seeds -----------------------------------------------------------


def test_feed_counts_and_titles(seed_build: tuple[Path, dict[str, bytes]]) -> None:
    feeds, _ = seed_build
    stems = sorted(p.relative_to(feeds).as_posix()[:-5] for p in feeds.rglob("*.json") if not p.name.startswith("."))
    assert stems == sorted(EXPECTED_COUNTS)
    for stem, count in EXPECTED_COUNTS.items():
        doc = _json(feeds, stem)
        assert len(doc["items"]) == count, stem
        rss = etree.fromstring((feeds / f"{stem}.rss").read_bytes())
        atom = etree.fromstring((feeds / f"{stem}.atom").read_bytes())
        assert len(rss.findall("channel/item")) == count
        assert len(atom.findall(f"{feedcheck.ATOM}entry")) == count
    assert _json(feeds, "all")["title"] == "Syndicator · All posts"
    assert _json(feeds, "topics/ai-hardware")["title"] == "Syndicator · AI Hardware"
    assert _json(feeds, "topics/zhi-tong-cai-jing-wang-xin-wen")["title"] == "Syndicator · 智通财经网新闻"


def test_newest_first_and_updated_is_newest_item(seed_build: tuple[Path, dict[str, bytes]]) -> None:
    feeds, _ = seed_build
    doc = _json(feeds, "all")
    assert [i["date_published"] for i in doc["items"]] == [
        "2022-05-26T04:19:14Z", "2022-05-25T22:19:00Z", "2022-05-25T08:00:18Z", "2020-05-19T21:00:00Z"]
    rss = etree.fromstring((feeds / "all.rss").read_bytes())
    assert rss.findtext("channel/lastBuildDate") == "Thu, 26 May 2022 04:19:14 GMT"
    atom = etree.fromstring((feeds / "topics/azure.atom").read_bytes())
    assert atom.findtext(f"{feedcheck.ATOM}updated") == "2020-05-19T21:00:00+00:00"


def test_draft_absent_and_secured_never_written(seed_build: tuple[Path, dict[str, bytes]]) -> None:
    feeds, _ = seed_build
    draft_url = "microsoft-msft-azure-selected-by-meta"
    for path in feeds.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".gz":
                data = gzip.decompress(data)
            assert b"secured" not in data, path
            assert draft_url.encode() not in data, path
            assert b"qmepmfGY3fijeI3" not in data  # the value of one `secured`


def test_post_page_written_for_posts_without_url(seed_build: tuple[Path, dict[str, bytes]]) -> None:
    feeds, _ = seed_build
    item = next(i for i in _json(feeds, "all")["items"] if i["id"].startswith("tag:"))
    assert item["id"] == "tag:127.0.0.1,2024-01-01:002_4daa3943c2b2dbc1.txt"
    assert item["url"].startswith(BASE + "posts/") and item["url"].endswith(".html")
    page = feeds / item["url"][len(BASE):]
    doc = lxml_html.fromstring(page.read_bytes())
    assert doc.get("lang") == "zh"
    assert doc.find(".//link[@rel='canonical']").get("href") == item["url"]
    assert doc.findtext(".//h1") == item["title"]


def test_index_autodiscovers_every_feed(seed_build: tuple[Path, dict[str, bytes]]) -> None:
    feeds, _ = seed_build
    doc = lxml_html.fromstring((feeds / "index.html").read_bytes())
    links = {(e.get("type"), e.get("href")) for e in doc.findall(".//head/link[@rel='alternate']")}
    types = {"rss": "application/rss+xml", "atom": "application/atom+xml", "json": "application/feed+json"}
    expected = {(types[fmt], f"{BASE}{stem}.{fmt}") for stem in EXPECTED_COUNTS for fmt in types}
    assert links == expected


def test_opml_lists_every_feed(seed_build: tuple[Path, dict[str, bytes]]) -> None:
    feeds, _ = seed_build
    root = etree.fromstring((feeds / "feeds.opml").read_bytes())
    assert root.tag == "opml" and root.get("version") == "2.0"
    urls = sorted(o.get("xmlUrl") for o in root.iter("outline"))
    assert urls == sorted(f"{BASE}{stem}.atom" for stem in EXPECTED_COUNTS)
    assert all(o.get("text") and o.get("type") == "rss" for o in root.iter("outline"))


def test_images_as_media_and_json_image(seed_build: tuple[Path, dict[str, bytes]]) -> None:
    feeds, _ = seed_build
    rss = etree.fromstring((feeds / "topics/azure.rss").read_bytes())
    item = rss.find("channel/item")
    content = item.find(f"{feedcheck.MEDIA}content")
    assert content.get("width") == "756" and content.get("height") == "567"
    assert item.find(f"{feedcheck.MEDIA}thumbnail").get("url") == content.get("url")
    assert item.find(f"{feedcheck.MEDIA}group") is None
    assert _json(feeds, "topics/azure")["items"][0]["image"] == content.get("url")
    assert [c.text for c in item.findall("category")] == ["Azure"]


# ---- rebuilds ------------------------------------------------------------------------------


def _tree(feeds: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(feeds).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in feeds.rglob("*") if p.is_file()}


def test_rebuild_is_byte_identical_and_writes_nothing(tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    settings = golden_settings(tmp_path / "seeds", tmp_path / "feeds", tmp_path / "var")
    build(settings, clock=lambda: datetime(2030, 1, 1, tzinfo=UTC))
    first = _tree(tmp_path / "feeds")
    result = build(settings, clock=lambda: datetime(2031, 6, 6, tzinfo=UTC))
    assert result.written == []
    assert _tree(tmp_path / "feeds") == first  # same bytes and same mtimes


def test_output_does_not_depend_on_the_clock(tmp_path: Path) -> None:
    outs = []
    for n, year in enumerate((2001, 2040)):
        work = tmp_path / str(n)
        shutil.copytree(SEEDS, work / "seeds")
        build(golden_settings(work / "seeds", work / "feeds", work / "var"),
              clock=lambda year=year: datetime(year, 1, 1, tzinfo=UTC))
        outs.append(golden_files(work / "feeds"))
    assert outs[0] == outs[1]


def test_include_drafts_and_items_cap(tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    settings = golden_settings(tmp_path / "seeds", tmp_path / "feeds", tmp_path / "var",
                               include_drafts=True, items_per_feed=2)
    result = build(settings)
    assert result.drafts_skipped == 0 and result.posts_published == 5
    doc = _json(tmp_path / "feeds", "all")
    assert [i["date_published"] for i in doc["items"]] == ["2022-05-27T15:51:00Z", "2022-05-26T04:19:14Z"]
    assert len(_json(tmp_path / "feeds", "topics/ai")["items"]) == 2
    feedcheck.check_tree(tmp_path / "feeds", BASE)


def test_edited_title_and_date_keep_ids(tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    settings = golden_settings(tmp_path / "seeds", tmp_path / "feeds", tmp_path / "var")
    before = {i["url"]: i["id"] for i in (build(settings), _json(tmp_path / "feeds", "all"))[1]["items"]}
    for path in (tmp_path / "seeds").glob("*.txt"):
        text = path.read_text(encoding="utf-8")
        text = text.replace("title: \"", "title: \"Edited: ", 1)
        text = text.replace("date: 2022-05-26 12:19:14 +0800", "date: 2022-05-28 08:00:00 +0800")
        text = text.replace("publishedDateTime: 2020-05-19T21:00:00Z", "publishedDateTime: 2020-05-20T21:00:00Z")
        path.write_text(text, encoding="utf-8")
    build(settings)
    items = _json(tmp_path / "feeds", "all")["items"]
    assert all(i["title"].startswith("Edited: ") for i in items)
    assert {i["url"]: i["id"] for i in items} == before


# ---- site fixtures -------------------------------------------------------------------------


@pytest.mark.parametrize("site", SITES, ids=lambda p: p.name)
def test_site(tmp_path: Path, site: Path) -> None:
    expected = json.loads((site / "expected.json").read_text(encoding="utf-8"))
    seeds = site / "seeds"
    if expected.get("mtimes"):  # a checkout gives files its own times: set those the case needs
        seeds = Path(shutil.copytree(seeds, tmp_path / "seeds"))
        for rel, when in expected["mtimes"].items():
            os.utime(seeds / rel, (when, when))
    settings = golden_settings(seeds, tmp_path / "feeds", tmp_path / "var", **expected["settings"])
    result = build(settings)
    assert [str(p) for p in result.problems] == expected.get("problems", [])
    assert result.pages_skipped == expected["pages_skipped"]
    by_path = {p.path: p for p in result.posts}
    from syndicator.cli import post_json

    for rel, want in expected.get("posts", {}).items():
        got = post_json(by_path[rel])
        assert {k: got[k] for k in want} == want, rel
    feeds = tmp_path / "feeds"
    assert sorted(f.stem for f in result.feeds) == sorted(expected["feeds"])
    for stem, ids in expected["feeds"].items():
        assert [i["id"] for i in _json(feeds, stem)["items"]] == ids, stem
    for stem, title in expected["titles"].items():
        assert _json(feeds, stem)["title"] == title
    feedcheck.check_tree(feeds, settings.base_url)


def test_topics_without_aliases_stay_apart(tmp_path: Path) -> None:
    settings = golden_settings(DATA / "sites/topics/seeds", tmp_path / "feeds", tmp_path / "var")
    result = build(settings)
    assert sorted(f.stem for f in result.feeds) == ["all", "topics/cloud", "topics/machine-learning", "topics/ml"]


# ---- the real W3C validator (outside the repo) ---------------------------------------------


@pytest.mark.skipif(not VALIDATOR, reason="set SYNDICATOR_FEEDVALIDATOR to the W3C feedvalidator runner "
                                          "(validate_feeds.py) to run it; it is not on PyPI")
@pytest.mark.parametrize("source", ["seeds", "seeds-archived", "seeds-unarchived", "seeds-grouped", "posts-ok"]
                         + [p.name for p in SITES])
def test_w3c_validator(tmp_path: Path, source: str) -> None:
    seeds = {"posts-ok": DATA / "posts" / "ok"}.get(
        source, SEEDS if source.startswith("seeds") else DATA / "sites" / source / "seeds")
    overrides: dict[str, Any] = dict(ARCHIVED) if source == "seeds-archived" else {}
    if source == "seeds-unarchived":  # feeds that hold some of their items, with no pages
        overrides = {**ARCHIVED, "archive_page_size": 0}
    if source == "seeds-grouped":  # one item per story, the other coverage as Atom related links
        overrides = {"group_stories": ["all", "ai"], "include_drafts": True}
    if source in [p.name for p in SITES]:
        overrides = json.loads((DATA / "sites" / source / "expected.json").read_text())["settings"]
    settings = golden_settings(seeds, tmp_path / "feeds", tmp_path / "var", **overrides)
    build(settings)
    run = subprocess.run([VALIDATOR, str(tmp_path / "feeds"), settings.base_url],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert " 0 errors, 0 warnings" in run.stdout


def test_empty_feed_carries_fixed_plausible_date(tmp_path: Path) -> None:
    # Only the draft: every feed is empty. Its date must not be "now" (bytes would change every
    # build) nor 1970 (the validator's "Implausible date"): the fixed tag_date.
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    shutil.copy(SEEDS / "001_26d079db35c95b1a.txt", seeds)
    settings = golden_settings(seeds, tmp_path / "feeds", tmp_path / "var")
    result = build(settings)
    assert [len(f.posts) for f in result.feeds] == [0]
    root = etree.fromstring((tmp_path / "feeds" / "all.atom").read_bytes())
    updated = root.findtext("{http://www.w3.org/2005/Atom}updated")
    assert updated.startswith(settings.tag_date)
    rss = etree.fromstring((tmp_path / "feeds" / "all.rss").read_bytes())
    assert rss.findtext("channel/lastBuildDate") == "Mon, 01 Jan 2024 00:00:00 GMT"


def test_site_config_change_rereads_the_posts_below_it(tmp_path: Path) -> None:
    from syndicator.pipeline import Builder

    seeds = tmp_path / "seeds"
    (seeds / "site").mkdir(parents=True)
    config = seeds / "site" / "_config.yml"
    config.write_text("url: https://one.example\ntimezone: Asia/Shanghai\n", encoding="utf-8")
    (seeds / "site" / "2022-05-26-hello.md").write_text(
        "---\ntitle: Hello\ndate: 2022-05-26 12:00:00\ncategories: news\n---\nBody\n", encoding="utf-8")
    (seeds / "other.md").write_text("---\ntitle: Other\ndate: 2022-05-01\n---\nx\n", encoding="utf-8")
    builder = Builder(golden_settings(seeds, tmp_path / "feeds", tmp_path / "var"))
    first = {p.title: p for p in builder.build().posts}
    assert first["Hello"].link == "https://one.example/news/2022/05/26/hello.html"
    assert first["Hello"].published == datetime(2022, 5, 26, 4, tzinfo=UTC)
    assert not builder.pending(builder.scan())
    config.write_text("url: https://two.example\nbaseurl: /blog\npermalink: pretty\n", encoding="utf-8")
    assert builder.pending(builder.scan())
    second = builder.build()
    assert second.changed_paths == ["site/2022-05-26-hello.md"]  # the post outside is not re-read
    hello = next(p for p in second.posts if p.title == "Hello")
    assert hello.link == "https://two.example/blog/news/2022/05/26/hello/"
    config.write_text("url: [unclosed\n", encoding="utf-8")
    third = builder.build()
    assert any(p.path == "site/_config.yml" for p in third.errors)
    assert any(p.path == "site/_config.yml" for p in builder.build().errors)  # still reported


def test_a_result_lists_the_posts_of_its_own_pass_or_says_it_cannot(tmp_path: Path) -> None:
    """A result lists its pass's posts from the collection itself, not from a copy made each
    pass (20 ms at 100,000 posts): read after the Builder's next pass began, it raises instead
    of listing another pass's posts."""
    from syndicator.pipeline import Builder

    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "a.md").write_text("---\ntitle: A\ndate: 2024-01-01\n---\nx\n", encoding="utf-8")
    builder = Builder(golden_settings(seeds, tmp_path / "feeds", tmp_path / "var"))
    first, listed = builder.build(), builder.build()
    assert [p.title for p in listed.posts] == ["A"]  # read before the next pass
    (seeds / "b.md").write_text("---\ntitle: B\ndate: 2024-01-02\n---\nx\n", encoding="utf-8")
    second = builder.build()
    with pytest.raises(RuntimeError, match="next pass"):
        first.posts  # noqa: B018 - the property is what is tested
    assert [p.title for p in listed.posts] == ["A"]  # what was listed stays
    assert [p.title for p in second.posts] == ["A", "B"]


def test_gz_twins_hold_their_files_and_are_stable(seed_build: tuple[Path, dict[str, bytes]], tmp_path: Path) -> None:
    feeds, _ = seed_build
    twins = sorted(feeds.rglob("*.gz"))
    assert {p.name for p in twins} >= {"all.rss.gz", "all.atom.gz", "all.json.gz", "index.html.gz"}
    assert not list((feeds / "posts").glob("*.gz"))  # pages are compressed by the server instead
    for gz in twins:
        data = gz.read_bytes()
        assert gzip.decompress(data) == gz.with_suffix("").read_bytes(), gz  # what any gzip reader sees
        assert data[4:8] == b"\0\0\0\0"  # no mtime in the header: the same bytes every build
        assert gunzip(data) == gzip.decompress(data)
    body = (feeds / "all.rss").read_bytes()
    assert gzip_bytes(body) == (feeds / "all.rss.gz").read_bytes()
    assert len(gzip_bytes(body)) < len(gzip.compress(body, 1))  # a real level, not store-only
    for broken in (b"", b"not gzip", gzip_bytes(body)[:-5], gzip_bytes(body) + b"junk"):
        with pytest.raises(ValueError):
            gunzip(broken)
