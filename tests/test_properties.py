"""Property tests (hypothesis): random front matter, random bytes and random HTML through the
reader, the normalizer and every renderer.

The one rule: a post either becomes an item whose feeds parse (lxml for RSS/Atom, json for
JSON Feed) and whose HTML is safe, or it is refused with our own PostError / NotAPost.
Anything else escaping is a bug. Also here: the summary read from the start of a body is the
one its whole text gives. `python -m tests.fuzz --minutes 10` runs the same checks
with a large example count.
"""

from __future__ import annotations

import json
import re
import string
import time
import tracemalloc
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import PurePosixPath

import lxml.html
import yaml
from hypothesis import HealthCheck, example, given, settings, target
from hypothesis import strategies as st
from lxml import etree

from syndicator import markup, sources
from syndicator.config import load_settings
from syndicator.errors import PostError
from syndicator.model import Post
from syndicator.normalize import ALIASES, SUMMARY_LIMIT, NotAPost, normalize
from syndicator.pipeline import feeds as feedplan
from syndicator.pipeline.plan import FEED_LINKS
from syndicator.plaintext import first_words, truncate
from syndicator.render import RENDERERS, pages

SETTINGS = load_settings(
    env={}, overrides={"seeds_dir": "/nonexistent/seeds", "feeds_dir": "/nonexistent/feeds",
                       "state_dir": "/nonexistent/var"},
)
FEEDS_ROOT = PurePosixPath("/nonexistent/feeds")
#: Strict XML parser: no entity expansion, no network, default depth limits (as a reader's).
_XML = etree.XMLParser(resolve_entities=False, no_network=True)
_UNSAFE_TAGS = {"script", "style", "iframe", "object", "embed", "frame", "frameset", "form", "input",
                "textarea", "button", "select", "base", "meta", "link", "svg", "math"}
_UNSAFE_URL = re.compile(r"^\s*(javascript|vbscript|data|file):", re.I)


# ---- the pipeline under test ---------------------------------------------------------------


def run_pipeline(data: bytes, rel: str) -> Post | None:
    """Reader → normalizer → plan → every renderer + the post page; checks every output.
    Returns the post, or None when it was refused with our own error."""
    try:
        raw = sources.parse(data, rel)
        post, problems = normalize(raw, SETTINGS)
    except (PostError, NotAPost) as e:
        assert str(e).strip()
        return None
    for problem in problems:
        assert problem.severity in ("warning", "error") and problem.message
    check_post(post)
    return post


def check_post(post: Post) -> None:
    assert post.id and post.title.strip() and post.link.startswith(("http://", "https://"))
    assert post.published.tzinfo is not None and post.updated >= post.published
    check_safe_html(post.content_html)
    feeds = feedplan.plan([post], SETTINGS)
    topic_urls = {}
    for feed in feeds:
        # a topic's files can never leave feeds/topics/
        target = FEEDS_ROOT / f"{feed.stem}.rss"
        assert ".." not in target.parts and target.parent in (FEEDS_ROOT, FEEDS_ROOT / "topics"), feed.stem
        assert re.fullmatch(r"all|topics/[a-z0-9][a-z0-9-]*", feed.stem), feed.stem
        for fmt, renderer in RENDERERS.items():
            out = renderer.render(feed, feedplan.feed_url(SETTINGS, feed.stem, fmt))
            assert isinstance(out, bytes)
            if fmt == "json":
                parsed = json.loads(out)
                assert len(parsed["items"]) == len(feed.posts)
            else:
                root = etree.fromstring(out, _XML)
                assert root.tag in ("rss", "{http://www.w3.org/2005/Atom}feed")
                # what a reader renders as HTML: RSS description / content:encoded, Atom content
                for el in root.iter("description", "{http://purl.org/rss/1.0/modules/content/}encoded",
                                    "{http://www.w3.org/2005/Atom}content"):
                    if el.getparent().tag in ("item", "{http://www.w3.org/2005/Atom}entry"):
                        check_safe_html(el.text or "")
        if feed.topic:
            topic_urls[feed.topic.slug] = feed.home_url
        lxml.html.document_fromstring(pages.feed_page(SETTINGS, feed, FEED_LINKS))
    if post.page_slug:
        assert re.fullmatch(r"[a-z0-9][a-z0-9-]*", post.page_slug), post.page_slug
        page = pages.post_page(SETTINGS, post, topic_urls, FEED_LINKS)
        lxml.html.document_fromstring(page)


def check_safe_html(fragment: str) -> None:
    if not fragment.strip():
        return
    root = lxml.html.fragment_fromstring(fragment, create_parent="div")
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        assert el.tag.lower() not in _UNSAFE_TAGS, el.tag
        for name, value in el.attrib.items():
            assert not name.lower().startswith("on"), name
            assert name.lower() not in ("style", "hidden"), name
            if name.lower() in ("href", "src", "poster", "action", "formaction", "xlink:href"):
                assert not _UNSAFE_URL.match(value), value


# ---- strategies ----------------------------------------------------------------------------

KNOWN_KEYS = sorted({k for names in ALIASES.values() for k in names} | {"layout", "type", "quality", "heat"})
_TZ = st.sampled_from([None, UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))])
_NASTY_TEXT = st.sampled_from([
    "", " ", "../../etc/passwd", "a/b", "%2e%2e", "..", ".", "javascript:alert(1)", "data:text/html,<b>x</b>",
    "//evil.example/x", "/relative/path", "relative", "http://", "https://ex.com/a b", "Itâ€™s", "\x00\x01\x0b",
    "\ufffe\uffff", "<script>alert(1)</script>", "]]>", "&amp;&#0;&#xD800;", "2022-02-30", "2022-05-26",
    "2022-05-26 12:19:14 +0800", "2022-05-26T12:19:14+08:00", "Thu, 26 May 2022 12:19:14 GMT", "1653538754",
    "+0800", "9999-12-31", "0001-01-01", "智通财经网新闻", "x" * 600, "true", "false", "null", "~",
])
_SCALARS = (
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=40) | _NASTY_TEXT
    | st.dates() | st.datetimes(timezones=_TZ)
)
yaml_values = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=6)
    | st.dictionaries(st.sampled_from(["url", "name", "domain", "title", "width", "height", "webUrl",
                                       "publishedDateTime", "provider", "src"]) | st.text(max_size=8),
                      children, max_size=5),
    max_leaves=25,
)
front_matter = st.dictionaries(st.sampled_from(KNOWN_KEYS) | st.text(max_size=12), yaml_values, max_size=14)

_TAGS = ["div", "p", "span", "a", "img", "script", "style", "iframe", "object", "embed", "svg", "math",
         "form", "input", "table", "tr", "td", "ul", "li", "b", "i", "pre", "code", "br", "hr", "video",
         "source", "picture", "figure", "base", "meta", "link", "noscript", "template", "title", "textarea",
         "h1", "blockquote", "details", "summary", "button", "select", "option", "frame", "marquee"]
_ATTRS = st.sampled_from([
    ("onclick", "alert(1)"), ("onerror", "alert(1)"), ("OnMouseOver", "x"), ("style", "display:none"),
    ("style", "visibility: hidden"), ("style", "color:red"), ("hidden", ""), ("href", "javascript:alert(1)"),
    ("href", " JaVaScRiPt:alert(1)"), ("href", "java\tscript:alert(1)"), ("src", "data:image/png;base64,AA=="),
    ("href", "/rel"), ("href", "//evil.example/x"), ("href", "https://ok.example/?a=1&b=2"), ("src", "x.png"),
    ("srcset", "a.png 1x, javascript:alert(1) 2x"), ("xlink:href", "javascript:alert(1)"), ("title", "\x01\x02"),
    ("formaction", "javascript:alert(1)"), ("poster", "javascript:x"), ("class", "x"), ("id", "]]>"),
])
_HTML_TEXT = st.text(max_size=20) | st.sampled_from(["&nbsp;", "&#0;", "&#x1;", "&bogus;", "<", ">", "&", "]]>",
                                                     "\x00", "\x0c", "\ud7ff", "\U0001f600", "<!--", "-->",
                                                     "<![CDATA[x]]>", "<?php x ?>", "<!DOCTYPE html>"])


@st.composite
def html_element(draw: st.DrawFn, children: st.SearchStrategy[str]) -> str:
    tag = draw(st.sampled_from(_TAGS))
    attrs = draw(st.lists(_ATTRS, max_size=3))
    attr_text = "".join(f' {k}="{v}"' for k, v in attrs)
    inner = "".join(draw(st.lists(children, max_size=4)))
    close = draw(st.sampled_from([f"</{tag}>", f"</{tag}>", "", "</div>"]))  # unclosed and misnested too
    return f"<{tag}{attr_text}>{inner}{close}"


html_fragments = st.recursive(_HTML_TEXT, lambda children: html_element(children), max_leaves=30)

# Bodies for the summary taken from a prefix: a cut can fall in any of these pieces.
_SUMMARY_TAGS = ["p", "div", "li", "ul", "h2", "span", "a", "b", "i", "br", "img", "pre", "blockquote", "table",
                 "tr", "td", "caption", "script", "style", "textarea", "noscript", "title", "template", "svg",
                 "select", "object"]
_SUMMARY_ATTRS = st.sampled_from(["", ' href="https://example.org/a?b=1&amp;c=2"', ' title="a &lt;b&gt; &amp; c"',
                                  ' alt="' + "long alt " * 8 + '"', ' style="display:none"', " hidden", " class=x"])
_SUMMARY_PIECES = st.sampled_from([
    "&amp;", "&lt;", "&gt;", "&nbsp;", "&quot;", "&CounterClockwiseContourIntegral;", "&notin;", "&not", "&amp",
    "&ampere;", "&#8364;", "&#x1F600;", "&#0;", "&#x1;", "&#65", "&#000000000000000000065;", "&bogus;", "&", "<",
    "</", "<!-- c -->", "<![CDATA[c]]>", " ", "  ", "\n", " \t\r\n ", "\xa0", "\u3000", "x" * 90,
    "智通财经网新闻研究发布供应链" * 3, "Ünïcödé wörds", "\U0001f600", "&\x01#1;", "\x0b", "\x00",
])
_SUMMARY_WORDS = st.lists(st.text(alphabet="abcdefgh中文字，。", min_size=1, max_size=12), min_size=1,
                          max_size=12).map(" ".join)


@st.composite
def _summary_element(draw: st.DrawFn, children: st.SearchStrategy[str]) -> str:
    tag = draw(st.sampled_from(_SUMMARY_TAGS))
    inner = "".join(draw(st.lists(children, max_size=5)))
    close = draw(st.sampled_from([f"</{tag}>", f"</{tag}>", "", "</p>"]))
    return f"<{tag}{draw(_SUMMARY_ATTRS)}>{inner}{close}"


@st.composite
def _summary_table(draw: st.DrawFn, children: st.SearchStrategy[str]) -> str:
    """A table with text outside its cells, which the parser moves to before the table."""
    caption, cell, stray = draw(children), draw(children), draw(children)
    layout = draw(st.sampled_from(["<table><caption>{0}</caption><tr><td>{1}</td>{2}</tr></table>",
                                   "<table><tr><td>{1}</td></tr>{2}<tr><td>{0}</td></tr></table>",
                                   "<table><tbody><tr>{1}</tr></tbody>{2}", "{2}<table><td>{0}<td>{1}"]))
    return layout.format(caption, cell, stray)


_SUMMARY_FRAGMENTS = st.recursive(_SUMMARY_PIECES | _SUMMARY_WORDS,
                                  lambda children: _summary_element(children) | _summary_table(children),
                                  max_leaves=20)
#: Short and long bodies (a body repeated up to 12 times reaches a few thousand characters).
summary_bodies = st.builds(lambda parts, times: "".join(parts) * times,
                           st.lists(_SUMMARY_FRAGMENTS, max_size=30), st.integers(1, 12))

_NAMES = st.sampled_from(["post.md", "2022-05-26-post.md", "page.html", "news.txt", "dir/sub/x.markdown",
                          "weird name ü.md", "2022-02-30-bad.md"])


def _yaml_dump(data: dict) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


# ---- the properties ------------------------------------------------------------------------
# Each `prop_*` takes drawn values; the tests below and tests/fuzz.py wrap them with @given.

PROPERTY_SETTINGS = settings(max_examples=200, deadline=None,
                             suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def prop_front_matter(meta: dict, body: str | None, name: str) -> None:
    text = "---\n" + _yaml_dump(meta) + "---\n" + (body or "")
    post = run_pipeline(text.encode("utf-8", "surrogatepass"), name)
    if post is not None and isinstance(meta.get("title"), str) and meta["title"].strip():
        assert post.title


def prop_raw_front_matter(front: str, body: str, delimiter: str, name: str) -> None:
    text = f"{delimiter}\n{front}\n{delimiter}\n{body}"
    run_pipeline(text.encode("utf-8", "surrogatepass"), name)


def prop_bytes(prefix: bytes, data: bytes, name: str) -> None:
    run_pipeline(prefix + data, name)


def prop_html(body: str, name: str, markdown: bool) -> None:
    fname = name if markdown else "page.html"
    text = "---\ntitle: T\ndate: 2022-05-26 12:19:14 +0800\ntags: [a, b]\n---\n" + body
    post = run_pipeline(text.encode("utf-8", "surrogatepass"), fname)
    if "\x00" not in body:  # a NUL byte makes the file binary: refused on purpose
        assert post is not None, "a valid header with any body is always an item"


def _summary_input(body: str, sanitised: bool) -> str:
    return markup.sanitize(body, "https://example.org/") if sanitised else body


def prop_summary(body: str, limit: int, sanitised: bool) -> None:
    html = _summary_input(body, sanitised)
    assert markup.summary_text(html, limit) == truncate(markup.to_text(html), limit)


def prop_prefix_text(body: str, cut: int, sanitised: bool) -> None:
    """All but the last _CUT_DAMAGE characters of a prefix's text begin the whole text."""
    html = _summary_input(body, sanitised)
    if "<" in html or "&" in html:  # else read without parsing, never by prefix
        start = cut % (len(html) + 1)
        check_prefix_texts(html, range(start, min(start + 64, len(html) + 1)))  # a cut anywhere in a reference


def check_prefix_texts(html: str, sizes: Iterable[int]) -> None:
    whole = markup.to_text(html)
    for size in sizes:
        found, _ = markup._prefix_text(html, size)
        assert whole.startswith(found[:max(len(found) - markup._CUT_DAMAGE, 0)]), size


def prop_post_summary(body: str, titled: bool) -> None:
    """A post's summary, and its title when it has none, are those of its whole text."""
    header = "---\ntitle: T\n" if titled else "---\n"
    post = run_pipeline(f"{header}date: 2022-05-26\n---\n{body}".encode("utf-8", "surrogatepass"), "page.html")
    if post is None:  # a NUL byte: refused as binary
        return
    assert post.body_html is not None
    whole = markup.to_text(post.body_html)
    assert post.summary == truncate(whole, SUMMARY_LIMIT)
    assert post.title == ("T" if titled else first_words(whole) if whole else "page")


_YAML_CHARS = string.ascii_letters[:6] + string.digits[:3] + ":-[]{}&*!|>'\"%@`#, \t\n?.+=~\\<\x00\x85\u2028é中"
STRATEGIES = {
    "front_matter": (prop_front_matter, dict(meta=front_matter, body=st.none() | st.text(max_size=60) | html_fragments,
                                             name=_NAMES)),
    "raw_front_matter": (prop_raw_front_matter, dict(
        front=st.text(alphabet=_YAML_CHARS, max_size=120) | st.lists(
            st.tuples(st.sampled_from(KNOWN_KEYS), st.text(alphabet=_YAML_CHARS, max_size=30)), max_size=8
        ).map(lambda kv: "\n".join(f"{k}: {v}" for k, v in kv)),
        body=st.text(max_size=40), delimiter=st.sampled_from(["---", "+++"]), name=_NAMES)),
    "bytes": (prop_bytes, dict(
        prefix=st.sampled_from([b"", b"---\n", b"---\ntitle: x\ndate: 2022-01-01\n---\n", b"\xef\xbb\xbf---\n",
                                b"\xff\xfe", b"\xfe\xff", b"+++\n", b"---\ntitle: "]),
        data=st.binary(max_size=300), name=_NAMES)),
    "html": (prop_html, dict(body=html_fragments, name=_NAMES, markdown=st.booleans())),
    "summary": (prop_summary, dict(body=summary_bodies | html_fragments, sanitised=st.booleans(),
                                   limit=st.integers(1, 80) | st.sampled_from([SUMMARY_LIMIT, 40]))),
    "prefix_text": (prop_prefix_text, dict(body=summary_bodies | html_fragments, cut=st.integers(0, 3000),
                                           sanitised=st.booleans())),
    "post_summary": (prop_post_summary, dict(body=summary_bodies, titled=st.booleans())),
}


def _test(name: str):  # noqa: ANN202
    fn, strategies = STRATEGIES[name]
    return PROPERTY_SETTINGS(given(**strategies)(fn))


test_front_matter = _test("front_matter")
test_raw_front_matter = _test("raw_front_matter")
test_bytes = _test("bytes")
test_html = _test("html")
test_summary = _test("summary")
test_prefix_text = _test("prefix_text")
test_post_summary = _test("post_summary")


def test_known_hostile_html_is_neutralised() -> None:
    body = ('<p onclick="x()">a</p><script>alert(1)</script><iframe src="//x"></iframe><style>p{}</style>'
            '<a href="javascript:alert(1)">j</a><div style="display:none">secret</div><p hidden>h</p><b>ok')
    post = run_pipeline(("---\ntitle: T\ndate: 2022-05-26\n---\n" + body).encode(), "p.html")
    assert post is not None
    assert "secret" not in post.content_html and ">h<" not in post.content_html
    assert "<b>ok</b>" in post.content_html


def test_date_objects_and_values_never_escape() -> None:
    for value in (date(1, 1, 1), datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-12))), 10**30, -1e308,
                  float("nan"), float("inf"), [None], {"a": None}):
        prop_front_matter({"title": "t", "date": value}, None, "x.md")


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
                    timezones=st.sampled_from([UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5, minutes=-30))])))
def test_rfc3339_is_utc_to_the_second_with_a_four_digit_year(value: datetime) -> None:
    from syndicator.dates import rfc3339

    utc = value.astimezone(UTC)
    written = rfc3339(value)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", written)
    assert datetime.fromisoformat(written.replace("Z", "+00:00")) == utc.replace(microsecond=0)
    if utc.year >= 1000:
        assert written == utc.strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- cost: what one post takes to read grows with its size, and no faster --------------------
# A drawn unit repeated n and 4n times in one place of a post. Reading it (the pipeline above)
# may cost a fixed amount (the reading budget lets aliases expand a header to 1 MiB of text) plus
# so much per byte, and 4 times the input may cost at most 8 times as much (twice linear):
# aliases, backtracking patterns and quadratic loops show up as one or the other.

#: Where the repeated unit `{u}` goes; `{long}` is a long string the unit may alias as `*a`.
_COST_PLACES = [
    "---\ntitle: T\ndate: 2022-05-26\nanchor: &a \"{long}\"\nexcerpt: [{u}*a]\n---\nb\n",
    "---\ntitle: T\ndate: 2022-05-26\nanchor: &a \"{long}\"\n{u}\n---\nb\n",
    "---\ntitle: {u}\ndate: 2022-05-26\nanchor: &a \"{long}\"\n---\nb\n",
    "---\ntitle: T\ndate: 2022-05-26\nanchor: &a \"{long}\"\ntags: [{u}]\n---\nb\n",
    "---\ntitle: T\ndate: 2022-05-26\n---\n{u}\n",
    "+++\ntitle = \"T\"\ndate = 2022-05-26\n{u}\n+++\nb\n",
]
_COST_UNITS = st.sampled_from(["*a, ", "[*a, *a], ", "k: *a\n", "- *a\n", "{b: *a}, ", "? *a\n"]) | st.sampled_from([
    "[", "{", "a: ", "- ", "  ", "\t", "x: y: z\n", "? ", "<div>", "<b><i>", "</p>", "**", "_a ", "`", "[a](",
    "](", "{% if x %}", "{% raw %}", "{{ ", "{::", "{: .c}\n", "&#x", "&amp;", "<!--", "<![CDATA[", "\\", "'",
    '"', ": ", "# ", "*", "> ", "    ",
]) | st.text(alphabet=_YAML_CHARS + "<>/*_`()%", min_size=1, max_size=8)
#: Reading may cost this much whatever the input, and this much more per input byte.
COST_BASE = 48 * 1024 * 1024
COST_PER_BYTE = 400
#: Below these the ratios are noise.
_COST_FLOOR_BYTES, _COST_FLOOR_SECONDS = 8 * 1024 * 1024, 0.5


def _cost(text: str) -> tuple[int, float]:
    """Peak traced memory (bytes) and CPU seconds of reading, normalising and rendering `text`."""
    tracemalloc.start()
    started = time.process_time()
    try:
        run_pipeline(text.encode("utf-8", "surrogatepass"), "post.md")
        return tracemalloc.get_traced_memory()[1], time.process_time() - started
    finally:
        tracemalloc.stop()


def prop_cost(place: str, unit: str, long: int, size: int) -> None:
    n = size // len(unit) + 1
    small, big = (place.format(u=unit * times, long="x" * long) for times in (n, 4 * n))
    (memory, seconds), (memory4, seconds4) = _cost(small), _cost(big)
    if memory4 > COST_BASE + COST_PER_BYTE * len(big) or seconds4 > 8 * seconds + 0.1:
        # not the first run's one-off costs (modules loaded, patterns compiled, a busy machine)
        (memory, seconds), (memory4, seconds4) = _cost(small), _cost(big)
    target(memory4 / len(big), label="peak bytes per input byte")
    target(memory4 / max(memory, 1), label="memory growth, 4x the input")
    target(seconds4 / max(seconds, 1e-3), label="time growth, 4x the input")
    assert memory4 <= COST_BASE + COST_PER_BYTE * len(big), f"{memory4:,} bytes for {len(big):,}"
    if memory4 > _COST_FLOOR_BYTES:
        assert memory4 <= 8 * memory, f"{memory:,} -> {memory4:,} bytes for 4x the input"
    if seconds4 > _COST_FLOOR_SECONDS:
        assert seconds4 <= 8 * seconds + 0.1, f"{seconds:.2f} -> {seconds4:.2f} s for 4x the input"


STRATEGIES["cost"] = (prop_cost, dict(place=st.sampled_from(_COST_PLACES), unit=_COST_UNITS,
                                      long=st.integers(1, 50_000), size=st.integers(200, 20_000)))
_BODY = _COST_PLACES[4]
test_cost = settings(PROPERTY_SETTINGS, max_examples=30)(
    example(place=_COST_PLACES[0], unit="*a, ", long=40_000, size=4_000)(  # 760 MB before the budget
    example(place=_COST_PLACES[1], unit="? *a\n", long=25_000, size=3_000)(  # each duplicate-key warning held the key
    example(place=_BODY, unit="{", long=1, size=8_000)(  # Liquid's scans for `}}`: quadratic
    example(place=_BODY, unit="{:.", long=1, size=20_000)(  # kramdown's for an attribute list's `}`
    example(place=_BODY, unit="{::nomarkdown}", long=1, size=20_000)(
    example(place=_BODY, unit="<div>", long=1, size=20_000)(  # html5ever's scans of open elements
        given(**STRATEGIES["cost"][1])(prop_cost))))))))
