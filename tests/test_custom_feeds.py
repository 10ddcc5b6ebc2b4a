"""Custom feeds over a real `syndicator serve` on 127.0.0.1: topic combinations on the URL
(`topics/ai+azure.rss`) with their canonical spelling and 301s, filter parameters on RE2,
served with the validators, gzip and caching headers of the files, and a cache that a
rebuild empties only for what changed. Every feed is parsed back with feedparser and lxml."""

from __future__ import annotations

import gzip
import json
import random
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syndicator import topicexpr
from tests.feedcheck import check_atom, check_json, check_rss, feedparse
from tests.serverproc import ServerProcess

TOPICS = ["ai", "azure", "microsoft-ai", "facebook-ai", "ai-hardware"]


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("custom")) as server:
        yield server


def get(srv: ServerProcess, path: str, follow: bool = False, **headers: str) -> tuple[int, dict[str, str], bytes]:
    """One GET; `follow`: through a 301 to the feed's one spelling of its query."""
    status, h, body = srv.request("GET", path, {k.replace("_", "-"): v for k, v in headers.items()})
    found = {k.lower(): v for k, v in h.items()}
    if follow and status == 301:
        assert found["location"].startswith(srv.base_url)
        return get(srv, "/" + found["location"][len(srv.base_url):], **headers)
    return status, found, body


def ids(srv: ServerProcess, path: str) -> list[str]:
    status, headers, body = get(srv, path)
    assert status == 200, (path, status, body)
    if path.split("?")[0].endswith(".json"):
        return [item["id"] for item in json.loads(body)["items"]]
    return [e.id for e in feedparse(body).entries]


def topics_of(srv: ServerProcess) -> dict[str, set[str]]:
    """Item ids of every topic's published file, and of all."""
    out = {t: set(ids(srv, f"/topics/{t}.atom")) for t in TOPICS}
    out["all"] = set(ids(srv, "/all.atom"))
    return out


# -- the algebra ----------------------------------------------------------------------------------

def test_combinations_select_what_they_say(srv: ServerProcess) -> None:
    t = topics_of(srv)
    assert t["ai"] and t["azure"] and t["ai"] != t["all"]
    cases = {
        "ai+microsoft-ai": t["ai"] & t["microsoft-ai"],
        "ai,azure": t["ai"] | t["azure"],
        "ai,-facebook-ai": t["ai"] - t["facebook-ai"],
        "ai+ai-hardware,azure": (t["ai"] & t["ai-hardware"]) | t["azure"],
        "-azure": t["all"] - t["azure"],
        "ai+azure": t["ai"] & t["azure"],
    }
    for expression, expected in cases.items():
        for fmt in ("rss", "atom", "json"):
            got = ids(srv, f"/topics/{expression}.{fmt}")
            assert set(got) == expected, (expression, fmt)
            assert len(got) == len(set(got))  # a post in two groups is one item
    # newest first, as every feed
    status, _, body = get(srv, "/topics/ai,azure.json")
    dates = [item["date_published"] for item in json.loads(body)["items"]]
    assert dates == sorted(dates, reverse=True) and len(dates) >= 2


def test_other_spellings_answer_301_to_the_canonical_one(srv: ServerProcess) -> None:
    canonical = {
        "azure+ai": "ai+azure",
        "azure,ai": "ai,azure",
        "ai,ai": "ai",
        "AI+Azure": "ai+azure",
        "ai+-azure": "ai,-azure",
        "-azure,ai": "ai,-azure",
        "ai,ai+azure": "ai",  # the second group adds nothing
        "azure+-ai,ai-hardware": "ai-hardware,azure+-ai",
    }
    for spelled, target in canonical.items():
        for fmt in ("rss", "atom", "json"):
            status, headers, _ = get(srv, f"/topics/{spelled}.{fmt}")
            assert status == 301, (spelled, status)
            assert headers["location"] == srv.url(f"/topics/{target}.{fmt}")
            assert get(srv, f"/topics/{target}.{fmt}")[0] == 200
    # the canonical spelling answers itself, and a single topic is its own file
    assert get(srv, "/topics/ai,-azure.rss")[0] == 200
    status, _, body = get(srv, "/topics/ai.rss")
    assert status == 200 and body == (srv.feeds_dir / "topics" / "ai.rss").read_bytes()
    # the query keeps its parameters, normalised
    status, headers, _ = get(srv, "/topics/azure+ai.rss?limit=2&filter=Azure")
    assert status == 301 and headers["location"] == srv.url("/topics/ai+azure.rss?filter=Azure&limit=2")


@pytest.mark.parametrize("path", ["/topics/ai+nope.rss", "/topics/a++b.rss", "/topics/ai+-ai.rss",
                                  "/topics/-ai+ai.atom", "/topics/ai+" + "+".join(["azure"] * 20) + ".rss",
                                  "/topics/nope.rss", "/topics/ai,azure.html", "/topics/ai%2Bazure/x.rss"])
def test_malformed_or_unknown_is_404(srv: ServerProcess, path: str) -> None:
    status, headers, body = get(srv, path)
    assert status == 404, (path, status)
    assert headers["content-type"].startswith("text/plain") and b"Traceback" not in body


def test_custom_feeds_are_valid_in_every_format(srv: ServerProcess) -> None:
    for path in ("topics/ai,azure", "topics/-azure", "all"):
        query = "?filter_case_sensitive=false&filter=azure" if path == "all" else ""
        rss, atom, js = (get(srv, f"/{path}.{fmt}{query}", follow=True)[2] for fmt in ("rss", "atom", "json"))
        q = query.replace("filter_case_sensitive=false&filter=azure", "filter=azure&filter_case_sensitive=false")
        check_rss(rss, srv.url(f"/{path}.rss{q}"), srv.base_url)
        check_atom(atom, srv.url(f"/{path}.atom{q}"), srv.base_url)
        check_json(js, srv.url(f"/{path}.json{q}"), srv.base_url)
        assert feedparse(atom).feed.title.startswith("Syndicator · ")


# -- served like a file ---------------------------------------------------------------------------

def test_validators_304_gzip_and_caching_headers(srv: ServerProcess) -> None:
    path = "/topics/ai,azure.atom"
    status, h, body = get(srv, path)
    assert status == 200 and h["content-type"] == "application/atom+xml; charset=utf-8"
    assert h["etag"].startswith('"') and h["vary"] == "Accept-Encoding, Sec-Fetch-Dest"  # a browser gets the page
    assert h["cache-control"] == "public, max-age=300" and h["accept-ranges"] == "bytes"
    newest = max(e.updated_parsed for e in feedparse(body).entries)
    assert h["last-modified"] == time.strftime("%a, %d %b %Y %H:%M:%S GMT", newest)
    again = get(srv, path)
    assert again[2] == body and again[1]["etag"] == h["etag"]  # the same bytes, the same tag
    assert get(srv, path, If_None_Match=h["etag"])[0] == 304
    assert get(srv, path, If_Modified_Since=h["last-modified"])[0] == 304
    status, gh, gz = get(srv, path, Accept_Encoding="gzip")
    assert status == 200 and gh["content-encoding"] == "gzip" and gzip.decompress(gz) == body
    assert gh["etag"] != h["etag"] and get(srv, path, Accept_Encoding="gzip", If_None_Match=gh["etag"])[0] == 304
    status, rh, part = get(srv, path, Range="bytes=0-9")
    assert status == 206 and part == body[:10]
    head = srv.request("HEAD", path)
    assert head[0] == 200 and head[2] == b"" and head[1]["ETag"] == h["etag"]


def test_equal_queries_share_one_answer(srv: ServerProcess) -> None:
    status, headers, _ = get(srv, "/all.rss?limit=2&filter=Azure&utm_source=x")
    assert status == 301 and headers["location"] == srv.url("/all.rss?filter=Azure&limit=2")  # one URL a feed
    a = get(srv, "/all.rss?limit=2&filter=Azure&utm_source=x", follow=True)
    b = get(srv, "/all.rss?filter=Azure&limit=2")
    assert a[0] == b[0] == 200 and a[2] == b[2] and a[1]["etag"] == b[1]["etag"]
    # limit at its default is no limit: the same feed as the file
    status, _, body = get(srv, "/topics/ai.rss?limit=50")
    assert status == 200 and body.count(b"<item>") == (srv.feeds_dir / "topics/ai.rss").read_bytes().count(b"<item>")


# -- filters --------------------------------------------------------------------------------------

def entries(srv: ServerProcess, path: str) -> list[dict[str, str]]:
    status, _, body = get(srv, path, follow=True)
    assert status == 200, (path, body)
    return json.loads(body)["items"]


def test_filters_keep_what_they_name(srv: ServerProcess) -> None:
    every = entries(srv, "/all.json")
    assert len(every) == 4

    def text(item: dict[str, str]) -> str:
        return item["title"] + "\n" + item.get("summary", "")

    azure = entries(srv, "/all.json?filter=Azure")
    assert azure and all("Azure" in text(i) for i in azure)
    assert {i["id"] for i in azure} == {i["id"] for i in every if "Azure" in text(i)}
    out = entries(srv, "/all.json?filterout=Azure")
    assert {i["id"] for i in out} == {i["id"] for i in every} - {i["id"] for i in azure}
    titled = entries(srv, "/all.json?filter_title=^Meta")
    assert titled and all(i["title"].startswith("Meta") for i in titled)
    assert entries(srv, "/all.json?filter_title=^meta") == []
    assert entries(srv, "/all.json?filter_title=^meta&filter_case_sensitive=false") == titled
    assert entries(srv, "/all.json?filterout_title=.") == []
    described = entries(srv, "/all.json?filter_description=GPU")
    assert described and all("GPU" in i.get("summary", "") for i in described)
    assert len(entries(srv, "/all.json?limit=1")) == 1
    assert entries(srv, "/all.json?limit=1")[0]["id"] == every[0]["id"]
    zh = entries(srv, "/all.json?lang=zh")
    assert zh and all(i["language"].startswith("zh") for i in zh)
    assert {i["id"] for i in entries(srv, "/all.json?lang=en,zh")} == {i["id"] for i in every}
    assert entries(srv, "/all.json?min_quality=1000") == []
    assert entries(srv, "/all.json?filter_time=60") == []  # the seeds are from 2022
    assert len(entries(srv, "/all.json?filter_time=3153600000")) == 4
    # Chinese patterns
    assert [i["language"] for i in entries(srv, "/all.json?filter=" + urllib.parse.quote("微软"))] == ["zh"]


@pytest.mark.parametrize("query, reason", [
    ("filter=(a", "missing )"),
    ("filter=(a)\\1", "invalid escape"),
    ("filter=(?=a)", "invalid"),
    ("filter=" + "a" * 300, "1 to 256 characters"),
    ("filter=a&filter=b", "given 2 times"),
    ("limit=0", "limit must be"),
    ("limit=51", "limit must be"),
    ("limit=x", "limit must be"),
    ("filter_time=-5", "filter_time"),
    ("filter_case_sensitive=maybe", "true or false"),
    ("lang=<x>", "lang must be"),
    ("min_quality=1e9", "min_quality"),
])
def test_bad_parameters_are_400_with_the_reason(srv: ServerProcess, query: str, reason: str) -> None:
    for path in ("/all.rss", "/topics/ai,azure.atom", "/topics/ai.json"):
        status, headers, body = get(srv, path + "?" + urllib.parse.quote(query, safe="=&"))
        assert status == 400, (path, query, status)
        assert reason in body.decode(), body
        assert headers["content-type"].startswith("text/plain") and b"Traceback" not in body


def test_hostile_patterns_answer_at_once(srv: ServerProcess) -> None:
    """Patterns that make a backtracking engine run for ages are linear on RE2."""
    for pattern in ("(a+)+$", "(a|aa)+b", "(.*a){20}", "(x+x+)+y", "^(\\w+\\s?)*$"):
        started = time.monotonic()
        status, _, _ = get(srv, "/all.rss?filter=" + urllib.parse.quote(pattern), follow=True)
        assert status == 200 and time.monotonic() - started < 2, pattern
    assert get(srv, "/all.rss?filter=" + urllib.parse.quote("a{1000}{1000}"))[0] == 400  # too big a program


# -- the cache and rebuilds -----------------------------------------------------------------------

POST = """---
title: {title}
excerpt: A new post about {topic}.
publishedDateTime: 2022-06-0{day}T10:00:00Z
webUrl: https://example.com/{slug}
provider:
  name: Example
topics:
  - {topic}
---
"""


def wait_for(check, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_a_rebuild_drops_only_what_it_changed(tmp_path: Path) -> None:
    with ServerProcess(tmp_path) as srv:
        def cached() -> int:
            return int(json.loads(srv.request("GET", "/healthz")[2])["custom_feeds"]["entries"])

        ai = get(srv, "/topics/ai+microsoft-ai.rss")
        azure = get(srv, "/topics/azure,-ai.rss")
        assert ai[0] == azure[0] == 200 and cached() == 2
        (srv.seeds_dir / "new-azure.md").write_text(
            POST.format(title="Azure news", topic="Azure", day=1, slug="azure-news"), encoding="utf-8")
        wait_for(lambda: "Azure news" in get(srv, "/topics/azure.rss")[2].decode())
        # the next request sees the pass: the Azure answer went, the AI one stayed
        assert get(srv, "/topics/ai+microsoft-ai.rss")[1]["etag"] == ai[1]["etag"] and cached() == 1
        again = get(srv, "/topics/azure,-ai.rss")
        assert again[1]["etag"] != azure[1]["etag"] and b"Azure news" in again[2]
        assert cached() == 2
        # a post that joins a topic the feed leaves out takes it out of that feed
        (srv.seeds_dir / "new-azure.md").write_text(
            POST.format(title="Azure news", topic="AI", day=1, slug="azure-news"), encoding="utf-8")
        wait_for(lambda: "Azure news" not in get(srv, "/topics/azure.rss")[2].decode())
        assert b"Azure news" not in get(srv, "/topics/azure,-ai.rss")[2]
        assert b"Azure news" in get(srv, "/topics/ai.rss?limit=10")[2]


def test_cache_is_bounded(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, config={"custom_cache_entries": 5}) as srv:
        for n in range(1, 31):
            assert get(srv, f"/all.rss?limit={n % 50 + 1}&filter=a{n}|e", follow=True)[0] == 200
        stats = json.loads(srv.request("GET", "/healthz")[2])["custom_feeds"]
        assert stats["entries"] == 5 and 0 < stats["bytes"] < 5 * 200_000


def test_custom_feeds_can_be_turned_off(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, config={"custom_feeds": False}) as srv:
        assert get(srv, "/topics/ai,azure.rss")[0] == 404
        status, _, body = get(srv, "/topics/ai.rss?limit=1")  # the file, as before
        assert status == 200 and body == (srv.feeds_dir / "topics/ai.rss").read_bytes()


# -- the grammar ------------------------------------------------------------------------------------

SLUGS = st.sampled_from(["ai", "azure", "cloud", "ml", "go"])
TERMS = st.tuples(st.booleans(), SLUGS).map(lambda t: ("-" if t[0] else "") + t[1])
SPELLINGS = st.lists(st.lists(TERMS, min_size=1, max_size=3).map("+".join), min_size=1, max_size=4).map(",".join)


def selects(expression: topicexpr.Expression, topics: frozenset[str]) -> bool:
    return any(g.all_of <= topics and not g.none_of & topics for g in expression.groups)


def naive(text: str, topics: frozenset[str]) -> bool:
    """The grammar as the docs state it, read directly from the spelling."""
    groups = [g.split("+") for g in text.split(",")]
    excluded = {t[1:] for g in groups if all(x.startswith("-") for x in g) for t in g}
    positive = [g for g in groups if not all(x.startswith("-") for x in g)]
    if excluded & topics:
        return False
    if not positive:
        return True
    return any(all((x[1:] not in topics) if x.startswith("-") else (x in topics) for x in g) for g in positive)


@settings(max_examples=300, deadline=None)
@given(SPELLINGS, st.frozensets(SLUGS))
def test_canonical_form_means_the_same_and_is_a_fixed_point(text: str, topics: frozenset[str]) -> None:
    try:
        expression = topicexpr.parse(text)
    except topicexpr.ExpressionError:
        assert not any(naive(text, frozenset(s)) for s in _subsets())  # it selects nothing at all
        return
    assert selects(expression, topics) == naive(text, topics)
    canonical = expression.text()
    assert topicexpr.parse(canonical) == expression and topicexpr.parse(canonical).text() == canonical
    # the order of groups and terms does not matter
    shuffled = ",".join(reversed([("+".join(reversed(g.split("+")))) for g in text.split(",")]))
    assert topicexpr.parse(shuffled).text() == canonical


def _subsets() -> list[set[str]]:
    names = ["ai", "azure", "cloud", "ml", "go"]
    return [{n for i, n in enumerate(names) if mask >> i & 1} for mask in range(32)]


# -- the haystack: one scan of a long list, held to a search post by post --------------------------

def _posts(n: int) -> tuple:  # type: ignore[type-arg]
    from datetime import UTC, datetime, timedelta

    from syndicator.model import Post, Topic

    rnd = random.Random(7)
    words = ["Azure", "cloud", "GPU", "meta", "Meta", "微软", "数据", "a\nb", "PyTorch", "chip", "x^y", "(1)"]
    start = datetime(2022, 1, 1, tzinfo=UTC)
    posts = []
    for i in range(n):
        title = " ".join(rnd.choice(words) for _ in range(rnd.randint(1, 6)))
        summary = " ".join(rnd.choice(words) for _ in range(rnd.randint(0, 12)))
        when = start + timedelta(minutes=n - i)
        posts.append(Post(id=f"p{i}", title=title, link=f"https://example.com/{i}", summary=summary, body_html=None,
                          published=when, updated=when, topics=(Topic("AI", "ai"),), path=f"{i}.md"))
    return tuple(posts)


@pytest.mark.parametrize("query", ["filter=Azure", "filter=^Meta", "filter_title=GPU$", "filter_description=微软",
                                   "filter=meta&filter_case_sensitive=false", "filter=a b", "filter=a.b",
                                   "filter=\\(1\\)", "filter=x\\^y", "filter=^$", "filter_title=\\Acloud",
                                   "filter=(?-m)^Meta", "filter=GPU&filterout=chip", "filterout=Azure",
                                   "filter=Py[Tt]orch.*数据&limit=3", "filter=zzz"])
def test_haystack_finds_what_a_search_per_post_finds(query: str) -> None:
    from syndicator import filters
    from syndicator.pipeline import catalog

    posts = _posts(3000)
    lists = {"all": posts, "topics/ai": posts}
    made = catalog.Catalog(1, lists, {"ai": "AI"})
    args = urllib.parse.parse_qs(query, keep_blank_values=True)
    wanted = filters.parse(args, 50, 256)
    haystack = made.haystack("all")
    assert haystack is not None
    scanned = wanted.candidates(haystack) is not None
    assert scanned == (not query.startswith("filterout") and "\\A" not in query and "(?-m)" not in query)
    fast = made.select(None, wanted.matcher(), wanted.limit or 50, wanted)
    reference = [p for p in posts if wanted.matcher()(p)][: wanted.limit or 50]  # type: ignore[misc]
    assert fast == reference
    assert made.select(topicexpr.parse("ai"), wanted.matcher(), wanted.limit or 50, wanted) == reference


def test_a_patched_catalog_equals_one_made_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """The lists a pass patches (a few posts changed) are those the planner lists afresh, and
    so are the haystacks patched from those of a pass or more before (or kept as they were)."""
    from dataclasses import replace as changed

    from syndicator.config import load_settings
    from syndicator.filters import Haystack
    from syndicator.model import Topic
    from syndicator.pipeline import catalog, feeds

    monkeypatch.setattr(catalog, "HAYSTACK_MIN", 20)
    patched = 0

    rnd = random.Random(3)
    topics = [Topic(n.upper(), n) for n in ("ai", "azure", "cloud")]
    posts = [changed(p, topics=tuple(rnd.sample(topics, rnd.randint(0, 2)))) for p in _posts(400)]
    planner = feeds.Planner(load_settings(env={}))
    planner.update([], posts)
    made = catalog.Catalog().advance(planner, [], full=True)
    for step in range(30):
        gone = rnd.sample(posts, rnd.randint(0, 3))
        new = [changed(p, title=p.title + f" {step}", topics=tuple(rnd.sample(topics, rnd.randint(0, 2))),
                       published=p.published if rnd.random() < 0.5 else p.published.replace(year=2021))
               for p in gone[: rnd.randint(0, len(gone))]]
        posts = [p for p in posts if p not in gone] + new
        stems = planner.update(gone, new)
        made = made.advance(planner, stems, False, gone, new)
        afresh = catalog.Catalog().advance(planner, [], full=True)
        assert dict(made.lists) == dict(afresh.lists) and dict(made.names) == dict(afresh.names), step
        assert all(made.lists[s][0] is planner.posts(s)[0] for s in made.lists if made.lists[s])  # type: ignore[index]
        for stem in rnd.sample(sorted(made.lists), rnd.randint(0, len(made.lists))):  # some passes skip a list
            patched += stem in made._bases
            got, want = made.haystack(stem), Haystack(made.lists[stem])
            assert got is not None, stem
            assert (got.titles, got.title_starts, got.summaries, got.summary_starts) == \
                (want.titles, want.title_starts, want.summaries, want.summary_starts), (step, stem)
    assert patched >= 10  # (most were patched, not made afresh)


# -- a flood of distinct queries ---------------------------------------------------------------------

def test_a_flood_of_distinct_queries_is_refused_cheaply_and_files_keep_flowing(tmp_path: Path) -> None:
    """Threads ask for distinct custom feeds as fast as they are answered while others ask for
    files and for a custom feed already cached: renders are bounded, so part of the flood gets
    503 with Retry-After (from the gate, before Flask), every file and the cached feed 200, and
    once the flood is over a new feed is rendered again."""
    from concurrent.futures import ThreadPoolExecutor

    with ServerProcess(tmp_path / "srv") as srv:
        cached = "/topics/ai,azure.rss?filter=Azure"
        assert get(srv, cached)[0] == 200
        rnd = random.Random(7)
        floods = [f"/topics/{a},{b}.rss?filter={w}{n}%7Ce&limit={n % 50 + 1}"
                  for n in range(600) for a, b, w in [(*sorted(rnd.sample(TOPICS, 2)), rnd.choice(["cloud", "AI"]))]]

        def flood(path: str) -> tuple[int, dict[str, str], bytes]:
            return get(srv, path)

        def files(n: int) -> list[int]:
            return [get(srv, p)[0] for p in ("/all.rss", "/topics/ai.atom", cached) * n]

        with ThreadPoolExecutor(12) as pool:
            side = [pool.submit(files, 40) for _ in range(2)]
            answers = list(pool.map(flood, floods))
            statuses = [s for f in side for s in f.result()]
        assert statuses and set(statuses) == {200}
        busy = [(h, body) for status, h, body in answers if status == 503]
        assert busy, "no flood request was refused"
        assert all(h["retry-after"] == "1" and h["cache-control"] == "no-store" and b"Busy" in body for h, body in busy)
        made = [body for status, _, body in answers if status == 200]
        assert made and all(feedparse(body) for body in made)
        assert {status for status, _, _ in answers} <= {200, 301, 503}  # (limit=50 is the default: its spelling is without it)
        time.sleep(1.5)  # as Retry-After says
        status, _, body = get(srv, "/topics/ai,azure.rss?filter=after-the-flood")
        assert status == 200 and feedparse(body)
        # the cache stayed within its bounds
        assert srv.health()["custom_feeds"]["entries"] <= 1024
