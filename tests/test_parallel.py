"""The two-process paths of a cold build (syndicator/parallel.py), with real forks."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from syndicator import parallel

pytestmark = pytest.mark.skipif(parallel.workers() == 0, reason="one core: nothing is forked")

N = parallel.MIN_FILES + 7 * parallel.CHUNK + 3  # the last chunk is a short one


def _pid_and_square(n: int) -> tuple[int, int, int]:
    time.sleep(0.0002)  # long enough for the child to start before this process is done
    return n, n * n, os.getpid()


def test_read_many_spreads_over_two_processes_and_keeps_order() -> None:
    got = parallel.read_many(list(range(N)), _pid_and_square)
    assert [(n, sq) for n, sq, _ in got] == [(n, n * n) for n in range(N)]
    pids = {pid for _, _, pid in got}
    assert os.getpid() in pids and len(pids) == 2
    # both ends were worked on: this process from the front, the child from the back
    assert got[0][2] == os.getpid() and got[-1][2] != os.getpid()


_IMPORTED: list[int] = []


def _lazy_import_then_square(n: int) -> tuple[int, int]:
    time.sleep(0.0002)
    """A reader that imports something on first use (as slugs.slug imports pypinyin)."""
    if not _IMPORTED:
        _IMPORTED.append(os.getpid())
    return n * n, _IMPORTED[0]


def test_what_reading_imports_first_is_imported_before_the_fork() -> None:
    """The first chunk is read here before the child is forked, so the child inherits what it
    loaded instead of loading it again."""
    _IMPORTED.clear()
    got = parallel.read_many(list(range(N)), _lazy_import_then_square)
    assert [sq for sq, _ in got] == [n * n for n in range(N)]
    assert _IMPORTED == [os.getpid()]
    assert len({pid for *_, pid in parallel.read_many(list(range(N)), _pid_and_square)}) == 2  # (it forks)
    assert {loader for _, loader in got} == {os.getpid()}  # the child's reads found it loaded here


def test_read_many_reads_in_process_below_the_threshold_or_with_threads() -> None:
    small = parallel.read_many(list(range(parallel.MIN_FILES - 1)), _pid_and_square)
    assert {pid for _, _, pid in small} == {os.getpid()}
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        threaded = parallel.read_many(list(range(N)), _pid_and_square)
    finally:
        stop.set()
        thread.join()
    assert {pid for _, _, pid in threaded} == {os.getpid()}


def test_read_many_without_a_temporary_file_reads_here(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("tempfile.TemporaryFile", no_space)
    got = parallel.read_many(list(range(N)), _pid_and_square)
    assert [(n, sq) for n, sq, _ in got] == [(n, n * n) for n in range(N)]
    assert {pid for _, _, pid in got} == {os.getpid()}


def test_no_shared_semaphore_means_one_process(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Where sem_open does not work (no /dev/shm), multiprocessing cannot make a lock."""
    def no_sem_open(self: object) -> None:
        raise ImportError("This platform lacks a functioning sem_open implementation")

    monkeypatch.setattr("multiprocessing.context.BaseContext.Lock", no_sem_open)
    got = parallel.read_many(list(range(N)), _pid_and_square)
    assert [(n, sq) for n, sq, _ in got] == [(n, n * n) for n in range(N)]
    assert {pid for _, _, pid in got} == {os.getpid()}
    items = [f"item-{n}" for n in range(parallel.MIN_OUTPUTS + 11)]

    def work(part: Sequence[str]) -> list[str]:
        for item in part:
            (tmp_path / item).write_text(str(os.getpid()))
        return list(part)

    assert sorted(parallel.fork_split(items, work)) == sorted(items)
    assert {(tmp_path / item).read_text() for item in items} == {str(os.getpid())}


def test_read_many_rereads_what_a_dying_child_never_sent() -> None:
    parent = os.getpid()
    seen: list[int] = []

    def read(n: int) -> int:
        if os.getpid() != parent and n < N - 3 * parallel.CHUNK:
            os._exit(3)  # the child dies after sending its first chunks
        seen.append(n)
        time.sleep(0.0002)
        return n * 2

    assert parallel.read_many(list(range(N)), read) == [n * 2 for n in range(N)]
    assert len(seen) < N  # the child's chunks were not all read again here


def test_read_many_error_in_this_process_stops_the_child(tmp_path: Path) -> None:
    parent = os.getpid()
    marks = tmp_path / "child"

    def read(n: int) -> int:
        if os.getpid() == parent:
            raise ValueError("bad post")
        with open(marks, "a") as f:
            f.write(f"{n}\n")
        return n

    with pytest.raises(ValueError, match="bad post"):
        parallel.read_many(list(range(100 * parallel.CHUNK + N)), _slow(read))
    # killed, not left to read on alone through everything: it saw a few chunks at most
    assert len(marks.read_text().split() if marks.exists() else []) < 50 * parallel.CHUNK


def _slow(read):  # type: ignore[no-untyped-def]
    def slowed(n: int) -> int:
        time.sleep(0.0005)
        return read(n)  # type: ignore[no-any-return]

    return slowed


def test_fork_split_does_every_item_once(tmp_path: Path) -> None:
    items = [f"item-{n}" for n in range(parallel.MIN_OUTPUTS + 11)]

    def work(part: Sequence[str]) -> list[str]:
        for item in part:
            (tmp_path / item).write_text(str(os.getpid()))
        return list(part)

    done = parallel.fork_split(items, work)
    assert sorted(done) == sorted(items)
    writers = {(tmp_path / item).read_text() for item in items}
    assert len(writers) == 2 and str(os.getpid()) in writers


def test_fork_split_work_imports_on_first_use_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The renderers import their libraries on first use: a first chunk done before the fork
    imports them in this process only, and the child inherits them."""
    probe = tmp_path / "fork_split_probe.py"
    probe.write_text("import os, pathlib\n"
                     "with pathlib.Path(__file__).with_suffix('.log').open('a') as f:\n"
                     "    f.write(f'{os.getpid()}\\n')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "fork_split_probe", raising=False)

    def work(part: Sequence[int]) -> list[str]:
        import fork_split_probe  # noqa: F401
        return [str(n) for n in part]

    items = list(range(parallel.MIN_OUTPUTS + 11))
    assert sorted(parallel.fork_split(items, work)) == sorted(map(str, items))
    assert probe.with_suffix(".log").read_text().split() == [str(os.getpid())]
    sys.modules.pop("fork_split_probe", None)


def test_fork_split_redoes_a_failed_childs_half() -> None:
    parent = os.getpid()
    items = [str(n) for n in range(parallel.MIN_OUTPUTS + 11)]

    def work(part: Sequence[str]) -> list[str]:
        if os.getpid() != parent:
            raise RuntimeError("child failed")
        return list(part)

    assert sorted(parallel.fork_split(items, work)) == sorted(items)


def test_fork_split_error_here_stops_the_child(tmp_path: Path) -> None:
    parent = os.getpid()
    items = [str(n) for n in range(20 * parallel.MIN_OUTPUTS)]

    def work(part: Sequence[str]) -> list[str]:
        if os.getpid() == parent:
            raise OSError("disk full")
        time.sleep(0.001)
        with open(tmp_path / "child", "a") as f:
            f.write("".join(f"{item}\n" for item in part))
        return list(part)

    with pytest.raises(OSError, match="disk full"):
        parallel.fork_split(items, work)
    done = (tmp_path / "child").read_text().split() if (tmp_path / "child").exists() else []
    assert len(done) < len(items) // 4  # it stopped after its chunk, not after all of them
