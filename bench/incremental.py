#!/usr/bin/env python3
"""One-edit incremental rebuild, in process: what the running service does after a save.

  incremental.py CONFIG EDIT_FILE [--edits 7] [--state] [--json]

Loads the settings from CONFIG, runs one Builder.build() (cold, untimed), then
--edits times: edits EDIT_FILE's title (bench/edit_post.py: new "[edit K]" prefix,
mtime moved forward) and times the pass the service runs on the watcher's event for it,
Builder.rebuild_paths([EDIT_FILE]) (--full-scan: Builder.build(), which scans the whole folder). Checks that the
edited title is in the written output. Prints one JSON object: per-edit seconds,
median, max, the cold build, and the process's peak RSS (a long-lived Builder's
memory, a lower bound for the service's). --state: with the state database of CONFIG's
state_dir, as the service has it (over a state an earlier build or serve left, the first pass is
a restart's catch-up: posts loaded from the state, only what changed rendered).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import edit_post  # noqa: E402

from syndicator.config import load_settings  # noqa: E402
from syndicator.pipeline import Builder  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("edit_file")
    ap.add_argument("--edits", type=int, default=7)
    ap.add_argument("--marker-file")
    ap.add_argument("--full-scan", action="store_true")
    ap.add_argument("--state", action="store_true")
    a = ap.parse_args(argv)
    settings = load_settings(Path(a.config))
    state = None
    if a.state:
        from syndicator.store.local import cache_key
        from syndicator.store.sqlite import FILE_NAME, SQLiteStore
        state = SQLiteStore(settings.state_dir / FILE_NAME, cache_key(settings))
    builder = Builder(settings, state=state)
    t0 = time.perf_counter()
    first = builder.build()
    cold = time.perf_counter() - t0
    times, seen = [], []
    for _ in range(a.edits):
        time.sleep(0.05)
        marker = edit_post.edit(a.edit_file, a.marker_file)
        t0 = time.perf_counter()
        res = builder.build() if a.full_scan else builder.rebuild_paths([a.edit_file])
        times.append(time.perf_counter() - t0)
        rel = os.path.relpath(a.edit_file, settings.seeds_dir)
        read = builder.reads.get(rel)
        seen.append(bool(read and read.post and read.post.title.startswith(marker)
                         and any(rel_out.startswith("topics/") for rel_out in res.written)))
    rec = {
        "cold_in_process_s": cold, "posts": first.posts_published,
        "edits_s": times, "median_s": statistics.median(times), "max_s": max(times),
        "edit_in_output": all(seen),
        "maxrss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
    print(json.dumps(rec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
