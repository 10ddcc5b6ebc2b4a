"""Both cores for a cold build: reading thousands of posts, then writing thousands of outputs.

A forked child and this process take chunks from the two ends of one list (a shared pair of
counters), so the split balances itself and neither waits for work; the child appends its
results to a temporary file that this process reads as they come. Only a single-threaded
process forks (the `build` command): forking the daemon, whose server, scheduler and watcher
threads may hold locks, could deadlock the child, so it does everything in-process.
"""

from __future__ import annotations

import gc
import os
import pickle
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from syndicator import heal, progress

T = TypeVar("T")

#: Below this many files the results' trip back through a file costs more than it saves.
MIN_FILES = 800
#: Posts per chunk: small, so that where the two ends meet neither process waits long for the
#: other's last chunk; taking one costs a lock and a write.
CHUNK = 25
#: Outputs to write before a second process helps (each is a render + one or two files).
MIN_OUTPUTS = 400
#: Outputs per chunk: a feed takes milliseconds, a post page a tenth of one; the ends meet
#: among the pages (sorted, they sit between the `all` feeds and the topic feeds).
OUTPUT_CHUNK = 8
_SIZE = 8  # bytes of the length before each pickled chunk the child writes

def workers() -> int:
    try:
        return max(0, len(os.sched_getaffinity(0)) - 1)
    except AttributeError:  # pragma: no cover - not Linux
        return max(0, (os.cpu_count() or 1) - 1)


def may_fork() -> bool:
    """Whether work may go to a forked child: a second core, and no other thread here (one
    holding a lock would leave it held in the child)."""
    return workers() > 0 and threading.active_count() == 1


@contextmanager
def no_cycle_collection(when: bool = True, keep: bool = False) -> Iterator[None]:
    """Cyclic garbage collection paused (when `when`): a first pass over thousands of posts
    allocates objects that all live on, and each collection would walk every one of them to
    find nothing to free. `keep`: what the process holds at the end is left out of later
    collections (gc.freeze) before they resume, since the first of them would otherwise walk
    all that the block made (0.1-0.2 s at 100,000 posts)."""
    paused = when and gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            if keep:
                gc.freeze()
            gc.enable()


def keep_long_lived(collect: bool) -> None:
    """What the process holds now (a service's posts and records, loaded once and kept) is left
    out of cyclic collections from here on (gc.freeze): at 100,000 posts that is ~1 M objects,
    and every full collection walked them all to free nothing, 0.8 s with the GIL held, which
    every answer and pass waited for. Objects let go later are still freed (by their counts);
    `collect`: first collect what was frozen before and has been let go since (a new Builder
    replaced the one before it), so no cycle of it is kept for good."""
    if collect:
        gc.unfreeze()
        gc.collect()
    gc.freeze()


class _Ends:
    """The next chunk from the front and from the back of a list, shared by forked processes."""

    def __init__(self, count: int) -> None:
        from multiprocessing import get_context  # (on first use: most passes stay in one process)

        ctx = get_context("fork")
        self._lock = ctx.Lock()
        self._next = ctx.RawArray("q", [0, count])  # [front, back): chunks nobody took yet
        self._count = count

    def taken(self) -> int:
        """Chunks either process has taken (read without the lock: a signal handler asks)."""
        return int(self._next[0]) + self._count - int(self._next[1])

    def take(self, back: bool) -> int | None:
        with self._lock:
            front, end = self._next
            if front >= end:
                return None
            if back:
                self._next[1] = end - 1
                return int(end) - 1
            self._next[0] = front + 1
            return int(front)

    def stop(self) -> None:
        """No more chunks for anyone: the other process stops after the one it is on."""
        with self._lock:
            self._next[0] = self._next[1]


def read_many(items: Sequence[T], read: Callable[[T], Any], label: str = "reading") -> list[Any]:
    """`read(item)` for every item, in order; spread over two processes when it pays. `label`
    names the work for progress.current()."""
    def do(chunk: Sequence[T]) -> list[Any]:
        return [read(item) for item in chunk]

    if len(items) < MIN_FILES or not may_fork():
        return _counted(items, do, CHUNK, label)
    return _first_here(items, do, CHUNK, label)


def _first_here(items: Sequence[T], do: Callable[[Sequence[T]], list[Any]], size: int, label: str,
                freeze: bool = False) -> list[Any]:
    """`do` over `items` in chunks of `size`: the first chunk here, before the fork, so that
    what `do` imports on first use (the header parsers; pypinyin's tables for a Chinese topic,
    0.3 s and 55 MiB; the renderers' feedgen, lxml and jinja2) is imported once, not in both
    processes; the rest from both ends (`_both_ends`). `freeze`: what this process holds by
    then is left out of collections while the child runs (gc.freeze): the child's collections
    would touch, and so copy, every page of the heap."""
    first = do(items[:size])
    rest = items[size:]
    chunks = [rest[i:i + size] for i in range(0, len(rest), size)]
    if freeze:
        gc.freeze()
    try:
        return first + [r for done in _both_ends(chunks, do, label, len(items), before=len(items) - len(rest))
                        for r in done]
    finally:
        if freeze:
            gc.unfreeze()


def _counted(items: Sequence[T], do: Callable[[Sequence[T]], list[Any]], size: int, label: str) -> list[Any]:
    """`do` over `items` in chunks of `size` in this process, counted for progress.current()."""
    done = [0]
    out: list[Any] = []
    with progress.working(label, len(items), lambda: done[0]):
        for i in range(0, len(items), size):
            out.extend(do(items[i:i + size]))
            done[0] = i + size
    return out


def fork_split(items: Sequence[T], work: Callable[[Sequence[T]], list[str]], label: str = "writing") -> list[str]:
    """`work` over every item, in chunks taken from both ends by this process and a forked
    child: the writer's render-and-write of thousands of outputs. The child shares the parent's
    memory (copy on write), so `work` may be any closure; only its lists of strings come back.
    Falls back to one process when not worth it or when threads run."""
    if len(items) < MIN_OUTPUTS:
        return work(items)
    if not may_fork():
        return _counted(items, work, OUTPUT_CHUNK, label)
    return _first_here(items, work, OUTPUT_CHUNK, label, freeze=True)


class Detached:
    """Work running in a forked child (see `detach`)."""

    def __init__(self, pid: int, fd: int, label: str) -> None:
        self.pid, self._fd, self.label = pid, fd, label
        self._done = False

    def wait(self) -> None:
        """Return once the work is done; raise its error (the exception itself, as the work
        raised it), or OSError when the child died without one (killed)."""
        if self._done:
            return
        self._done = True
        with os.fdopen(self._fd, "rb") as f:
            blob = f.read()  # until the child exits (it holds the only writing end)
        _, status = os.waitpid(self.pid, 0)
        code = os.waitstatus_to_exitcode(status)
        if code == 0:
            return
        error: BaseException | None = None
        if blob:
            try:
                error = pickle.loads(blob)
            except Exception:  # noqa: BLE001 - an error the parent cannot rebuild: its text is enough
                error = None
        if isinstance(error, BaseException):
            raise error
        cause = f"killed by signal {-code}" if code < 0 else f"exit status {code}"
        raise OSError(f"{self.label} stopped before it was done ({cause})")


def detach(work: Callable[[], None], label: str) -> Detached | None:
    """Start `work` in a forked child, to run beside what this process does next; None when
    this process may not fork (see `may_fork`). The child sees this process's memory as it is
    now (copy on write) and reports only whether it succeeded: `wait()` re-raises its error.
    Killed with this process (a kill -9 of the parent ends it too)."""
    if not may_fork():
        return None
    read_end, write_end = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: the work, its error down the pipe, no cleanup handlers
        status = 1
        try:
            os.close(read_end)
            heal.die_with_parent(parent)
            gc.disable()  # a collection would touch, and so copy, every page of the heap it shares
            try:
                work()
                status = 0
            except BaseException as e:  # noqa: BLE001 - sent to the parent, which raises it
                try:
                    blob = pickle.dumps(e, pickle.HIGHEST_PROTOCOL)
                except Exception:  # noqa: BLE001 - not picklable: its type and text
                    blob = pickle.dumps(OSError(f"{label}: {type(e).__name__}: {e}"))
                write_all(write_end, blob)
        finally:
            os._exit(status)
    os.close(write_end)
    return Detached(pid, read_end, label)


def _both_ends(chunks: Sequence[Sequence[T]], do: Callable[[Sequence[T]], list[Any]], label: str = "",
               total: int = 0, before: int = 0) -> list[list[Any]]:
    """`do(chunk)` for every chunk, in order: this process from the front, a forked child from
    the back, until the ends meet. The child appends its pickled results to a temporary file
    that this process unpickles between its own chunks, so the work stays balanced to the end.
    A chunk the child never sent (it died) is done here; an error here stops the child after
    the chunk it is on. Without a shared lock (no /dev/shm) or a temporary file: all here.
    `total`: the items of the work for progress reports, `before` of them done before the chunks."""
    try:
        ends = _Ends(len(chunks))
        spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    except (OSError, ImportError):
        return [do(chunk) for chunk in chunks]
    results: list[list[Any] | None] = [None] * len(chunks)
    with spool:
        fd = spool.fileno()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child: chunks from the back, no cleanup handlers
            status = 1
            try:
                heal.die_with_parent(parent)  # a kill -9 of the parent ends it too (and frees its locks)
                while (i := ends.take(back=True)) is not None:
                    blob = pickle.dumps((i, do(chunks[i])), pickle.HIGHEST_PROTOCOL)
                    write_all(fd, len(blob).to_bytes(_SIZE, "little") + blob)
                status = 0
            finally:
                os._exit(status)
        offset = 0
        try:
            with progress.working(label, total, lambda: before + (total - before) * ends.taken() // len(chunks)):
                while (i := ends.take(back=False)) is not None:
                    results[i] = do(chunks[i])
                    offset = _collect(fd, offset, results)
        except BaseException:
            ends.stop()
            raise
        finally:
            os.waitpid(pid, 0)
        _collect(fd, offset, results)
    done = [do(chunks[i]) if made is None else made for i, made in enumerate(results)]
    return done


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _collect(fd: int, offset: int, results: list[list[Any] | None]) -> int:
    """Unpickle the complete chunks the child has written past `offset`; the new offset."""
    size = os.fstat(fd).st_size
    while offset + _SIZE <= size:
        length = int.from_bytes(os.pread(fd, _SIZE, offset), "little")
        if offset + _SIZE + length > size:
            break  # still being written
        i, done = pickle.loads(os.pread(fd, length, offset + _SIZE))
        results[i] = done
        offset += _SIZE + length
    return offset
