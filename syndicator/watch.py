"""Keep feeds/ current: a scan every `scan_interval` seconds, and one right after any file-system
event under seeds/ (debounced), so a save shows up in well under a second.

The one module that imports APScheduler and watchdog. Both paths run the same job, so there is
never more than one pass at a time (max_instances=1) and missed runs collapse into one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

log = logging.getLogger("syndicator.watch")

JOB_ID = "scan"
#: Quiet time after the last event before scanning: one save is often several events.
DEBOUNCE_S = 0.08


class _Nudge(FileSystemEventHandler):
    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type not in ("opened", "closed_no_write"):  # reads are not changes
            self.watcher.nudge()


class Watcher:
    """Runs `tick` on an interval and soon after changes under `folder`, until `stop()`."""

    def __init__(self, folder: Path, interval: float, tick: Callable[[], object]) -> None:
        self.folder = folder
        self.interval = interval
        self.tick = tick
        self.scheduler = BackgroundScheduler(
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None})
        self.observer: Observer | None = None
        self._dirty = threading.Event()
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._stopping = False

    def start(self) -> Watcher:
        first = datetime.now().astimezone() + timedelta(seconds=self.interval)
        self.scheduler.add_job(self._run, "interval", seconds=self.interval, id=JOB_ID, next_run_time=first)
        self.scheduler.start()
        try:
            observer = Observer()
            observer.schedule(_Nudge(self), str(self.folder), recursive=True)
            observer.start()
            self.observer = observer
        except OSError as e:  # e.g. inotify watch limit reached: the interval scan still works
            log.warning("not watching %s for changes (%s); scanning every %gs", self.folder, e, self.interval)
        return self

    def nudge(self) -> None:
        """A file changed: run the job once things are quiet for DEBOUNCE_S."""
        self._dirty.set()
        with self._lock:
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
            self._dirty.clear()
            try:
                self.tick()
            except Exception:
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
        self.scheduler.shutdown(wait=True)
        if self.observer is not None:
            self.observer.join(timeout=2)
