"""A large save of the state in a forked child, beside the rest of the pass (parallel.detach,
SQLiteStore.save): what it stores, how its errors come back, and what a kill leaves."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from syndicator import parallel
from syndicator.config import Settings
from syndicator.pipeline import Builder
from syndicator.store import Record, sqlite
from syndicator.store.sqlite import FILE_NAME, SQLiteStore

pytestmark = pytest.mark.skipif(not parallel.may_fork(), reason="one core or threads: nothing is forked")


# -- parallel.detach ---------------------------------------------------------------------------


def test_detached_work_runs_in_another_process(tmp_path: Path) -> None:
    out = tmp_path / "pid"
    job = parallel.detach(lambda: out.write_text(str(os.getpid())), "writing a pid")
    assert job is not None
    job.wait()
    assert int(out.read_text()) not in (os.getpid(), 0)
    job.wait()  # a second wait returns at once


def test_a_detached_error_is_raised_by_wait_as_it_was_raised() -> None:
    def fail() -> None:
        raise sqlite3.OperationalError("database or disk is full")

    job = parallel.detach(fail, "failing")
    assert job is not None
    with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
        job.wait()


def test_a_killed_child_is_an_oserror_naming_the_work() -> None:
    job = parallel.detach(lambda: os.kill(os.getpid(), signal.SIGKILL), "saving 3 posts")
    assert job is not None
    with pytest.raises(OSError, match=r"saving 3 posts stopped before it was done \(killed by signal 9\)"):
        job.wait()


def test_nothing_is_detached_while_threads_run() -> None:
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert not parallel.may_fork()
        assert parallel.detach(lambda: None, "anything") is None
    finally:
        stop.set()
        thread.join()


# -- SQLiteStore.save --------------------------------------------------------------------------


def _many_posts(seeds: Path, n: int) -> None:
    for i in range(n):
        (seeds / f"p{i:03d}.md").write_text(
            f"---\ntitle: Post {i}\ndate: 2024-03-01 10:{i % 60:02d}\ntags: [t{i % 3}]\n---\n\nBody {i} "
            + "words " * (i % 7) + "\n", encoding="utf-8")


def _rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    db = sqlite3.connect(path)
    try:
        return {table: sorted(db.execute(f"SELECT * FROM {table}").fetchall())  # noqa: S608 - our names
                for table in ("posts", "summaries", "outputs", "meta")}
    finally:
        db.close()


def _build(settings: Settings, state: Path, detach_at: int, monkeypatch: pytest.MonkeyPatch) -> tuple[SQLiteStore, bool]:
    """A cold build with the state in `state`; whether its records' save ran in a child."""
    from datetime import UTC, datetime

    monkeypatch.setattr(sqlite, "DETACH_AT", detach_at)
    store = SQLiteStore(state / FILE_NAME, "k")
    detached: list[int] = []
    save = store.save

    def watched(records, gone, restamped=()):  # type: ignore[no-untyped-def]
        save(records, gone, restamped)
        if store._pending is not None:
            detached.append(store._pending.pid)

    monkeypatch.setattr(store, "save", watched)
    settings = replace(settings, state_dir=state, feeds_dir=state / "feeds")
    Builder(settings, clock=lambda: datetime(2025, 1, 1, tzinfo=UTC), state=store).build()
    return store, bool(detached) and os.getpid() not in detached


def test_a_detached_save_stores_what_a_save_here_stores(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    _many_posts(settings.seeds_dir, 40)
    here, detached_here = _build(settings, tmp_path / "here", 10_000, monkeypatch)
    away, detached_away = _build(settings, tmp_path / "away", 10, monkeypatch)
    assert not detached_here and detached_away
    assert away.output_digests() == here.output_digests()  # (waits for the child)
    assert away.last_pass() == here.last_pass() is not None
    here.close()
    away.close()
    a, b = _rows(tmp_path / "here" / FILE_NAME), _rows(tmp_path / "away" / FILE_NAME)
    assert len(a["posts"]) >= 40 and len(a["summaries"]) >= 40
    assert a == b


def _records(settings: Settings, n: int) -> list[Record]:
    _many_posts(settings.seeds_dir, 3)
    builder = Builder(settings)
    builder.build()
    base = next(r for r in builder.records.values() if r.good is not None)
    return [replace(base, path=f"copy/{i:05d}.md") for i in range(n)]


def test_an_error_of_the_child_comes_back_at_the_next_use(settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Path) -> None:
    """Another connection holds the write lock: the child waits out the busy timeout and
    fails; the store raises that error where it next touches the file, and a later save
    (here) works once the lock is gone. The site configs given meanwhile wait for the
    records and are not written when their save failed."""
    records = _records(settings, 30)
    monkeypatch.setattr(sqlite, "DETACH_AT", 10)
    store = SQLiteStore(tmp_path / FILE_NAME, "k")
    other = sqlite3.connect(tmp_path / FILE_NAME, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    store.save(records, [])
    store.save_site_configs({"_config.yml": (1, 2)})
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        store.fingerprints()
    assert time.monotonic() - started > 3  # the busy timeout, in the child
    other.execute("ROLLBACK")
    other.close()
    assert store.fingerprints() == {} and store.site_configs() == {}
    monkeypatch.setattr(sqlite, "DETACH_AT", 10_000)
    store.save(records, [])
    store.save_site_configs({"_config.yml": (1, 2)})
    assert len(store.fingerprints()) == 30 and store.site_configs() == {"_config.yml": (1, 2)}
    store.close()


def test_site_configs_given_during_a_detached_save_are_written_after_it(
        settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    records = _records(settings, 30)
    monkeypatch.setattr(sqlite, "DETACH_AT", 10)
    store = SQLiteStore(tmp_path / FILE_NAME, "k")
    store.save(records, [])
    assert store._pending is not None
    store.save_site_configs({"_config.yml": (1, 2)})
    store.close()  # waits, then writes them
    again = SQLiteStore(tmp_path / FILE_NAME, "k")
    assert len(again.fingerprints()) == 30 and again.site_configs() == {"_config.yml": (1, 2)}
    again.close()


SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from dataclasses import replace
    from pathlib import Path
    from syndicator.config import load_settings
    from syndicator.pipeline import Builder
    from syndicator.store import sqlite
    seeds = Path(sys.argv[1])
    settings = load_settings(env={}, overrides={"seeds_dir": seeds, "feeds_dir": seeds.parent / "feeds",
                                                "state_dir": seeds.parent / "var"})
    builder = Builder(settings)
    builder.build()
    base = next(r for r in builder.records.values() if r.good is not None)
    records = [replace(base, path=f"copy/{i:06d}.md") for i in range(int(sys.argv[3]))]
    store = sqlite.SQLiteStore(Path(sys.argv[2]), "k")
    store.save(records, [])
    print(store._pending.pid, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
""")


def test_a_kill_during_a_detached_save_leaves_the_state_whole(settings: Settings, tmp_path: Path) -> None:
    """kill -9 of the process right after the save went to its child: the child goes too, and
    the file holds all of the records or none of them."""
    _many_posts(settings.seeds_dir, 3)
    n = 20_000
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(settings.seeds_dir), str(tmp_path / FILE_NAME), str(n)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr
    child = int(done.stdout.split()[0])
    deadline = time.monotonic() + 10
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(child)
    store = SQLiteStore(tmp_path / FILE_NAME, "k")
    assert len(store.fingerprints()) in (0, n)
    assert store.db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    store.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False
