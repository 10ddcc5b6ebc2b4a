#!/usr/bin/env python3
"""Would a 2-process parallel read help? Prototype over syndicator.build.read_one.

  parallel_read.py SEEDS_DIR [--jobs 2] [--chunk 0] [--repeat 3]

Times, for the same scan: (1) read_one over every file in this process (what
Builder.refresh does); (2) a ProcessPoolExecutor (fork) mapping read_one over chunks of
paths, results (ReadResult with its Post) pickled back to the parent; (3) the same with
pickling of the results measured separately. Checks both give equal ReadResults.
Medians of --repeat. Nothing in syndicator/ is changed.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import pickle
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from syndicator import build, sources
from syndicator.config import load_settings

_S = None


def _init(seeds: str) -> None:
    global _S
    _S = load_settings(None, env={}, overrides={"seeds_dir": Path(seeds), "base_url": "https://feeds.example.org/"})


def _chunk(items: list[tuple[str, tuple[int, int]]]) -> list[tuple[str, build.ReadResult]]:
    root = _S.seeds_dir
    sites = sources.SiteConfigs(root)
    return [(rel, build.read_one(root, rel, fp, _S, sites)) for rel, fp in items]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("seeds")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--chunk", type=int, default=0, help="paths per task (0: N / (jobs*8))")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--gc-freeze", action="store_true", help="gc.freeze() + high gen-0 threshold first")
    a = ap.parse_args(argv)
    _init(a.seeds)
    if a.gc_freeze:
        import gc
        gc.freeze()
        gc.set_threshold(100_000, 50, 100)
    scanned = sorted((rel, (st.st_size, st.st_mtime_ns)) for rel, st in sources.scan(_S.seeds_dir))
    n = len(scanned)
    chunk = a.chunk or max(1, n // (a.jobs * 8))
    parts = [scanned[i:i + chunk] for i in range(0, n, chunk)]

    seq, par, pick, unpick = [], [], [], []
    ref = par_res = None
    for _ in range(a.repeat):
        ref = par_res = None  # nothing big inherited by the forked workers
        t0 = time.perf_counter()
        with ProcessPoolExecutor(a.jobs, mp_context=mp.get_context("fork"), initializer=_init,
                                 initargs=(a.seeds,)) as ex:
            par_res = [x for part in ex.map(_chunk, parts) for x in part]
        par.append(time.perf_counter() - t0)
        par_res_keep = par_res
        par_res = None
        t0 = time.perf_counter()
        ref = _chunk(scanned)
        seq.append(time.perf_counter() - t0)
        par_res = par_res_keep
        t0 = time.perf_counter()
        blob = pickle.dumps(ref, protocol=pickle.HIGHEST_PROTOCOL)
        pick.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        pickle.loads(blob)
        unpick.append(time.perf_counter() - t0)
    same = [r for _, r in ref] == [r for _, r in par_res]
    s, p = statistics.median(seq), statistics.median(par)
    print(f"{n} files, {os.cpu_count()} CPUs, jobs={a.jobs}, chunk={chunk}: "
          f"sequential read_one {s:.2f} s; ProcessPool {p:.2f} s (speed-up x{s / p:.2f}); "
          f"pickling all results {statistics.median(pick):.2f} s (workers), unpickling "
          f"{statistics.median(unpick):.2f} s (parent, serial) "
          f"({len(blob) / 1e6:.1f} MB); results equal: {same}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
