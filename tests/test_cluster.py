"""Outputs in PostgreSQL: the database Publisher, a web node's copy of the published site, the
fence, and migrations from the previous version; on a real server, a database of each test's own."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from syndicator.cluster import Election, Fenced
from syndicator.pipeline import Builder
from syndicator.publishers import Output, Outputs
from syndicator.publishers.database import DatabasePublisher, etag_of
from syndicator.publishers.directory import DirectoryPublisher, has_twin
from syndicator.store import pg
from syndicator.store.pg import Database
from syndicator.store.postgres import PostgresStore
from syndicator.web import create_app
from syndicator.web.files import FileCache
from syndicator.web.published import PublishedFiles
from syndicator.web.purge import request_paths

from . import pgserver
from .conftest import ALIASES, BAD_POST, SEEDS, site_settings
from .serverproc import ServerProcess, free_port, nginx_binary, nginx_in_front

ROOT = Path(__file__).resolve().parent.parent
pg_url = pgserver.pg_url  # the fixture: a database of the test's own


def upgraded(url: str, target: int | None = None) -> Database:
    db = Database(url)
    pg.upgrade(db, target)
    return db


def published_files(feeds: Path) -> dict[str, bytes]:
    return {p.relative_to(feeds).as_posix(): p.read_bytes() for p in feeds.rglob("*")
            if p.is_file() and not p.name.startswith(".") and p.suffix != ".gz"}


def database_site(db: Database) -> dict[str, tuple[bytes, bytes | None, str]]:
    return {rel: (bytes(data), gz and bytes(gz), etag)
            for rel, data, gz, etag in db.execute("SELECT rel, data, gz, etag FROM published")}


def retitle(site: Path, new: str) -> Path:
    """Change the title of the first post; its path."""
    post = sorted((site / "seeds").glob("0*.txt"))[0]
    post.write_text(post.read_text(encoding="utf-8").replace('title: "', f'title: "{new} ', 1), encoding="utf-8")
    return post


def make_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    shutil.copytree(SEEDS, site / "seeds")
    (site / "seeds" / "zz_bad.txt").write_text(BAD_POST, encoding="utf-8")
    return site


def test_publisher_writes_what_the_directory_gets(pg_url: str, tmp_path: Path) -> None:
    site = make_site(tmp_path)
    settings = site_settings(site)
    db = upgraded(pg_url)
    Builder(settings).build()  # the directory publisher, feeds/
    Builder(settings, state=PostgresStore(db, "k"), publisher=DatabasePublisher(db)).build()
    files, rows = published_files(settings.feeds_dir), database_site(db)
    assert files.keys() == rows.keys() and len(files) > 20
    cache = FileCache(settings.feeds_dir.resolve())
    for rel, (data, gz, etag) in rows.items():
        assert data == files[rel], rel
        assert etag == cache.get(rel).etag == etag_of(data)  # type: ignore[union-attr]
        assert (gz is not None) == has_twin(rel) and (gz is None or gzip.decompress(gz) == data)
    # the outputs, then the redirects table (the topic aliases) in a generation of its own
    assert db.execute("SELECT generation, written, removed FROM generations") == [(1, len(rows), 0), (2, 0, 0)]
    assert DatabasePublisher(db).redirects() == DirectoryPublisher(settings.feeds_dir).redirects() != {}


def test_a_pass_is_one_generation_of_what_changed(pg_url: str, tmp_path: Path) -> None:
    site = make_site(tmp_path)
    settings = site_settings(site)
    db = upgraded(pg_url)
    db.execute("LISTEN syndicator_published")
    builder = Builder(settings, state=PostgresStore(db, "k"), publisher=DatabasePublisher(db))
    builder.build()
    [(first,)] = db.execute("SELECT max(generation) FROM generations")  # (the redirects table: one more)
    assert [n[1].startswith(f'{{"generation": {first},') for n in db.notifies(1)][-1]
    before = database_site(db)
    assert builder.build().written == [] and db.execute("SELECT max(generation) FROM generations") == [(first,)]

    post = retitle(site, "Edited")
    written = builder.build().written
    after = database_site(db)
    assert sorted(written) == sorted(rel for rel in after if after[rel] != before.get(rel)) != []
    assert db.execute("SELECT rel FROM published WHERE generation = %s ORDER BY rel", (first + 1,)) == \
        [(r,) for r in sorted(written)]
    [(channel, payload)] = db.notifies(1)
    assert channel == "syndicator_published" and f'"generation": {first + 1}' in payload and written[0] in payload

    post.unlink()
    result = builder.build()
    assert result.removed and db.execute("SELECT count(*) FROM published WHERE rel = ANY(%s)",
                                         (result.removed,)) == [(0,)]
    assert sorted(r for (r,) in db.execute("SELECT rel FROM taken_down WHERE generation = %s", (first + 2,))) == \
        sorted(result.removed)
    db.close()


def test_a_fenced_builder_writes_nothing(pg_url: str, tmp_path: Path) -> None:
    site = make_site(tmp_path)
    settings = site_settings(site)
    upgraded(pg_url).close()
    stop = threading.Event()
    election = Election(pg_url, "first")
    assert election.campaign(stop) and election.epoch == 1
    db = Database(pg_url)
    store = PostgresStore(db, "k", fence=election.fence)
    builder = Builder(settings, state=store, publisher=DatabasePublisher(db, fence=election.fence))
    builder.build()
    generation = db.execute("SELECT max(generation) FROM generations")

    other = Database(pg_url)  # a standby elected meanwhile (this one paused, say)
    other.execute("UPDATE leadership SET epoch = epoch + 1")
    retitle(site, "Fenced")
    rows = other.execute("SELECT path, hash FROM posts ORDER BY path")
    with pytest.raises(Fenced, match="write refused"):
        builder.build()
    assert other.execute("SELECT path, hash FROM posts ORDER BY path") == rows  # the state untouched
    assert other.execute("SELECT max(generation) FROM generations") == generation  # nothing published
    assert election.lost.is_set()
    election.resign()
    db.close()
    other.close()


def test_a_pass_rendering_the_same_bytes_for_long_is_not_ended_as_idle(pg_url: str) -> None:
    """A new leader's first pass renders outputs again and finds most of them unchanged: nothing
    to send for seconds, inside the pass's transaction, which the server ends when it hears
    nothing (cluster.LOCK_IDLE_MS; here 1 s). The publisher keeps talking to it."""
    upgraded(pg_url).close()
    db = Database(pg_url, server={"idle_in_transaction_session_timeout": 1000}, watched=True)
    publisher = DatabasePublisher(db)
    pages = {f"posts/{i}.html": f"<p>{i}</p>".encode() for i in range(12)}
    publisher.publish(Outputs({rel: Output(data) for rel, data in pages.items()}), [])

    def slowly(data: bytes) -> Callable[[], bytes]:
        def render() -> bytes:
            time.sleep(0.25)  # a render, 3 s in all with nothing new to send
            return data
        return render

    again = Outputs()
    for rel, data in pages.items():
        again.later(rel, slowly(data))
    again.later("posts/new.html", slowly(b"<p>new</p>"))
    assert publisher.publish(again, []).written == ["posts/new.html"]
    assert db.execute("SELECT count(*) FROM published") == [(13,)]
    db.close()


def test_upgrade_from_the_previous_version_keeps_the_state(pg_url: str, tmp_path: Path) -> None:
    """A database at the version before the latest, holding a site's state, is upgraded in place."""
    site = make_site(tmp_path)
    settings = site_settings(site)
    previous = pg.latest() - 1
    db = upgraded(pg_url, previous)
    assert pg.version(db) == previous
    # the state as the previous version wrote it: the tables it had, rows of a real build
    reference_name = pgserver.create_database()
    try:
        reference = upgraded(pgserver.database_url(reference_name))
        Builder(settings, state=PostgresStore(reference, "k")).build()
        for table in ("meta", "posts", "output_digests"):
            rows = reference.execute(f"SELECT * FROM {table}")
            db.many(f"INSERT INTO {table} VALUES ({', '.join(['%s'] * len(rows[0]))})", rows)
        expected = PostgresStore(reference, "k").load()
        reference.close()
    finally:
        pgserver.drop_database(reference_name)
    assert pg.upgrade(db) == [pg.latest()]
    store = PostgresStore(db, "k")
    assert store.load() == expected and len(expected) > 4
    result = Builder(settings, state=store, publisher=DatabasePublisher(db)).build()
    assert result.changed_paths == []  # nothing read again: the upgrade kept every record
    db.close()


# -- a web node's copy --------------------------------------------------------------------------


def requests_for(rels: list[str], etags: dict[str, str]) -> list[tuple[str, str, dict[str, str]]]:
    asked = []
    for rel in rels:
        path = "/" + rel
        asked += [("GET", path, {}), ("HEAD", path, {}), ("GET", path, {"Accept-Encoding": "gzip"}),
                  ("GET", path, {"If-None-Match": etags[rel]}), ("GET", path, {"Range": "bytes=0-9,20-29"}),
                  ("GET", path, {"If-Modified-Since": "Sun, 06 Nov 2044 08:49:37 GMT"})]
    asked += [("GET", "/", {}), ("GET", "/topics/msft-ai.rss", {}), ("GET", "/topics/azure-cloud.json", {}),
              ("GET", "/nothing.rss", {}), ("GET", "/.manifest.json", {}), ("POST", "/all.rss", {}),
              ("GET", "/all.rss.gz", {})]
    return asked


def test_a_web_node_answers_as_serve_does_from_feeds(pg_url: str, tmp_path: Path) -> None:
    site = make_site(tmp_path)
    settings = site_settings(site)
    db = upgraded(pg_url)
    Builder(settings).build()
    Builder(settings, state=PostgresStore(db, "k"), publisher=DatabasePublisher(db)).build()
    files = PublishedFiles(pg_url, tmp_path / "spool")
    files.refresh(db)
    from_disk = create_app(settings).test_client()
    from_db = create_app(settings, files=files, redirect_table=files.redirects).test_client()
    rows = database_site(db)
    assert ALIASES and len(rows) > 20
    for method, path, headers in requests_for(sorted(rows), {rel: etag for rel, (_, _, etag) in rows.items()}):
        a, b = from_disk.open(path, method=method, headers=headers), from_db.open(path, method=method, headers=headers)
        assert (a.status_code, a.data) == (b.status_code, b.data), (method, path, headers)
        skip = {"Date", "Last-Modified", "Content-Type"}  # (stamped at each build; a multipart boundary)
        same = {k: v for k, v in a.headers.items() if k not in skip}
        assert same == {k: v for k, v in b.headers.items() if k not in skip}, (method, path, headers)
        if a.status_code == 206 and "multipart" in a.headers["Content-Type"]:
            continue  # (the boundary is random)
        assert a.headers.get("Content-Type") == b.headers.get("Content-Type")
    db.close()


def test_a_web_node_follows_generations_without_notifications(pg_url: str, tmp_path: Path) -> None:
    """A notification can be lost with its connection: the periodic look finds the generation."""
    site = make_site(tmp_path)
    settings = site_settings(site)
    db = upgraded(pg_url)
    Builder(settings, state=PostgresStore(db, "k"), publisher=DatabasePublisher(db)).build()
    files = PublishedFiles(pg_url, tmp_path / "spool", check_interval=0.3).start()
    try:
        assert files.loaded.wait(10)
        old = files.get("all.rss")
        assert old is not None and files.status()["status"] == "ok"
        [(last,)] = db.execute("SELECT max(generation) FROM generations")
        with db.transaction():  # a pass published without NOTIFY
            db.execute("UPDATE published SET data = %s, etag = %s, generation = %s WHERE rel = 'all.rss'",
                       (b"<rss/>", etag_of(b"<rss/>"), last + 1))
            db.execute("DELETE FROM published WHERE rel = 'feeds.opml'")
            db.execute("INSERT INTO taken_down VALUES ('feeds.opml', %s)", (last + 1,))
            db.execute("INSERT INTO generations (generation, epoch, written, removed) VALUES (%s, 0, 1, 1)",
                       (last + 1,))
        deadline = time.monotonic() + 5
        while files.snapshot.generation != last + 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        new = files.get("all.rss")
        assert new is not None and new.data == b"<rss/>" and new.etag == etag_of(b"<rss/>")
        assert files.get("feeds.opml") is None and files.get("all.atom") is not None
    finally:
        files.stop()
        db.close()


def test_a_web_node_serves_stale_but_whole_while_postgresql_is_away(pg_url: str, tmp_path: Path) -> None:
    site = make_site(tmp_path)
    settings = site_settings(site)
    db = upgraded(pg_url)
    builder = Builder(settings, state=PostgresStore(db, "k"), publisher=DatabasePublisher(db))
    builder.build()
    with pgserver.Proxy(pg_url) as proxy:
        # (nothing kept in memory: every answer comes from the spool, on disk)
        files = PublishedFiles(proxy.url, tmp_path / "spool", check_interval=0.3, cache_bytes=0).start()
        try:
            assert files.loaded.wait(10)
            snapshot = dict(files.snapshot.entries)
            before = database_site(db)
            proxy.cut()
            retitle(site, "New")
            assert builder.build().written  # published while the node cannot see it
            deadline = time.monotonic() + 10
            while files.status()["status"] != "degraded" and time.monotonic() < deadline:
                time.sleep(0.1)
            status = files.status()
            assert status["status"] == "degraded" and "unreachable" in status["reason"]
            assert files.snapshot.entries == snapshot  # the whole old generation, nothing torn
            for rel, (data, _gz, etag) in before.items():
                got = files.get(rel)
                assert got is not None and (got.data, got.etag) == (data, etag), rel
            proxy.restore()
            [(last,)] = db.execute("SELECT max(generation) FROM generations")
            deadline = time.monotonic() + 10
            while files.snapshot.generation != last and time.monotonic() < deadline:
                time.sleep(0.1)
            assert files.status()["status"] == "ok"
            assert {rel: files.get(rel).data for rel in files.snapshot.entries} == \
                {rel: data for rel, (data, _, _) in database_site(db).items()}
        finally:
            files.stop()
    db.close()


# -- real processes: builders and web nodes ------------------------------------------------------


class Builder_:
    """`syndicator serve --role builder` in its own folder (with its own copy of the posts)."""

    def __init__(self, workdir: Path, url: str, extra: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.seeds = workdir / "seeds"
        if not self.seeds.exists():
            shutil.copytree(SEEDS, self.seeds)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATOR_")}
        env.update(SYNDICATOR_STATE_URL=url, SYNDICATOR_BASE_URL="http://feeds.example.org/",
                   SYNDICATOR_SCAN_INTERVAL="0.5", PYTHONUNBUFFERED="1")
        env.update(extra or {})
        self.log_path = workdir / "builder.log"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "syndicator", "serve", "--role", "builder",
                                          "--seeds", str(self.seeds), "--state", str(workdir / "var")],
                                         cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                return None
        return self.proc.returncode


def web_node(workdir: Path, url: str, extra: dict[str, str] | None = None) -> ServerProcess:
    return ServerProcess(workdir, seeds=None, args=["--role", "web"],
                         env={"SYNDICATOR_STATE_URL": url, "SYNDICATOR_BASE_URL": "http://feeds.example.org/",
                              **(extra or {})})


def wait_for(check, timeout: float, what: str):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout} s: {what}")


def generation(db: Database) -> int:
    return int(db.execute("SELECT coalesce(max(generation), 0) FROM generations")[0][0])


def test_a_builder_and_two_web_nodes(pg_url: str, tmp_path: Path) -> None:
    db = upgraded(pg_url)
    builder = Builder_(tmp_path / "builder", pg_url)
    nodes: list[ServerProcess] = []
    try:
        wait_for(lambda: generation(db) > 0, 60, "a first generation published")
        nodes = [web_node(tmp_path / f"web{i}", pg_url).start() for i in (1, 2)]
        rows = database_site(db)
        for rel, (data, _gz, etag) in rows.items():
            answers = [node.request("GET", "/" + rel) for node in nodes]
            for status, headers, body in answers:
                assert (status, body, headers["ETag"]) == (200, data, etag), rel
            assert answers[0][1]["Last-Modified"] == answers[1][1]["Last-Modified"]
        status, headers, _ = nodes[0].request("GET", "/all.rss", {"If-None-Match": rows["all.rss"][2]})
        assert status == 304
        status, headers, _ = nodes[1].request("GET", "/topics/msft-ai.rss")
        assert status == 404  # (no aliases here)

        saved = time.monotonic()
        retitle(builder.workdir, "Saved")
        for node in nodes:
            wait_for(lambda node=node: b"Saved " in node.request("GET", "/all.rss")[2], 10, "the edit served")
        served = time.monotonic() - saved
        assert served < 5, served
        health = [json.loads(node.request("GET", "/healthz")[2]) for node in nodes]
        assert [h["status"] for h in health] == ["ok", "ok"]
        assert health[0]["generation"] == health[1]["generation"] == generation(db)
    finally:
        for node in nodes:
            assert node.stop() == 0, node.log()
        assert builder.stop() == 0, builder.log()
        db.close()


# -- role all: the published site in feeds/ too, for nginx ---------------------------------------


def folder_matches_database(feeds: Path, db: Database) -> bool:
    """feeds/ holds exactly what is published: bytes, .gz twins, mtimes (Last-Modified)."""
    rows = {rel: (bytes(data), gz and bytes(gz), mtime) for rel, data, gz, mtime in
            db.execute("SELECT rel, data, gz, mtime_ns FROM published")}
    if published_files(feeds) != {rel: data for rel, (data, _, _) in rows.items()}:
        return False
    manifest = json.loads((feeds / ".manifest.json").read_text(encoding="utf-8"))["files"]
    for rel, (data, gz, mtime) in rows.items():
        path, twin = feeds / rel, feeds / (rel + ".gz")
        if path.stat().st_mtime_ns != mtime or twin.exists() != (gz is not None):
            return False
        if gz is not None and (gzip.decompress(twin.read_bytes()) != data or twin.stat().st_mtime_ns != mtime):
            return False
    return sorted(manifest) == sorted(rows)


def test_role_all_on_postgresql_also_writes_feeds_for_nginx(pg_url: str, tmp_path: Path) -> None:
    db = upgraded(pg_url)
    srv = ServerProcess(tmp_path / "site", env={"SYNDICATOR_STATE_URL": pg_url})
    srv.start()
    try:
        wait_for(lambda: generation(db) > 0 and folder_matches_database(srv.feeds_dir, db), 30,
                 "feeds/ written as published")
        assert len(published_files(srv.feeds_dir)) > 20
        assert (srv.feeds_dir / ".syndicator.lock").read_text().strip() == str(srv.proc.pid)  # type: ignore[union-attr]
        rows = database_site(db)
        if nginx_binary() is not None:  # contrib/nginx.conf over that folder, syndicator behind it
            with nginx_in_front(srv, tmp_path / "nginx") as nginx:
                for rel in ("all.rss", "all.atom", "index.html", "feeds.opml"):
                    assert nginx.request("GET", "/" + rel)[2] == srv.request("GET", "/" + rel)[2] == rows[rel][0]
                status, headers, body = nginx.request("GET", "/all.rss", {"Accept-Encoding": "gzip"})
                assert headers.get("Content-Encoding") == "gzip" and gzip.decompress(body) == rows["all.rss"][0]

        post = retitle(srv.workdir, "Mirrored")
        wait_for(lambda: b"Mirrored " in (srv.feeds_dir / "all.rss").read_bytes(), 15, "the edit in feeds/")
        wait_for(lambda: folder_matches_database(srv.feeds_dir, db), 15, "feeds/ as published after the edit")
        before = published_files(srv.feeds_dir)
        post.unlink()
        wait_for(lambda: published_files(srv.feeds_dir).keys() < before.keys()
                 and folder_matches_database(srv.feeds_dir, db), 15, "the post's page taken down from feeds/")
        assert srv.stop() == 0, srv.log()

        # while stopped: a file deleted by hand, a stray one the manifest lists: put right at the next start
        (srv.feeds_dir / "all.atom").unlink()
        (srv.feeds_dir / "gone.rss").write_bytes(b"<rss/>")
        manifest = srv.feeds_dir / ".manifest.json"
        manifest.write_text(json.dumps({"files": [*json.loads(manifest.read_text())["files"], "gone.rss"]}))
        unchanged = (srv.feeds_dir / "all.rss").stat().st_mtime_ns
        srv.start()
        wait_for(lambda: folder_matches_database(srv.feeds_dir, db), 30, "feeds/ put right after a restart")
        assert not (srv.feeds_dir / "gone.rss").exists()
        assert (srv.feeds_dir / "all.rss").stat().st_mtime_ns == unchanged
    finally:
        assert srv.stop() == 0, srv.log()
        db.close()


# -- election: takeover and fencing with real processes ------------------------------------------


class Load:
    """Steady GET requests against web nodes from a thread, counting the answers by status."""

    def __init__(self, nodes: list[ServerProcess], paths: list[str]) -> None:
        self.nodes, self.paths = nodes, paths
        self.statuses: dict[int, int] = {}
        self.failures: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        i = 0
        while not self.stop.is_set():
            node, path = self.nodes[i % len(self.nodes)], self.paths[i % len(self.paths)]
            i += 1
            try:
                status = node.request("GET", path, {"Accept-Encoding": "gzip"}, timeout=5)[0]
                self.statuses[status] = self.statuses.get(status, 0) + 1
            except OSError as e:
                self.failures.append(f"{path}: {e}")


def leader_of(db: Database, builders: list[Builder_]) -> Builder_:
    holder = db.execute("SELECT holder FROM leadership")[0][0]
    return next(b for b in builders if holder.endswith(f":{b.proc.pid}"))


def retitle_everywhere(builders: list[Builder_], new: str) -> None:
    """An edit reaching every builder's copy of the posts (as a sync would)."""
    for builder in builders:
        retitle(builder.workdir, new)


def served(node: ServerProcess, text: bytes) -> bool:
    return text in node.request("GET", "/all.rss")[2]


def ids_served(node: ServerProcess) -> list[str]:
    return [item["id"] for item in json.loads(node.request("GET", "/all.json")[2])["items"]]


def epochs_in_order(db: Database) -> bool:
    epochs = [e for (e,) in db.execute("SELECT epoch FROM generations ORDER BY generation")]
    return epochs == sorted(epochs)


def test_a_standby_takes_over_when_the_leader_dies(pg_url: str, tmp_path: Path) -> None:
    """kill -9 of the leader, then every session of the database dropped at once (what a
    PostgreSQL restart does to its clients): each time an edit is served within 5 s."""
    db = upgraded(pg_url)
    builders = [Builder_(tmp_path / "a", pg_url)]
    wait_for(lambda: generation(db) > 0, 60, "a first generation published")
    builders.append(Builder_(tmp_path / "b", pg_url))
    node = web_node(tmp_path / "web", pg_url).start()
    ids = ids_served(node)
    try:
        with Load([node], ["/all.rss", "/all.atom", "/", "/feeds.opml"]) as load:
            for round_ in range(2):
                time.sleep(1)  # the standby campaigning
                leader = leader_of(db, builders)
                leader.proc.kill()  # SIGKILL
                killed = time.monotonic()
                retitle_everywhere(builders, f"Killed{round_}")
                wait_for(lambda r=round_: served(node, f"Killed{r} ".encode()), 10, "the edit served after the kill")
                took = time.monotonic() - killed
                assert took < 5, (took, [b.log()[-2000:] for b in builders])
                assert leader_of(db, builders) is not leader
                builders[builders.index(leader)] = Builder_(leader.workdir, pg_url)  # back, as a standby

            time.sleep(1)
            dropped = time.monotonic()
            db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND pid <> pg_backend_pid()")
            retitle_everywhere(builders, "Dropped")
            wait_for(lambda: served(node, b"Dropped "), 15, "the edit served after every session dropped")
            took = time.monotonic() - dropped
            assert took < 5, (took, [b.log()[-2000:] for b in builders], node.log()[-2000:])
        assert load.failures == [] and not any(status >= 500 for status in load.statuses), \
            (load.statuses, load.failures[:5])
        assert sum(load.statuses.values()) > 100
        assert sorted(ids_served(node)) == sorted(ids) and len(set(ids)) == len(ids)  # each post once, same ids
        assert epochs_in_order(db)
    finally:
        assert node.stop() == 0, node.log()
        for builder in builders:
            builder.stop()
        db.close()


def test_a_standby_keeps_its_read_of_the_posts_warm(pg_url: str, tmp_path: Path) -> None:
    """The standby's copy of the posts has other mtimes than the leader's (another machine's
    clone): the records in PostgreSQL name every file as changed to it. It reads its copy while
    standing by, follows an edit, and takes over reading at most the file edited at the kill."""
    db = upgraded(pg_url)
    builders = [Builder_(tmp_path / "a", pg_url)]
    node = None
    try:
        wait_for(lambda: generation(db) > 0, 60, "a first generation published")
        shutil.copytree(SEEDS, tmp_path / "b" / "seeds", copy_function=shutil.copyfile)  # mtimes: now
        posts = len(list((tmp_path / "b" / "seeds").rglob("*.*")))
        builders.append(Builder_(tmp_path / "b", pg_url))
        standby = builders[1]
        wait_for(lambda: "kept warm" in standby.log(), 30, "the standby's warm read")
        node = web_node(tmp_path / "web", pg_url).start()
        retitle_everywhere(builders, "Followed")
        wait_for(lambda: served(node, b"Followed "), 10, "the edit served")
        wait_for(lambda: standby.log().count("kept warm") >= 2, 10, "the standby reading the edit")
        assert leader_of(db, builders) is builders[0]
        key = db.execute("SELECT value FROM meta WHERE key = 'key'")
        digests = db.execute("SELECT count(*) FROM output_digests")
        builders[0].proc.kill()
        retitle_everywhere(builders, "Killed")
        wait_for(lambda: served(node, b"Killed "), 10, "the edit served after the kill")
        wait_for(lambda: "looked at again" in standby.log(), 10, "the takeover logged")
        [line] = [line for line in standby.log().splitlines() if "looked at again" in line]
        looked, warm, now = (int(n) for n in re.findall(r"(\d+) (?:files looked|of them|read now)", line))
        assert looked >= posts - 1 and now <= 1 and warm == looked - now, line
        # builders keep their posts in folders of their own: the same key all the same, so the
        # renders cached in the state are kept (a full re-render of the site otherwise)
        assert db.execute("SELECT value FROM meta WHERE key = 'key'") == key
        assert db.execute("SELECT count(*) FROM output_digests") == digests
    finally:
        if node is not None:
            assert node.stop() == 0, node.log()
        for builder in builders:
            builder.stop()
        db.close()


def test_a_paused_leader_writes_nothing_once_a_standby_took_over(pg_url: str, tmp_path: Path) -> None:
    db = upgraded(pg_url)
    builders = [Builder_(tmp_path / "a", pg_url)]
    wait_for(lambda: generation(db) > 0, 60, "a first generation published")
    builders.append(Builder_(tmp_path / "b", pg_url))
    node = web_node(tmp_path / "web", pg_url).start()
    paused = builders[0]
    try:
        time.sleep(1)
        assert leader_of(db, builders) is paused
        [(epoch,)] = db.execute("SELECT epoch FROM leadership")
        os.kill(paused.proc.pid, signal.SIGSTOP)
        stopped = time.monotonic()
        retitle_everywhere(builders, "Paused")
        wait_for(lambda: served(node, b"Paused "), 15, "the edit served by the standby")
        assert time.monotonic() - stopped < 5
        assert leader_of(db, builders) is builders[1]
        [(taken,)] = db.execute("SELECT generation FROM generations ORDER BY generation DESC LIMIT 1")

        retitle(paused.workdir, "Stale")  # what the paused leader will try to publish when it wakes
        os.kill(paused.proc.pid, signal.SIGCONT)
        # it notices the lost lock (its session was ended) before or as its next pass is refused
        wait_for(lambda: any(w in paused.log() for w in ("lost the publisher lock", "write refused")), 10,
                 "the old leader noticing")
        time.sleep(2)
        assert not served(node, b"Stale ")
        assert {e for (e,) in db.execute("SELECT epoch FROM generations WHERE generation >= %s", (taken,))} == \
            {epoch + 1}  # every generation since the takeover is the standby's
        assert leader_of(db, builders) is builders[1]
        assert epochs_in_order(db)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(paused.proc.pid, signal.SIGCONT)
        assert node.stop() == 0, node.log()
        for builder in builders:
            builder.stop()
        db.close()


def health(node: ServerProcess) -> str:
    return str(json.loads(node.request("GET", "/healthz")[2])["status"])


def same_site_on(nodes: list[ServerProcess], db: Database) -> None:
    """Every node serves every published output with the database's bytes and ETag, and the
    same Last-Modified."""
    for rel, (data, _gz, etag) in database_site(db).items():
        answers = [node.request("GET", "/" + rel) for node in nodes]
        assert {(status, body, headers["ETag"], headers["Last-Modified"]) for status, headers, body in answers} \
            == {(200, data, etag, answers[0][1]["Last-Modified"])}, rel


def test_postgresql_restarts_under_two_builders_and_two_web_nodes(tmp_path: Path) -> None:
    """PostgreSQL (a server of the test's own) stopped and started again while two builders and
    two web nodes run under load: the nodes keep serving what they had (whole, /healthz
    degraded), the builders elect one of them again, an edit made during the outage and one
    after it are each published once, and both nodes end up serving the same bytes."""
    with pgserver.OwnServer() as server:
        url = server.url
        db = upgraded(url)
        builders = [Builder_(tmp_path / "a", url)]
        nodes: list[ServerProcess] = []
        try:
            wait_for(lambda: generation(db) > 0, 60, "a first generation published")
            builders.append(Builder_(tmp_path / "b", url))
            nodes = [web_node(tmp_path / f"web{i}", url).start() for i in (1, 2)]
            ids = ids_served(nodes[0])
            time.sleep(1)  # the standby campaigning
            [(epoch,)] = db.execute("SELECT epoch FROM leadership")
            before = generation(db)
            db.close()
            with Load(nodes, ["/all.rss", "/all.atom", "/", "/feeds.opml", "/all.json"]) as load:
                served_before = {node.port: node.request("GET", "/all.rss")[2] for node in nodes}
                server.stop()  # every session ended, the port closed
                for node in nodes:
                    wait_for(lambda node=node: health(node) == "degraded", 15, "/healthz degraded")
                    assert node.request("GET", "/healthz")[0] == 503
                retitle_everywhere(builders, "Outage")  # saved while the database is away
                time.sleep(1.5)  # passes tried, and refused by a missing server
                for node in nodes:  # the last generation loaded, whole
                    assert node.request("GET", "/all.rss")[2] == served_before[node.port]
                    assert health(node) == "degraded"
                server.start()
                for node in nodes:
                    wait_for(lambda node=node: served(node, b"Outage "), 30, "the outage's edit served")
                    wait_for(lambda node=node: health(node) == "ok", 15, "/healthz ok again")
                db = Database(url)
                [(elected, holder)] = db.execute("SELECT epoch, holder FROM leadership")
                assert elected > epoch and any(holder.endswith(f":{b.proc.pid}") for b in builders)
                retitle_everywhere(builders, "After")
                for node in nodes:
                    wait_for(lambda node=node: served(node, b"After "), 15, "the edit after the outage served")
                time.sleep(1)  # any further pass would have been published by now
            assert load.failures == [] and not any(status >= 500 for status in load.statuses), \
                (load.statuses, load.failures[:5])
            assert sum(load.statuses.values()) > 100
            # each edit published by one pass: two generations with outputs since the outage
            assert db.execute("SELECT count(*) FROM generations WHERE generation > %s AND written > 0",
                              (before,)) == [(2,)]
            assert epochs_in_order(db)
            same_site_on(nodes, db)
            for node in nodes:
                assert sorted(ids_served(node)) == sorted(ids) and len(set(ids)) == len(ids)
                assert node.request("GET", "/all.rss")[2].count(b"After ") == 1
            assert all(b.proc.poll() is None for b in builders), [b.log()[-2000:] for b in builders]
        except BaseException:
            print(server.log()[-3000:], *(b.log()[-3000:] for b in builders), *(n.log()[-3000:] for n in nodes),
                  sep="\n----\n")
            raise
        finally:
            for node in nodes:
                assert node.stop() == 0, node.log()
            for builder in builders:
                assert builder.stop() == 0, builder.log()
            db.close()


# -- a cache in front: contrib/varnish.vcl, purged by the web nodes ------------------------------


VARNISHD = shutil.which("varnishd") or "/usr/sbin/varnishd"


class Varnish:
    """varnishd in the foreground with contrib/varnish.vcl, its backends the given ports."""

    def __init__(self, workdir: Path, port: int, backends: list[int]) -> None:
        vcl = (ROOT / "contrib" / "varnish.vcl").read_text(encoding="utf-8")
        vcl = vcl.replace('"8081"', f'"{backends[0]}"').replace('"8082"', f'"{backends[1]}"')
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "site.vcl").write_text(vcl, encoding="utf-8")
        self.port = port
        self.proc = subprocess.Popen([VARNISHD, "-F", "-j", "none", "-n", str(workdir / "instance"),
                                      "-a", f"127.0.0.1:{port}", "-T", "none", "-f", str(workdir / "site.vcl"),
                                      "-s", "malloc,32m"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        self.node = ServerProcess(workdir, seeds=None, port=port)  # (its request() only)

    def get(self, path: str, headers: dict[str, str] | None = None):  # noqa: ANN201
        return self.node.request("GET", path, headers)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def test_varnish_in_front_of_two_web_nodes_is_purged_on_publish(pg_url: str, tmp_path: Path) -> None:
    assert os.path.exists(VARNISHD), "varnish is not installed (.ci/run installs it)"
    db = upgraded(pg_url)
    builder = Builder_(tmp_path / "builder", pg_url)
    cache_port = free_port()
    env = {"SYNDICATOR_STATE_URL": pg_url, "SYNDICATOR_BASE_URL": "http://feeds.example.org/",
           "SYNDICATOR_PURGE_CACHES": f"http://127.0.0.1:{cache_port}/"}
    nodes = [ServerProcess(tmp_path / f"web{i}", seeds=None, args=["--role", "web"], env=env) for i in (1, 2)]
    varnish = None
    try:
        wait_for(lambda: generation(db) > 0, 60, "a first generation published")
        for node in nodes:
            node.start()
        varnish = Varnish(tmp_path / "varnish", cache_port, [node.port for node in nodes])
        wait_for(lambda: _answers(varnish, "/healthz") == 200, 30, "varnish answering")
        status, first, body = varnish.get("/all.rss")
        for (rel,) in db.execute("SELECT rel FROM published WHERE rel LIKE '%.rss'"):
            varnish.get("/" + rel)
        status, again, body = varnish.get("/all.rss")
        assert status == 200 and len(again["X-Varnish"].split()) == 2  # the second from the cache
        assert again["ETag"] == nodes[0].request("GET", "/all.rss")[1]["ETag"]
        gz = varnish.get("/all.rss", {"Accept-Encoding": "gzip"})[1]
        assert gz["ETag"] == nodes[1].request("GET", "/all.rss", {"Accept-Encoding": "gzip"})[1]["ETag"]
        assert "max-age=300" in again["Cache-Control"]  # a reader's copy may be 5 minutes old: not the cache's

        saved = time.monotonic()
        retitle(builder.workdir, "Purged")
        wait_for(lambda: b"Purged " in varnish.get("/all.rss")[2], 10, "the cache serving the edit")
        wait_for(lambda: b"Purged " in gzip.decompress(varnish.get("/all.rss", {"Accept-Encoding": "gzip"})[2]), 10,
                 "the gzip copy too")
        assert time.monotonic() - saved < 5
        [(unchanged,)] = db.execute("SELECT rel FROM published WHERE generation = 1 AND rel LIKE '%.rss' LIMIT 1")
        hit = varnish.get("/" + unchanged)[1]  # cached before the edit, which did not change it: still cached
        assert len(hit["X-Varnish"].split()) == 2
        assert request_paths(["index.html", "topics/a b.rss"]) == ["/index.html", "/", "/topics/a%20b.rss"]
    finally:
        if varnish is not None:
            varnish.stop()
        for node in nodes:
            node.stop()
        builder.stop()
        db.close()


def _answers(varnish: Varnish, path: str) -> int:
    try:
        return varnish.get(path)[0]
    except OSError:
        return 0
