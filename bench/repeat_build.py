#!/usr/bin/env python3
"""Repeat `syndicator build` over a folder it built before, with its state: unchanged, and after
one post's title changes (bench/edit_post.py).

    python bench/repeat_build.py SEEDS EDIT_FILE OUT STATE [--runs 5] [--profile FILE]

Builds SEEDS into OUT with the state in STATE once when STATE has no state file yet (untimed),
then runs in rounds: `syndicator build` of the unchanged folder, then an edit of EDIT_FILE and
`syndicator build` again, each a process of its own as a user runs it. Prints one JSON object:
median and min of wall and CPU seconds (user + system of the process and its children) for
each kind, the peak RSS, and whether every edit's title was in the written topic feeds. CPU
time is what to compare on a loaded machine. `--profile FILE`: one more edit, run under
cProfile, its stats written to FILE (`python -m pstats FILE`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import edit_post  # noqa: E402

BASE_URL = "https://example.org/"


def _command(seeds: Path, out: Path, state: Path) -> list[str]:
    return [sys.executable, "-m", "syndicator", "build", "--seeds", str(seeds), "--out", str(out),
            "--state", str(state), "--base-url", BASE_URL, "-q"]


def timed(cmd: list[str]) -> dict[str, float]:
    """Wall and CPU seconds and peak RSS (MiB) of one process (and its children)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    err = proc.stderr.read().decode() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(cmd)} failed: {err.strip()}")
    return {"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_mib": usage.ru_maxrss / 1024}


def _summary(runs: list[dict[str, float]]) -> dict[str, float]:
    return {
        "wall_median_s": round(statistics.median(r["wall_s"] for r in runs), 3),
        "wall_min_s": round(min(r["wall_s"] for r in runs), 3),
        "cpu_median_s": round(statistics.median(r["cpu_s"] for r in runs), 3),
        "cpu_min_s": round(min(r["cpu_s"] for r in runs), 3),
        "maxrss_mib": round(max(r["maxrss_mib"] for r in runs), 1),
    }


def compile_package() -> None:
    """Byte-compile the package as `pip install` does for a regular install (as run.py does):
    an editable install run with PYTHONDONTWRITEBYTECODE set (common in containers) compiles
    every module it imports again in each process, 0.1-0.4 s of each timed `build`."""
    subprocess.run([sys.executable, "-c", "import compileall, os, syndicator; "
                    "compileall.compile_dir(os.path.dirname(syndicator.__file__), quiet=1)"], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("seeds", type=Path)
    parser.add_argument("edit_file", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("state", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()
    cmd = _command(args.seeds, args.out, args.state)
    compile_package()
    cold = None
    if not (args.state / "state.sqlite3").exists():
        cold = timed(cmd)
        print(f"cold build with state: {cold['wall_s']:.1f} s wall, {cold['cpu_s']:.1f} s CPU", file=sys.stderr)
    timed(cmd)  # the build after a cold one may still tidy up: not a round
    unchanged, edited, seen = [], [], []
    for _ in range(args.runs):
        unchanged.append(timed(cmd))
        time.sleep(0.05)
        marker = edit_post.edit(str(args.edit_file))
        edited.append(timed(cmd))
        topics = args.out / "topics"
        seen.append(any(marker.encode() in p.read_bytes() for p in topics.glob("*.rss")))
    if args.profile:
        edit_post.edit(str(args.edit_file))
        subprocess.run([sys.executable, "-c", _PROFILE, str(args.profile), *cmd[3:]], check=True)
    record = {
        "posts_files": sum(1 for _ in os.scandir(args.seeds)),
        "unchanged": _summary(unchanged),
        "one_edit": _summary(edited),
        "edit_in_output": all(seen),
        "runs": args.runs,
        "loadavg": os.getloadavg()[0],
    }
    if cold:
        record["cold"] = {k: round(v, 3) for k, v in cold.items()}
    print(json.dumps(record))


_PROFILE = """
import cProfile, sys
out = sys.argv[1]
profile = cProfile.Profile()
profile.enable()
from syndicator.cli import cli
try:
    cli.main(args=sys.argv[2:], obj={}, standalone_mode=False)
finally:
    profile.disable()
    profile.dump_stats(out)
"""


if __name__ == "__main__":
    main()
