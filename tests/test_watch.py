"""The watcher over a real folder: what a save runs, and in which order."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from syndicator.watch import Watcher


class _Calls:
    """What the watcher ran, in order (the passes themselves are the daemon's)."""

    def __init__(self) -> None:
        self.order: list[tuple[str, set[str]]] = []
        self.changed = threading.Event()

    def tick(self) -> None:
        self.order.append(("full scan", set()))
        self.changed.set()

    def on_paths(self, paths: set[str]) -> None:
        self.order.append(("files", set(paths)))
        self.changed.set()


def _wait(calls: _Calls, count: int, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while len(calls.order) < count and time.monotonic() < end:
        calls.changed.wait(0.05)
        calls.changed.clear()
    assert len(calls.order) >= count, calls.order


def test_the_full_scan_a_start_owes_runs_at_once_and_saves_after_it_run_their_files(tmp_path: Path) -> None:
    """A watcher owes a full scan from its start (what changed before it watched): made at
    once, a save a moment later runs its own files, not a scan of every post (most of a
    second at 100,000 posts)."""
    calls = _Calls()
    watcher = Watcher(tmp_path, 3600.0, calls.tick, calls.on_paths).start()
    try:
        _wait(calls, 1)
        assert calls.order == [("full scan", set())]
        post = tmp_path / "post.md"
        post.write_text("---\ntitle: A\n---\n", encoding="utf-8")
        _wait(calls, 2)
    finally:
        watcher.stop()
    assert calls.order[1][0] == "files" and str(post) in calls.order[1][1]


def test_later_saves_run_their_files_only(tmp_path: Path) -> None:
    calls = _Calls()
    watcher = Watcher(tmp_path, 3600.0, calls.tick, calls.on_paths).start()
    try:
        _wait(calls, 1)
        (tmp_path / "first.md").write_text("x", encoding="utf-8")
        _wait(calls, 2)
        time.sleep(0.3)
        before = len(calls.order)
        (tmp_path / "second.md").write_text("y", encoding="utf-8")
        _wait(calls, before + 1)
        time.sleep(0.3)
    finally:
        watcher.stop()
    later = calls.order[before:]
    assert later and all(kind == "files" for kind, _ in later), later
    assert any(str(tmp_path / "second.md") in paths for _, paths in later)


def test_a_folder_event_still_scans_everything(tmp_path: Path) -> None:
    calls = _Calls()
    watcher = Watcher(tmp_path, 3600.0, calls.tick, calls.on_paths).start()
    try:
        _wait(calls, 1)
        (tmp_path / "first.md").write_text("x", encoding="utf-8")
        _wait(calls, 2)
        time.sleep(0.3)
        before = len(calls.order)
        (tmp_path / "sub").mkdir()
        _wait(calls, before + 1)
    finally:
        watcher.stop()
    assert ("full scan", set()) in calls.order[before:]
