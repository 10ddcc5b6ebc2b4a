#!/usr/bin/env python3
"""Figures of a site on several machines (PostgreSQL state_url), each beside today's single machine.

  cluster_bench.py store    [--posts 10000] [--edits 5]   cold build and one-edit rebuild: SQLite + feeds/
                                                          vs PostgreSQL (Store and Publisher)
  cluster_bench.py takeover [--posts N]                   a new leader's first pass over its own copy of the
                                                          posts, with and without a warm read of it
  cluster_bench.py failover [--kills 10] [--posts N]      kill -9 the elected builder: seconds until an edit
                                                          made at the kill is served by a web node (the
                                                          standby's copy has other mtimes; --posts: a
                                                          generated site of N posts instead of seeds/)
  cluster_bench.py saved    [--edits 10]                  save -> served on both of two web nodes
  cluster_bench.py memory   [--posts N]                   a web node's RSS once it has loaded the published
                                                          site, after one GET of every published file (plain,
                                                          then gzip), and the seconds it takes to load it
                                                          (at its first start and at a restart)
  cluster_bench.py web      [--duration 8]                wrk req/s of /all.rss (gzip): one web node, two web
                                                          nodes side by side, Varnish in front of both,
                                                          and `serve` over feeds/

Each run makes its own database on SYNDICATOR_TEST_PG (default postgresql://postgres@127.0.0.1:5432/postgres)
and drops it. Prints one JSON object per measurement.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import edit_post  # noqa: E402
from gen_corpus import raw_corpus  # noqa: E402
from serve_memory import _rss_mib  # noqa: E402

from tests import pgserver  # noqa: E402
from tests.serverproc import SEEDS, ServerProcess  # noqa: E402
from tests.test_cluster import Builder_, generation, leader_of, served, wait_for, web_node  # noqa: E402


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

    seeds = raw_corpus(work / "seeds", args.posts)
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


def takeover(args: argparse.Namespace, work: Path) -> None:
    """A new leader's first pass over its own copy of the posts (other mtimes than the copy the
    published site was built from, one post edited), with and without a warm read of it: in
    this process, with a thread running as in `serve` (so nothing forks), times and CPU."""
    from syndicator.cluster import _DATA_SESSION
    from syndicator.config import load_settings
    from syndicator.pipeline import Builder
    from syndicator.pipeline.warm import WarmReads
    from syndicator.publishers.database import DatabasePublisher
    from syndicator.store.pg import Database
    from syndicator.store.postgres import PostgresStore

    corpus = _corpus(args, work) or SEEDS
    name, url = _database()
    try:
        first = load_settings(env={}, overrides={"seeds_dir": corpus, "feeds_dir": work / "f", "state_dir": work / "v"})
        db = Database(url)
        Builder(first, state=PostgresStore(db, "k"), publisher=DatabasePublisher(db)).build()
        db.close()
        running = threading.Event()
        threading.Thread(target=running.wait, daemon=True).start()
        for round_, warmed in enumerate([False, True, False, True]):
            copy = work / f"copy{round_}"
            _copy(corpus, copy, keep_mtimes=False)
            settings = load_settings(env={}, overrides={"seeds_dir": copy, "feeds_dir": work / "f",
                                                        "state_dir": work / "v"})
            warm = None
            if warmed:
                warm = WarmReads(settings)
                t0, c0 = time.perf_counter(), time.process_time()
                warm.refresh()
                warm_up = (time.perf_counter() - t0, time.process_time() - c0)
            edited = sorted(p for p in copy.iterdir() if 'title: "' in p.read_text(encoding="utf-8"))[0]
            edited.write_text(edited.read_text(encoding="utf-8").replace('title: "', f'title: "Take{round_} ', 1),
                              encoding="utf-8")
            t0, c0 = time.perf_counter(), time.process_time()
            db = Database(url, server=_DATA_SESSION, watched=True)
            builder = Builder(settings, state=PostgresStore(db, "k"), publisher=DatabasePublisher(db), warm=warm)
            result = builder.build()
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            db.close()
            print(json.dumps({"measure": "takeover", "warm": warmed, "posts": result.posts_published,
                              "read_now": builder.tracker.read_counts[0] - builder.tracker.read_counts[1],
                              "s": round(wall, 2), "cpu_s": round(cpu, 2), "written": len(result.written),
                              **({"warm_up_s": round(warm_up[0], 1), "warm_up_cpu_s": round(warm_up[1], 1)}
                                 if warmed else {})}), flush=True)
            del builder, warm
            shutil.rmtree(copy)
        running.set()
    finally:
        pgserver.drop_database(name)


@dataclass
class Cluster:
    """A database of its own, builders and web nodes (see `cluster`)."""

    work: Path
    url: str
    db: Any
    builders: list[Builder_] = field(default_factory=list)
    nodes: list[ServerProcess] = field(default_factory=list)
    #: the post file every `edit` changes (by its name in each builder's copy), and a feed showing it
    target: str = ""

    def edit(self, text: str, builders: list[Builder_] | None = None) -> None:
        """Put `text` in front of the target post's title, in each builder's copy (as a sync would)."""
        for builder in builders if builders is not None else self.builders:
            path = builder.seeds / self.target
            path.write_text(path.read_text(encoding="utf-8").replace('title: "', f'title: "{text} ', 1),
                            encoding="utf-8")

    def served(self, node: ServerProcess, text: str) -> bool:
        return served(node, f"{text} ".encode())

    def add_builder(self, workdir: Path) -> Builder_:
        builder = Builder_(workdir, self.url)
        self.builders.append(builder)
        return builder

    def warm(self, builder: Builder_, reads_before: int, timeout: float = 600) -> None:
        """Wait until `builder`, a standby, has read its whole copy of the posts again."""
        wait_for(lambda: builder.log().count("kept warm") > reads_before, timeout, "the standby's warm read")


def _copy(corpus: Path | None, dest: Path, keep_mtimes: bool) -> None:
    """A builder's own copy of the posts: another machine's clone has other mtimes."""
    shutil.copytree(corpus or SEEDS, dest, copy_function=shutil.copy2 if keep_mtimes else shutil.copyfile)


@contextlib.contextmanager
def cluster(work: Path, builders: int = 1, nodes: int = 1, corpus: Path | None = None) -> Iterator[Cluster]:
    """A database (dropped after), the first builder and its first generation, the other
    builders (standbys with copies of other mtimes) and `nodes` web nodes; all stopped after."""
    from syndicator.store.pg import Database

    name, url = _database()
    made = Cluster(work, url, Database(url))
    try:
        _copy(corpus, work / "b0" / "seeds", keep_mtimes=True)
        made.add_builder(work / "b0")
        wait_for(lambda: generation(made.db) > 0, 1200, "the first generation")
        for i in range(1, builders):
            _copy(corpus, work / f"b{i}" / "seeds", keep_mtimes=False)
            made.add_builder(work / f"b{i}")
        made.nodes = [web_node(work / f"web{i}", url).start() for i in range(1, nodes + 1)]
        made.target = _newest_post(made.nodes[0], work / "b0" / "seeds") if nodes else ""
        yield made
    finally:
        for node in made.nodes:
            node.stop()
        for builder in made.builders:
            builder.stop()
        made.db.close()
        pgserver.drop_database(name)


def _newest_post(node: ServerProcess, seeds: Path) -> str:
    """The file of the first post in /all.rss: the one its id was minted from (the id ends with
    the path), or the one that gives its id (a URL in the file)."""
    post_id = str(json.loads(node.request("GET", "/all.json")[2])["items"][0]["id"])
    minted = post_id.rsplit(":", 1)[-1]
    for path in [seeds / minted] if (seeds / minted).is_file() else sorted(seeds.rglob("*.*")):
        text = path.read_text(encoding="utf-8", errors="replace")
        if (path.name == minted or f'"{post_id}"' in text) and 'title: "' in text:
            return path.relative_to(seeds).as_posix()
    raise SystemExit(f"cannot tell the file of the newest post ({post_id})")


def _corpus(args: argparse.Namespace, work: Path) -> Path | None:
    """--posts N: a generated corpus of N posts (None: the repository's seeds/)."""
    if not args.posts_set:
        return None
    return raw_corpus(work / "corpus", args.posts)


def failover(args: argparse.Namespace, work: Path) -> None:
    corpus = _corpus(args, work)
    with cluster(work, builders=2, nodes=1, corpus=corpus) as c:
        node = c.nodes[0]
        c.warm(c.builders[1], 0)
        times, reads = [], []
        for k in range(args.kills):
            time.sleep(1)  # the standby campaigning
            leader = leader_of(c.db, c.builders)
            standby = next(b for b in c.builders if b is not leader)
            took_over = standby.log().count("looked at again")
            leader.proc.kill()
            t0 = time.monotonic()
            c.edit(f"Kill{k}")
            wait_for(lambda k=k: c.served(node, f"Kill{k}"), 120, "served after the kill")
            times.append(time.monotonic() - t0)
            wait_for(lambda s=standby, n=took_over: s.log().count("looked at again") > n, 60, "the takeover logged")
            reads.append([line for line in standby.log().splitlines() if "looked at again" in line][-1]
                         .split("taking over: ")[1])
            warmed = leader.log().count("kept warm")
            back = Builder_(leader.workdir, c.url)  # back, as a standby: it warms up again
            c.builders[c.builders.index(leader)] = back
            c.warm(back, warmed)
        cpu = [float(m.group(1)) for line in reads if (m := re.search(r"\(([\d.]+) s CPU\)", line))]
        print(json.dumps({"measure": "failover", "posts": args.posts if corpus else "seeds/", "kills": len(times),
                          "median_s": round(statistics.median(times), 2), "max_s": round(max(times), 2),
                          "all_s": [round(t, 2) for t in times],
                          "takeover_cpu_median_s": round(statistics.median(cpu), 2) if cpu else None,
                          "takeover_cpu_max_s": max(cpu) if cpu else None, "takeover_reads": reads[:3]}), flush=True)


def saved(args: argparse.Namespace, work: Path) -> None:
    with cluster(work, builders=1, nodes=2) as c:
        times = []
        for k in range(args.edits):
            time.sleep(0.7)
            t0 = time.monotonic()
            c.edit(f"Save{k}")
            for node in c.nodes:
                wait_for(lambda node=node, k=k: c.served(node, f"Save{k}"), 30, "served")
            times.append(time.monotonic() - t0)
        print(json.dumps({"measure": "save_to_served_on_both", "edits": len(times),
                          "median_s": round(statistics.median(times), 3), "max_s": round(max(times), 3)}), flush=True)


def _started(workdir: Path, url: str) -> tuple[ServerProcess, float]:
    """A web node started and its published site loaded (healthz ok); the seconds that took."""
    t0 = time.monotonic()
    node = web_node(workdir, url)
    node.startup_timeout = 600  # (a node listens once it has loaded the site: minutes at 100,000 posts)
    node.start()
    wait_for(lambda: json.loads(node.request("GET", "/healthz")[2]).get("status") == "ok", 600, "the site loaded")
    return node, time.monotonic() - t0


def memory(args: argparse.Namespace, work: Path) -> None:
    corpus = _corpus(args, work)
    with cluster(work, builders=1, nodes=0, corpus=corpus) as c:
        rels = sorted(rel for (rel,) in c.db.execute("SELECT rel FROM published"))
        [(size,)] = c.db.execute("SELECT sum(length(data)) FROM published")
        node, first = _started(work / "web1", c.url)
        c.nodes.append(node)
        record: dict[str, Any] = {"measure": "web_node_memory", "posts": args.posts if corpus else "seeds/",
                                  "outputs": len(rels), "published_mib": round(int(size) / 2**20, 1),
                                  "first_load_s": round(first, 2), "rss_loaded_mib": _rss_mib(node.proc.pid)}
        bad = 0
        for label, headers in (("plain", {}), ("gzip", {"Accept-Encoding": "gzip"})):
            for rel in rels:
                bad += node.request("GET", "/" + quote(rel), headers)[0] != 200
            record[f"rss_after_{label}_crawl_mib"] = _rss_mib(node.proc.pid)
        time.sleep(12)  # what stays once the node has idled (server.TRIM_EVERY and some)
        record["rss_idle_mib"] = _rss_mib(node.proc.pid)
        record["not_200"] = bad
        node.stop()
        c.nodes.remove(node)
        node, again = _started(work / "web1", c.url)
        c.nodes.append(node)
        record.update(restart_load_s=round(again, 2), rss_restarted_mib=_rss_mib(node.proc.pid))
        print(json.dumps(record), flush=True)


def web(args: argparse.Namespace, work: Path) -> None:
    from serve_bench import run_wrk

    from tests.serverproc import free_port
    from tests.test_cluster import VARNISHD, Varnish

    with cluster(work, builders=1, nodes=2) as c:
        single = ServerProcess(work / "single").start()
        varnish = None
        if os.path.exists(VARNISHD):
            varnish = Varnish(work / "varnish", free_port(), [node.port for node in c.nodes])
            wait_for(lambda: _answers(varnish, "/all.rss") == 200, 30, "varnish answering")
        headers = {"Accept-Encoding": "gzip"}

        def load(urls: list[str]) -> float:
            results: list[tuple[float, float]] = []

            def one(url: str) -> None:
                results.append(run_wrk(url, headers, args.duration, 32, work))

            threads = [threading.Thread(target=one, args=(url,)) for url in urls]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return sum(r[0] for r in results)

        rounds: list[tuple[str, list[str]]] = [("serve over feeds/", [single.url("/all.rss")]),
                                               ("one web node", [c.nodes[0].url("/all.rss")]),
                                               ("two web nodes", [node.url("/all.rss") for node in c.nodes])]
        if varnish is not None:
            rounds.append(("varnish in front of two web nodes", [f"http://127.0.0.1:{varnish.port}/all.rss"]))
        try:
            for label, urls in [*rounds, *reversed(rounds)]:
                print(json.dumps({"measure": "web", "what": label, "req_s": round(load(urls))}), flush=True)
        finally:
            single.stop()
            if varnish is not None:
                varnish.stop()


def _answers(varnish: Any, path: str) -> int:
    try:
        return int(varnish.get(path)[0])
    except OSError:
        return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["store", "takeover", "failover", "saved", "memory", "web"])
    ap.add_argument("--posts", type=int, default=None)
    ap.add_argument("--edits", type=int, default=5)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--duration", type=int, default=8)
    args = ap.parse_args(argv)
    args.posts_set = args.posts is not None
    if args.posts is None:
        args.posts = 10000
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp:
        run = {"store": store, "takeover": takeover, "failover": failover, "saved": saved, "memory": memory,
               "web": web}[args.what]
        run(args, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
