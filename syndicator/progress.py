"""Progress of long work (a cold build's reading and writing): what is being done, how far.

`parallel` says what it is working through (`working`), and `Reporter` shows it: on a terminal
a line rewritten in place a few times a second, otherwise a line every few seconds (into the
log, for the daemon). The reporter runs on SIGALRM rather than a thread: a build forks a
helper only while it is its process's one thread. `current()` is there for anyone else who
wants to say how far a pass is (/healthz while starting).
"""

from __future__ import annotations

import itertools
import signal
import time
from collections import deque
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
#: The last works finished, numbered, so a Ticker can show each one's end even when it came
#: between two ticks (bounded: a service makes passes for as long as it runs).
_finished: deque[tuple[int, tuple[str, int, int]]] = deque(maxlen=16)
_serial = itertools.count(1)


@contextmanager
def working(label: str, total: int, done: Callable[[], int]) -> Iterator[None]:
    """While inside: `total` items of `label` are being worked through, `done()` of them done."""
    _current.append(_Work(label, total, done))
    try:
        yield
    finally:
        _current.pop()
    _finished.append((next(_serial), (label, total, total)))  # (not reached when the work failed)


def current() -> tuple[str, int, int] | None:
    """(label, done, total) of the work in progress, None when there is none."""
    if not _current:
        return None
    work = _current[-1]
    return work.label, min(work.total, max(0, work.done())), work.total


def describe(snapshot: tuple[str, int, int]) -> str:
    label, done, total = snapshot
    return f"{label}: {done} of {total} ({100 * done // max(1, total)}%)"


class Ticker:
    """Calls `show(current())` every `every` seconds while there is work in progress, on SIGALRM;
    with `ends`, also `show` each work's end (done = total) once, at the next tick or at `stop`.
    Only the main thread can start and stop it."""

    def __init__(self, show: Callable[[tuple[str, int, int]], Any], every: float, ends: bool = False) -> None:
        self.show = show
        self.every = every
        self.ends = ends
        self._previous: Any = None
        self._shown_end = _finished[-1][0] if _finished else 0

    def start(self) -> Ticker:
        self._previous = signal.signal(signal.SIGALRM, self._tick)
        signal.setitimer(signal.ITIMER_REAL, self.every, self.every)
        return self

    def stop(self) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, self._previous or signal.SIG_DFL)
        self._show_ends()

    def _tick(self, _signum: int, _frame: Any) -> None:
        self._show_ends()
        snapshot = current()
        if snapshot is not None:
            self.show(snapshot)

    def _show_ends(self) -> None:
        if not self.ends:
            return
        for serial, snapshot in list(_finished):
            if serial > self._shown_end:
                self._shown_end = serial
                self.show(snapshot)


class Reporter(Ticker):
    """Shows `current()` every `every` seconds through `emit`; `inplace`: one terminal line,
    rewritten (and cleared at `stop`)."""

    def __init__(self, emit: Callable[[str], Any], inplace: bool, every: float | None = None) -> None:
        super().__init__(self._line, every if every is not None else (0.25 if inplace else 5.0))
        self.emit = emit
        self.inplace = inplace
        self._shown = False
        self._started = 0.0

    def start(self) -> Reporter:
        self._started = time.monotonic()
        super().start()
        return self

    def stop(self) -> None:
        super().stop()
        if self.inplace and self._shown:
            self._write("\r\x1b[K")

    def _line(self, snapshot: tuple[str, int, int]) -> None:
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


@contextmanager
def ticking(show: Callable[[tuple[str, int, int]], Any], every: float) -> Iterator[None]:
    """`show(current())` every `every` seconds while inside, and each work's end (another
    process's view of the work)."""
    ticker = Ticker(show, every, ends=True).start()
    try:
        yield
    finally:
        ticker.stop()
