#!/usr/bin/env python3
"""Serving benchmark: `syndicator serve` vs nginx (contrib/nginx.conf) on the same feeds/.

    python bench/serve_bench.py [--duration 8] [--connections 32] [--posts 60] [--keep DIR]

1. writes ~60 news posts into a temp seeds/ folder (so all.rss holds items_per_feed = 50 items);
2. starts the real `syndicator serve` on 127.0.0.1:<free port> (it builds feeds/ first);
3. starts nginx (apt-installed when missing and run as root) with contrib/nginx.conf adapted
   to a temp prefix, the same feeds/ root and a free loopback port, syndicator as its upstream;
4. for each server, measures requests/second and p99 latency of
      200  GET /all.rss with Accept-Encoding: gzip (what feed readers send), and
      304  the same with If-None-Match: <that server's ETag>
   with wrk (--latency, a Lua script for the headers) or, without wrk, a small Python load
   generator (keep-alive connections in threads; then the client is the bottleneck);
5. prints a table with the syndicator/nginx ratio.

Loopback only, bounded duration; everything it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import http.client
import os
import random
import re
import shutil
import signal
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


def start_nginx(prefix: Path, feeds: Path, upstream_port: int,
                main_extra: str = "") -> tuple[subprocess.Popen[bytes], int] | None:
    """nginx with contrib/nginx.conf (listen, root and upstream adapted) under `prefix`;
    (process, port), or None when nginx is not installed."""
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
        pid {prefix}/nginx.pid;
        error_log {prefix}/logs/error.log warn;
        events {{ worker_connections 1024; }}
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


def measure(name: str, port: int, args: argparse.Namespace, work: Path) -> dict[str, tuple[float, float]]:
    base = {"Accept-Encoding": "gzip"}
    status, h, body = get("127.0.0.1", port, FEED, base)
    assert status == 200 and h.get("content-encoding") == "gzip", (name, status, h)
    etag = h["etag"]
    cond = {**base, "If-None-Match": etag}
    assert get("127.0.0.1", port, FEED, cond)[0] == 304, name
    results = {}
    for label, headers in (("200", base), ("304", cond)):
        if shutil.which("wrk"):
            results[label] = run_wrk(f"http://127.0.0.1:{port}{FEED}", headers, args.duration, args.connections, work)
        else:
            results[label] = run_python("127.0.0.1", port, FEED, headers, args.duration, args.connections)
        rps, p99 = results[label]
        print(f"  {name:10} {label}: {rps:10.0f} req/s  p99 {p99 * 1000:7.2f} ms", file=sys.stderr)
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=int, default=8, help="seconds per measurement (default 8)")
    ap.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    ap.add_argument("--posts", type=int, default=60, help="posts to generate (default 60)")
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = ap.parse_args()
    ensure_tools()
    work = args.keep or Path(tempfile.mkdtemp(prefix="serve-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    os.chmod(work, 0o755)  # nginx workers run as an unprivileged user
    srv = ServerProcess(work / "syndicator", seeds=None, env={"SYNDICATOR_LOG_LEVEL": "warning"})
    write_corpus(srv.seeds_dir, args.posts)
    nginx = None
    try:
        srv.start()
        os.chmod(srv.workdir, 0o755)
        _, _, body = get("127.0.0.1", srv.port, FEED)
        items = body.count(b"<item>")
        size = len(body)
        gz = len((srv.feeds_dir / "all.rss.gz").read_bytes())
        print(f"{FEED}: {items} items, {size} bytes ({gz} gzipped); wrk={'yes' if shutil.which('wrk') else 'no'}, "
              f"{os.cpu_count()} CPUs, {args.connections} connections, {args.duration}s each", file=sys.stderr)
        results = {"syndicator": measure("syndicator", srv.port, args, work)}
        started = start_nginx(work / "nginx", srv.feeds_dir, srv.port)
        if started is None:
            print("nginx not available: syndicator only", file=sys.stderr)
        else:
            nginx, nport = started
            results["nginx"] = measure("nginx", nport, args, work)
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

    print(f"\n{items}-item {FEED} ({size} B, {gz} B gzipped), {args.connections} connections, {args.duration}s, "
          f"{'wrk' if shutil.which('wrk') else 'python client'}\n")
    print("| answer | syndicator req/s | syndicator p99 | nginx req/s | nginx p99 | req/s ratio (syndicator/nginx) |")
    print("|---|---:|---:|---:|---:|---:|")
    for label in ("200", "304"):
        s_rps, s_p99 = results["syndicator"][label]
        if "nginx" in results:
            n_rps, n_p99 = results["nginx"][label]
            print(f"| {label} | {s_rps:,.0f} | {s_p99 * 1000:.2f} ms | {n_rps:,.0f} | {n_p99 * 1000:.2f} ms "
                  f"| {s_rps / n_rps:.3f} (1:{n_rps / s_rps:.0f}) |")
        else:
            print(f"| {label} | {s_rps:,.0f} | {s_p99 * 1000:.2f} ms | – | – | – |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
