#!/usr/bin/env python3
"""Serving benchmark: `syndicator serve` vs nginx (contrib/nginx.conf) on the same feeds/.

    python bench/serve_bench.py [--duration 8] [--connections 32] [--rounds 3] [--idle 1000]
                                [--posts 60] [--keep DIR]

1. writes ~60 news posts into a temp seeds/ folder (so all.rss holds items_per_feed = 50 items);
2. starts the real `syndicator serve` on 127.0.0.1:<free port> (it builds feeds/ first);
3. starts nginx (apt-installed when missing and run as root) with contrib/nginx.conf adapted
   to a temp prefix, the same feeds/ root and a free loopback port, syndicator as its upstream;
4. measures requests/second and p99 latency of
      200  GET /all.rss with Accept-Encoding: gzip (what feed readers send), and
      304  the same with If-None-Match: <that server's ETag>
   with wrk (--latency, a Lua script for the headers) or, without wrk, a small Python load
   generator (keep-alive connections in threads; then the client is the bottleneck), for each
   server in turn, --rounds times, so both see the same background load;
5. with --idle connections open and silent, times a new client's request on each server;
6. prints the medians side by side with the syndicator/nginx ratios.

Loopback only, bounded duration; everything it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.serverproc import ServerProcess, free_port  # noqa: E402

FEED = "/all.rss"
WORDS = ("cloud chip model data server latency throughput cluster open source release security patch vendor "
         "market quarter revenue growth startup research lab benchmark network storage kernel compiler browser "
         "privacy policy regulator europe asia launch update feature preview beta customer partner deal "
         "investment analyst forecast energy battery robot sensor camera display memory cache protocol").split()
TOPICS = ["AI", "Cloud", "Chips", "Open Source", "Security", "Databases", "智能硬件", "Robotics"]


def write_corpus(seeds: Path, count: int) -> None:
    seeds.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        topics = "\n".join(f"  - {TOPICS[(i + k) % len(TOPICS)]}" for k in range(1 + i % 3))
        rnd = random.Random(i)  # deterministic, varied text (so gzip ratios look like real news)
        excerpt = " ".join(" ".join(rnd.choice(WORDS) for _ in range(rnd.randint(8, 16))).capitalize() + "."
                           for _ in range(5))
        (seeds / f"{i:04d}_bench.txt").write_text(textwrap.dedent(f"""\
            ---
            category: news
            title: "Benchmark post {i}: {TOPICS[i % len(TOPICS)]} news of the day"
            excerpt: "{excerpt}"
            publishedDateTime: 2024-03-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z
            webUrl: "https://news.example.org/{i:04d}/benchmark-post"
            type: article
            published: true
            provider:
              name: Example News
              domain: news.example.org
            topics:
            """) + topics + "\n---\n", encoding="utf-8")


# -- nginx --------------------------------------------------------------------------------------------

def ensure_tools() -> None:
    missing = [pkg for cmd, pkg in (("nginx", "nginx"), ("wrk", "wrk"))
               if not shutil.which(cmd) and not Path(f"/usr/sbin/{cmd}").exists()]
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"installing {' '.join(missing)} with apt-get ...", file=sys.stderr)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=False, env=env,
                       stdout=subprocess.DEVNULL)


def nginx_binary() -> str | None:
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def start_nginx(prefix: Path, feeds: Path, upstream_port: int, main_extra: str = "",
                connections: int = 1024) -> tuple[subprocess.Popen[bytes], int] | None:
    """nginx with contrib/nginx.conf (listen, root and upstream adapted) under `prefix`, each
    worker taking up to `connections` clients; (process, port), or None when nginx is not
    installed."""
    binary = nginx_binary()
    if binary is None:
        return None
    port = free_port()
    server = (ROOT / "contrib" / "nginx.conf").read_text(encoding="utf-8")
    server = re.sub(r"server 127\.0\.0\.1:\d+;", f"server 127.0.0.1:{upstream_port};", server)
    server = re.sub(r"listen \[::\]:80;\n", "", server)
    server = re.sub(r"listen 80;", f"listen 127.0.0.1:{port};", server)
    server = re.sub(r"root /srv/syndicator/feeds;", f"root {feeds};", server)
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    (prefix / "server.conf").write_text(server, encoding="utf-8")
    (prefix / "nginx.conf").write_text(textwrap.dedent(f"""\
        daemon off;
        master_process on;
        {main_extra}
        worker_processes auto;
        worker_rlimit_nofile {2 * connections + 64};
        pid {prefix}/nginx.pid;
        error_log {prefix}/logs/error.log warn;
        events {{ worker_connections {connections}; }}
        http {{
            access_log off;
            sendfile on;
            tcp_nopush on;
            keepalive_requests 100000;
            client_body_temp_path {prefix}/tmp_body;
            proxy_temp_path {prefix}/tmp_proxy;
            fastcgi_temp_path {prefix}/tmp_fcgi;
            uwsgi_temp_path {prefix}/tmp_uwsgi;
            scgi_temp_path {prefix}/tmp_scgi;
            include {prefix}/server.conf;
        }}
        """), encoding="utf-8")
    check = subprocess.run([binary, "-t", "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
                           capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t failed:\n{check.stderr}")
    proc = subprocess.Popen([binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if get("127.0.0.1", port, "/")[0] == 200:
                return proc, port
        except OSError:
            time.sleep(0.05)
    proc.terminate()
    raise RuntimeError("nginx did not answer")


# -- load ---------------------------------------------------------------------------------------------

def get(host: str, port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=5)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _seconds(value: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(2)]


def run_wrk(url: str, headers: dict[str, str], duration: int, connections: int, work: Path) -> tuple[float, float]:
    script = work / "headers.lua"
    script.write_text("".join(f'wrk.headers["{k}"] = "{v.replace(chr(34), chr(92) + chr(34))}"\n'
                              for k, v in headers.items()), encoding="utf-8")
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
                         capture_output=True, text=True, timeout=duration + 30)
    text = out.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    p99 = _seconds(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
    if "Non-2xx or 3xx" in text or "Socket errors" in text:
        print(text, file=sys.stderr)
    return rps, p99


def run_python(host: str, port: int, path: str, headers: dict[str, str], duration: int,
               connections: int) -> tuple[float, float]:
    """Fallback without wrk: keep-alive connections, one thread each."""
    stop = time.monotonic() + duration
    lat: list[list[float]] = [[] for _ in range(connections)]

    def worker(slot: list[float]) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=5)
        while time.monotonic() < stop:
            t = time.perf_counter()
            conn.request("GET", path, headers=headers)
            conn.getresponse().read()
            slot.append(time.perf_counter() - t)
        conn.close()

    threads = [threading.Thread(target=worker, args=(s,)) for s in lat]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    samples = sorted(x for s in lat for x in s)
    elapsed = time.monotonic() - start
    return len(samples) / elapsed, samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def conditions(name: str, port: int) -> dict[str, dict[str, str]]:
    """The request headers of the two answers measured, with that server's own ETag."""
    base = {"Accept-Encoding": "gzip"}
    status, h, _ = get("127.0.0.1", port, FEED, base)
    assert status == 200 and h.get("content-encoding") == "gzip", (name, status, h)
    cond = {**base, "If-None-Match": h["etag"]}
    assert get("127.0.0.1", port, FEED, cond)[0] == 304, name
    return {"200": base, "304": cond}


def load(port: int, headers: dict[str, str], args: argparse.Namespace, work: Path) -> tuple[float, float]:
    if shutil.which("wrk"):
        return run_wrk(f"http://127.0.0.1:{port}{FEED}", headers, args.duration, args.connections, work)
    return run_python("127.0.0.1", port, FEED, headers, args.duration, args.connections)


def new_client_with_idle(port: int, idle: int) -> float:
    """Median seconds a new client waits for /all.rss while `idle` connections sit open."""
    crowd = []
    try:
        for _ in range(idle):
            crowd.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(0.3)
        waits = []
        for _ in range(5):
            started = time.perf_counter()
            try:
                ok = get("127.0.0.1", port, FEED)[0] == 200
            except OSError:
                ok = False
            waits.append(time.perf_counter() - started if ok else float("inf"))
        return statistics.median(waits)
    finally:
        for s in crowd:
            s.close()


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=8, help="seconds per measurement (default 8)")
    ap.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    ap.add_argument("--rounds", type=int, default=3,
                    help="measurements per server and answer, alternating between the servers (default 3)")
    ap.add_argument("--idle", type=int, default=1000, help="idle connections for the new-client probe (default 1000)")
    ap.add_argument("--posts", type=int, default=60, help="posts to generate (default 60)")
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = ap.parse_args()
    ensure_tools()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 2 * args.idle + 256)), hard))
    work = args.keep or Path(tempfile.mkdtemp(prefix="serve-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o755)  # nginx workers run as an unprivileged user
    srv = ServerProcess(work / "syndicator", seeds=None, env={"SYNDICATOR_LOG_LEVEL": "warning"})
    write_corpus(srv.seeds_dir, args.posts)
    nginx = None
    tool = "wrk" if shutil.which("wrk") else "python client"
    # every round measures each server in turn, so both see the same background load
    samples: dict[str, dict[str, list[tuple[float, float]]]] = {}
    extra: dict[str, dict[str, float]] = {}
    try:
        srv.start()
        os.chmod(srv.workdir, 0o755)
        _, _, body = get("127.0.0.1", srv.port, FEED)
        items = body.count(b"<item>")
        size = len(body)
        gz = len((srv.feeds_dir / "all.rss.gz").read_bytes())
        ports = {"syndicator": srv.port}
        started = start_nginx(work / "nginx", srv.feeds_dir, srv.port, connections=2 * args.idle + 64)
        if started is None:
            print("nginx not available: syndicator only", file=sys.stderr)
        else:
            nginx, ports["nginx"] = started
        print(f"{FEED}: {items} items, {size} bytes ({gz} gzipped); {tool}, {os.cpu_count()} CPUs, "
              f"{args.connections} connections, {args.rounds} x {args.duration}s each", file=sys.stderr)
        headers = {name: conditions(name, port) for name, port in ports.items()}
        for rnd in range(args.rounds):
            for label in ("200", "304"):
                for name, port in ports.items():
                    rps, p99 = load(port, headers[name][label], args, work)
                    samples.setdefault(name, {}).setdefault(label, []).append((rps, p99))
                    print(f"  round {rnd + 1} {name:10} {label}: {rps:10.0f} req/s  p99 {p99 * 1000:7.2f} ms",
                          file=sys.stderr)
        extra["syndicator"] = {"rss": rss_mb(srv.proc.pid)}
        for name, port in ports.items():
            extra.setdefault(name, {})["idle"] = new_client_with_idle(port, args.idle)
    finally:
        if nginx is not None:
            nginx.send_signal(signal.SIGQUIT)
            try:
                nginx.wait(10)
            except subprocess.TimeoutExpired:
                nginx.kill()
        srv.stop()
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    def median(name: str, label: str) -> tuple[float, float]:
        runs = samples[name][label]
        return statistics.median(r for r, _ in runs), statistics.median(p for _, p in runs)

    print(f"\n{items}-item {FEED} ({size} B, {gz} B gzipped), {args.connections} connections, "
          f"median of {args.rounds} alternating runs of {args.duration}s, {tool}; syndicator RSS after load "
          f"{extra['syndicator']['rss']:.0f} MB\n")
    print("| answer | syndicator req/s | syndicator p99 | nginx req/s | nginx p99 | req/s ratio (syndicator/nginx) |")
    print("|---|---:|---:|---:|---:|---:|")
    for label in ("200", "304"):
        s_rps, s_p99 = median("syndicator", label)
        if "nginx" in samples:
            n_rps, n_p99 = median("nginx", label)
            print(f"| {label} | {s_rps:,.0f} | {s_p99 * 1000:.2f} ms | {n_rps:,.0f} | {n_p99 * 1000:.2f} ms "
                  f"| {s_rps / n_rps:.2f} (1:{n_rps / s_rps:.1f}) |")
        else:
            print(f"| {label} | {s_rps:,.0f} | {s_p99 * 1000:.2f} ms | – | – | – |")
    print("\n| new client, {} idle connections open | {} |".format(
        args.idle, " | ".join(f"{name}: {extra[name]['idle'] * 1000:.1f} ms" for name in extra)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
