"""Topic slugs: Chinese read by the word (pypinyin), and the feeds of a running site that were
published under the former per-character spelling answer 301 to the new one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from syndicator.config import load_settings
from syndicator.pipeline.build import build
from syndicator.slugs import legacy_slug, slug
from syndicator.web import create_app


@pytest.mark.parametrize(("name", "expected"), [
    ("广告", "guang-gao"), ("什么", "shen-me"), ("Zookeeper入门", "zookeeper-ru-men"), ("银行", "yin-hang"),
    ("智通财经网新闻", "zhi-tong-cai-jing-wang-xin-wen"), ("AI 芯片", "ai-xin-pian"), ("Facebook AI", "facebook-ai"),
    ("Ünïcode Straße", "unicode-strasse"), ("🙂", slug("🙂")),
])
def test_slug_reads_by_the_word(name: str, expected: str) -> None:
    assert slug(name) == expected


def test_slug_without_letters_is_a_stable_hash() -> None:
    assert slug("🙂").startswith("topic-") and slug("🙂") == legacy_slug("🙂")


def test_feeds_under_the_former_slug_answer_301(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "2021-03-04-ad.md").write_text("---\ntitle: Ads\ndate: 2021-03-04\ntags: [广告, 新闻]\n---\nBody.\n",
                                            encoding="utf-8")
    settings = load_settings(env={}, overrides={
        "seeds_dir": seeds, "feeds_dir": tmp_path / "feeds", "state_dir": tmp_path / "var",
        "base_url": "http://127.0.0.1:8080/"})
    result = build(settings)
    assert sorted(f.stem for f in result.feeds) == ["all", "topics/guang-gao", "topics/xin-wen"]
    table = json.loads((tmp_path / "feeds" / ".redirects.json").read_text(encoding="utf-8"))["redirects"]
    assert table == {"topics/yan-gao": "topics/guang-gao"}  # 新闻 reads alike both ways: no entry
    app = create_app(settings)
    app.config.update(TESTING=True)
    client: FlaskClient = app.test_client()
    for ext in ("rss", "atom", "json"):
        resp = client.get(f"/topics/yan-gao.{ext}")
        assert resp.status_code == 301
        assert resp.headers["Location"] == f"http://127.0.0.1:8080/topics/guang-gao.{ext}"
        assert client.get(resp.headers["Location"].removeprefix("http://127.0.0.1:8080")).status_code == 200


def _build_importing(seeds: Path, root: Path, *config: str) -> tuple[bool, set[str]]:
    """`syndicator build` as a user runs it, with the state in root/var: whether the process
    imported pypinyin (python -X importtime lists every import), and the topic feeds it has."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "syndicator", "build", "-q", "--seeds", str(seeds),
         "--out", str(root / "feeds"), "--state", str(root / "var"), "--base-url", "https://feeds.example.org/",
         *config],
        capture_output=True, text=True, timeout=120, check=True)
    imported = any(line.rstrip().endswith("| pypinyin") for line in done.stderr.splitlines())
    return imported, {p.stem for p in (root / "feeds" / "topics").glob("*.rss")}


def test_a_repeat_build_slugs_known_chinese_topics_without_the_phrase_tables(tmp_path: Path) -> None:
    """The phrase tables cost 0.3 s and 55 MiB: a build (or a service) over a state whose
    records were read with this code takes known names' slugs from them, and loads the tables
    only for a name it has not slugged before."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    post = "---\ntitle: {title}\ndate: 2024-03-0{day} 10:00:00 +0800\ntags: [{tags}]\n---\n正文。\n"
    (seeds / "2024-03-01-a.md").write_text(post.format(title="一", day=1, tags="广告, 银行"), encoding="utf-8")
    (seeds / "2024-03-02-b.md").write_text(post.format(title="二", day=2, tags="银行"), encoding="utf-8")
    imported, topics = _build_importing(seeds, tmp_path)
    assert imported and topics == {"guang-gao", "yin-hang"}  # a cold build needs them

    (seeds / "2024-03-02-b.md").write_text(post.format(title="二 (edited)", day=2, tags="银行, 广告"),
                                           encoding="utf-8")
    imported, topics = _build_importing(seeds, tmp_path)
    assert not imported and topics == {"guang-gao", "yin-hang"}
    assert "二 (edited)" in (tmp_path / "feeds" / "topics" / "guang-gao.rss").read_text(encoding="utf-8")

    (seeds / "2024-03-03-c.md").write_text(post.format(title="三", day=3, tags="什么"), encoding="utf-8")
    imported, topics = _build_importing(seeds, tmp_path)
    assert imported and topics == {"guang-gao", "yin-hang", "shen-me"}

    # other settings: every post is read again, and no slug of the old reads is taken as known
    (tmp_path / "other.yaml").write_text("items_per_feed: 7\n", encoding="utf-8")
    imported, topics = _build_importing(seeds, tmp_path, "--config", str(tmp_path / "other.yaml"))
    assert imported and topics == {"guang-gao", "yin-hang", "shen-me"}


#: `python -m syndicator` that lists the modules it loaded when it exits (python-slugify imports
#: its transliteration table with importlib, which -X importtime does not list)
_LISTING = ("import atexit, runpy, sys; atexit.register(lambda: sys.stderr.write("
            "'\\nloaded: ' + ' '.join(sorted(sys.modules)) + '\\n')); runpy.run_module('syndicator', run_name='__main__')")


def _build_loading_text_unidecode(seeds: Path, root: Path) -> bool:
    """`syndicator build` with the state in root/var: whether it loaded text-unidecode's table."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _LISTING, "build", "-q", "--seeds", str(seeds), "--out", str(root / "feeds"),
         "--state", str(root / "var"), "--base-url", "https://feeds.example.org/"],
        capture_output=True, text=True, timeout=120, check=True)
    loaded = done.stderr.rpartition("\nloaded: ")[2].split()
    assert "syndicator.cli" in loaded, done.stderr
    return "text_unidecode" in loaded


def test_a_pass_whose_topics_are_the_same_leaves_the_redirects_as_they_are(tmp_path: Path) -> None:
    """The former slugs of Chinese topics are spelled with text-unidecode's table (60 ms and 4
    MiB): a pass whose redirects table, aliases and feeds are what the last update saw takes
    the table as it is, and only a new topic spells them again."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    post = "---\ntitle: {title}\ndate: 2024-03-0{day} 10:00:00 +0800\ntags: [{tags}]\n---\n正文。\n"
    (seeds / "2024-03-01-a.md").write_text(post.format(title="一", day=1, tags="广告, 银行"), encoding="utf-8")
    (seeds / "2024-03-02-b.md").write_text(post.format(title="二", day=2, tags="银行"), encoding="utf-8")
    imported = _build_loading_text_unidecode(seeds, tmp_path)
    table = tmp_path / "feeds" / ".redirects.json"
    assert imported and json.loads(table.read_text(encoding="utf-8"))["redirects"] == {
        "topics/yan-gao": "topics/guang-gao", "topics/yin-xing": "topics/yin-hang"}
    before = table.read_bytes()

    (seeds / "2024-03-02-b.md").write_text(post.format(title="二 (edited)", day=2, tags="银行, 广告"),
                                           encoding="utf-8")
    imported = _build_loading_text_unidecode(seeds, tmp_path)
    assert not imported and table.read_bytes() == before
    assert "二 (edited)" in (tmp_path / "feeds" / "topics" / "guang-gao.rss").read_text(encoding="utf-8")

    table.unlink()  # gone by hand: made again
    (seeds / "2024-03-03-c.md").write_text(post.format(title="三", day=3, tags="银行"), encoding="utf-8")
    _build_loading_text_unidecode(seeds, tmp_path)
    assert table.read_bytes() == before

    (seeds / "2024-03-04-d.md").write_text(post.format(title="四", day=4, tags="长大"), encoding="utf-8")
    assert _build_loading_text_unidecode(seeds, tmp_path)
    assert (tmp_path / "feeds" / "topics" / "zhang-da.rss").exists()
    assert json.loads(table.read_text(encoding="utf-8"))["redirects"]["topics/chang-da"] == "topics/zhang-da"


def test_slugs_skip_the_entity_search_only_where_it_finds_nothing() -> None:
    """`_slugify` leaves out python-slugify's search for HTML entities in ASCII text without
    `&`: for any text (entities, numeric references, non-ASCII that transliterates to `&`
    included) the slug is the library's own with every decoding on."""
    from hypothesis import given, settings
    from hypothesis import strategies as st
    from slugify import slugify

    from syndicator.slugs import MAX_SLUG, _slugify

    pieces = st.sampled_from(["&amp;", "&#38;", "&#x26;", "&lt;", "&", "＆", "AT&T", "café", "Ω", " ", "-", "'",
                              "a", "Z", "9", ",", "&nbsp;", "&copy;", "amp;", "#38;", "copy;"])

    def same(text: str) -> None:
        whole = slugify(text, max_length=MAX_SLUG, word_boundary=True, save_order=True)
        made = _slugify(text, text)
        assert made == whole if whole else made.startswith("topic-")

    for text in ("AT&T &amp; Co", "x＆amp;y", "café &#38; bar", "Tom's &copy; 2024", "plain ASCII title"):
        same(text)  # (the second is ASCII-free `&` made by transliteration: `x-y`, not `x-amp-y`)
    settings(max_examples=400, deadline=None)(given(st.lists(pieces | st.text(max_size=8), max_size=12)
                                                    .map("".join))(same))()
