"""Recovery without a restart: what fails is retried with growing pauses, reported once per
change of reason, and forgotten when it works again.

- `Backoff`: the pauses between attempts, 1 s doubling to 60 s;
- `Supervised`: a pass of the daemon run so that no exception ends its thread: a failure is one
  log line (when its reason changes, not on every retry) and a state `/healthz` reports;
- `retry`: call something until it works or the service stops (a locked state database);
- `die_with_parent`: a forked worker that the kernel kills when its parent dies, so a `kill -9`
  of the service never leaves a child holding its locks.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from syndicator.errors import SyndicatorError

T = TypeVar("T")

log = logging.getLogger("syndicator")

#: Seconds before the first retry; each failure doubles it, up to BACKOFF_MAX.
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0
#: prctl(2) option: the signal this process gets when its parent thread dies.
_PR_SET_PDEATHSIG = 1


def describe(error: BaseException) -> str:
    """One line for an error: an OSError's file and the system's reason, else its message."""
    if isinstance(error, OSError) and error.strerror:
        where = f"{error.filename}: " if error.filename else ""
        return f"{where}{error.strerror}"
    text = str(error).strip().splitlines()
    if isinstance(error, SyndicatorError) and text:
        return text[0]
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


class Backoff:
    """When to try again something that keeps failing: 1, 2, 4 … 60 s after each failure."""

    def __init__(self, first: float = BACKOFF_FIRST, cap: float = BACKOFF_MAX,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.first, self.cap, self.clock = first, cap, clock
        self.failures = 0
        self.next_at = 0.0

    @property
    def delay(self) -> float:
        """The pause after the latest failure (0 before any)."""
        return 0.0 if self.failures == 0 else min(self.cap, self.first * 2 ** (self.failures - 1))

    def failed(self) -> float:
        self.failures += 1
        self.next_at = self.clock() + self.delay
        return self.delay

    def succeeded(self) -> None:
        self.failures = 0
        self.next_at = 0.0

    def due(self) -> bool:
        return self.clock() >= self.next_at


class Supervised:
    """Runs the passes of one worker: an exception becomes `reason` (for /healthz) and one
    warning when the reason changes (the traceback at debug level), and the next attempt
    waits for the backoff. Success after failures is one line too."""

    def __init__(self, what: str, backoff: Backoff | None = None) -> None:
        self.what = what
        self.backoff = backoff or Backoff()
        self.reason: str | None = None
        self._lock = threading.Lock()

    @property
    def failing(self) -> bool:
        return self.reason is not None

    def due(self) -> bool:
        return self.backoff.due()

    def attempt(self, work: Callable[[], T]) -> tuple[bool, T | None]:
        """(True, what `work` returned), or (False, None) when it raised."""
        try:
            value = work()
        except Exception as e:  # noqa: BLE001 - every failure is reported and retried
            self.failed(e)
            return False, None
        self.succeeded()
        return True, value

    def failed(self, error: Exception) -> None:
        with self._lock:
            reason = f"{self.what} failed: {describe(error)}"
            delay = self.backoff.failed()
            if reason != self.reason:
                log.warning("%s; retrying in %g s (then up to every %g s)", reason, delay, self.backoff.cap,
                            extra={"fields": {"event": "failing", "reason": reason}})
            log.debug("%s", reason, exc_info=error)
            self.reason = reason

    def succeeded(self) -> None:
        with self._lock:
            if self.reason is not None:
                log.info("%s works again after %d failed attempts", self.what, self.backoff.failures,
                         extra={"fields": {"event": "recovered", "attempts": self.backoff.failures}})
            self.reason = None
            self.backoff.succeeded()


def retry(work: Callable[[], T], supervised: Supervised, stop: threading.Event,
          retry_on: tuple[type[Exception], ...] = (Exception,)) -> T | None:
    """`work()` until it returns (its value) or `stop` is set (None), pausing as `supervised`'s
    backoff says between failures; an exception not in `retry_on` is raised at once."""
    while not stop.is_set():
        try:
            value = work()
        except retry_on as e:
            supervised.failed(e)
            stop.wait(max(0.0, supervised.backoff.next_at - supervised.backoff.clock()))
            continue
        supervised.succeeded()
        return value
    return None


def die_with_parent(parent: int) -> None:
    """In a forked child: be killed (SIGKILL) when the parent dies, and leave at once if it
    already has (it may have died between the fork and here). Without prctl (not Linux):
    nothing."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os._exit(1)
