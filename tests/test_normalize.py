"""Every rule of the common model, from data files.

tests/data/posts/ok/<case>.<ext> is normalized and compared with <case>.expected.json (a subset
of `syndicator normalize`'s keys; `_settings` are setting overrides, `_warnings` substrings of
the expected warnings, none expected when absent). ok/seeds/<stem>.expected.json holds the
expected model of seeds/<stem>.txt.
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest

from syndicator import sources
from syndicator.cli import post_json
from syndicator.config import Settings, load_settings
from syndicator.model import Post, Problem
from syndicator.normalize import normalize, page_link, tag_uri
from tests.feedcheck import ILLEGAL, check_html_fragment

from .conftest import DATA, SEEDS

OK = DATA / "posts" / "ok"
CASES = sorted(p for p in OK.glob("*") if p.is_file() and not p.name.endswith(".json"))
SEED_CASES = sorted((OK / "seeds").glob("*.expected.json"))


def _settings(**overrides: Any) -> Settings:
    return load_settings(env={}, overrides={"base_url": "http://127.0.0.1:8080/", "tag_date": "2024-01-01",
                                            "timezone": "UTC", **overrides})


def _read(root: Path, rel: str, settings: Settings) -> tuple[Post, list[Problem]]:
    raw = sources.read_post(root, rel, settings.max_post_bytes, sources.SiteConfigs(root))
    return normalize(raw, settings)


def _expected(path: Path) -> Path:
    return path.with_name(path.name.rsplit(".", 1)[0] + ".expected.json")


def _check_invariants(post: Post) -> None:
    """What holds for every post, whatever its input."""
    assert post.published.tzinfo is not None and post.published.utcoffset().total_seconds() == 0
    assert post.updated >= post.published
    assert len(post.summary) <= 300
    assert "<" not in post.summary or not re.search(r"<[a-z/]", post.summary)
    for value in (post.title, post.summary, post.content_html):
        assert not ILLEGAL.search(value)
        assert value == value.strip()
    check_html_fragment(post.content_html)
    assert re.match(r"^https?://", post.link)
    assert "secured" not in post.extra
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", t.slug) for t in post.topics)
    assert len({t.slug for t in post.topics}) == len(post.topics)


def _compare(post: Post, problems: list[Problem], expected: dict[str, Any]) -> None:
    expected = dict(expected)
    expected.pop("_settings", None)
    warnings = expected.pop("_warnings", [])
    got = post_json(post)
    assert {k: got[k] for k in expected} == expected
    messages = [p.message for p in problems]
    assert all(p.severity == "warning" for p in problems)
    for fragment in warnings:
        assert any(fragment in m for m in messages), f"no warning with {fragment!r} in {messages}"
    assert len(messages) == len(warnings), messages


def test_every_case_has_an_expectation() -> None:
    assert CASES
    missing = [p.name for p in CASES if not _expected(p).exists()]
    assert not missing
    orphans = [p.name for p in OK.glob("*.expected.json") if not any(_expected(c) == p for c in CASES)]
    assert not orphans


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.name)
def test_post_case(path: Path) -> None:
    expected = json.loads(_expected(path).read_text(encoding="utf-8"))
    post, problems = _read(path.parent, path.name, _settings(**expected.get("_settings", {})))
    _check_invariants(post)
    _compare(post, problems, expected)


@pytest.mark.parametrize("expected_path", SEED_CASES, ids=lambda p: p.name.split(".")[0])
def test_seed(expected_path: Path) -> None:
    name = expected_path.name.replace(".expected.json", ".txt")
    post, problems = _read(SEEDS, name, _settings())
    _check_invariants(post)
    _compare(post, problems, json.loads(expected_path.read_text(encoding="utf-8")))


def test_all_seeds_covered() -> None:
    assert sorted(p.stem for p in SEEDS.glob("*.txt")) == [p.name.split(".")[0] for p in SEED_CASES]


def test_chinese_seed_rules() -> None:
    post, _ = _read(SEEDS, "002_4daa3943c2b2dbc1.txt", _settings(base_url="https://feeds.example.org/x/",
                                                                   tag_date="2023-02-03"))
    assert post.published.isoformat() == "2022-05-26T04:19:14+00:00"  # 12:19:14 +0800
    assert post.language == "zh"
    assert [(t.name, t.slug) for t in post.topics] == [
        ("zhitongcaijingwang", "zhitongcaijingwang"), ("智通财经网新闻", "zhi-tong-cai-jing-wang-xin-wen")]
    assert post.id == "tag:feeds.example.org,2023-02-03:002_4daa3943c2b2dbc1.txt"
    assert post.link == f"https://feeds.example.org/x/posts/{post.page_slug}.html"
    # display:none paragraphs and their text are gone; protocol-relative links are absolute
    assert "display" not in post.content_html and 'href="//' not in post.content_html
    assert 'href="https://finews.withounder.com/"' in post.content_html


def test_mojibake_repaired_in_related_titles() -> None:
    post, _ = _read(SEEDS, "004_882cc4a5fc2a4bd2.txt", _settings())
    titles = [r.title for r in post.related]
    assert "Microsoft Says It’s Built a Top-Five Supercomputer in the Cloud for AI" in titles
    assert not any("â€" in t for t in titles)


def test_tag_uri_uses_host_date_and_path() -> None:
    settings = _settings(base_url="https://feeds.example.org:8443/base/", tag_date="2023-02-03")
    assert tag_uri(settings, "sub dir/ü.md") == "tag:feeds.example.org,2023-02-03:sub%20dir/%C3%BC.md"


@pytest.mark.parametrize("name", ["sanitise.md", "jekyll-lists.md", "news-weburl-encoded.txt"])
def test_ids_survive_title_and_date_edits(tmp_path: Path, name: str) -> None:
    shutil.copy(OK / name, tmp_path / name)
    before, _ = _read(tmp_path, name, _settings())
    text = (tmp_path / name).read_text(encoding="utf-8")
    text = re.sub(r"(?m)^title: .*$", 'title: "A completely new title"', text)
    text = re.sub(r"(?m)^(date|publishedDateTime): .*$", r"\1: 2023-09-09T09:09:09Z", text)
    (tmp_path / name).write_text(text, encoding="utf-8")
    after, _ = _read(tmp_path, name, _settings())
    assert after.title == "A completely new title" and after.published != before.published
    assert after.id == before.id


def test_include_drafts_does_not_change_the_model() -> None:
    post, _ = _read(OK, "draft.md", _settings(include_drafts=True))
    assert post.draft is True


def test_summary_is_plain_text_within_limit() -> None:
    post, _ = _read(OK, "long-summary.md", _settings())
    assert len(post.summary) <= 300 and post.summary.endswith("…")
    assert post.summary.startswith("Sentence number 0 says something.")


def test_topic_aliases_merge_names() -> None:
    post, _ = _read(OK, "jekyll-words.md", _settings(topic_aliases={"ml": "Machine Learning", "AI": "Machine Learning"}))
    assert [(t.name, t.slug) for t in post.topics] == [
        ("data", "data"), ("science", "science"), ("Machine Learning", "machine-learning")]


def test_dates_are_utc() -> None:
    post, _ = _read(OK, "crlf.md", _settings(timezone="Asia/Tokyo"))
    assert post.published.tzinfo == UTC and post.published.hour == 11  # 12:00+01:00


# ---- language guess -------------------------------------------------------------------------

def _language_by_counting(sample: str, default: str) -> str:
    """The rule, spelled out with one count per script."""
    sample = sample[:4000]
    count = lambda pattern: len(re.findall(pattern, sample))  # noqa: E731
    han, kana = count(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"), count(r"[\u3040-\u30ff]")
    if kana and kana * 5 >= han:
        return "ja"
    if count(r"[\uac00-\ud7af]") > 20:
        return "ko"
    if han and han >= 0.3 * max(count(r"[^\W\d_]"), 1):
        return "zh"
    return default


@pytest.mark.parametrize("sample", [
    "plain English", "Café “quoted”", "新能源汽车投资者", "OpenAI 发布 GPT model for developers and the 云", "ひらがなと漢字",
    "漢字漢字漢字漢字漢字ひ", "한국어 " * 30, "한국어", "中" + "x" * 9, "中中中" + "x" * 7, "中" * 3 + " " * 7, "Ωμέγα 中",
])
def test_language_guess_follows_the_rule(sample: str) -> None:
    from syndicator.plaintext import guess_language

    assert guess_language(sample, "en") == _language_by_counting(sample, "en")


def test_language_guess_on_random_mixed_scripts() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from syndicator.plaintext import guess_language

    alphabet = st.sampled_from(list("ab 1,.é中文字漢ひカ한국Ω_-") + ["\u3400", "\uf900", "\ud7af"])

    @settings(max_examples=400, deadline=None)
    @given(st.lists(alphabet, max_size=60).map("".join))
    def check(sample: str) -> None:
        assert guess_language(sample, "xx") == _language_by_counting(sample, "xx")

    check()


def test_strip_illegal_matches_the_character_class() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from syndicator import plaintext

    alphabet = st.sampled_from(list("ab \t\n\r<>&é中한") + ["\x00", "\x01", "\x0b", "\x1f", "\x7f", "\x80", "\ud800",
                                                          "\udfff", "\ufffe", "\uffff", "\ud7af", "\U0001f600"])

    @settings(max_examples=500, deadline=None)
    @given(st.lists(alphabet, max_size=40).map("".join))
    def check(sample: str) -> None:
        assert plaintext.strip_illegal(sample) == plaintext._XML_ILLEGAL.sub("", sample)

    check()


def test_news_body_is_built_for_each_post_object(settings: Settings) -> None:
    """The body cache is keyed by identity: an edited copy never gets the original's body, and
    entries pushed out are built again."""
    from dataclasses import replace

    from syndicator import model

    raw = sources.read_post(SEEDS, next(p.name for p in sorted(SEEDS.iterdir()) if "related:" in p.read_text()),
                            1 << 20)
    post, _ = normalize(raw, settings)
    first = post.content_html
    assert first == model._build_news_body(post) and "Related coverage" in first
    edited = replace(post, summary="A different excerpt")
    assert "A different excerpt" in edited.content_html and "A different excerpt" not in post.content_html
    others = [replace(post, summary=f"other {i}") for i in range(model._BODIES_MAX + 10)]
    assert all(f"other {i}" in p.content_html for i, p in enumerate(others))
    assert len(model._BODIES) <= model._BODIES_MAX
    assert post.content_html == first


@pytest.mark.parametrize("base", [
    "https://feeds.example.org/", "http://127.0.0.1:8080/", "https://example.org/blog/feeds/",
    "https://example.org/a/../b/./", "https://example.org/x?q=1/", "https://example.org/x#top/",
    "https://EXAMPLE.org:8443/Feeds/",
])
@pytest.mark.parametrize("slug", ["hello-world", "zhi-tong-cai-jing-wang-xin-wen", "topic-0123abcdef", "x-1a2b3c"])
def test_page_link_is_the_resolved_posts_url(base: str, slug: str) -> None:
    settings = load_settings(env={}, overrides={"base_url": base})
    assert page_link(settings, slug) == urljoin(settings.base_url, f"posts/{slug}.html")


@pytest.mark.parametrize(("excerpt", "title"), [
    # a scraper's Chinese item without a title: spaces only between sentences, never between words
    ("据霍尼韦尔官网消息，5月24日，霍尼韦尔宣布提供制冷剂。（上海证券报） 国内首款使用超低GWP制冷剂的新能源汽车来了！ 据霍",
     "据霍尼韦尔官网消息，5月24日，霍尼韦尔宣布提供制冷剂"),
    ("国内首款使用超低GWP(全球变暖潜值)制冷剂的新能源汽车来了，据霍尼韦尔官网消息称其已应用于全球超过一亿两千万辆汽车 下一句",
     "国内首款使用超低GWP(全球变暖潜值)制冷剂的新能源汽车来了，据霍尼韦尔官网消…"),
    ("Meta taps the latest Azure virtual machines for its AI research, the company said on Wednesday",
     "Meta taps the latest Azure virtual machines for its AI…"),
])
def test_a_missing_title_is_the_excerpts_first_words_never_a_paragraph(
        tmp_path: Path, excerpt: str, title: str) -> None:
    (tmp_path / "item.md").write_text(
        f"---\nexcerpt: {json.dumps(excerpt, ensure_ascii=False)}\npublishedDateTime: 2022-05-26T04:19:14Z\n"
        "webUrl: https://example.com/a\ntopics: [AI]\n---\n", encoding="utf-8")
    settings = load_settings(env={}, overrides={"base_url": "http://127.0.0.1:8080/"})
    raw = sources.read_post(tmp_path, "item.md", settings.max_post_bytes, sources.SiteConfigs(tmp_path))
    post, problems = normalize(raw, settings)
    assert post.title == title
    assert [p.message for p in problems if "title" in p.message] == [f"missing or empty title; using {title!r}"]


RELATED_ENTRIES: list[Any] = [
    {"title": "Shown", "webUrl": "https://a.example/1", "publishedDateTime": "2021-01-02T03:04:05Z"},
    {"title": "", "webUrl": "https://a.example/2"}, {"title": "No URL"}, "not a mapping",
    {"title": "&nbsp;", "url": "https://a.example/3"}, {"title": " \u00a0 ", "url": "https://a.example/4"},
    {"title": 2021, "originalUrl": "https://a.example/5"}, {"title": "Bad URL", "webUrl": "javascript:x"},
    {"title": "Fran&ccedil;ais", "webUrl": "https://a.example/7"}, {"title": "  spaced  ", "webUrl": "/rel"},
    {"title": "x", "webUrl": "#frag"}, {"title": "Mojibake â€™", "webUrl": "https://a.example/é"},
]


@pytest.mark.parametrize("shown", [0, 1, 2, 3, 5, 20])
def test_related_beyond_the_shown_ones_are_counted_as_the_shown_ones_are_kept(shown: int) -> None:
    """Only the first `related_shown` are built; the rest are counted by the same rules."""
    meta = {"title": "T", "publishedDateTime": "2021-01-01T00:00:00Z", "webUrl": "https://a.example/",
            "related": RELATED_ENTRIES * 2}
    raw = sources.RawPost(path="_news/x.md", meta=meta, body=None, lines={}, site={}, warnings=())
    every, _ = normalize(raw, _settings(related_shown=100))
    assert len(every.related) == 10 and every.related_more == 0  # five of the twelve, twice
    post, _ = normalize(raw, _settings(related_shown=shown))
    assert post.related == every.related[:shown]
    assert post.related_more == len(every.related) - len(post.related)
