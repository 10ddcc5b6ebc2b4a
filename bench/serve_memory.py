#!/usr/bin/env python3
"""Peak memory of `syndicator serve`, its helper processes counted apart, and what holds it.

    python bench/serve_memory.py SEEDS EDIT_FILE WORK [--feed topics/ai.json] [--edits 5] [--restarts 1] [--spread 300]
                                    [--crawl]
    python bench/serve_memory.py SEEDS EDIT_FILE WORK --tracemalloc [--top 15]

The first form starts `syndicator serve` on 127.0.0.1 over SEEDS with feeds and state in WORK
(emptied first), waits until /healthz answers 200 (the first pass done, in its own process),
saves EDIT_FILE --edits times (bench/edit_post.py) waiting each time until --feed (a feed
that shows its post) serves the new title, then stops it and starts it again --restarts times
over the same state (until /healthz answers 200 and the feed is current). While they run, every
process of the service's tree is looked at every 20 ms; the peak RSS (VmHWM) of the service
process and the largest of each kind of helper (the first pass's process, the processes it
forks) are printed as one JSON object, with the time to each step.

`--spread N`: after those saves, N saves of posts picked at random (a fixed seed) from SEEDS,
each waited for until the service's count of passes (/metrics) grows, with the service's RSS
every N/10 saves: memory that grows with the posts a running service has rendered shows there
(each such save renders its post's archive pages; the saves of one post render the same few).
SEEDS is edited in place: give it a copy.

`--crawl`: then one GET of every published file, plain, then all again with gzip, as a client
walking every archive page and post page asks for them; the service's RSS before and after
each walk (what `serve` keeps of the files it answered is bounded by `file_cache_mb`), and again
after 12 s of quiet.

`--tracemalloc` loads the state that WORK holds (the first form makes it) the way a restarted
service does (a Builder with the service's settings and its catalog, one catch-up pass), then
saves EDIT_FILE once and rebuilds it, and prints the lines of code that hold the most memory
and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import edit_post  # noqa: E402

BASE_URL = "https://example.org/"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(pid: int) -> dict[str, str]:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                out[key] = value.strip()
    except OSError:
        pass
    return out


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return found


def _kind(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "?"
    return "first pass (spawned)" if "spawn_main" in cmd or "multiprocessing" in cmd else "forked helper"


class Watch(threading.Thread):
    """The peak VmHWM of a process and of each of its descendants, by kind."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.peaks: dict[int, tuple[str, float]] = {}
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            todo = [(self.root, 0)]
            while todo:
                pid, depth = todo.pop()
                hwm = _status(pid).get("VmHWM")
                if hwm:
                    kind = "service" if pid == self.root else self.peaks.get(pid, (_kind(pid) if depth == 1
                                                                                     else "forked helper", 0))[0]
                    mib = int(hwm.split()[0]) / 1024
                    if mib > self.peaks.get(pid, ("", 0.0))[1]:
                        self.peaks[pid] = (kind, mib)
                todo += [(c, depth + 1) for c in _children(pid)]
            time.sleep(0.02)

    def by_kind(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = {}
        for kind, mib in self.peaks.values():
            entry = out.setdefault(kind, {"peak_mib": 0.0, "processes": 0})
            entry["peak_mib"] = round(max(entry["peak_mib"], mib), 1)
            entry["processes"] += 1
        return out


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, b""
    except (urllib.error.URLError, OSError):
        return 0, b""


def _wait(base: str, feed: str, marker: str | None, proc: subprocess.Popen[bytes], timeout: float,
          what: str = "serve not ready") -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"serve ended (exit {proc.returncode})")
        if _get(base + "healthz")[0] == 200:
            status, body = _get(base + feed)
            if status == 200 and (marker is None or marker.encode() in body):
                return time.monotonic() - started
        time.sleep(0.02)
    raise SystemExit(f"{what} within {timeout:.0f} s")


def _rss_mib(pid: int) -> float:
    return round(int(_status(pid).get("VmRSS", "0 kB").split()[0]) / 1024, 1)


def spread(args: argparse.Namespace, base: str, proc: subprocess.Popen[bytes]) -> dict[str, object]:
    """--spread saves of random posts, each waited for; the service's RSS along the way."""
    rng = random.Random(1)
    names = sorted(p for p in args.seeds.iterdir() if p.is_file() and p != args.edit_file)
    every = max(1, args.spread // 10)
    rss: list[tuple[int, float]] = [(0, _rss_mib(proc.pid))]
    waits: list[float] = []
    for k in range(1, args.spread + 1):
        try:
            waited = edit_post.save_and_wait(str(rng.choice(names)), base, str(args.work / "spread-count"), 60,
                                             alive=lambda: proc.poll() is None)
        except TimeoutError as e:
            raise SystemExit(str(e)) from None
        if waited is None:
            continue
        waits.append(waited)
        if k % every == 0:
            rss.append((k, _rss_mib(proc.pid)))
    return {"saves": args.spread, "rss_mib": rss, "save_to_pass_median_s": round(statistics.median(waits), 3)}


def crawl(feeds: Path, port: int, proc: subprocess.Popen[bytes]) -> dict[str, object]:
    """--crawl: one GET of every published file, plain, then all again with gzip (what an RFC
    5005 client walking the archives, or a crawler, asks for); the service's RSS after each
    walk, and the answers that were not a 200."""
    rels = sorted(str(f.relative_to(feeds)) for f in feeds.rglob("*")
                  if f.is_file() and not f.name.startswith(".") and not f.name.endswith(".gz"))
    record: dict[str, object] = {"files": len(rels), "mib_on_disk": round(
        sum((feeds / rel).stat().st_size for rel in rels) / 2**20, 1), "rss_before_mib": _rss_mib(proc.pid)}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    bad = 0
    try:
        for label, headers in (("plain", {}), ("gzip", {"Accept-Encoding": "gzip"})):
            for rel in rels:
                conn.request("GET", "/" + rel, headers=headers)
                answer = conn.getresponse()
                answer.read()
                bad += answer.status != 200
            record[f"rss_after_{label}_mib"] = _rss_mib(proc.pid)
    finally:
        conn.close()
    time.sleep(IDLE_AFTER_CRAWL)  # what stays once the service has idled (its periodic trim)
    record["rss_idle_mib"] = _rss_mib(proc.pid)
    record["not_200"] = bad
    return record


#: Seconds of quiet after a crawl before its RSS is read again (server.TRIM_EVERY and some).
IDLE_AFTER_CRAWL = 12


def _marker(path: Path) -> str | None:
    m = re.search(r'^title:\s*"?(\[edit \d+\])', path.read_text(encoding="utf-8"), re.M)
    return m.group(1) if m else None


def serve(args: argparse.Namespace) -> dict[str, object]:
    work: Path = args.work
    feeds, state = work / "feeds", work / "state"
    shutil.rmtree(feeds, ignore_errors=True)
    shutil.rmtree(state, ignore_errors=True)
    feed = args.feed
    record: dict[str, object] = {"feed": feed}
    runs: list[dict[str, object]] = []
    service_peak = 0.0
    for run in range(1 + args.restarts):
        port = free_port()
        base = f"http://127.0.0.1:{port}/"
        cmd = [sys.executable, "-m", "syndicator", "serve", "--seeds", str(args.seeds), "--out", str(feeds),
               "--state", str(state), "--host", "127.0.0.1", "--port", str(port), "--base-url", BASE_URL]
        with open(work / "serve.log", "ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        watch = Watch(proc.pid)
        watch.start()
        try:
            one: dict[str, object] = {"start": "first" if run == 0 else "restart"}
            one["ready_s"] = round(_wait(base, feed, _marker(args.edit_file), proc, args.timeout), 2)
            if run == 0:
                saves = []
                for _ in range(args.edits):
                    time.sleep(0.3)
                    started = time.monotonic()
                    marker = edit_post.edit(str(args.edit_file))
                    _wait(base, feed, marker, proc, 60,
                          f"{feed} did not show {marker} (is {args.edit_file.name} among its newest items?)")
                    saves.append(round(time.monotonic() - started, 3))
                one["save_to_served_s"] = saves
                if args.spread:
                    one["spread"] = spread(args, base, proc)
                if args.crawl:
                    one["crawl"] = crawl(feeds, port, proc)
            time.sleep(0.1)
        finally:
            watch.done.set()
            watch.join()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        peaks = watch.by_kind()
        one["peak_rss_mib"] = peaks
        service_peak = max(service_peak, peaks.get("service", {}).get("peak_mib", 0.0))
        runs.append(one)
    record["runs"] = runs
    record["service_peak_rss_mib"] = service_peak
    record["loadavg"] = os.getloadavg()[0]
    return record


def traced(args: argparse.Namespace) -> None:
    import resource
    import tracemalloc

    from syndicator.config import load_settings
    from syndicator.pipeline import Builder
    from syndicator.store import local

    work: Path = args.work
    settings = load_settings(env={}, overrides={"seeds_dir": args.seeds, "feeds_dir": work / "feeds",
                                                "state_dir": work / "state", "base_url": BASE_URL})
    tracemalloc.start(1)
    with local.opened(settings) as store:
        builder = Builder(settings, state=store, settle=True, keep_catalog=settings.custom_feeds)
        builder.build()
        edit_post.edit(str(args.edit_file))
        builder.rebuild_paths([str(args.edit_file)])
        snapshot = tracemalloc.take_snapshot()
        current, peak = tracemalloc.get_traced_memory()
        print(f"traced: {current / 2**20:.1f} MiB now, {peak / 2**20:.1f} MiB at the peak; "
              f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB "
              f"(tracing included); {len(builder.records)} records")
        for stat in snapshot.statistics("lineno")[:args.top]:
            frame = stat.traceback[0]
            print(f"{stat.size / 2**20:8.1f} MiB {stat.count:9d} blocks  {frame.filename}:{frame.lineno}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("seeds", type=Path)
    parser.add_argument("edit_file", type=Path)
    parser.add_argument("work", type=Path)
    parser.add_argument("--feed", default="topics/ai.json", help="a feed that shows EDIT_FILE's post")
    parser.add_argument("--edits", type=int, default=5)
    parser.add_argument("--restarts", type=int, default=1)
    parser.add_argument("--spread", type=int, default=0, help="saves of random posts after the first run's saves")
    parser.add_argument("--crawl", action="store_true",
                        help="then GET every published file, plain and gzip, with the service's RSS after each walk")
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--tracemalloc", action="store_true")
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.tracemalloc:
        traced(args)
    else:
        print(json.dumps(serve(args)))


if __name__ == "__main__":
    main()
