#!/usr/bin/env python3
"""Custom feeds benchmark: topic combinations and filters over a large corpus, against plain files.

    python bench/custom_bench.py [--posts 100000 | --seeds DIR] [--cold 200] [--duration 8]
                                 [--connections 16] [--keep DIR]

1. generates a corpus (bench/gen_corpus.py, raw layout) unless --seeds names one;
2. starts the real `syndicator serve` on it (127.0.0.1, a free port);
3. cold answers: --cold distinct custom feeds asked one after another, each rendered on its
   request (combinations of the corpus's topics, filters on `all`, and the worst case: a
   filter no post matches, which reads every post), latency median / p99 / max;
4. with wrk (gzip, --connections, --duration seconds): `/all.rss` (a file) beside one cached
   custom feed, then `/all.rss` again while a second wrk floods the server with random
   distinct queries (every one a new cache entry), with the service's RSS and the cache's
   size before and after;
5. in process, on the same corpus: what keeping the catalog for custom feeds adds to a
   one-edit rebuild (`Catalog.advance` for the feeds one edit changes).

Loopback only, bounded duration; everything it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.gen_corpus import raw_corpus  # noqa: E402
from bench.serve_bench import rss_mb, run_wrk  # noqa: E402
from tests.serverproc import ServerProcess  # noqa: E402

WORDS = ["Azure", "GPU", "cloud", "chip", "model", "Meta", "security", "(?i)nvidia", "数据", "AI.*cloud", "release"]


def topics_of(feeds: Path) -> list[str]:
    return sorted(p.stem for p in (feeds / "topics").glob("*.rss"))


def timed(srv: ServerProcess, path: str) -> tuple[float, int]:
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=30)
    try:
        started = time.perf_counter()
        conn.request("GET", path, headers={"Accept-Encoding": "gzip"})
        resp = conn.getresponse()
        resp.read()
        return (time.perf_counter() - started) * 1000, resp.status
    finally:
        conn.close()


def patient(srv: ServerProcess, path: str) -> tuple[float, int]:
    """`timed`, asked again after Retry-After (a second) while the renders are at their bound."""
    for _ in range(10):
        ms, status = timed(srv, path)
        if status != 503:
            return ms, status
        time.sleep(1)
    return ms, status


def summary(ms: list[float]) -> str:
    ms = sorted(ms)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    return f"median {statistics.median(ms):.1f} ms, p99 {p99:.1f} ms, max {ms[-1]:.1f} ms ({len(ms)} requests)"


def cold_paths(topics: list[str], count: int, rnd: random.Random) -> dict[str, list[str]]:
    combos, filtered = [], []
    for n in range(count):
        a, b, c = rnd.sample(topics, 3)
        low, high = min(a, b), max(a, b)
        expr = [f"{low}+{high}", f"{low},{high}", f"{a},-{b}", f"{low},{high},-{c}"][n % 4]
        combos.append(f"/topics/{expr}.{('rss', 'atom', 'json')[n % 3]}?limit={n % 49 + 1}")
        filtered.append(f"/all.rss?filter={quote(WORDS[n % len(WORDS)])}&limit={n % 47 + 1}")
    nothing = [f"/all.rss?filter=zq{n}xj" for n in range(max(10, count // 10))]
    return {"topic combinations": combos, "filters on all": filtered,
            "a filter no post matches (reads every post)": nothing}


FLOOD = """
local topics = {%s}
local words = {"cloud", "chip", "model", "data", "server", "release", "market", "Azure", "GPU", "security"}
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
request = function()
  local a = topics[math.random(#topics)]
  local b = topics[math.random(#topics)]
  if a == b then b = "-" .. topics[(math.random(#topics))] end
  if a > b then a, b = b, a end
  local path = "/topics/" .. a .. "," .. b .. ".rss?filter=" .. words[math.random(#words)] .. math.random(100000)
               .. "%%7Ce&limit=" .. math.random(1, 50)
  return wrk.format("GET", path, {["Accept-Encoding"] = "gzip"})
end
"""


def flood(srv: ServerProcess, topics: list[str], args: argparse.Namespace, work: Path) -> subprocess.Popen[str]:
    script = work / "flood.lua"
    script.write_text(FLOOD % ", ".join(f'"{t}"' for t in topics))
    return subprocess.Popen(["wrk", "-t1", f"-c{args.connections}", f"-d{args.duration + 2}s", "-s", str(script),
                             srv.base_url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def cache_stats(srv: ServerProcess) -> dict[str, int]:
    return json.loads(srv.request("GET", "/healthz")[2])["custom_feeds"]


def catalog_cost(seeds: Path, work: Path) -> None:
    from dataclasses import replace

    from syndicator import urls
    from syndicator.config import load_settings
    from syndicator.pipeline.build import Builder
    from syndicator.stories import Stories

    settings = load_settings(env={}, overrides={"seeds_dir": seeds, "feeds_dir": work / "feeds-inproc"})
    builder = Builder(settings, keep_catalog=True)
    started = time.perf_counter()
    builder.build()
    cold = time.perf_counter() - started
    assert builder.catalog is not None
    posts = list(builder.collection.published.values())
    started = time.perf_counter()
    stories = Stories()
    stories.update([], posts)
    grouping = time.perf_counter() - started
    multi = sum(1 for p in posts
                if stories.story_of[p.path].anchor == p.path and len(stories.story_of[p.path].members) > 1)
    print(f"in process: cold build with the catalog and stories {cold:.1f} s; grouping {len(posts):,} posts "
          f"alone {grouping:.2f} s ({grouping / cold:.0%} of the build), {multi:,} stories of more than one post")
    post = posts[len(posts) // 2]
    edited = replace(post, title=post.title + " (updated)")
    changed = {urls.ALL_STEM, *(urls.topic_stem(t.slug) for t in post.topics)}
    advance, group = [], []
    for _ in range(20):
        started = time.perf_counter()
        builder.catalog.advance(builder.planner, changed, False, [post], [post])
        advance.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        stories.update([post], [edited])
        stories.update([edited], [post])
        group.append((time.perf_counter() - started) * 500)
    print(f"one edit ({len(changed)} feeds, all of them {len(builder.catalog.lists[urls.ALL_STEM]):,} posts): "
          f"catalog {statistics.median(advance):.2f} ms, stories {statistics.median(group):.2f} ms (medians of 20)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--posts", type=int, default=100_000)
    ap.add_argument("--seeds", type=Path, help="an existing corpus (raw layout) instead of a new one")
    ap.add_argument("--cold", type=int, default=200)
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--connections", type=int, default=16)
    ap.add_argument("--keep", type=Path, help="work folder to keep (default: a temporary one)")
    ap.add_argument("--no-inprocess", action="store_true")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        print("wrk is needed: apt-get install wrk", file=sys.stderr)
        return 2
    work = args.keep or Path(tempfile.mkdtemp(prefix="custom-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    seeds = args.seeds or raw_corpus(work / "corpus", args.posts)
    site = work / "site"
    site.mkdir(exist_ok=True)
    if not (site / "seeds").exists():
        (site / "seeds").symlink_to(seeds.resolve())
    try:
        with ServerProcess(site, seeds=None, startup_timeout=900) as srv:
            assert srv.proc is not None
            topics = topics_of(srv.feeds_dir)
            print(f"{len(list(seeds.iterdir())):,} post files, {len(topics)} topics; serve pid {srv.proc.pid}, "
                  f"RSS {rss_mb(srv.proc.pid):.0f} MB")
            for label, paths in cold_paths(topics, args.cold, random.Random(5)).items():
                results = [patient(srv, p) for p in paths]
                bad = [p for p, (_, status) in zip(paths, results, strict=True) if status != 200]
                assert not bad, bad[:3]
                print(f"cold, {label}: {summary([ms for ms, _ in results])}")
            cached = f"/topics/{topics[0]},{topics[1]}.rss?filter=cloud"
            timed(srv, cached)
            print(f"cached custom feed {cached}: {summary([timed(srv, cached)[0] for _ in range(200)])}")
            print(f"file /all.rss: {summary([timed(srv, '/all.rss')[0] for _ in range(200)])}")
            gz = {"Accept-Encoding": "gzip"}
            file_rps, file_p99 = run_wrk(srv.url("/all.rss"), gz, args.duration, args.connections, work)
            custom_rps, custom_p99 = run_wrk(srv.url(cached), gz, args.duration, args.connections, work)
            print(f"wrk {args.connections} connections, {args.duration} s, gzip:")
            print(f"  file /all.rss           {file_rps:>9,.0f} req/s  p99 {file_p99 * 1000:.1f} ms")
            print(f"  cached custom feed      {custom_rps:>9,.0f} req/s  p99 {custom_p99 * 1000:.1f} ms  "
                  f"(ratio to the file 1:{file_rps / custom_rps:.2f})")
            before, stats_before = rss_mb(srv.proc.pid), cache_stats(srv)
            flooding = flood(srv, topics, args, work)
            time.sleep(1)
            under_rps, under_p99 = run_wrk(srv.url("/all.rss"), gz, args.duration, args.connections, work)
            out, _ = flooding.communicate()
            flood_rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
            non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            total = re.search(r"(\d+) requests in", out)
            after, stats_after = rss_mb(srv.proc.pid), cache_stats(srv)
            print(f"  file /all.rss, flooded  {under_rps:>9,.0f} req/s  p99 {under_p99 * 1000:.1f} ms  "
                  f"(flood of distinct queries: {flood_rps:,.0f} req/s, "
                  f"{non2xx.group(1) if non2xx else 0} of {total.group(1) if total else '?'} answered 503)")
            print(f"service RSS {before:.0f} MB -> {after:.0f} MB; cache {stats_before} -> {stats_after}")
        if not args.no_inprocess:
            catalog_cost(seeds, work)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
