"""The feed URLs people already have answer 301 to ours: those WordPress, Jekyll (jekyll-feed),
Hugo and Pelican publish, for the whole site and per category or tag, with topics matched by
our slug of the name as the tool wrote it; and the operator's own (`redirects` setting),
checked at start. In-process for every pattern; newsboat and feedparser following a 301 from
/feed.xml against the real server and nginx in front of it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest
from flask.testing import FlaskClient

from syndicator.config import load_settings
from syndicator.errors import ConfigError
from syndicator.web import create_app
from tests.conftest import ALIASES, BASE_URL, site_settings
from tests.serverproc import ServerProcess

ZHI = "%E6%99%BA%E9%80%9A%E8%B4%A2%E7%BB%8F%E7%BD%91%E6%96%B0%E9%97%BB"  # 智通财经网新闻, percent-encoded

MOVED = [
    # the whole site
    ("/feed/", "all.rss"), ("/feed", "all.rss"), ("/feed/rss2/", "all.rss"), ("/feed/rdf/", "all.rss"),
    ("/feed/atom/", "all.atom"),                                            # WordPress
    ("/feed.xml", "all.atom"),                                              # jekyll-feed
    ("/index.xml", "all.rss"),                                              # Hugo
    ("/feeds/all.atom.xml", "all.atom"), ("/feeds/all.rss.xml", "all.rss"),  # Pelican
    ("/atom.xml", "all.atom"), ("/rss", "all.rss"), ("/rss/", "all.rss"), ("/rss.xml", "all.rss"),
    ("/feed.json", "all.json"),
    # WordPress categories and tags (its slugs: lower case, hyphens, UTF-8 percent-encoded)
    ("/category/ai/feed/", "topics/ai.rss"), ("/tag/microsoft-ai/feed/atom/", "topics/microsoft-ai.atom"),
    (f"/category/{ZHI.lower()}/feed/", "topics/zhi-tong-cai-jing-wang-xin-wen.rss"),
    # jekyll-feed categories and tags (the names as written)
    ("/feed/AI.xml", "topics/ai.atom"), ("/feed/by_tag/AI_Hardware.xml", "topics/ai-hardware.atom"),
    # Hugo taxonomies (urlize: lower case, hyphens, other scripts kept)
    ("/tags/azure/index.xml", "topics/azure.rss"), ("/categories/facebook-ai/index.xml", "topics/facebook-ai.rss"),
    (f"/tags/{ZHI}/index.xml", "topics/zhi-tong-cai-jing-wang-xin-wen.rss"),
    # Pelican categories and tags
    ("/feeds/azure.atom.xml", "topics/azure.atom"), ("/feeds/ai-hardware.tag.rss.xml", "topics/ai-hardware.rss"),
    # a topic alias of ours (MSFT AI -> Microsoft AI) under another tool's URL
    ("/tag/msft-ai/feed/", "topics/microsoft-ai.rss"),
]


@pytest.mark.parametrize(("path", "target"), MOVED)
def test_other_tools_feed_urls_answer_301_to_ours(client: FlaskClient, path: str, target: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 301, path
    assert resp.headers["Location"] == BASE_URL + target
    assert client.get("/" + target).status_code == 200


@pytest.mark.parametrize("path", ["/category/nope/feed/", "/tags/nope/index.xml", "/feed/nope.xml", "/feeds/x.atom.xml",
                                  "/feed/atom/x", "/index.json", "/category/feed/"])
def test_unknown_topics_and_other_paths_stay_404(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 404, path


# -- the redirects setting ----------------------------------------------------------------------------

def test_configured_redirects_answer_301(built_site: Path, tmp_path: Path) -> None:
    import shutil

    site = tmp_path / "site"
    shutil.copytree(built_site / "feeds", site / "feeds", copy_function=os.link)
    settings = site_settings(site).with_overrides(redirects={
        "/blog/feed.xml": "/topics/ai.atom", "old/all.rss": "news.rss", "news.rss": "all.rss",
        "feed/": "all.json", "gone.rss": "topics/nope.rss"})
    client = create_app(settings).test_client()
    for path, target in (("/blog/feed.xml", "topics/ai.atom"), ("/blog/feed.xml/", "topics/ai.atom"),
                         ("/old/all.rss", "all.rss"), ("/news.rss", "all.rss"), ("/feed/", "all.json")):
        resp = client.get(path)
        assert resp.status_code == 301 and resp.headers["Location"] == BASE_URL + target, path
    assert client.get("/gone.rss").status_code == 404


@pytest.mark.parametrize(("table", "message"), [
    ({"a.rss": "b.rss", "b.rss": "a.rss"}, "loops: a.rss -> b.rss -> a.rss"),
    ({"a.rss": "a.rss"}, "loops"),
    ({"a.rss": "topics/"}, "not a feed or page path"),
    ({"a.rss": "../secret.rss"}, "not a feed or page path"),
    ({"": "all.rss"}, "empty path"),
])
def test_bad_redirects_setting_is_one_line(table: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        load_settings(env={}, overrides={"redirects": table})
    assert "'redirects'" in str(e.value) and "\n" not in str(e.value)


def test_a_redirect_to_what_is_not_published_stops_build_and_serve(tmp_path: Path) -> None:
    config = tmp_path / "syndicator.yaml"
    config.write_text("redirects: {feed.xml: all.atom, blog/feed.xml: topics/nope.atom}\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATOR_")}
    seeds = Path(__file__).resolve().parent.parent / "seeds"
    out = subprocess.run([sys.executable, "-m", "syndicator", "--config", str(config), "build", "--seeds", str(seeds),
                          "--out", str(tmp_path / "feeds")], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert out.stderr.strip() == ("syndicator: setting 'redirects': 'blog/feed.xml' goes to 'topics/nope.atom', "
                                  "which is not published")
    srv = ServerProcess(tmp_path / "serve", config={"redirects": {"x.rss": "topics/nope.rss"}})
    with pytest.raises(RuntimeError, match="which is not published"):
        srv.start()
    assert srv.proc is not None and srv.proc.returncode == 2


# -- real readers, against serve and nginx ---------------------------------------------------------

@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(tmp_path_factory.mktemp("serve"), config={"topic_aliases": ALIASES}) as server:
        yield server


def test_301s_the_same_through_nginx(server: ServerProcess, srv: ServerProcess) -> None:
    for path, target in MOVED:
        status, h, _ = server.request("GET", path)
        assert status == 301 and h["Location"] == srv.url(target), path


def test_feedparser_follows_a_301_from_feed_xml(server: ServerProcess, srv: ServerProcess) -> None:
    d = feedparser.parse(server.url("/feed.xml"))
    assert d.status == 301 and d.href == srv.url("/all.atom") and d.version == "atom10"  # base_url: serve's
    assert [e.title for e in d.entries] == [e.title for e in feedparser.parse(srv.feeds_dir / "all.atom").entries]


def test_newsboat_follows_a_301_from_feed_xml(server: ServerProcess, srv: ServerProcess, tmp_path: Path) -> None:
    if subprocess.run(["sh", "-c", "command -v newsboat"], capture_output=True).returncode != 0:
        pytest.skip("newsboat is not installed (apt-get install newsboat)")
    (tmp_path / "urls").write_text(server.url("/feed.xml") + "\n" + server.url("/category/ai/feed/") + "\n")
    (tmp_path / "config").write_text("", encoding="utf-8")
    out = subprocess.run(["newsboat", "-u", str(tmp_path / "urls"), "-c", str(tmp_path / "cache.db"),
                          "-C", str(tmp_path / "config"), "-x", "reload"],
                         capture_output=True, env={**os.environ, "HOME": str(tmp_path)}, timeout=60)
    assert out.returncode == 0, out.stderr
    with sqlite3.connect(tmp_path / "cache.db") as db:
        titles = {t for (t,) in db.execute("SELECT title FROM rss_item")}
        feeds = dict(db.execute("SELECT rssurl, title FROM rss_feed").fetchall())
    expected = {e.title for p in ("all.atom", "topics/ai.rss") for e in feedparser.parse(srv.feeds_dir / p).entries}
    assert titles == expected
    assert feeds[server.url("/feed.xml")] == "Syndicator · All posts"
    assert feeds[server.url("/category/ai/feed/")] == "Syndicator · AI"
