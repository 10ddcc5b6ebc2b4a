"""A service's first pass over a fresh folder, in a child process of its own.

Why a child: `serve` listens at once and answers while the feeds are made (`/healthz` says
`starting` with the progress; a feed not written yet is a 503 with Retry-After), so its
process runs the server's threads, and a process with threads must not fork (a lock held by
another thread stays held in the child). A freshly started child has no threads: it forks as
`syndicator build` does, so the first pass uses both cores, and what it allocates on the way
never becomes the service's memory. The service then opens the state the child wrote, as a
restart does, and catches up. Should the child fail, the service makes the pass itself.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

from syndicator.config import Settings

if TYPE_CHECKING:
    from syndicator.pipeline import BuildResult

log = logging.getLogger("syndicator")

#: What /healthz shows of a first pass under way: step (`reading`, `writing`), done, total.
Progress = dict[str, Any]
#: How often the child sends how far it has come.
PROGRESS_EVERY_S = 0.05


def run(settings: Settings, stop: threading.Event, progressed: Callable[[Progress], None],
        what: str = "first pass") -> BuildResult | None:
    """The first pass (or another that reads every post: `what` names it in the log), made by
    a child process; its result (what the build log needs), or None when it failed or `stop`
    was set (the child is then stopped)."""
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_child, args=(settings, os.getpid(), theirs), name="syndicator-first-pass",
                        daemon=True)
    child.start()
    theirs.close()
    try:
        return _follow(child, ours, stop, progressed, what)
    finally:
        if child.is_alive():
            child.terminate()  # stopping: the files it wrote are whole (each is written aside, then renamed)
        child.join()
        ours.close()


def _follow(child: Any, ours: Connection, stop: threading.Event,
            progressed: Callable[[Progress], None], what: str) -> BuildResult | None:
    while not stop.is_set():
        if not ours.poll(0.1):
            if not child.is_alive() and not ours.poll():
                log.error("%s: its process ended (exit code %s); making it here", what, child.exitcode)
                return None
            continue
        try:
            kind, value = ours.recv()
        except (EOFError, OSError):
            continue  # (the child ended: the next turn says so)
        if kind == "progress":
            progressed(value)
        elif kind == "done":
            return value  # type: ignore[no-any-return]
        else:
            log.error("%s failed (%s); making it here", what, value)
            return None
    return None


def _child(settings: Settings, parent: int, conn: Connection) -> None:
    """The child: one pass, as `syndicator build` makes it, with its progress sent as it goes."""
    from syndicator import heal, logs, progress
    from syndicator.pipeline import Builder, guard
    from syndicator.publishers.directory import DirectoryPublisher
    from syndicator.store.local import cache_key
    from syndicator.store.sqlite import FILE_NAME, SQLiteStore

    heal.die_with_parent(parent)
    logs.setup(settings.log_format, settings.log_level)

    def send(snapshot: tuple[str, int, int]) -> None:
        label, done, total = snapshot  # "reading posts" → "reading", as /healthz names the steps
        conn.send(("progress", {"step": label.split()[0], "done": done, "total": total}))

    try:
        state = SQLiteStore(settings.state_dir / FILE_NAME, cache_key(settings))
        try:
            with progress.ticking(send, PROGRESS_EVERY_S):
                # durable as `build` writes: what the service then says is published is on the
                # disk, and its first save's sync does not wait for this pass's files to be flushed
                publisher = DirectoryPublisher(settings.feeds_dir, durable=settings.durable_writes)
                result = Builder(settings, state=state, publisher=publisher,
                                 confirmations=guard.Confirmations(settings, settings.state_dir)).build()
        finally:
            state.close()
        # what the build log and the hubs need: not the posts and feeds themselves
        conn.send(("done", replace(result, _posts=[], feeds=[])))
    except BaseException as e:  # the service makes the pass itself; it logs why
        conn.send(("error", f"{type(e).__name__}: {e}"))
        raise SystemExit(1) from None
    finally:
        conn.close()
