"""Reading many posts on every core: a cold build of thousands of files.

One forked worker process per extra core takes chunks; the calling process works too and
takes back whatever chunk no worker has started, so the split balances itself. Only a
single-threaded process forks (the `build` command): forking the daemon, whose server,
scheduler and watcher threads may hold locks, could deadlock the child, so it reads in-process.
"""

from __future__ import annotations

import gc
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path
from typing import TypeVar

from syndicator import sources
from syndicator.config import Settings

T = TypeVar("T")
Item = tuple[str, tuple[int, int]]

#: Below this many files the results' trip back through a pipe costs more than it saves.
MIN_FILES = 800
CHUNK = 50  # small enough that neither process waits long for the other's last chunk
#: Outputs to write before a second process helps (each is a render + one or two files).
MIN_OUTPUTS = 400


def workers() -> int:
    try:
        return max(0, len(os.sched_getaffinity(0)) - 1)
    except AttributeError:  # pragma: no cover - not Linux
        return max(0, (os.cpu_count() or 1) - 1)


def _read_chunk(root: Path, items: Sequence[Item], settings: Settings) -> list[object]:
    from syndicator.build import read_one  # the worker imports the pipeline once

    sites = sources.SiteConfigs(root)
    return [read_one(root, rel, fp, settings, sites) for rel, fp in items]


@contextmanager
def no_cycle_collection(when: bool = True) -> Iterator[None]:
    """Cyclic garbage collection paused (when `when`): a first pass over thousands of posts
    allocates objects that all live on, and each collection would walk every one of them to
    find nothing to free."""
    paused = when and gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def read_many(root: Path, items: Sequence[Item], settings: Settings,
              read: Callable[[str, tuple[int, int]], T]) -> list[T]:
    """`read(rel, fp)` for every item, in order; spread over processes when it pays."""
    extra = workers()
    if extra == 0 or len(items) < MIN_FILES or threading.active_count() > 1:
        return [read(rel, fp) for rel, fp in items]
    chunks = [items[i:i + CHUNK] for i in range(0, len(items), CHUNK)]
    results: list[list[T] | None] = [None] * len(chunks)
    with ProcessPoolExecutor(max_workers=extra, mp_context=get_context("fork")) as pool:
        # the workers take chunks from the back, this process from the front
        pending: dict[int, Future[list[object]]] = {
            i: pool.submit(_read_chunk, root, chunks[i], settings) for i in range(len(chunks) - 1, 0, -1)
        }
        for i, chunk in enumerate(chunks):
            future = pending.pop(i, None)
            if future is None or future.cancel():
                results[i] = [read(rel, fp) for rel, fp in chunk]
            else:
                pending[i] = future
        for i, future in pending.items():
            results[i] = future.result()  # type: ignore[assignment]
    return [r for chunk in results for r in chunk]  # type: ignore[union-attr]


def fork_split(items: Sequence[T], work: Callable[[Sequence[T]], list[str]]) -> list[str]:
    """`work` over every item, half of them (every other one) in a forked child: the writer's
    render-and-write of thousands of outputs. The child shares the parent's memory (copy on
    write), so `work` may be any closure; only its list of strings comes back. Falls back to
    one process when not worth it, when threads run, or when the child fails."""
    if workers() == 0 or len(items) < MIN_OUTPUTS or threading.active_count() > 1:
        return work(items)
    mine, theirs = items[0::2], items[1::2]
    read_end, write_end = os.pipe()
    gc.freeze()  # the child's collections would touch, and so copy, every page of the heap
    pid = os.fork()
    if pid == 0:  # the child: do its half, send the result, leave without cleanup handlers
        status = 1
        try:
            os.close(read_end)
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write("\0".join(work(theirs)).encode("utf-8", "surrogatepass"))
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    try:
        done = work(mine)
    finally:
        with os.fdopen(read_end, "rb") as pipe:
            sent = pipe.read()
        _, status = os.waitpid(pid, 0)
        gc.unfreeze()
    if status != 0:  # the child failed: its half is done here (writing is idempotent)
        return done + work(theirs)
    return done + [s for s in sent.decode("utf-8", "surrogatepass").split("\0") if s]
