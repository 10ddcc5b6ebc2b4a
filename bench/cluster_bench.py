#!/usr/bin/env python3
"""Figures of a site on several machines (PostgreSQL state_url), each beside today's single machine.

  cluster_bench.py store    [--posts 10000] [--edits 5]   cold build and one-edit rebuild: SQLite + feeds/
                                                          vs PostgreSQL (Store and Publisher)
  cluster_bench.py failover [--kills 10]                  kill -9 the elected builder: seconds until an edit
                                                          made at the kill is served by a web node
  cluster_bench.py saved    [--edits 10]                  save -> served on both of two web nodes
  cluster_bench.py web      [--duration 8]                wrk req/s of /all.rss (gzip): one web node, two web
                                                          nodes side by side, and `serve` over feeds/

Each run makes its own database on SYNDICATOR_TEST_PG (default postgresql://postgres@127.0.0.1:5432/postgres)
and drops it. Prints one JSON object per measurement.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import edit_post  # noqa: E402

from tests import pgserver  # noqa: E402
from tests.serverproc import ServerProcess  # noqa: E402
from tests.test_cluster import Builder_, generation, leader_of, retitle, served, wait_for, web_node  # noqa: E402


def _database() -> tuple[str, str]:
    from syndicator.store import pg

    name = pgserver.create_database()
    url = pgserver.database_url(name)
    db = pg.Database(url)
    pg.upgrade(db)
    db.close()
    return name, url


def store(args: argparse.Namespace, work: Path) -> None:
    from syndicator.config import load_settings
    from syndicator.pipeline import Builder
    from syndicator.publishers.database import DatabasePublisher
    from syndicator.store.pg import Database
    from syndicator.store.postgres import PostgresStore
    from syndicator.store.sqlite import FILE_NAME, SQLiteStore

    seeds = work / "seeds"
    subprocess.run([sys.executable, str(ROOT / "bench" / "gen_corpus.py"), "-n", str(args.posts), "-o", str(seeds)],
                   check=True, capture_output=True)
    manifest = json.loads((work / "seeds.manifest.json").read_text())
    edit_file = seeds / manifest["edit_target"]["paths"]["raw"]
    name, url = _database()
    try:
        for kind in ("sqlite", "postgresql", "sqlite", "postgresql"):
            settings = load_settings(env={}, overrides={"seeds_dir": seeds, "feeds_dir": work / f"feeds-{kind}",
                                                        "state_dir": work / f"var-{kind}"})
            shutil.rmtree(work / f"feeds-{kind}", ignore_errors=True)
            shutil.rmtree(work / f"var-{kind}", ignore_errors=True)
            if kind == "sqlite":
                builder = Builder(settings, state=SQLiteStore(settings.state_dir / FILE_NAME, "k"))
            else:
                db = Database(url)
                for table in ("posts", "output_digests", "meta", "published", "taken_down", "generations", "site"):
                    db.execute(f"DELETE FROM {table}")
                builder = Builder(settings, state=PostgresStore(db, "k"), publisher=DatabasePublisher(db))
            t0 = time.perf_counter()
            first = builder.build()
            cold = time.perf_counter() - t0
            edits = []
            for _ in range(args.edits):
                edit_post.edit(str(edit_file))
                t0 = time.perf_counter()
                result = builder.rebuild_paths([str(edit_file.relative_to(seeds))])
                edits.append(time.perf_counter() - t0)
                assert result.written, "the edit wrote nothing"
            print(json.dumps({"measure": "store", "backend": kind, "posts": first.posts_published,
                              "cold_s": round(cold, 2), "edit_median_s": round(statistics.median(edits), 3),
                              "edit_max_s": round(max(edits), 3)}), flush=True)
            builder.state.close()
    finally:
        pgserver.drop_database(name)


def failover(args: argparse.Namespace, work: Path) -> None:
    from syndicator.store.pg import Database

    name, url = _database()
    db = Database(url)
    builders = [Builder_(work / "a", url)]
    node = None
    try:
        wait_for(lambda: generation(db) > 0, 60, "first generation")
        builders.append(Builder_(work / "b", url))
        node = web_node(work / "web", url).start()
        times = []
        for k in range(args.kills):
            time.sleep(1.5)  # the killed one is back as a standby, campaigning
            leader = leader_of(db, builders)
            leader.proc.kill()
            t0 = time.monotonic()
            for b in builders:
                retitle(b.workdir, f"Kill{k}")
            wait_for(lambda k=k: served(node, f"Kill{k} ".encode()), 30, "served after the kill")
            times.append(time.monotonic() - t0)
            builders[builders.index(leader)] = Builder_(leader.workdir, url)
        print(json.dumps({"measure": "failover", "kills": len(times), "median_s": round(statistics.median(times), 2),
                          "max_s": round(max(times), 2), "all_s": [round(t, 2) for t in times]}), flush=True)
    finally:
        if node is not None:
            node.stop()
        for b in builders:
            b.stop()
        db.close()
        pgserver.drop_database(name)


def saved(args: argparse.Namespace, work: Path) -> None:
    from syndicator.store.pg import Database

    name, url = _database()
    db = Database(url)
    builder = Builder_(work / "a", url)
    nodes: list[ServerProcess] = []
    try:
        wait_for(lambda: generation(db) > 0, 60, "first generation")
        nodes = [web_node(work / f"web{i}", url).start() for i in (1, 2)]
        times = []
        for k in range(args.edits):
            time.sleep(0.7)
            t0 = time.monotonic()
            retitle(builder.workdir, f"Save{k}")
            for node in nodes:
                wait_for(lambda node=node, k=k: served(node, f"Save{k} ".encode()), 30, "served")
            times.append(time.monotonic() - t0)
        print(json.dumps({"measure": "save_to_served_on_both", "edits": len(times),
                          "median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3)}), flush=True)
    finally:
        for node in nodes:
            node.stop()
        builder.stop()
        db.close()
        pgserver.drop_database(name)


def web(args: argparse.Namespace, work: Path) -> None:
    from serve_bench import run_wrk

    from syndicator.store.pg import Database

    name, url = _database()
    db = Database(url)
    builder = Builder_(work / "a", url)
    nodes: list[ServerProcess] = []
    try:
        wait_for(lambda: generation(db) > 0, 60, "first generation")
        nodes = [web_node(work / f"web{i}", url).start() for i in (1, 2)]
        single = ServerProcess(work / "single").start()
        headers = {"Accept-Encoding": "gzip"}

        def load(targets: list[ServerProcess]) -> float:
            results: list[tuple[float, float]] = []

            def one(t: ServerProcess) -> None:
                results.append(run_wrk(t.url("/all.rss"), headers, args.duration, 32, work))

            threads = [threading.Thread(target=one, args=(t,)) for t in targets]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return sum(r[0] for r in results)

        for label, targets in (("serve over feeds/", [single]), ("one web node", nodes[:1]),
                               ("two web nodes", nodes), ("one web node", nodes[:1]), ("two web nodes", nodes),
                               ("serve over feeds/", [single])):
            print(json.dumps({"measure": "web", "what": label, "req_s": round(load(targets))}), flush=True)
        single.stop()
    finally:
        for node in nodes:
            node.stop()
        builder.stop()
        db.close()
        pgserver.drop_database(name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["store", "failover", "saved", "web"])
    ap.add_argument("--posts", type=int, default=10000)
    ap.add_argument("--edits", type=int, default=5)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--duration", type=int, default=8)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp:
        {"store": store, "failover": failover, "saved": saved, "web": web}[args.what](args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
