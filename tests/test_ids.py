"""Ids survive moves of the site: a new base_url (scheme, host, port and path) changes links,
never an item's id, with or without the state or the site record. Real builds and serves, read
back by real feed readers (newsboat's cache, feedparser): a changed id is a duplicate item."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import feedparser
import pytest

from tests.conftest import ROOT, SEEDS
from tests.serverproc import ServerProcess

OLD = "http://127.0.0.1:8080/"
NEW = "https://feeds.example.org:8443/news/"
#: a news item whose URL is written relative to the site: its link moves, its id must not
RELATIVE = """---
title: Relative item
excerpt: An item whose URL is relative to the site.
publishedDateTime: 2022-05-20T10:00:00Z
webUrl: notes/relative-item
topics: [Relative]
---
"""


def build(work: Path, base_url: str, out: str, config: Path | None = None) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATOR_")}
    env["SYNDICATOR_BASE_URL"] = base_url
    args = ["--config", str(config)] if config else []
    proc = subprocess.run([sys.executable, "-m", "syndicator", *args, "build", "--seeds", "seeds", "--out", out],
                          cwd=work, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def atom_entries(path: Path) -> dict[str, str]:
    """id -> link of every entry, as feedparser reads them."""
    parsed = feedparser.parse(path.read_bytes())
    assert not parsed.bozo, parsed.bozo_exception
    return {e.id: e.link for e in parsed.entries}


class Newsboat:
    """newsboat subscribed to one feed URL; the site's feed is copied there after each build, as
    a reader following the site's move sees it."""

    def __init__(self, home: Path) -> None:
        self.home = home
        home.mkdir()
        self.feed = home / "all.atom"
        (home / "urls").write_text(f"file://{self.feed}\n", encoding="utf-8")
        (home / "config").write_text("", encoding="utf-8")

    def reload(self, feed: Path) -> list[str]:
        shutil.copyfile(feed, self.feed)
        subprocess.run(["newsboat", "-x", "reload", "-u", str(self.home / "urls"), "-c", str(self.home / "cache.db"),
                        "-C", str(self.home / "config")], env={**os.environ, "HOME": str(self.home)},
                       check=True, capture_output=True, timeout=60)
        with sqlite3.connect(self.home / "cache.db") as db:
            return sorted(guid for (guid,) in db.execute("SELECT guid FROM rss_item"))


@pytest.mark.skipif(shutil.which("newsboat") is None, reason="newsboat is not installed")
def test_build_moved_to_another_base_url_keeps_every_id(tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    (tmp_path / "seeds" / "relative.md").write_text(RELATIVE, encoding="utf-8")
    reader = Newsboat(tmp_path / "reader")

    build(tmp_path, OLD, "feeds")
    first = atom_entries(tmp_path / "feeds" / "all.atom")
    seen = reader.reload(tmp_path / "feeds" / "all.atom")
    assert len(first) == len(seen) == 5

    build(tmp_path, NEW, "feeds")  # the same output folder: its .site.json keeps the authority
    moved = atom_entries(tmp_path / "feeds" / "all.atom")
    assert moved.keys() == first.keys()
    assert reader.reload(tmp_path / "feeds" / "all.atom") == seen  # no duplicate in the reader
    assert moved[next(i for i, link in first.items() if link.endswith("/notes/relative-item"))] == (
        NEW + "notes/relative-item")  # the link moved with the site
    assert all(link.startswith(NEW) for i, link in moved.items() if first[i].startswith(OLD))

    # nothing remembered at all (a fresh output folder): the shipped config's pinned authority
    config = tmp_path / "syndicator.yaml"
    shutil.copyfile(ROOT / "config" / "syndicator.yaml", config)
    build(tmp_path, NEW, "fresh", config)
    assert atom_entries(tmp_path / "fresh" / "all.atom").keys() == first.keys()
    assert reader.reload(tmp_path / "fresh" / "all.atom") == seen


def test_serve_moved_to_another_base_url_and_feeds_folder_keeps_every_id(tmp_path: Path) -> None:
    """No pinned authority and a new feeds folder: the state keeps the ids it first gave."""
    srv = ServerProcess(tmp_path, env={"SYNDICATOR_BASE_URL": OLD})
    (srv.seeds_dir / "relative.md").write_text(RELATIVE, encoding="utf-8")
    with srv:
        _, _, body = srv.request("GET", "/all.atom")
        (tmp_path / "old.atom").write_bytes(body)
    first = atom_entries(tmp_path / "old.atom")
    assert len(first) == 5

    with ServerProcess(tmp_path, env={"SYNDICATOR_BASE_URL": NEW}, args=["--out", str(tmp_path / "moved")]) as again:
        _, _, body = again.request("GET", "/all.atom")
        (tmp_path / "new.atom").write_bytes(body)
    moved = atom_entries(tmp_path / "new.atom")
    assert moved.keys() == first.keys()
    assert all(link.startswith(NEW) for i, link in moved.items() if first[i].startswith(OLD))
