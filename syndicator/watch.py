"""Keep feeds/ current: a scan every `scan_interval` seconds, and one right after any file-system
event under seeds/ (debounced), so a save shows up in well under a second.

The one module that imports APScheduler and watchdog. Both paths run the same job, so there is
never more than one pass at a time (max_instances=1) and missed runs collapse into one.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

log = logging.getLogger("syndicator.watch")


class _NoSkippedRuns(logging.Filter):
    """APScheduler warns each time the interval comes while a pass still runs ("skipped:
    maximum number of running instances reached"). That is by design here (one pass at a time;
    the running one goes again for what came meanwhile), and at 100,000 posts a catch-up pass
    outlasts the interval: not news for an operator. Its other warnings still are."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances" not in record.getMessage()


logging.getLogger("apscheduler.scheduler").addFilter(_NoSkippedRuns())

JOB_ID = "scan"
#: Quiet time after the last event before scanning: one save is often several events.
DEBOUNCE_S = 0.08
#: While events arrive, the full scan is only the safety net (for what inotify cannot see, e.g.
#: a file behind a symlink): at most this often, but never more often than the interval.
FULL_SCAN_S = 30.0


#: The events asked of the kernel: changes only. Not opens and reads (a pass reading 100,000
#: posts, or the first pass's child, made 200,000 events for the observer's threads to turn
#: into objects and drop, while the service had a save to pass on).
EVENTS: list[type[FileSystemEvent]] = [
    FileCreatedEvent, FileModifiedEvent, FileClosedEvent, FileDeletedEvent, FileMovedEvent,
    DirCreatedEvent, DirDeletedEvent, DirMovedEvent,
]


class _Nudge(FileSystemEventHandler):
    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        # (EVENTS leaves out opens, reads and a folder's "modified": an entry's own event follows)
        if event.is_directory:
            self.watcher.nudge(None)  # a folder came, went or moved: scan everything
            return
        paths = [event.src_path, getattr(event, "dest_path", "")]
        self.watcher.nudge([os.path.abspath(os.fsdecode(p)) for p in paths if p])


class Watcher:
    """Runs `tick` on an interval and soon after changes under `folder`, until `stop()`."""

    def __init__(self, folder: Path, interval: float, tick: Callable[[], object],
                 on_paths: Callable[[set[str]], object] | None = None) -> None:
        """`tick`: a full scan. `on_paths` (optional): a pass over just the files events named;
        with it, the full scan runs every FULL_SCAN_S while the observer works."""
        self.folder = folder
        self.interval = interval
        self.tick = tick
        self.on_paths = on_paths
        self._paths: set[str] = set()
        #: the next pass must scan everything (a folder came or went, a pass failed)
        self._full = False
        #: a full scan is owed: for files saved before the observer watched (see observe())
        self._owed = True
        self._last_full = time.monotonic()
        self.scheduler = BackgroundScheduler(
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None})
        self.observer: BaseObserver | None = None
        self._dirty = threading.Event()
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._stopping = False
        self._observed = False

    def observe(self) -> Watcher:
        """Watch for events now, and run passes for them from `start()` on. When this comes
        before the pass that makes the records current (a start's catch-up), no full scan is
        owed: what that pass's scan missed comes as events. (The observer's inotify watches
        are set up by the time observer.start() returns.)"""
        self._observe()
        self._owed = self.observer is None
        return self

    def _observe(self) -> None:
        self._observed = True
        try:
            observer = Observer()
            observer.schedule(_Nudge(self), str(self.folder), recursive=True, event_filter=EVENTS)
            observer.start()
            self.observer = observer
        except OSError as e:  # e.g. inotify watch limit reached: the interval scan still works
            log.warning("not watching %s for changes (%s); scanning every %gs", self.folder, e, self.interval)

    def start(self) -> Watcher:
        first = datetime.now().astimezone() + timedelta(seconds=self.interval)
        self.scheduler.add_job(self._run, "interval", seconds=self.interval, id=JOB_ID, next_run_time=first)
        self.scheduler.start()
        if not self._observed:
            self._observe()
        if self._dirty.is_set():  # events while observe()d before the start
            self._run_now()
        return self

    def nudge(self, paths: list[str] | None = None) -> None:
        """A file changed (`paths`; None: something, scan everything): run the job once things
        are quiet for DEBOUNCE_S."""
        with self._lock:
            if paths is None:
                self._full = True
            else:
                self._paths.update(paths)
            self._dirty.set()
            if self._stopping:
                return
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(DEBOUNCE_S, self._run_now)
            self._timer.daemon = True
            self._timer.start()

    def _run_now(self) -> None:
        try:
            # the same job, moved to now: if it is running it will see _dirty and go again
            self.scheduler.modify_job(JOB_ID, next_run_time=datetime.now().astimezone())
        except Exception:  # noqa: BLE001 - the scheduler is shutting down; nothing to do
            pass

    def _run(self) -> None:
        while True:
            with self._lock:
                self._dirty.clear()
                paths, self._paths = self._paths, set()
                due = time.monotonic() - self._last_full >= max(self.interval, FULL_SCAN_S)
                full = (self._full or self.on_paths is None or self.observer is None
                        or ((due or self._owed) and not paths))
                if full:
                    self._full = self._owed = False
                elif self._owed:
                    # the files events named first, the owed full scan right after: a save
                    # just after a reload waits for a pass over that file, not for a scan of
                    # the whole folder (0.5 s at 100,000 posts)
                    self._dirty.set()
            try:
                if full:
                    self._last_full = time.monotonic()
                    self.tick()
                else:
                    self.on_paths(paths)  # type: ignore[misc]
            except Exception:
                with self._lock:
                    self._full = True
                log.exception("rebuild failed; retrying on the next scan")
                return
            if not self._dirty.is_set() or self._stopping:
                return

    def stop(self) -> None:
        """Stop watching, let a running pass finish, stop the scheduler."""
        with self._lock:
            self._stopping = True
            if self._timer is not None:
                self._timer.cancel()
        if self.observer is not None:
            self.observer.stop()
        if self.scheduler.running:  # (not yet when stopped between observe() and start())
            self.scheduler.shutdown(wait=True)
        if self.observer is not None:
            self.observer.join(timeout=2)
