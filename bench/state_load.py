"""Restart cost of the state database: load every record, then a pass over an unchanged folder.

    python bench/state_load.py SEEDS STATE_DIR [--runs 5]

Builds SEEDS once with a state database in STATE_DIR (output beside it) when there is none,
then, each run in a fresh process (as a restart is), times `SQLiteStore.load()` alone and
`Builder(...).build()` of the unchanged folder (load included); prints the medians and the
database size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

KEY = "bench"


def _settings(seeds: Path, state_dir: Path):  # type: ignore[no-untyped-def]
    from syndicator.config import load_settings

    return load_settings(env={}, overrides={"seeds_dir": seeds, "feeds_dir": state_dir.parent / "feeds",
                                            "state_dir": state_dir})


def one_run(seeds: Path, state_dir: Path) -> dict[str, float]:
    from syndicator.pipeline import Builder
    from syndicator.store.sqlite import FILE_NAME, SQLiteStore

    settings = _settings(seeds, state_dir)
    started = time.perf_counter()
    store = SQLiteStore(state_dir / FILE_NAME, KEY)
    records = store.load()
    loaded = time.perf_counter() - started
    store.close()
    started = time.perf_counter()
    store = SQLiteStore(state_dir / FILE_NAME, KEY)
    result = Builder(settings, state=store).build()
    restarted = time.perf_counter() - started
    assert not result.changed_paths and not result.written, "the folder changed since the state was built"
    return {"records": len(records), "load_s": loaded, "restart_s": restarted}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("seeds", type=Path)
    parser.add_argument("state_dir", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one_run(args.seeds, args.state_dir)))
        return
    from syndicator.pipeline import Builder
    from syndicator.store.sqlite import FILE_NAME, SQLiteStore

    db = args.state_dir / FILE_NAME
    if not db.exists():
        started = time.perf_counter()
        Builder(_settings(args.seeds, args.state_dir), state=SQLiteStore(db, KEY)).build()
        print(f"built the state in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    runs = [json.loads(subprocess.run([sys.executable, __file__, str(args.seeds), str(args.state_dir), "--one"],
                                      check=True, capture_output=True, text=True).stdout)
            for _ in range(args.runs)]
    print(json.dumps({
        "records": runs[0]["records"],
        "db_mib": round(db.stat().st_size / 2**20, 1),
        "load_s": round(statistics.median(r["load_s"] for r in runs), 3),
        "restart_s": round(statistics.median(r["restart_s"] for r in runs), 3),
        "runs": args.runs,
    }))


if __name__ == "__main__":
    main()
