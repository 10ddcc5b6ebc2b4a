"""A service on a fresh folder answers at once: the first pass runs in a child process
(firstpass.py) while /healthz says `starting` with its progress and files not written yet
answer 503 with Retry-After; a real `serve` process, then the pieces."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import feedparser

from syndicator import firstpass
from syndicator.config import load_settings
from syndicator.web import create_app

from .serverproc import ServerProcess, free_port

POSTS = 1500


def write_posts(seeds: Path, count: int) -> None:
    seeds.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        (seeds / f"2022-01-01-post-{i:05d}.md").write_text(
            f"---\ntitle: Post {i}\ndate: 2022-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}Z\n"
            f"topics: [t{i % 7}]\n---\nBody {i}.\n", encoding="utf-8")


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def test_a_fresh_service_answers_while_its_first_pass_runs(tmp_path: Path) -> None:
    write_posts(tmp_path / "seeds", POSTS)
    srv = ServerProcess(tmp_path, seeds=None, port=free_port())
    log = open(srv.log_path, "ab")  # started here: start() would wait until it is ready
    srv.proc = subprocess.Popen(srv.command(), cwd=tmp_path, env=srv.environment(), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    try:
        seen: list[dict[str, object]] = []
        early_feed = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                status, headers, body = get(srv.url("/healthz"))
            except (urllib.error.URLError, OSError):
                time.sleep(0.02)
                continue
            doc = json.loads(body)
            if doc["status"] != "starting":
                assert status == 200
                break
            assert status == 503 and headers["retry-after"]
            seen.append(doc)
            if early_feed is None:
                early_feed = get(srv.url("/topics/t3.atom"))
            time.sleep(0.02)
        assert seen, "the first answer came after the first pass"
        steps = [d["progress"] for d in seen if d.get("progress")]
        assert any(p["step"] == "reading" and p["total"] == POSTS and 0 < p["done"] <= POSTS for p in steps), steps
        assert early_feed is not None
        code, headers, _ = early_feed
        assert code == 200 or (code == 503 and headers["retry-after"] and headers["cache-control"] == "no-store")
        feed = feedparser.parse(get(srv.url("/topics/t3.atom"))[2])
        assert not feed.bozo and len(feed.entries) > 0
        assert "build: 1500 files changed" in srv.log() and "catch-up: 0 files changed" in srv.log()
    finally:
        srv.stop()


def test_a_restart_that_reads_everything_again_makes_it_a_first_pass(tmp_path: Path) -> None:
    """Other settings (or code) since the state was written: every post is read again, and that
    pass is made by a child process as a first pass is (both cores; its memory is not the
    service's), not by the service's catch-up; a plain restart still only catches up."""
    write_posts(tmp_path / "seeds", POSTS)
    port = free_port()
    with ServerProcess(tmp_path, seeds=None, port=port, startup_timeout=120):
        pass
    with ServerProcess(tmp_path, seeds=None, port=port, startup_timeout=120):
        pass
    with ServerProcess(tmp_path, seeds=None, port=port, startup_timeout=120,
                       env={"SYNDICATOR_ITEMS_PER_FEED": "7"}) as srv:
        feed = feedparser.parse(get(srv.url("/topics/t3.atom"))[2])
        assert not feed.bozo and len(feed.entries) == 7
    log = srv.log()
    assert log.count("build: 1500 files changed") == 2, log
    assert log.count("catch-up: 0 files changed") == 3 and "catch-up: 1500" not in log, log


def test_a_missing_file_is_503_only_while_starting(tmp_path: Path) -> None:
    settings = load_settings(None, env={}, overrides={"feeds_dir": tmp_path})
    starting = [True]
    client = create_app(settings, starting=lambda: starting[0]).test_client()
    early = client.get("/topics/nothing.atom")
    assert early.status_code == 503 and early.headers["Retry-After"] and early.headers["Cache-Control"] == "no-store"
    assert client.get("/").status_code == 503
    starting[0] = False
    assert client.get("/topics/nothing.atom").status_code == 404


def test_a_first_pass_that_fails_leaves_it_to_the_service(tmp_path: Path) -> None:
    import threading

    write_posts(tmp_path / "seeds", 3)
    (tmp_path / "var").write_text("not a folder")  # the state cannot be opened
    settings = load_settings(None, env={}, overrides={"seeds_dir": tmp_path / "seeds", "feeds_dir": tmp_path / "feeds",
                                                      "state_dir": tmp_path / "var"})
    assert firstpass.run(settings, threading.Event(), lambda progress: None) is None


def test_a_first_pass_reports_and_returns_its_result(tmp_path: Path) -> None:
    import threading

    write_posts(tmp_path / "seeds", 900)
    settings = load_settings(None, env={}, overrides={"seeds_dir": tmp_path / "seeds", "feeds_dir": tmp_path / "feeds",
                                                      "state_dir": tmp_path / "var"})
    reports: list[firstpass.Progress] = []
    result = firstpass.run(settings, threading.Event(), reports.append)
    assert result is not None and result.posts_published == 900 and len(result.changed_paths) == 900
    assert (tmp_path / "feeds" / "all.atom").exists() and (tmp_path / "var" / "state.sqlite3").exists()
    assert [r for r in reports if r["step"] == "reading"][-1] == {"step": "reading", "done": 900, "total": 900}
    assert any(r["step"] == "writing" for r in reports)
