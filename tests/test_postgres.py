"""The PostgreSQL Store and its schema, on a real server (a database of each test's own)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from syndicator.cli import cli
from syndicator.config import Settings
from syndicator.pipeline import Builder
from syndicator.pipeline.warm import WarmReads
from syndicator.store import pg
from syndicator.store.migrations import MIGRATIONS
from syndicator.store.pg import Database, SchemaOutdated, Unreachable
from syndicator.store.postgres import PostgresStore
from syndicator.store.sqlite import FILE_NAME, SQLiteStore

from . import pgserver
from .serverproc import ServerProcess, free_port
from .test_state import POST, Clock, post_at, write_keeping_stat

ROOT = Path(__file__).resolve().parent.parent
pg_url = pgserver.pg_url  # the fixture: a database of the test's own


def tables(url: str) -> set[str]:
    db = Database(url)
    try:
        return {r[0] for r in db.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    finally:
        db.close()


def open_store(url: str, key: str = "k") -> PostgresStore:
    return PostgresStore(Database(url), key)


def upgraded(url: str, target: int | None = None) -> str:
    db = Database(url)
    try:
        pg.upgrade(db, target)
    finally:
        db.close()
    return url


def test_db_upgrade_from_empty_then_nothing_to_do(pg_url: str) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["db", "upgrade", "--state-url", pg_url], obj={})
    assert result.exit_code == 0, result.output
    latest = MIGRATIONS[-1].version
    assert result.output == f"database schema at version {latest} (was 0; applied " \
        f"{', '.join(str(m.version) for m in MIGRATIONS)})\n"
    assert {"schema_migrations", "meta", "posts", "output_digests"} <= tables(pg_url)
    again = runner.invoke(cli, ["db", "upgrade", "--state-url", pg_url], obj={})
    assert again.output == f"database schema at version {latest} (was {latest}; nothing to apply)\n"
    db = Database(pg_url)
    try:
        assert [v for (v,) in db.execute("SELECT version FROM schema_migrations ORDER BY 1")] == \
            [m.version for m in MIGRATIONS]
    finally:
        db.close()


def test_two_upgrades_at_once_apply_each_migration_once(pg_url: str) -> None:
    applied: list[list[int]] = []
    errors: list[BaseException] = []

    def run() -> None:
        db = Database(pg_url)
        try:
            applied.append(pg.upgrade(db))
        except BaseException as e:  # noqa: BLE001  (reported below)
            errors.append(e)
        finally:
            db.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(v for versions in applied for v in versions) == [m.version for m in MIGRATIONS]


def test_store_refuses_a_database_without_the_schema(pg_url: str) -> None:
    with pytest.raises(SchemaOutdated, match=r"has no Syndicator schema, .* run `syndicator db upgrade`"):
        open_store(pg_url)
    upgraded(pg_url)
    db = Database(pg_url)
    db.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'from the future')")
    with pytest.raises(SchemaOutdated, match="written by a newer Syndicator"):
        PostgresStore(db, "k")
    db.close()


def test_serve_without_the_schema_is_one_line(pg_url: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATOR_")}
    env["SYNDICATOR_STATE_URL"] = pg_url
    proc = subprocess.run([sys.executable, "-m", "syndicator", "serve", "--seeds", str(ROOT / "seeds"),
                           "--out", str(tmp_path / "feeds"), "--state", str(tmp_path / "var"), "--port", str(free_port())],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "run `syndicator db upgrade`" in proc.stderr, proc.stderr
    assert "password" not in proc.stderr


def test_unreachable_server_is_one_error() -> None:
    with pytest.raises(Unreachable, match=r"cannot connect to postgresql://nobody@127.0.0.1:1/none"):
        Database("postgresql://nobody:secret@127.0.0.1:1/none")


def test_same_records_as_the_sqlite_store(pg_url: str, settings: Settings) -> None:
    """Both stores give back what the pipeline saved, field for field."""
    upgraded(pg_url)
    (settings.seeds_dir / "broken.md").write_text("---\ntitle: [oops\n---\n", encoding="utf-8")
    clock = Clock()  # one injected clock: both builds see the same times, whatever second the wall is in
    Builder(settings, clock=clock, state=open_store(pg_url)).build()
    Builder(settings, clock=clock, state=SQLiteStore(settings.state_dir / FILE_NAME, "k")).build()
    from_pg, from_sqlite = open_store(pg_url), SQLiteStore(settings.state_dir / FILE_NAME, "k")
    records = from_pg.load()
    assert len(records) > 4 and any(r.problems for r in records.values())
    assert records == from_sqlite.load()
    assert from_pg.output_digests() == from_sqlite.output_digests() != {}
    assert from_pg.site_configs() == from_sqlite.site_configs()
    from_pg.close()
    from_sqlite.close()


def test_ids_times_and_last_good_across_restarts(pg_url: str, settings: Settings) -> None:
    upgraded(pg_url)
    clock = Clock()
    path = settings.seeds_dir / "note.md"
    path.write_text(POST.format(title="One"), encoding="utf-8")
    builder = Builder(settings, clock=clock, state=open_store(pg_url))
    builder.build()
    first = post_at(builder, "note.md")
    clock.tick()
    path.write_text(POST.format(title="Two"), encoding="utf-8")
    builder.build()
    edited = post_at(builder, "note.md")
    path.write_text("---\ntitle: [broken\n---\n", encoding="utf-8")
    builder.build()
    builder.state.close()

    # another process (a restart, or the standby taking over) reads it all back unparsed
    builder = Builder(settings, clock=clock, state=open_store(pg_url))
    result = builder.build()
    assert result.changed_paths == [] and [e.path for e in result.errors] == ["note.md"]
    assert result.written == []  # nothing re-rendered: the output digests came back too
    assert any(p.title == "Two" and p.id == first.id and p.updated == edited.updated for p in result.posts)

    # fixed with the last good bytes, same size and mtime kept: the cache is keyed by fingerprint
    path.write_text(POST.format(title="Two"), encoding="utf-8")
    builder.build()
    builder.state.close()
    write_keeping_stat(path, POST.format(title="Owt"))
    builder = Builder(settings, clock=clock, state=open_store(pg_url))
    assert builder.build().changed_paths == []

    # another key (settings or code): cached reads dropped, ids and times kept
    builder.state.close()
    builder = Builder(settings, clock=clock, state=open_store(pg_url, key="other"))
    builder.build()
    post = post_at(builder, "note.md")
    assert post.title == "Owt" and post.id == first.id

    path.unlink()
    builder.build()
    assert builder.state.db.execute("SELECT count(*) FROM posts WHERE path = 'note.md'") == [(0,)]  # type: ignore[attr-defined]
    builder.state.close()


def test_rows_of_another_post_shape_are_read_again(pg_url: str, settings: Settings, caplog) -> None:
    upgraded(pg_url)
    store = open_store(pg_url)
    Builder(settings, state=store).build()
    store.db.execute("UPDATE posts SET good = convert_to('[1, 2]', 'UTF8') WHERE path = "
                     "(SELECT min(path) FROM posts WHERE good IS NOT NULL)")
    store.db.execute("UPDATE meta SET value = 'old-shape' WHERE key = 'schema'")
    store.close()
    store = open_store(pg_url)  # another post shape: every post read again
    assert not store.has_posts()
    Builder(settings, state=store).build()
    count = store.db.execute("SELECT count(*) FROM posts")[0][0]
    store.db.execute("UPDATE posts SET good = convert_to('[1, 2]', 'UTF8') WHERE path = "
                     "(SELECT min(path) FROM posts WHERE good IS NOT NULL)")
    assert len(store.load()) == count - 1  # a row this code did not write is dropped
    assert "not what this version writes" in caplog.text
    assert store.db.execute("SELECT count(*) FROM posts")[0][0] == count - 1
    store.close()


def test_serve_keeps_its_state_in_postgresql(pg_url: str, tmp_path: Path) -> None:
    upgraded(pg_url)
    with ServerProcess(tmp_path / "site", env={"SYNDICATOR_STATE_URL": pg_url}) as srv:
        status, _, body = srv.request("GET", "/all.rss")
        assert status == 200 and b"<rss" in body
        db = Database(pg_url)
        published = db.execute("SELECT count(*) FROM posts WHERE good IS NOT NULL")[0][0]
        db.close()
        assert published >= 4
    assert not (srv.state_dir / FILE_NAME).exists()  # no SQLite file beside it


def test_another_copy_of_the_posts_restamps_the_records(pg_url: str, settings: Settings, tmp_path: Path) -> None:
    """A builder over another copy of the posts (other mtimes, same bytes), with and without a
    warm read of it: every record keeps its id and times and takes the copy's fingerprints,
    so the next pass over that copy reads nothing."""
    upgraded(pg_url)
    clock = Clock()
    (settings.seeds_dir / "broken.md").write_text("---\ntitle: [oops\n---\n", encoding="utf-8")
    store = open_store(pg_url)
    Builder(settings, clock=clock, state=store).build()
    first = store.load()
    store.close()
    for warmed in (False, True):
        copy = tmp_path / f"copy-{warmed}"
        shutil.copytree(settings.seeds_dir, copy, copy_function=shutil.copyfile)  # mtimes: now
        there = replace(settings, seeds_dir=copy)
        warm = None
        if warmed:
            warm = WarmReads(there)
            assert warm.refresh() == len(first)
        store = open_store(pg_url)
        builder = Builder(there, clock=clock, state=store, warm=warm)
        result = builder.build()
        assert builder.tracker.read_counts == (len(first), len(first) if warmed else 0)
        assert result.written == []
        records = store.load()
        assert {p: replace(r, fingerprint=None) for p, r in records.items()} == \
            {p: replace(r, fingerprint=None) for p, r in first.items()}
        assert all(r.fingerprint == (os.stat(copy / p).st_size, os.stat(copy / p).st_mtime_ns)
                   for p, r in records.items())
        store.close()
        store = open_store(pg_url)
        again = Builder(there, clock=clock, state=store)
        assert again.build().changed_paths == [] and again.tracker.read_counts == (0, 0)
        store.close()
    sqlite = SQLiteStore(settings.state_dir / FILE_NAME, "k")  # the same on the SQLite store
    Builder(settings, clock=clock, state=sqlite).build()
    copy = tmp_path / "copy-sqlite"
    shutil.copytree(settings.seeds_dir, copy, copy_function=shutil.copyfile)
    Builder(replace(settings, seeds_dir=copy), clock=clock, state=sqlite).build()
    assert Builder(replace(settings, seeds_dir=copy), clock=clock, state=sqlite).build().changed_paths == []
    sqlite.close()
