"""The renderers on their own: every tests/data/posts/ok post through RSS, Atom and JSON Feed,
parsed back with feedparser and lxml (tests/feedcheck.py), plus feedgen's traps one by one."""

from __future__ import annotations

import dataclasses
import json
import sys

import pytest
from lxml import etree

from syndicator import sources
from syndicator.config import Settings, load_settings
from syndicator.model import Post, Related, Topic
from syndicator.normalize import normalize
from syndicator.pipeline import feeds as feedplan
from syndicator.render import RENDERERS
from tests import feedcheck

from .conftest import DATA

OK = DATA / "posts" / "ok"
BASE = "http://127.0.0.1:8080/"


@pytest.fixture(scope="module")
def ok_posts() -> list[Post]:
    settings = load_settings(env={}, overrides={"base_url": BASE})
    posts = []
    for path in sorted(OK.glob("*")):
        if path.is_file() and not path.name.endswith(".json"):
            raw = sources.read_post(OK, path.name, settings.max_post_bytes, sources.SiteConfigs(OK))
            posts.append(normalize(raw, settings)[0])
    return posts


def _settings(**overrides: object) -> Settings:
    return load_settings(env={}, overrides={"base_url": BASE, **overrides})


def _render(feed, fmt: str) -> bytes:
    return RENDERERS[fmt].render(feed, f"{BASE}{feed.stem}.{fmt}")


@pytest.mark.parametrize("fmt", list(RENDERERS))
def test_every_feed_of_the_ok_posts_passes_the_checks(ok_posts: list[Post], fmt: str) -> None:
    plan = feedplan.plan(ok_posts, _settings())
    assert len(plan) > 10
    for feed in plan:
        feedcheck.CHECKS[fmt](_render(feed, fmt), f"{BASE}{feed.stem}.{fmt}", f"{BASE}{feed.stem}.html")


def test_guid_is_permalink_only_for_the_link(ok_posts: list[Post]) -> None:
    feed = feedplan.plan(ok_posts, _settings())[0]
    rss = etree.fromstring(_render(feed, "rss"))
    guids = {i.findtext("guid"): i.find("guid").get("isPermaLink") for i in rss.iter("item")}
    assert guids["tag:127.0.0.1,2024-01-01:sanitise.md"] == "false"
    assert guids["urn:uuid:2d6b3c1e-8c1a-4f7e-9a57-0b5a3c9d1e2f"] == "false"
    assert guids["https://example.com/?p=123"] == "false"  # a URL, but not the item's link
    assert guids["https://example.com/ml"] == "true"


def test_home_links_are_the_feed_page_and_dates_are_the_newest_item(ok_posts: list[Post]) -> None:
    feed = feedplan.plan(ok_posts, _settings(base_url="https://feeds.example.org/"))[0]
    rss = etree.fromstring(RENDERERS["rss"].render(feed, "https://feeds.example.org/all.rss"))
    assert rss.findtext("channel/link") == "https://feeds.example.org/all.html"
    atom_doc = etree.fromstring(RENDERERS["atom"].render(feed, "https://feeds.example.org/all.atom"))
    assert [(e.get("type"), e.get("href")) for e in atom_doc.findall(f"{feedcheck.ATOM}link[@rel='alternate']")] == [
        ("text/html", "https://feeds.example.org/all.html")]
    doc = json.loads(RENDERERS["json"].render(feed, "https://feeds.example.org/all.json"))
    assert doc["home_page_url"] == "https://feeds.example.org/all.html"
    newest = max(p.updated for p in ok_posts)
    assert rss.findtext("channel/lastBuildDate") == newest.strftime("%a, %d %b %Y %H:%M:%S GMT")
    atom = etree.fromstring(RENDERERS["atom"].render(feed, "https://feeds.example.org/all.atom"))
    assert atom.findtext(f"{feedcheck.ATOM}updated") == newest.isoformat()


def test_categories_are_topics(ok_posts: list[Post]) -> None:
    post = next(p for p in ok_posts if p.path == "topic-collision.txt")
    feed = feedplan.plan([post], _settings())[0]
    rss = etree.fromstring(_render(feed, "rss"))
    assert [c.text for c in rss.iter("category")] == ["Machine Learning", "Zürich", "人工智能"]
    atom = etree.fromstring(_render(feed, "atom"))
    assert [(c.get("term"), c.get("label")) for c in atom.iter(f"{feedcheck.ATOM}category")] == [
        ("machine-learning", "Machine Learning"), ("zurich", "Zürich"), ("ren-gong-zhi-neng", "人工智能")]
    assert json.loads(_render(feed, "json"))["items"][0]["tags"] == ["Machine Learning", "Zürich", "人工智能"]


def test_empty_topic_feed_is_still_valid() -> None:
    plan = feedplan.plan([], _settings(), keep_topics=[Topic("Gone", "gone")])
    assert [f.stem for f in plan] == ["all", "topics/gone"]
    for feed in plan:
        for fmt in RENDERERS:
            feedcheck.CHECKS[fmt](_render(feed, fmt), f"{BASE}{feed.stem}.{fmt}", f"{BASE}{feed.stem}.html")


def test_json_falls_back_to_content_text(ok_posts: list[Post]) -> None:
    post = dataclasses.replace(ok_posts[0], body_html="")
    doc = json.loads(_render(feedplan.plan([post], _settings())[0], "json"))
    assert doc["items"][0]["content_text"] == post.summary
    assert "content_html" not in doc["items"][0]


@pytest.mark.parametrize("tricky", [
    'quote " backslash \\ slash / tab-free', "line\u2028separator\u2029paragraph", "emoji 🦜 and 人工智能",
    "</script><!-- -->", "\x7f delete and \u00a0 no-break", "",
])
def test_json_feed_bytes_are_the_standard_pretty_form(ok_posts: list[Post], tricky: str) -> None:
    """The JSON Feed is written exactly as `json.dumps(doc, ensure_ascii=False, indent=2)`
    would write it: readers and diffs see the same text whichever encoder writes it."""
    posts = [dataclasses.replace(p, title=f"{p.title} {tricky}", summary=tricky, authors=(tricky or "x",))
             for p in ok_posts]
    data = _render(feedplan.plan(posts, _settings())[0], "json")
    doc = json.loads(data)
    assert data == (json.dumps(doc, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    assert doc["items"][0]["title"].endswith(tricky)


def test_a_json_feed_leaves_no_utf8_copy_in_the_posts_strings(ok_posts: list[Post]) -> None:
    """CPython keeps the UTF-8 form of a non-ASCII string inside it once asked for it, and orjson
    asks for every string it writes: a service that keeps the posts its feeds show would keep a
    second copy of each of their texts (sys.getsizeof counts that copy)."""
    text = "人工智能的新闻。" * 200
    posts = [dataclasses.replace(p, title=f"标题 {i}", summary="摘要" + text, body_html=f"<p>{text}{i}</p>")
             for i, p in enumerate(ok_posts)]
    strings = [s for p in posts for s in (p.title, p.summary, p.body_html)]
    sizes = [sys.getsizeof(s) for s in strings]
    doc = json.loads(_render(feedplan.plan(posts, _settings())[0], "json"))
    assert {item["content_html"] for item in doc["items"]} == {p.body_html for p in posts}
    assert [sys.getsizeof(s) for s in strings] == sizes


def test_items_per_feed_and_stable_tie_order(ok_posts: list[Post]) -> None:
    twins = [dataclasses.replace(ok_posts[0], id=f"urn:x:{n}", link=f"https://example.com/{n}") for n in "bca"]
    plan = feedplan.plan(twins, _settings(items_per_feed=2))
    assert [p.id for p in plan[0].posts] == ["urn:x:a", "urn:x:b"]
    assert feedplan.plan(list(reversed(twins)), _settings(items_per_feed=2))[0] == plan[0]


def test_atom_summary_only_without_content(ok_posts: list[Post]) -> None:
    """rss2email (and others) show an Atom summary in place of the content beside it."""
    with_content = next(p for p in ok_posts if p.content_html and p.summary)
    bare = dataclasses.replace(with_content, body_html="", path="bare.md", id="urn:bare")
    atom = etree.fromstring(_render(feedplan.plan([with_content, bare], _settings())[0], "atom"))
    entries = {e.findtext(f"{feedcheck.ATOM}id"): e for e in atom.iter(f"{feedcheck.ATOM}entry")}
    full, empty = entries[with_content.id], entries["urn:bare"]
    assert full.find(f"{feedcheck.ATOM}content") is not None and full.find(f"{feedcheck.ATOM}summary") is None
    assert empty.find(f"{feedcheck.ATOM}content") is None
    assert empty.findtext(f"{feedcheck.ATOM}summary") == with_content.summary
    rss = etree.fromstring(_render(feedplan.plan([with_content], _settings())[0], "rss"))
    assert rss.findtext("channel/item/description")  # RSS keeps it: the text every reader shows


def test_atom_updated_values_are_unique_within_a_document(ok_posts: list[Post]) -> None:
    """Three posts crawled in the same second: the validator warns DuplicateUpdated on equal
    <updated> texts, so ties get milliseconds, in document order, the first one exact."""
    from datetime import datetime

    triplets = [dataclasses.replace(ok_posts[0], id=f"urn:x:{n}", link=f"https://example.com/{n}") for n in "bca"]
    atom = etree.fromstring(_render(feedplan.plan(triplets, _settings())[0], "atom"))
    stamps = [e.findtext(f"{feedcheck.ATOM}updated") for e in atom.iter(f"{feedcheck.ATOM}entry")]
    assert len(set(stamps)) == 3
    instants = [datetime.fromisoformat(s) for s in stamps]
    assert instants == sorted(instants, reverse=True)
    assert instants[0] == ok_posts[0].updated
    assert (instants[0] - instants[-1]).total_seconds() == 0.002
    again = etree.fromstring(_render(feedplan.plan(list(reversed(triplets)), _settings())[0], "atom"))
    assert [e.findtext(f"{feedcheck.ATOM}updated") for e in again.iter(f"{feedcheck.ATOM}entry")] == stamps


def _every_document(feeds: list, fmts=("rss", "atom", "json")) -> list[bytes]:
    return [_render(feed, fmt) for feed in feeds for fmt in fmts]


def test_items_made_once_a_publish_give_the_same_bytes(ok_posts: list[Post]) -> None:
    """Inside shared_items an item is made once and used in every document it is in: the
    documents must be byte for byte what rendering each alone gives, across feeds (the all
    feed and topics share posts), formats, authors (an item without one names its feed's),
    Atom's tie-broken <updated> (the same post is tied in one document and not in another),
    a grouped feed (items with their story's other coverage), and a bound smaller than what
    passes through."""
    from syndicator.render import shared, shared_items

    tied = [dataclasses.replace(ok_posts[0], id=f"urn:x:{n}", link=f"https://example.com/{n}") for n in "bca"]
    posts = [*ok_posts, *tied]
    grouped = feedplan.plan(posts, _settings())[0]
    grouped = dataclasses.replace(grouped, coverage={p.id: (Related(url="https://example.net/a", title="A"),)
                                                     for p in grouped.posts})
    feeds = [*feedplan.plan(posts, _settings()), *feedplan.plan(posts, _settings(author="Another Desk")),
             *feedplan.plan(tied[:1], _settings()), grouped]
    alone = _every_document(feeds)
    assert not shared.active()
    with shared_items():
        assert _every_document(feeds) == alone
        assert len(shared._KEPT or ()) > 0
        assert _every_document(list(reversed(feeds)), ("json", "atom", "rss")) == alone[::-1]
    assert not shared.active()  # dropped at the end of the publish
    limit = shared.LIMIT
    shared.LIMIT = 3
    try:
        with shared_items():
            assert _every_document(feeds) == alone
            assert len(shared._KEPT or ()) == 3
    finally:
        shared.LIMIT = limit


def test_items_kept_are_bounded_by_their_bytes_too(ok_posts: list[Post]) -> None:
    """A few long posts must not hold unbounded memory: serialized entries count by size,
    the oldest go first, and the documents stay the same bytes."""
    from syndicator.render import shared, shared_items

    feeds = feedplan.plan(ok_posts, _settings())
    alone = _every_document(feeds, ("rss", "atom"))
    largest = max(len(part) for doc in alone for part in doc.split(b"<item>")[1:])
    budget = shared.BYTES
    shared.BYTES = largest * 2
    try:
        with shared_items():
            assert _every_document(feeds, ("rss", "atom")) == alone
            kept = [item for _, item in (shared._KEPT or {}).values() if isinstance(item, bytes)]
            assert kept and sum(map(len, kept)) == shared._size <= shared.BYTES
    finally:
        shared.BYTES = budget


def test_a_post_edited_between_documents_is_not_taken_for_the_old_one(ok_posts: list[Post]) -> None:
    """Items are kept by the post object: an edited post (another object) gets its own."""
    from syndicator.render import shared_items

    with shared_items():
        for n in range(20):
            post = dataclasses.replace(ok_posts[0], title=f"Title {n}")
            feed = feedplan.plan([post], _settings())[0]
            for fmt in ("atom", "rss"):
                assert f"Title {n}</title>".encode() in _render(feed, fmt)
            assert json.loads(_render(feed, "json"))["items"][0]["title"] == f"Title {n}"


def test_a_document_is_made_without_looking_for_a_module(ok_posts: list[Post]) -> None:
    """feedgen's load_extension() tries to import `feedgen.ext.<name>_entry`, which for media
    and dc does not exist: a search of sys.path for every document made. Documents are made
    by the thousand in a cold build, so none may ask the import system for anything."""
    import sys

    feeds = feedplan.plan(ok_posts, _settings())
    _every_document(feeds)  # (whatever the first document imports on first use)
    asked: list[str] = []

    class Watch:
        @staticmethod
        def find_spec(name: str, path: object = None, target: object = None) -> None:
            asked.append(name)

    sys.meta_path.insert(0, Watch)  # type: ignore[arg-type]
    try:
        _every_document(feeds)
    finally:
        sys.meta_path.remove(Watch)  # type: ignore[arg-type]
    assert asked == []
