"""A web node keeps the published bytes in its spool folder, not in memory: the folder's own
rules (names by ETag, removal after a grace), then a real site in PostgreSQL loaded by
`PublishedFiles`, and real web node processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

from syndicator.compress import gunzip
from syndicator.pipeline import Builder
from syndicator.publishers.database import DatabasePublisher
from syndicator.store.pg import Database
from syndicator.store.postgres import PostgresStore
from syndicator.web.published import PublishedFiles
from syndicator.web.spool import GRACE, Spool

from . import pgserver
from .conftest import SEEDS, site_settings
from .serverproc import ServerProcess, free_port
from .test_cluster import database_site, retitle, upgraded
from .test_file_cache import _posts

pg_url = pgserver.pg_url  # the fixture: a database of the test's own


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_name_no_output_uses_goes_only_after_the_grace(tmp_path: Path) -> None:
    clock = Clock()
    spool = Spool(tmp_path / "spool", clock)
    spool.put("aa", b"first", b"gz of first")
    spool.put("bb", b"second", None)
    spool.use("aa")
    spool.use("aa")  # two outputs with the same bytes
    spool.use("bb")
    assert spool.has("aa", 5, twin=True) and spool.has("bb", 6, twin=False)
    assert not spool.has("bb", 6, twin=True) and not spool.has("aa", 4, twin=False)
    spool.release("aa")
    spool.release("bb")
    clock.now += GRACE * 2
    assert spool.sweep() == 1  # bb; aa is still used once
    assert not (tmp_path / "spool" / "bb").exists() and spool.read("aa") == b"first"
    spool.release("aa")
    clock.now += GRACE - 1
    assert spool.sweep() == 0 and spool.read("aa.gz") == b"gz of first"  # (a request may still read it)
    spool.use("aa")  # named again before the grace ran out: it stays
    clock.now += GRACE * 2
    assert spool.sweep() == 0 and spool.read("aa") == b"first"


def test_a_spool_opened_again_knows_its_files_and_drops_torn_writes(tmp_path: Path) -> None:
    clock = Clock()
    Spool(tmp_path, clock).put("cc", b"bytes", b"gz")
    (tmp_path / ".tmp-dd").write_bytes(b"half")  # a write a kill cut short
    again = Spool(tmp_path, clock)
    assert again.has("cc", 5, twin=True) and not (tmp_path / ".tmp-dd").exists()
    again.reset()  # a whole generation named again; cc is not in it
    clock.now += GRACE
    assert again.sweep() == 2 and list(tmp_path.iterdir()) == []


def _published_site(pg_url: str, tmp_path: Path, posts: int | None = None) -> tuple[Path, Builder, Database]:
    """A site (seeds/, or `posts` generated posts) built into the database at `pg_url`."""
    site = tmp_path / "site"
    if posts is None:
        shutil.copytree(SEEDS, site / "seeds")
    else:
        _posts(site / "seeds", posts)
    db = upgraded(pg_url)
    builder = Builder(site_settings(site), state=PostgresStore(db, "k"), publisher=DatabasePublisher(db))
    builder.build()
    return site, builder, db


def test_a_web_node_holds_what_it_served_lately_not_the_whole_site(pg_url: str, tmp_path: Path) -> None:
    _site, _builder, db = _published_site(pg_url, tmp_path, posts=1200)
    site = database_site(db)
    published = sum(len(data) + len(gz or b"") for data, gz, _ in site.values())
    assert published > 24 << 20, published
    tracemalloc.start()
    try:
        files = PublishedFiles(pg_url, tmp_path / "spool", cache_bytes=1 << 20)
        files.refresh(db)
        loaded = tracemalloc.get_traced_memory()[0]
        for rel, (data, gz, etag) in sorted(site.items()):  # every output, as a crawler asks
            got = files.get(rel)
            assert got is not None and got.data == data and got.etag == etag, rel
            assert gunzip(got.gz) == data and (gz is None or got.gz == gz), rel
        held, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # all in memory, a web node held the published bytes and their gzip twins: more than `published`
    # (what else the test process allocates meanwhile counts too: the bounds leave room for it)
    assert loaded < published / 4, (loaded, published)  # 0.8 MB alone; before the spool 37.7 MB
    assert held < (1 << 20) + published / 4, (held, published)
    assert peak < published / 2, (peak, published)  # nor all at once while loading (6.4 MB alone)
    assert 0 < files.size <= 1 << 20
    assert len(files.spool) >= len({etag for _, _, etag in site.values()})


def test_a_restarted_node_fetches_only_what_changed_meanwhile(pg_url: str, tmp_path: Path) -> None:
    site, builder, db = _published_site(pg_url, tmp_path)
    spool = tmp_path / "spool"
    PublishedFiles(pg_url, spool).refresh(db)
    before = {p.name: p.stat().st_ino for p in spool.iterdir()}
    retitle(site, "Meanwhile")
    builder.build()
    files = PublishedFiles(pg_url, spool)  # the node again, over the spool it left
    files.refresh(db)
    after = {p.name: p.stat().st_ino for p in spool.iterdir()}
    kept = {name for name in before if after.get(name) == before[name]}
    fetched = set(after) - set(before)
    assert fetched and len(kept) > len(fetched)  # the new bytes only; the rest was not written again
    for rel, (data, _gz, _etag) in database_site(db).items():
        got = files.get(rel)
        assert got is not None and got.data == data, rel
    assert b"Meanwhile " in files.get("all.rss").data  # type: ignore[union-attr]


def test_two_web_nodes_cannot_share_a_spool(pg_url: str, tmp_path: Path) -> None:
    _published_site(pg_url, tmp_path)
    env = {"SYNDICATOR_STATE_URL": pg_url, "SYNDICATOR_BASE_URL": "http://feeds.example.org/"}
    with ServerProcess(tmp_path / "node", seeds=None, args=["--role", "web"], env=env) as first:
        second = subprocess.run([sys.executable, "-m", "syndicator", "serve", "--role", "web", "--port", str(free_port()),
                                 "--state", str(first.state_dir)], cwd=first.workdir, capture_output=True,
                                text=True, timeout=60,
                                env={**{k: v for k, v in os.environ.items() if not k.startswith("SYNDICATOR_")},
                                     **env})
        assert first.request("GET", "/all.rss")[0] == 200  # the first node is unharmed
    assert second.returncode != 0
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1 and "published" in lines[0] and "already running" in lines[0], second.stderr


def test_bytes_cleared_from_the_spool_by_hand_are_fetched_again(pg_url: str, tmp_path: Path) -> None:
    _site, _builder, db = _published_site(pg_url, tmp_path)
    files = PublishedFiles(pg_url, tmp_path / "spool", cache_bytes=0)
    files.refresh(db)
    for path in (tmp_path / "spool").iterdir():  # a clean-up of the folder, or tmpwatch
        path.unlink()
    for rel, (data, gz, etag) in database_site(db).items():
        got = files.get(rel)
        assert got is not None and (got.data, got.etag) == (data, etag), rel
        assert gz is None or got.gz == gz, rel
    assert files.get("all.rss") is not None and (tmp_path / "spool" / files.snapshot.entries["all.rss"].name).exists()


def test_a_spool_that_cannot_be_written_leaves_the_node_on_its_whole_generation(pg_url: str, tmp_path: Path) -> None:
    site, builder, db = _published_site(pg_url, tmp_path)
    spool = tmp_path / "spool"
    with pgserver.Proxy(pg_url) as proxy:
        files = PublishedFiles(proxy.url, spool, check_interval=0.3, cache_bytes=0).start()
        try:
            assert files.loaded.wait(10)
            old = {rel: files.get(rel).data for rel in files.snapshot.entries}  # type: ignore[union-attr]
            held = files.snapshot.generation
            proxy.cut()
            retitle(site, "Blocked")
            builder.build()
            [(etag,)] = db.execute("SELECT etag FROM published WHERE rel = 'all.rss'")
            (spool / f".tmp-{etag.strip(chr(34))}").mkdir()  # its write fails (as on a full disk)
            proxy.restore()
            deadline = time.monotonic() + 10
            while "cannot write" not in (files.status()["reason"] or "") and time.monotonic() < deadline:
                time.sleep(0.1)
            status = files.status()
            assert status["status"] == "degraded" and str(spool) in status["reason"], status
            assert files.snapshot.generation == held
            for rel, data in old.items():  # every output as it was, nothing torn
                got = files.get(rel)
                assert got is not None and got.data == data, rel
            (spool / f".tmp-{etag.strip(chr(34))}").rmdir()
            deadline = time.monotonic() + 10
            while files.status()["status"] != "ok" and time.monotonic() < deadline:
                time.sleep(0.1)
            assert files.status()["status"] == "ok" and files.snapshot.generation != held
            assert b"Blocked " in files.get("all.rss").data  # type: ignore[union-attr]
        finally:
            files.stop()


def _spawned_node(workdir: Path, url: str) -> ServerProcess:
    """A web node's process, not waited for (`ServerProcess.start` waits until it has loaded)."""
    node = ServerProcess(workdir, seeds=None, args=["--role", "web"],
                         env={"SYNDICATOR_STATE_URL": url, "SYNDICATOR_BASE_URL": "http://feeds.example.org/"})
    node.port = free_port()
    with open(node.log_path, "ab") as log:
        node.proc = subprocess.Popen(node.command(), cwd=node.workdir, env=node.environment(),
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return node


def _starting(node: ServerProcess) -> dict[str, object]:
    """What a node that has not loaded the site answers: /healthz 503 `starting` (its document,
    returned) within 20 s of its start, and a file 503 with Retry-After."""
    deadline = time.monotonic() + 20
    health = None
    while health is None and time.monotonic() < deadline:
        try:
            health = node.request("GET", "/healthz", timeout=2)
        except OSError:
            time.sleep(0.1)
    assert health is not None and health[0] == 503, (health, node.log())
    doc: dict[str, object] = json.loads(health[2])
    assert doc["status"] == "starting", doc
    status, headers, _ = node.request("GET", "/all.rss")
    assert status == 503 and headers["Retry-After"], status
    return doc


def _serving(node: ServerProcess, db: Database) -> None:
    """Within 20 s: /healthz 200, and /all.rss with the database's bytes."""
    deadline = time.monotonic() + 20
    while node.request("GET", "/healthz")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    status, _, body = node.request("GET", "/all.rss")
    assert status == 200 and body == database_site(db)["all.rss"][0]


def test_a_web_node_listens_while_it_loads(pg_url: str, tmp_path: Path) -> None:
    """A node whose first load takes long (22 s at 100,000 posts; here the table is locked until
    the test lets go) answers at once: /healthz 503 `starting`, a file 503 with Retry-After (a
    load balancer sends it nobody, a reader comes back), then the site."""
    _published_site(pg_url, tmp_path)
    db = upgraded(pg_url)
    blocker = Database(pg_url)
    node: ServerProcess | None = None
    try:
        with blocker.transaction():
            blocker.execute("LOCK TABLE published IN ACCESS EXCLUSIVE MODE")
            node = _spawned_node(tmp_path / "node", pg_url)
            _starting(node)
        _serving(node, db)
    finally:
        assert node is None or node.stop() == 0, node.log()
        blocker.close()
        db.close()


def test_a_web_node_started_before_its_database_waits_for_it(pg_url: str, tmp_path: Path) -> None:
    """An orchestrator starts the database and the nodes at once: a web node that cannot reach
    PostgreSQL at its start listens and says why (503 `starting`), then serves once it can."""
    _published_site(pg_url, tmp_path)
    db = upgraded(pg_url)
    with pgserver.Proxy(pg_url) as proxy:
        proxy.cut()
        node = _spawned_node(tmp_path / "node", proxy.url)
        try:
            doc = _starting(node)
            assert "unreachable" in str(doc["reason"]), doc
            proxy.restore()
            _serving(node, db)
        finally:
            assert node.stop() == 0, node.log()
            db.close()
    assert "Traceback" not in node.log()
