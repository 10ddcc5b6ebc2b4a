"""The daemon end to end: the real `syndicator serve` subprocess on a temp copy of seeds/, real
HTTP requests, the real SQLite file. Polls with deadlines instead of fixed sleeps."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from tests.serverproc import ServerProcess, free_port

T = TypeVar("T")
INTERVAL = 0.5
CONFIG = {"scan_interval": INTERVAL}
POST = "---\ntitle: {title}\ndate: 2024-03-01 10:00\ntags: [daemon]\n---\n\nBody of {title}.\n"
BROKEN = "---\ntitle: [unclosed\ndate: 2024-03-01 10:00\n---\n\nBody.\n"


def wait_for(check: Callable[[], T | None], timeout: float = 10.0, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        time.sleep(0.03)


def get_json(srv: ServerProcess, path: str) -> dict[str, Any]:
    status, _, body = srv.request("GET", path)
    assert status == 200, (path, status)
    return json.loads(body)


def items(srv: ServerProcess) -> dict[str, dict[str, Any]]:
    return {item["id"]: item for item in get_json(srv, "/all.json")["items"]}


def titled(srv: ServerProcess, title: str) -> dict[str, Any] | None:
    return next((i for i in items(srv).values() if i["title"] == title), None)


def feed_files(feeds: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under feeds/ but the running service's lock (it holds the pid)."""
    return {p.relative_to(feeds).as_posix(): (p.stat().st_mtime_ns, p.read_bytes())
            for p in sorted(feeds.rglob("*")) if p.is_file() and p.name != ".syndicator.lock"}


def log_events(srv: ServerProcess) -> list[dict[str, Any]]:
    return [json.loads(line) for line in srv.log().splitlines() if line.startswith("{")]


def test_add_edit_break_fix_move_delete_then_restart(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path, config=CONFIG, args=["--log-format", "json"])
    post = srv.seeds_dir / "daemon-post.md"
    with srv:
        assert srv.health()["status"] == "ok"

        # add: served within scan_interval + a rebuild (the watcher usually makes it ~0.1 s)
        started = time.monotonic()
        post.write_text(POST.format(title="Daemon one"), encoding="utf-8")
        added = wait_for(lambda: titled(srv, "Daemon one"), 5, "the new post")
        assert time.monotonic() - started < INTERVAL + 2.0
        topic = wait_for(lambda: srv.request("GET", "/topics/daemon.json")[0] == 200, 5, "the topic feed")
        assert topic and get_json(srv, "/topics/daemon.json")["items"][0]["id"] == added["id"]
        assert added["date_modified"] == "2024-03-01T10:00:00Z"  # first seen: its own date

        # edit: same id, `updated` is now (the clock), not the post's date
        post.write_text(POST.format(title="Daemon two"), encoding="utf-8")
        edited = wait_for(lambda: titled(srv, "Daemon two"), 5, "the edit")
        assert edited["id"] == added["id"] and edited["date_modified"] > added["date_modified"]

        # break: the last good version stays served, the error shows in /healthz
        post.write_text(BROKEN, encoding="utf-8")
        errors = wait_for(lambda: [e for e in srv.health()["errors"] if e["path"] == post.name],
                          10, "the error in /healthz")
        assert errors[0]["message"] and errors[0]["line"]
        assert srv.health()["status"] == "degraded"
        assert titled(srv, "Daemon two") == edited

        # fix: the error is gone, the new version is served under the same id
        post.write_text(POST.format(title="Daemon three"), encoding="utf-8")
        fixed = wait_for(lambda: titled(srv, "Daemon three"), 5, "the fix")
        assert fixed["id"] == added["id"]
        wait_for(lambda: srv.health()["status"] == "ok", 5, "healthz ok")

        # move a post whose id comes from its path: the id and `updated` stay
        old = srv.seeds_dir / "002_4daa3943c2b2dbc1.txt"
        before = next(i for i in items(srv).values() if i["id"].endswith(old.name))
        (srv.seeds_dir / "moved").mkdir()
        old.rename(srv.seeds_dir / "moved" / "renamed.txt")
        after = wait_for(lambda: items(srv)[before["id"]]["url"].endswith("/posts/moved-renamed.html")
                         and items(srv)[before["id"]], 5, "the move")
        assert after["date_modified"] == before["date_modified"] and len(items(srv)) == 5
        # the pass logs its line after writing the feeds
        wait_for(lambda: any(e.get("moved") == 1 for e in log_events(srv)), 5, "the move's log line")

        # delete: gone from the feeds
        gone = srv.seeds_dir / "000_7e8a7cf94ba4d3cc.txt"
        gone_title = next(i for i in items(srv).values() if "Meta Taps" in i["title"])["title"]
        gone.unlink()
        wait_for(lambda: titled(srv, gone_title) is None, 5, "the delete")

        # a second instance on the same state refuses, naming the pid
        second = subprocess.run(
            [sys.executable, "-m", "syndicator", "serve", "--port", str(free_port()), "--seeds", str(srv.seeds_dir),
             "--out", str(srv.feeds_dir), "--state", str(srv.state_dir)],
            cwd=tmp_path, env=srv.environment(), capture_output=True, text=True, timeout=30)
        assert second.returncode != 0 and f"pid {srv.proc.pid}" in second.stderr, second.stderr

        served = items(srv)
        stopping = time.monotonic()
        assert srv.stop() == 0, srv.log()  # SIGTERM → exit 0
        assert time.monotonic() - stopping < 5

    # restart: same ids and updated times, not one file rewritten, nothing re-parsed
    files = feed_files(srv.feeds_dir)
    again = ServerProcess(tmp_path, config=CONFIG, args=["--log-format", "json"], port=srv.port)
    with again:
        assert items(again) == served
        # a restart serves the files at once and catches up behind them
        build = wait_for(lambda: [e for e in log_events(again) if e.get("event") == "catch-up"], 5,
                         "the catch-up pass")[-1]
        assert build["files_written"] == 0 and build["changed"] == 0, build
        assert feed_files(again.feeds_dir) == files
    assert again.proc.returncode == 0


def _write_corpus(seeds: Path, n: int, marker: str) -> None:
    for i in range(n):
        (seeds / f"2024-01-{i % 28 + 1:02d}-bulk-{i}.md").write_text(
            f"---\ntitle: {marker} {i}\ndate: 2024-01-{i % 28 + 1:02d} 10:{i % 60:02d}\n"
            f"tags: [t{i % 120}, u{i % 37}]\n---\n\nBody {i}. " + "Some text. " * 40 + "\n", encoding="utf-8")


def test_kill_9_mid_rebuild_then_restart_is_consistent(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path, config=CONFIG)
    _write_corpus(srv.seeds_dir, 800, "First")
    srv.start()
    try:
        edited_at = time.time_ns()
        _write_corpus(srv.seeds_dir, 800, "Second")
        # kill as soon as the rebuild starts replacing files
        # (a writer's temp file, seen in the listing, may be renamed before its stat: not counted)
        wait_for(lambda: any(p.stat().st_ctime_ns > edited_at for p in (srv.feeds_dir / "topics").iterdir()
                             if not p.name.startswith(".")), 20, "the rebuild to start writing")
        srv.proc.send_signal(signal.SIGKILL)
        srv.proc.wait(5)
    finally:
        srv.kill()
    # every served file is whole, the database is intact
    manifest = json.loads((srv.feeds_dir / ".manifest.json").read_text())["files"]
    for rel in manifest:
        data = (srv.feeds_dir / rel).read_bytes()
        if rel.endswith(".json"):
            json.loads(data)
        elif rel.endswith((".rss", ".atom", ".opml")):
            ET.fromstring(data)
    with sqlite3.connect(srv.state_dir / "state.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # the next start catches up
    again = ServerProcess(tmp_path, config=CONFIG, port=srv.port)
    with again:
        # it serves the whole files at once, then the catch-up pass makes them current
        wait_for(lambda: again.health()["status"] != "starting", 20, "the catch-up pass")
        titles = [i["title"] for i in get_json(again, "/all.json")["items"]]
        assert any(t.startswith("Second ") for t in titles)
        assert not any(t.startswith("First ") for t in titles)
        assert again.health()["status"] == "ok"
        assert not list(again.feeds_dir.rglob(".*.tmp"))
    assert again.proc.returncode == 0


def test_sigint_also_stops_cleanly(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path, config=CONFIG).start()
    os.kill(srv.proc.pid, signal.SIGINT)
    assert srv.proc.wait(5) == 0, srv.log()


def test_a_stale_gz_twin_is_repaired_at_start(tmp_path: Path) -> None:
    """nginx gzip_static answers gzip clients from the twin: one left holding other bytes (a
    kill between the two writes, a hand edit) is written again by the next start."""
    from syndicator.compress import gunzip, gzip_bytes

    srv = ServerProcess(tmp_path, config=CONFIG)
    with srv:
        pass
    plain, twin = srv.feeds_dir / "all.rss", srv.feeds_dir / "all.rss.gz"
    twin.write_bytes(gzip_bytes(b'<?xml version="1.0"?><rss version="2.0"><channel/></rss>'))
    os.utime(twin, ns=(plain.stat().st_atime_ns, plain.stat().st_mtime_ns))
    again = ServerProcess(tmp_path, config=CONFIG, port=srv.port)
    with again:  # ready once the catch-up pass is done
        assert gunzip(twin.read_bytes()) == plain.read_bytes()
        assert twin.stat().st_mtime_ns == plain.stat().st_mtime_ns
    assert again.proc.returncode == 0


def test_a_second_serve_on_the_same_feeds_exits(tmp_path: Path) -> None:
    """A second service with its own state but the same feeds/ would rewrite and take down the
    first one's files: it exits 2 with one line naming the folder and the pid holding it."""
    srv = ServerProcess(tmp_path, config=CONFIG)
    with srv:
        second = subprocess.Popen(
            [sys.executable, "-m", "syndicator", "serve", "--port", str(free_port()), "--seeds", str(srv.seeds_dir),
             "--out", str(srv.feeds_dir), "--state", str(tmp_path / "other-var")],
            cwd=tmp_path, env=srv.environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            out, err = second.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            second.kill()
            out, err = second.communicate()
            raise AssertionError(f"the second serve kept running:\n{err[-2000:]}") from None
        lines = err.strip().splitlines()
        assert second.returncode == 2 and len(lines) == 1, err
        assert f"pid {srv.proc.pid}" in lines[0] and str(srv.feeds_dir) in lines[0], lines[0]
        assert srv.request("GET", "/.syndicator.lock")[0] == 404  # the lock file is not served
        assert srv.health()["status"] == "ok"
    assert srv.proc.returncode == 0
