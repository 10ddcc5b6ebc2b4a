#!/usr/bin/env python3
"""What RFC 5005 archive pages cost, side by side with the same code making none.

  archive_cost.py SEEDS EDIT_FILE [--rounds 5] [--work DIR]

Two variants over the same folder, each with its own feeds folder and SQLite state:
"archives" (as shipped) and "none" (the same code with `OutputPlanner._archive` planning no
page: every feed says fh:complete). In this process:

  cold        Builder.build() into an empty feeds folder with a fresh state
  restart     a new Builder over the same state and feeds, and its first pass (what `serve`
              does after a restart: state loaded, then the catch-up pass; nothing changed)
  one edit    Builder.rebuild_paths([EDIT_FILE]) after editing its title (bench/edit_post.py)

Restarts (each followed by one edit) alternate between the variants, --rounds times each, so
that load from other processes falls on both alike, with one Builder in memory at a time; wall
and CPU (process) seconds are both reported, as medians, with the ratios archives / none.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import edit_post  # noqa: E402

from syndicator import websub  # noqa: E402
from syndicator.config import Settings, load_settings  # noqa: E402
from syndicator.model import Links  # noqa: E402
from syndicator.pipeline import Builder  # noqa: E402
from syndicator.pipeline.plan import OutputPlanner  # noqa: E402
from syndicator.store.sqlite import FILE_NAME, SQLiteStore  # noqa: E402

SHIPPED = OutputPlanner._archive
VARIANTS = ("none", "archives")


def no_archive(self, plan, planner, stem, feed, changed):  # type: ignore[no-untyped-def]
    return Links(complete=True, hubs=websub.advertised(self.settings)) if feed is not None else Links()


def use(variant: str) -> None:
    OutputPlanner._archive = SHIPPED if variant == "archives" else no_archive  # type: ignore[method-assign]


def timed(fn):  # type: ignore[no-untyped-def]
    w, c = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - w, time.process_time() - c


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("seeds", type=Path)
    ap.add_argument("edit_file")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--work", type=Path)
    a = ap.parse_args(argv)
    work = a.work or Path(tempfile.mkdtemp(prefix="archive-cost-"))
    seeds = a.seeds.resolve()
    rel = os.path.relpath(a.edit_file, seeds)
    settings: dict[str, Settings] = {}
    rows: dict[str, dict] = {}
    builders: dict[str, Builder] = {}
    for v in VARIANTS:
        use(v)
        shutil.rmtree(work / v, ignore_errors=True)
        s = settings[v] = load_settings(env={}, overrides={
            "seeds_dir": seeds, "feeds_dir": work / v / "feeds", "state_dir": work / v / "var",
            "base_url": "https://feeds.example.org/"})
        builder = Builder(s, state=SQLiteStore(s.state_dir / FILE_NAME, "bench"), settle=True)
        cold, wall, _ = timed(builder.build)
        builder.state.close()
        del builder
        rows[v] = {"variant": v, "posts": cold.posts_published, "cold_s": round(wall, 2),
                   "files": sum(1 for p in (work / v / "feeds").rglob("*") if p.is_file()),
                   "restart": [], "edit": []}
    for _ in range(a.rounds):
        for v in VARIANTS:
            use(v)
            s = settings[v]
            for b in builders.values():
                b.state.close()
            builders.clear()
            gc.collect()  # one Builder in memory at a time, as in `serve`

            def restart(s: Settings = s) -> tuple[Builder, int]:
                b = Builder(s, state=SQLiteStore(s.state_dir / FILE_NAME, "bench"), settle=True)
                return b, len(b.build().written)

            (builders[v], written), wall, cpu = timed(restart)
            rows[v]["restart"].append((wall, cpu))
            rows[v]["restart_written"] = max(rows[v].get("restart_written", 0), written)
            time.sleep(0.05)
            edit_post.edit(a.edit_file)
            _, wall, cpu = timed(lambda v=v: builders[v].rebuild_paths([rel]))
            rows[v]["edit"].append((wall, cpu))
    for b in builders.values():
        b.state.close()
    for v in VARIANTS:
        for what in ("restart", "edit"):
            runs = rows[v].pop(what)
            rows[v][f"{what}_wall_s"] = round(statistics.median(w for w, _ in runs), 4)
            rows[v][f"{what}_cpu_s"] = round(statistics.median(c for _, c in runs), 4)
        print(json.dumps(rows[v]))
    keys = ("cold_s", "restart_wall_s", "restart_cpu_s", "edit_wall_s", "edit_cpu_s")
    print(json.dumps({"archives_over_none": {k: round(rows["archives"][k] / rows["none"][k], 2) for k in keys}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
