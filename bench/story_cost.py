#!/usr/bin/env python3
"""What grouping stories costs a build: the same cold build with and without `group_stories`,
side by side in one run, and the same one-edit rebuild.

    python bench/story_cost.py [--posts 100000 | --seeds DIR] [--rounds 2] [--edits 10]
                               [--group all,<slug>...] [--keep DIR]

1. generates a corpus (bench/gen_corpus.py, raw layout) unless --seeds names one;
2. cold builds: `syndicator build` as a process on fresh feeds/ and state folders, without
   grouping and with `group_stories` (default: `all` and the corpus's largest topic), taking
   turns for --rounds rounds; wall time and CPU time (the build and the process it forks to
   read and write on both cores), medians, and the ratio grouped ÷ plain;
3. one-edit rebuilds, in process: one Builder of each kind over the same corpus, a post's title
   edited and each builder's pass timed in turn (--edits times), CPU medians and the ratio;
4. the grouping alone: `Stories.update` over every published post (CPU), the pairs of posts
   it compared, and how many stories of more than one post it found.

The machine is shared: read the ratios (each pair ran back to back), and CPU rather than wall.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.gen_corpus import raw_corpus  # noqa: E402


def cold(seeds: Path, work: Path, name: str, group: list[str]) -> tuple[float, float]:
    """(wall, CPU) seconds of one cold `syndicator build`."""
    for folder in (work / name, work / f"{name}-var"):
        shutil.rmtree(folder, ignore_errors=True)
    config = work / f"{name}.yaml"
    config.write_text(json.dumps({"seeds_dir": str(seeds), "feeds_dir": str(work / name),
                                  "state_dir": str(work / f"{name}-var"), "group_stories": group}))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "syndicator", "build", "--config", str(config)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if run.returncode:
        raise SystemExit(f"{name} build failed: {run.stderr[-2000:]}")
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def largest_topic(seeds: Path, work: Path) -> str:
    counts = {p.stem: p.stat().st_size for p in (work / "plain" / "topics").glob("*.json")} if (
        work / "plain" / "topics").is_dir() else {}
    return max(counts, key=lambda k: counts[k]) if counts else "ai"


def edits(seeds: Path, work: Path, group: list[str], count: int) -> tuple[list[float], list[float]]:
    """CPU seconds of `count` one-edit passes of a plain and a grouping Builder, taking turns."""
    from syndicator.config import load_settings
    from syndicator.pipeline.build import Builder

    sys.path.insert(0, str(ROOT / "bench"))
    from edit_post import edit

    builders = {}
    for name, groups in (("plain", []), ("grouped", group)):
        settings = load_settings(env={}, overrides={"seeds_dir": seeds, "feeds_dir": work / f"edit-{name}",
                                                    "state_dir": work / f"edit-{name}-var",
                                                    "group_stories": groups})
        builders[name] = Builder(settings)
        builders[name].build()
    victim = sorted(seeds.iterdir())[len(list(seeds.iterdir())) // 2]
    times: dict[str, list[float]] = {"plain": [], "grouped": []}
    gc.collect()
    for n in range(count):
        edit(str(victim), str(work / "edit-count"))
        for name in (("plain", "grouped") if n % 2 == 0 else ("grouped", "plain")):
            started = time.process_time()
            result = builders[name].build()
            times[name].append(time.process_time() - started)
            assert result.changed_paths, "the edit was not seen"
    return times["plain"], times["grouped"]


def grouping_alone(seeds: Path, work: Path) -> None:
    from syndicator.config import load_settings
    from syndicator.pipeline.build import Builder
    from syndicator.stories import Stories

    settings = load_settings(env={}, overrides={"seeds_dir": seeds, "feeds_dir": work / "alone",
                                                "state_dir": work / "alone-var"})
    builder = Builder(settings)
    builder.build()
    posts = list(builder.collection.published.values())
    gc.collect()
    gc.disable()
    try:
        cpu = []
        for _ in range(3):
            stories = Stories()
            started = time.process_time()
            stories.update([], posts)
            cpu.append(time.process_time() - started)
    finally:
        gc.enable()
    multi = sum(1 for p in posts
                if stories.story_of[p.path].anchor == p.path and len(stories.story_of[p.path].members) > 1)
    print(f"grouping alone: {len(posts):,} posts in {statistics.median(cpu):.2f} s CPU (median of 3: "
          f"{', '.join(f'{c:.2f}' for c in cpu)}); {stories.compared:,} pairs compared, "
          f"{multi:,} stories of more than one post")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--posts", type=int, default=100_000)
    ap.add_argument("--seeds", type=Path, help="an existing corpus instead of a new one")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--edits", type=int, default=10)
    ap.add_argument("--group", help="feeds to group, comma-separated (default: all and the largest topic)")
    ap.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one)")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="story-cost-"))
    work.mkdir(parents=True, exist_ok=True)
    seeds = args.seeds or raw_corpus(work / "corpus", args.posts)
    try:
        results: dict[str, list[tuple[float, float]]] = {"plain": [], "grouped": []}
        group = args.group.split(",") if args.group else None
        for r in range(args.rounds):
            order = ("plain", "grouped") if r % 2 == 0 else ("grouped", "plain")
            for name in order:
                if group is None and name == "grouped":
                    group = ["all", largest_topic(seeds, work)]
                results[name].append(cold(seeds, work, name, group if name == "grouped" else []))
                wall, cpu = results[name][-1]
                print(f"round {r + 1}, {name:8}: {wall:7.1f} s wall, {cpu:7.1f} s CPU", flush=True)
        files = sum(1 for _ in seeds.iterdir())
        print(f"{files:,} post files; group_stories: {group}")
        for i, label in ((0, "wall"), (1, "CPU")) if args.rounds else ():
            plain = statistics.median(r[i] for r in results["plain"])
            grouped = statistics.median(r[i] for r in results["grouped"])
            pairs = [g[i] / p[i] for p, g in zip(results["plain"], results["grouped"], strict=True)]
            print(f"cold build {label}: plain {plain:.1f} s, grouped {grouped:.1f} s, ratio {grouped / plain:.3f} "
                  f"(round by round {', '.join(f'{x:.3f}' for x in pairs)})")
        if args.edits:
            plain_e, grouped_e = edits(seeds, work, group or ["all"], args.edits)
            p, g = statistics.median(plain_e), statistics.median(grouped_e)
            print(f"one-edit rebuild CPU: plain {p * 1000:.0f} ms, grouped {g * 1000:.0f} ms, ratio {g / p:.3f} "
                  f"(medians of {args.edits})")
        grouping_alone(seeds, work)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
