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
