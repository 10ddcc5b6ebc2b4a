"""The watcher (syndicator/watch.py) on a real folder with real inotify events: which pass it
asks for, and when."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from syndicator.watch import Watcher
from tests.test_daemon import wait_for


class Passes:
    """What the watcher asked for, in order: ("full",) or ("paths", names)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, ...]] = []
        self.lock = threading.Lock()

    def full(self) -> None:
        with self.lock:
            self.calls.append(("full",))

    def paths(self, paths: set[str]) -> None:
        with self.lock:
            self.calls.append(("paths", *sorted(Path(p).name for p in paths)))


def watching(folder: Path, interval: float) -> tuple[Watcher, Passes]:
    passes = Passes()
    watcher = Watcher(folder, interval, passes.full, passes.paths).start()
    time.sleep(0.3)  # (the observer's inotify watches are set up on its own thread)
    return watcher, passes


def test_a_save_after_the_start_is_passed_on_before_the_full_scan_owed_since_the_start(tmp_path: Path) -> None:
    """The first full scan is owed an interval after the start; a save before it gets a pass
    over that file first, and the full scan follows at once (at 100,000 posts it takes ~0.7 s,
    which a save would otherwise wait for)."""
    watcher, passes = watching(tmp_path, interval=60)
    try:
        (tmp_path / "post.md").write_text("---\ntitle: x\n---\n", encoding="utf-8")
        wait_for(lambda: len(passes.calls) >= 2, 5, "two passes")
        time.sleep(0.3)
        assert passes.calls == [("paths", "post.md"), ("full",)]
        (tmp_path / "post.md").write_text("---\ntitle: y\n---\n", encoding="utf-8")
        wait_for(lambda: len(passes.calls) >= 3, 5, "the next save's pass")
        time.sleep(0.3)
        assert passes.calls[2:] == [("paths", "post.md")]  # nothing owed any more
    finally:
        watcher.stop()


def test_a_folder_event_makes_the_next_pass_a_full_one(tmp_path: Path) -> None:
    """A file moved into a folder just made: the new folder's watch may come after the move, so
    only a full scan sees both ends of the move in one pass (and keeps the post's id)."""
    (tmp_path / "post.md").write_text("---\ntitle: x\n---\n", encoding="utf-8")
    watcher, passes = watching(tmp_path, interval=60)
    try:
        (tmp_path / "moved").mkdir()
        (tmp_path / "post.md").rename(tmp_path / "moved" / "post.md")
        wait_for(lambda: passes.calls, 5, "a pass")
        time.sleep(0.3)
        assert passes.calls[0] == ("full",)
    finally:
        watcher.stop()


def test_without_events_the_owed_full_scan_comes_an_interval_after_the_start(tmp_path: Path) -> None:
    watcher, passes = watching(tmp_path, interval=0.5)
    try:
        wait_for(lambda: passes.calls, 5, "the scan")
        assert passes.calls[0] == ("full",)
    finally:
        watcher.stop()


def test_watching_from_before_a_pass_owes_no_full_scan(tmp_path: Path) -> None:
    """A service watches from before its start's passes (observe), and starts its own passes
    after them: a save made meanwhile is passed on at the start, and no full scan follows."""
    passes = Passes()
    watcher = Watcher(tmp_path, 60, passes.full, passes.paths).observe()
    try:
        (tmp_path / "during.md").write_text("---\ntitle: x\n---\n", encoding="utf-8")  # while the passes run
        time.sleep(0.3)
        assert passes.calls == []  # nothing before start()
        watcher.start()
        wait_for(lambda: passes.calls, 5, "the pass for the save")
        time.sleep(0.5)
        assert passes.calls == [("paths", "during.md")]
    finally:
        watcher.stop()


def test_a_watcher_stopped_before_its_start_stops(tmp_path: Path) -> None:
    watcher = Watcher(tmp_path, 60, lambda: None, lambda paths: None).observe()
    watcher.stop()
    assert watcher.observer is not None and not watcher.observer.is_alive()


def test_reading_the_posts_makes_no_events(tmp_path: Path) -> None:
    """A pass reading every post (or the first pass's child) opens and closes each file: the
    watcher asks the kernel for changes only (watch.EVENTS), so none of that reaches it."""
    from watchdog.events import FileSystemEvent, FileSystemEventHandler
    from watchdog.observers import Observer

    from syndicator.watch import EVENTS

    for i in range(50):
        (tmp_path / f"{i}.md").write_text("---\ntitle: x\n---\n", encoding="utf-8")
    seen: list[str] = []

    class Count(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            seen.append(event.event_type)

    observer = Observer()
    observer.schedule(Count(), str(tmp_path), recursive=True, event_filter=EVENTS)
    observer.start()
    try:
        for path in sorted(tmp_path.glob("*.md")):
            path.read_bytes()  # without the filter: an "opened" and a "closed_no_write" event each
        time.sleep(0.5)
        assert seen == []
        (tmp_path / "0.md").write_text("---\ntitle: y\n---\n", encoding="utf-8")
        wait_for(lambda: seen, 5, "the write's events")
        assert set(seen) <= {"modified", "closed", "created"}, seen
    finally:
        observer.stop()
        observer.join(timeout=2)


def test_a_pass_outlasting_the_interval_logs_no_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The interval coming while a pass runs is by design (one pass at a time): APScheduler's
    "skipped: maximum number of running instances" warning is kept out of the log."""
    started = threading.Event()

    def slow() -> None:
        started.set()
        time.sleep(0.8)

    caplog.set_level(logging.WARNING)
    watcher = Watcher(tmp_path, 0.1, slow, lambda paths: None).start()
    try:
        wait_for(started.is_set, 5, "the slow pass")
        time.sleep(1.0)
    finally:
        watcher.stop()
    assert not [r for r in caplog.records if r.name.startswith("apscheduler")], caplog.text
