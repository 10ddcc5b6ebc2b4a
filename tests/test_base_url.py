"""Where links point: `--base-url` on build and serve, and a serve on another port whose links
follow that port when no base_url is set anywhere (file, environment, flag). Real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lxml import etree

from tests.conftest import SEEDS
from tests.serverproc import ServerProcess

ATOM = "{http://www.w3.org/2005/Atom}"


class UnsetBaseURL(ServerProcess):
    """A serve with no base_url anywhere (ServerProcess sets one in the environment)."""

    def environment(self) -> dict[str, str]:
        env = super().environment()
        del env["SYNDICATOR_BASE_URL"]
        return env


def links(feeds: Path) -> set[str]:
    """Every URL the feeds and pages of the site link to that is its own (not a post's source)."""
    atom = etree.fromstring((feeds / "all.atom").read_bytes())
    found = {link.get("href") for link in atom.iter(f"{ATOM}link") if "/posts/" in link.get("href")
             or link.get("rel") in ("self", "alternate") and link.getparent() is atom}
    doc = json.loads((feeds / "all.json").read_text(encoding="utf-8"))
    found |= {doc["home_page_url"], doc["feed_url"]} | {i["url"] for i in doc["items"] if "/posts/" in i["url"]}
    index = etree.fromstring((feeds / "index.html").read_bytes(), etree.HTMLParser())
    found |= {a.get("href") for a in index.iter("a", "link") if a.get("href", "").startswith("http")}
    return found


def test_serve_links_follow_its_port_when_no_base_url_is_set(tmp_path: Path) -> None:
    with UnsetBaseURL(tmp_path) as srv:
        own = f"http://127.0.0.1:{srv.port}/"
        site = links(srv.feeds_dir)
        assert own + "all.atom" in site and own + "feeds.opml" in site
        assert any(url.startswith(own + "posts/") for url in site)  # the page of the post without a URL
        assert all(url.startswith(own) for url in site), site
        assert srv.request("GET", "/healthz")[0] == 200


def test_a_base_url_set_anywhere_wins_over_the_port(tmp_path: Path) -> None:
    with UnsetBaseURL(tmp_path / "file", config={"base_url": "https://from-file.example/"}) as srv:
        assert all(url.startswith("https://from-file.example/") for url in links(srv.feeds_dir))
    flag = UnsetBaseURL(tmp_path / "flag", args=["--base-url", "https://from-flag.example/feeds/"])
    with flag as srv:
        assert all(url.startswith("https://from-flag.example/feeds/") for url in links(srv.feeds_dir))


def test_build_takes_base_url_from_the_command_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATOR_")}
    proc = subprocess.run([sys.executable, "-m", "syndicator", "build", "--seeds", str(SEEDS), "--out", "feeds",
                           "--base-url", "https://feeds.example.org:8443/x"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    site = links(tmp_path / "feeds")
    assert "https://feeds.example.org:8443/x/all.atom" in site
    assert all(url.startswith("https://feeds.example.org:8443/x/") for url in site), site
