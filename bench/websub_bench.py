#!/usr/bin/env python3
"""Our own WebSub hub: time from saving a post to its delivery, at 1, 100 and 1,000 subscribers.

  websub_bench.py [--counts 1,100,1000] [--saves 3] [--work DIR]

Runs the real `syndicator serve` (websub_hubs: [self]) on a copy of seeds/ and one subscriber
process (tests/websub_peer.py) that holds every callback URL (/cb/1, /cb/2, ...) on 127.0.0.1.
For each count: subscribes callbacks until that many are verified on topics/bench.atom, then
--saves times writes a new post in that topic and records, per save, the seconds from the save
to the first, the median and the last delivery, and the pass's own time from serve's log line
(the build must not slow down as subscribers are added: compare with count 0). One JSON line
per count.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.serverproc import ServerProcess  # noqa: E402
from tests.websub_peer import Peer  # noqa: E402

PASS = re.compile(r"rebuild: 1 files changed \((bench-\d+\.md)\).*?; (\d+) ms")


def post(seeds: Path, n: int) -> None:
    (seeds / f"bench-{n}.md").write_text(
        f"---\ntitle: Bench post {n}\ndate: 2030-01-01T00:{n // 60 % 60:02d}:{n % 60:02d}Z\ntags: [Bench]\n---\n\n"
        f"Body {n}.\n", encoding="utf-8")


def subscribe(srv: ServerProcess, peer: Peer, topic: str, start: int, stop: int) -> None:
    for i in range(start, stop):
        form = urlencode({"hub.mode": "subscribe", "hub.callback": peer.url(f"/cb/{i}"), "hub.topic": topic})
        status, _, text = srv.request("POST", "/hub", {"Content-Type": "application/x-www-form-urlencoded"},
                                      form.encode())
        if status != 202:
            raise SystemExit(f"subscription {i}: {status} {text.decode()}")
    deadline = time.monotonic() + 120
    while json.loads(srv.request("GET", "/healthz")[2])["websub_hub"]["subscriptions"] < stop:
        if time.monotonic() > deadline:
            raise SystemExit("subscriptions not verified in 120 s")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", default="1,100,1000")
    ap.add_argument("--saves", type=int, default=3)
    ap.add_argument("--work", type=Path)
    a = ap.parse_args(argv)
    counts = [int(c) for c in a.counts.split(",")]
    work = a.work or Path(tempfile.mkdtemp(prefix="websub-bench-"))
    config = {"websub_hubs": ["self"], "websub_allow_networks": ["127.0.0.0/8"],
              "websub_max_per_host": max(counts) + 1, "websub_max_subscribers": max(counts) + 1}
    n = 0
    with Peer(work / "subscriber") as peer:
        srv = ServerProcess(work / "site", config=config)
        post(srv.seeds_dir, n)
        with srv:
            topic = srv.url("topics/bench.atom")
            have = 0
            for count in [0, *counts]:
                subscribe(srv, peer, topic, have, count)
                have = count
                runs = []
                for _ in range(a.saves):
                    n += 1
                    seen = len(peer.records())
                    time.sleep(0.3)
                    saved = time.time()
                    post(srv.seeds_dir, n)
                    records = peer.wait(lambda rs, seen=seen, count=count: sum(
                        1 for r in rs[seen:] if r["method"] == "POST") >= count, timeout=120)
                    times = sorted(r["time"] - saved for r in records[seen:] if r["method"] == "POST")
                    time.sleep(0.3)
                    took = [int(ms) for name, ms in PASS.findall(srv.log()) if name == f"bench-{n}.md"]
                    runs.append({"first": times[0] if times else None,
                                 "median": statistics.median(times) if times else None,
                                 "last": times[-1] if times else None, "delivered": len(times),
                                 "pass_ms": took[0] if took else None})
                med = {k: round(statistics.median(r[k] for r in runs), 3) if all(r[k] is not None for r in runs)
                       else None for k in ("first", "median", "last", "pass_ms")}
                print(json.dumps({"subscribers": count, "save_to_delivery_s": med, "runs": runs}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
