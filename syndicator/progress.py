"""Progress of long work (a cold build's reading and writing): what is being done, how far.

`parallel` says what it is working through (`working`), and `Reporter` shows it: on a terminal
a line rewritten in place a few times a second, otherwise a line every few seconds (into the
log, for the daemon). The reporter runs on SIGALRM rather than a thread: a build forks a
helper only while it is its process's one thread. `current()` is there for anyone else who
wants to say how far a pass is (/healthz while starting).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class _Work:
    label: str
    total: int
    done: Callable[[], int]


_current: list[_Work] = []


@contextmanager
def working(label: str, total: int, done: Callable[[], int]) -> Iterator[None]:
    """While inside: `total` items of `label` are being worked through, `done()` of them done."""
    _current.append(_Work(label, total, done))
    try:
        yield
    finally:
        _current.pop()


def current() -> tuple[str, int, int] | None:
    """(label, done, total) of the work in progress, None when there is none."""
    if not _current:
        return None
    work = _current[-1]
    return work.label, min(work.total, max(0, work.done())), work.total


def describe(snapshot: tuple[str, int, int]) -> str:
    label, done, total = snapshot
    return f"{label}: {done} of {total} ({100 * done // max(1, total)}%)"


class Reporter:
    """Shows `current()` every `every` seconds through `emit`; `inplace`: one terminal line,
    rewritten (and cleared at `stop`). Only the main thread can start and stop it."""

    def __init__(self, emit: Callable[[str], Any], inplace: bool, every: float | None = None) -> None:
        self.emit = emit
        self.inplace = inplace
        self.every = every if every is not None else (0.25 if inplace else 5.0)
        self._shown = False
        self._previous: Any = None
        self._started = 0.0

    def start(self) -> Reporter:
        self._started = time.monotonic()
        self._previous = signal.signal(signal.SIGALRM, self._tick)
        signal.setitimer(signal.ITIMER_REAL, self.every, self.every)
        return self

    def stop(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self._previous or signal.SIG_DFL)
        if self.inplace and self._shown:
            self._write("\r\x1b[K")

    def _tick(self, _signum: int, _frame: Any) -> None:
        snapshot = current()
        if snapshot is None:
            return
        text = f"{describe(snapshot)}, {time.monotonic() - self._started:.0f} s"
        self._write(f"\r{text}\x1b[K" if self.inplace else text)
        self._shown = True

    def _write(self, text: str) -> None:
        try:
            self.emit(text)
        except RuntimeError:  # the signal came while that stream was being written: skip this one
            pass


@contextmanager
def reported(emit: Callable[[str], Any], inplace: bool, when: bool = True) -> Iterator[None]:
    """A Reporter running while inside (none when not `when`)."""
    if not when:
        yield
        return
    reporter = Reporter(emit, inplace).start()
    try:
        yield
    finally:
        reporter.stop()
