#!/usr/bin/env python3
"""The whole benchmark: Syndicator at 1,000 / 10,000 (/ 100,000) posts, next to the
installed peers (Hugo, Jekyll + jekyll-feed, Pelican), printed as one table.

  .venv/bin/python bench/run.py [--sizes 1000,10000,100000] [--peers] [--runs 3]
  .venv/bin/python bench/run.py --real [--runs 3]     a real site beside Hugo (bench/real.py)

Per size N (corpus: bench/gen_corpus.py, seeded; cached under bench/out/cN):

  cold build      `syndicator build` with a fresh feeds dir and no state: wall, CPU
                  (user+sys) and peak RSS of the process (wait4 rusage); median of --runs
  warm build      `syndicator build` again on the same feeds + state_dir (a restart:
                  uses the state DB's parse cache once it exists)
  serve ready     `syndicator serve` start → /healthz answers and the edited post's topic
                  feed is served with the current title; cold (no state) and warm (restart)
  one edit        in process: Builder.build() after editing one post (bench/incremental.py)
  save→served     the running `syndicator serve`: edit a post's title, poll its topic feed
                  until the new title is served; median and p99 of --trials, bounded
                  timeouts; "n/a" when serve does not pick edits up
  service RSS     peak RSS (VmHWM) of the `syndicator serve` process after the trials and then
                  --spread saves of posts picked at random (a fixed seed), each waited for
                  until /metrics counts one more pass: every such save renders its post's
                  archive pages, which saves of one post do not (the same few each time)
  no archives     the same cold build with archive_page_size 0 (no RFC 5005 pages: the
                  peers make none), in the same rounds
  peers           cold build of each installed peer on the same logical corpus, ratio
                  Syndicator cold wall / peer wall (< 1 means Syndicator is faster), and in
                  brackets the same without archive pages

A sample of Syndicator's output is validated with feedparser (no bozo, right version,
entries with title/link/date, the edited topic's newest post on top).
Records go to bench/out/results.jsonl; the table also to bench/out/table.md.
"""
from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import platform
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import edit_post  # noqa: E402
from measure import run_once  # noqa: E402

PY = sys.executable
SEED = 20220526


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def med(xs):
    return statistics.median(xs) if xs else None


def p99(xs):
    """Nearest-rank 99th percentile (with 20 samples: the largest)."""
    if not xs:
        return None
    s = sorted(xs)
    k = max(0, min(len(s) - 1, -(-99 * len(s) // 100) - 1))
    return s[k]


def fs(x, unit="s"):
    if x is None:
        return "n/a"
    if unit == "s":
        return f"{x:.3f} s" if x < 1 else f"{x:.2f} s"
    return f"{x:.0f} MiB"


# ------------------------------------------------------------------ corpus
def corpus(work: str, n: int, peers: bool) -> str:
    c = os.path.join(work, f"c{n}")
    man = os.path.join(c, "manifest.json")
    have_raw = os.path.exists(man) and os.path.isdir(os.path.join(c, "raw"))
    have_peers = all(os.path.isdir(os.path.join(c, d)) for d in ("hugo", "jekyll", "pelican"))
    if have_raw and (have_peers or not peers):
        try:
            m = json.load(open(man, encoding="utf-8"))
            if m.get("n") == n and m.get("seed") == SEED:
                return c
        except ValueError:
            pass
    shutil.rmtree(c, ignore_errors=True)
    log(f"generating corpus N={n} ({'all layouts' if peers else 'raw'}) in {c}")
    if peers:
        args = ["--layout", "all", "-o", c]
    else:
        args = ["--layout", "raw", "-o", os.path.join(c, "raw"), "--manifest", man]
    subprocess.run([PY, os.path.join(HERE, "gen_corpus.py"), "-n", str(n), "--seed", str(SEED)] + args,
                   check=True)
    return c


# ------------------------------------------------------------------ Syndicator
def write_config(path: str, seeds: str, feeds: str, state: str, extra: str = "") -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write(f"seeds_dir: {json.dumps(seeds)}\nfeeds_dir: {json.dumps(feeds)}\n"
                f"state_dir: {json.dumps(state)}\nbase_url: https://feeds.example.org/\n{extra}")
    return path


def compile_package() -> None:
    """Byte-compile the package as `pip install` does for a regular install. An editable install
    run with PYTHONDONTWRITEBYTECODE set (common in containers) would otherwise compile every
    module from source on each start, ~0.1 s that no installed copy pays."""
    subprocess.run([PY, "-c", "import compileall, os, syndicator; "
                    "compileall.compile_dir(os.path.dirname(syndicator.__file__), quiet=1)"], check=True)


def syn(cfg: str, *args: str) -> list[str]:
    return [PY, "-m", "syndicator", "--config", cfg, *args]


def settle() -> None:
    """Write every dirty page out before a timed build (untimed). Syndicator's durable build ends
    with a syncfs of the output's filesystem, which waits for every file written there, the
    previous tool's included: right after Jekyll's or Pelican's 10,000 pages its cold build took
    12.8 and 14.9 s instead of 4.2-5.6 s, charging another tool's writeback to it."""
    os.sync()


def timed(cmd, runs: int, prep=None, logf=None) -> dict:
    rows = []
    for _ in range(runs):
        if prep:
            prep()
        settle()
        r = run_once(cmd, None, logf or subprocess.DEVNULL)
        rows.append(r)
    return summarize(rows)


#: Where earlier runs' outputs wait until the benchmark ends (see `rm`).
TRASH: list[str] = []


def summarize(rows: list[dict]) -> dict:
    return {"runs": rows, "wall_s": med([r["wall_s"] for r in rows]),
            "wall_min": min(r["wall_s"] for r in rows), "wall_max": max(r["wall_s"] for r in rows),
            "cpu_s": med([r["cpu_s"] for r in rows]), "maxrss_mib": med([r["maxrss_mib"] for r in rows]),
            "rcs": sorted({r["rc"] for r in rows})}


def interleaved(jobs: dict[str, tuple], logf=None) -> dict[str, dict]:
    """Cold builds of several tools in rounds (A B C, A B C, ...) rather than all of A's first:
    a machine whose speed drifts over minutes then weighs on every tool alike, which keeps the
    ratios honest. jobs: name -> (cmd, prep, runs)."""
    rows: dict[str, list[dict]] = {name: [] for name in jobs}
    for i in range(max((runs for _, _, runs in jobs.values()), default=0)):
        for name, (cmd, prep, runs) in jobs.items():
            if i < runs:
                prep()
                settle()
                rows[name].append(run_once(cmd, None, logf or subprocess.DEVNULL))
                log(f"  round {i + 1}: {name} {rows[name][-1]['wall_s']:.2f} s")
    return {name: summarize(r) for name, r in rows.items() if r}


def rm(*paths):
    """Clear outputs before a run by moving them aside; they are deleted when the benchmark ends.
    Deleting thousands of files just before a timed build makes that build's file creation slow
    on ext4 without a journal (the inode allocator skips inodes freed in the last seconds, one
    by one), which would charge the harness's own clean-up to whichever tool writes more files."""
    for p in paths:
        if os.path.lexists(p):
            if not TRASH:
                TRASH.append(tempfile.mkdtemp(prefix=".trash-", dir=os.path.dirname(os.path.abspath(p))))
            try:
                os.rename(p, os.path.join(TRASH[0], f"{len(os.listdir(TRASH[0]))}"))
            except OSError:  # another file system
                shutil.rmtree(p, ignore_errors=True)


def empty_trash() -> None:
    for t in TRASH:
        shutil.rmtree(t, ignore_errors=True)
    TRASH.clear()


def topic_slug(topic: str) -> str:
    from syndicator.slugs import slug
    return slug(topic)


def validate_sample(feeds: str, man: dict, edit_slug: str) -> dict:
    """feedparser on all.* and a sample of topic feeds; JSON Feed by json.loads."""
    import feedparser
    EDIT = re.compile(r"^\[edit \d+\] ")
    files = [os.path.join(feeds, f"all.{x}") for x in ("rss", "atom")]
    topic_files = sorted(glob.glob(os.path.join(feeds, "topics", "*.rss")))
    step = max(1, len(topic_files) // 10)
    for f in topic_files[::step][:10] + [os.path.join(feeds, "topics", f"{edit_slug}.rss")]:
        files += [f, f[:-4] + ".atom"]
    problems, checked = [], 0
    for f in dict.fromkeys(files):
        want = "rss20" if f.endswith(".rss") else "atom10"
        d = feedparser.parse(f)
        checked += 1
        if d.bozo:
            problems.append(f"{os.path.relpath(f, feeds)}: bozo {str(d.bozo_exception)[:60]}")
        if d.version != want:
            problems.append(f"{os.path.relpath(f, feeds)}: version {d.version!r}")
        if not d.entries:
            problems.append(f"{os.path.relpath(f, feeds)}: no entries")
        for e in d.entries:
            if not (e.get("title") and e.get("link") and (e.get("published") or e.get("updated"))):
                problems.append(f"{os.path.relpath(f, feeds)}: entry without title/link/date")
                break
    for f in [os.path.join(feeds, "all.json"), os.path.join(feeds, "topics", f"{edit_slug}.json")]:
        checked += 1
        try:
            doc = json.load(open(f, encoding="utf-8"))
            if not str(doc.get("version", "")).startswith("https://jsonfeed.org/version/1"):
                problems.append(f"{os.path.relpath(f, feeds)}: not a JSON Feed")
        except (OSError, ValueError) as e:
            problems.append(f"{os.path.relpath(f, feeds)}: {e}")
    # the edited topic's newest published post is on top of its feed
    t = man["edit_target"]["topic"]
    newest = " ".join(man["topics"][t]["newest"]["title"].split())
    d = feedparser.parse(os.path.join(feeds, "topics", f"{edit_slug}.rss"))
    top = " ".join(EDIT.sub("", d.entries[0].title if d.entries else "").split())
    if top != newest:
        problems.append(f"topics/{edit_slug}.rss: newest entry {top[:40]!r}, expected {newest[:40]!r}")
    return {"checked": checked, "ok": not problems, "problems": problems[:5]}


def http_get(url: str, timeout: float = 2.0):
    req = urllib.request.Request(url, headers={"Cache-Control": "no-cache"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def feed_has(base: str, feed_rel: str, marker: str | None) -> bool:
    try:
        status, body = http_get(base + feed_rel)
    except (urllib.error.URLError, OSError, ValueError):
        return False
    if status != 200:
        return False
    if marker is None:
        return True
    try:
        doc = json.loads(body)
    except ValueError:
        return False
    return any(str(it.get("title", "")).startswith(marker) for it in doc.get("items", []))


class Server:
    """`syndicator serve` on a free port, output to a log file."""

    def __init__(self, cfg: str, logpath: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/"
        self.logf = open(logpath, "ab")
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(syn(cfg, "serve", "--port", str(self.port)), stdin=subprocess.DEVNULL,
                                  stdout=self.logf, stderr=subprocess.STDOUT, start_new_session=True)

    def ready(self, feed_rel: str, marker: str | None, timeout: float) -> float | None:
        """Seconds from process start until /healthz answers and feed_rel shows `marker`."""
        end = self.t0 + timeout
        while time.monotonic() < end:
            if self.p.poll() is not None:
                return None
            try:
                status, _ = http_get(self.base + "healthz", timeout=1.0)
            except (urllib.error.URLError, OSError, ValueError):
                status = None
            if status == 200 and feed_has(self.base, feed_rel, marker):
                return time.monotonic() - self.t0
            time.sleep(0.01)
        return None

    def hwm_mib(self, field: str = "VmHWM:") -> float | None:
        try:
            for line in open(f"/proc/{self.p.pid}/status"):
                if line.startswith(field):
                    return int(line.split()[1]) / 1024.0
        except OSError:
            pass
        return None

    def rss_mib(self) -> float | None:
        return self.hwm_mib("VmRSS:")

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.logf.close()


def current_marker(path: str) -> str | None:
    m = re.search(r'^title:\s*"?(\[edit \d+\])', open(path, encoding="utf-8").read(), re.M)
    return m.group(1) if m else None


def spread_saves(srv: Server, seeds: str, edit_file: str, count: int, marker_file: str, timeout: float) -> dict:
    """`count` saves of posts picked at random (seeded), each waited for until the service has
    made one more pass; its RSS before and after."""
    rng = random.Random(SEED)
    names = sorted(n for n in os.listdir(seeds) if os.path.join(seeds, n) != edit_file)
    waits, before_rss = [], srv.rss_mib()
    for _ in range(count):
        try:
            waited = edit_post.save_and_wait(os.path.join(seeds, rng.choice(names)), srv.base, marker_file, timeout)
        except TimeoutError:
            waited = timeout
        if waited is not None:
            waits.append(waited)
    after_rss = srv.rss_mib()
    return {"saves": len(waits), "rss_before_mib": before_rss and round(before_rss, 1),
            "rss_after_mib": after_rss and round(after_rss, 1),
            "save_to_pass_median_s": round(med(waits), 3) if waits else None}


def bench_serve(cfg: str, feeds: str, state: str, edit_file: str, feed_rel: str, marker_file: str,
                d: str, trials: int, restarts: int, ready_timeout: float, edit_timeout: float,
                spread: int = 0) -> dict:
    res: dict = {}
    logpath = os.path.join(d, "serve.log")
    rm(feeds, state)
    srv = Server(cfg, logpath)
    try:
        res["serve_cold_ready_s"] = srv.ready(feed_rel, current_marker(edit_file), ready_timeout)
        if res["serve_cold_ready_s"] is None:
            res["serve_error"] = f"serve not ready within {ready_timeout:.0f} s (see {logpath})"
            return res
        lat, misses = [], 0
        for _ in range(trials):
            time.sleep(0.3)  # let the watcher settle between saves
            t0 = time.monotonic()
            marker = edit_post.edit(edit_file, marker_file)
            end = t0 + edit_timeout
            seen = None
            while time.monotonic() < end:
                if feed_has(srv.base, feed_rel, marker):
                    seen = time.monotonic() - t0
                    break
                time.sleep(0.005)
            if seen is None:
                misses += 1
                if not lat and misses >= 2:  # serve does not pick edits up (yet)
                    break
            else:
                lat.append(seen)
        res["save_to_served_s"] = lat
        res["save_to_served_misses"] = misses
        if spread:
            res["spread"] = spread_saves(srv, os.path.dirname(edit_file), edit_file, spread,
                                         os.path.join(d, "spreadcount"), edit_timeout)
        res["service_peak_rss_mib"] = srv.hwm_mib()
    finally:
        srv.stop()
    warm = []
    for _ in range(restarts):
        srv = Server(cfg, logpath)
        try:
            warm.append(srv.ready(feed_rel, current_marker(edit_file), ready_timeout))
            hwm = srv.hwm_mib()
            if hwm and (res.get("service_peak_rss_mib") or 0) < hwm:
                res["service_peak_rss_mib"] = hwm
        finally:
            srv.stop()
    res["serve_warm_ready_runs_s"] = warm
    ok = [w for w in warm if w is not None]
    res["serve_warm_ready_s"] = med(ok) if len(ok) == len(warm) else None
    return res


def syndicator_paths(work: str, c: str, n: int) -> tuple[str, str, str, str]:
    """The run folder, feeds, state and config of Syndicator's runs at size n."""
    d = os.path.join(work, f"run{n}")
    os.makedirs(d, exist_ok=True)
    feeds, state = os.path.join(d, "feeds"), os.path.join(d, "state")
    cfg = write_config(os.path.join(d, "syndicator.yaml"), os.path.join(c, "raw"), feeds, state)
    return d, feeds, state, cfg


def syndicator_cold_job(work: str, c: str, n: int, a) -> tuple:
    compile_package()
    _, feeds, state, cfg = syndicator_paths(work, c, n)
    return syn(cfg, "build"), lambda: rm(feeds, state), a.runs


#: The same build without RFC 5005 archive pages, as the peers make none: their feeds hold the
#: newest items only (at 10,000 posts the pages are 1,809 of the 4,229 files a build writes).
NO_ARCHIVES = "syndicator, no archive pages"


def no_archives_paths(work: str, c: str, n: int) -> tuple[str, str, str]:
    d = os.path.join(work, f"run{n}", "no-archives")
    os.makedirs(d, exist_ok=True)
    feeds, state = os.path.join(d, "feeds"), os.path.join(d, "state")
    return feeds, state, write_config(os.path.join(d, "syndicator.yaml"), os.path.join(c, "raw"), feeds, state,
                                      "archive_page_size: 0\n")


def no_archives_job(work: str, c: str, n: int, a) -> tuple:
    feeds, state, cfg = no_archives_paths(work, c, n)
    return syn(cfg, "build"), lambda: rm(feeds, state), a.runs


def no_archives_record(work: str, c: str, n: int, cold: dict) -> dict:
    """The cold build's record, its output checked as the default build's is."""
    man = json.load(open(os.path.join(c, "manifest.json"), encoding="utf-8"))
    feeds, _, _ = no_archives_paths(work, c, n)
    rec = {"tool": NO_ARCHIVES, "n": n, "cold": cold,
           "validate": validate_sample(feeds, man, topic_slug(man["edit_target"]["topic"]))}
    log(f"  {NO_ARCHIVES}: cold {cold['wall_s']:.2f} s, valid={rec['validate']['ok']}")
    return rec


def bench_syndicator(work: str, c: str, n: int, a, cold: dict | None = None) -> dict:
    """Everything but the cold build when `cold` (measured with the peers') is given."""
    man = json.load(open(os.path.join(c, "manifest.json"), encoding="utf-8"))
    seeds = os.path.join(c, "raw")
    d, feeds, state, cfg = syndicator_paths(work, c, n)
    edit_file = os.path.join(seeds, man["edit_target"]["paths"]["raw"])
    edit_slug = topic_slug(man["edit_target"]["topic"])
    marker_file = os.path.join(d, "editcount")
    logf = open(os.path.join(d, "build.log"), "ab")
    rec: dict = {"tool": "syndicator", "n": n, "published": man["published"]}

    compile_package()
    if cold is None:
        log(f"syndicator N={n}: cold build x{a.runs}")
        cold = timed(syn(cfg, "build"), a.runs, prep=lambda: rm(feeds, state), logf=logf)
    rec["cold"] = cold  # the last cold build's output and state are still there
    rec["validate"] = validate_sample(feeds, man, edit_slug)
    log(f"  cold {rec['cold']['wall_s']:.2f} s, valid={rec['validate']['ok']} {rec['validate']['problems']}")
    log(f"syndicator N={n}: warm build (same feeds + state_dir) x{a.runs}")
    rec["warm"] = timed(syn(cfg, "build"), a.runs, logf=logf)
    rec["state_db"] = sorted(os.path.relpath(p, state) for p in glob.glob(os.path.join(state, "**", "*"),
                                                                           recursive=True) if os.path.isfile(p))
    log(f"  warm {rec['warm']['wall_s']:.2f} s; state files: {rec['state_db'] or 'none'}")

    log(f"syndicator N={n}: one-edit in-process rebuild x{a.edits}")
    icfg = write_config(os.path.join(d, "incr.yaml"), seeds, os.path.join(d, "incr-feeds"),
                        os.path.join(d, "incr-state"))
    rm(os.path.join(d, "incr-feeds"), os.path.join(d, "incr-state"))
    p = subprocess.run([PY, os.path.join(HERE, "incremental.py"), icfg, edit_file, "--edits", str(a.edits),
                        "--marker-file", marker_file], capture_output=True, text=True)
    try:
        rec["incremental"] = json.loads(p.stdout.strip().splitlines()[-1])
        log(f"  one edit median {rec['incremental']['median_s']:.3f} s, in output: "
            f"{rec['incremental']['edit_in_output']}")
    except (ValueError, IndexError):
        rec["incremental"] = {"error": p.stderr[-500:]}
        log(f"  one edit failed: {p.stderr[-300:]}")

    if not a.no_serve:
        log(f"syndicator N={n}: serve (cold start, {a.trials} save→served trials, {a.restarts} restarts)")
        rec["serve"] = bench_serve(cfg, feeds, state, edit_file, f"topics/{edit_slug}.json", marker_file, d,
                                   a.trials, a.restarts, a.ready_timeout, a.edit_timeout, a.spread)
        s = rec["serve"]
        log(f"  serve: cold ready {s.get('serve_cold_ready_s')}, warm ready {s.get('serve_warm_ready_s')}, "
            f"save→served {len(s.get('save_to_served_s', []))} ok / {s.get('save_to_served_misses')} missed, "
            f"peak RSS {s.get('service_peak_rss_mib')} {s.get('serve_error', '')}")
        if s.get("spread"):
            sp = s["spread"]
            log(f"  {sp['saves']} random saves: RSS {sp['rss_before_mib']} → {sp['rss_after_mib']} MiB, "
                f"save → pass median {sp['save_to_pass_median_s']}")
    return rec


# ------------------------------------------------------------------ peers
def find_pelican() -> str | None:
    for cand in (os.environ.get("PELICAN"), shutil.which("pelican"),
                 os.path.join(HERE, ".venv-pelican", "bin", "pelican"), "/tmp/venv-pelican/bin/pelican"):
        if cand and os.path.exists(cand) and os.access(cand, os.X_OK):
            return cand
    return None


def peer_commands(c: str, out_root: str) -> dict:
    cmds = {}
    hugo = os.environ.get("HUGO") or shutil.which("hugo")
    if hugo:
        src = os.path.join(c, "hugo")
        for name, conf in (("hugo", "hugo.toml"), ("hugo-atom", "hugo.toml,atom.toml")):
            out = os.path.join(out_root, name)
            cfg = ",".join(os.path.join(src, x) for x in conf.split(","))
            cmds[name] = ([hugo, "--quiet", "--source", src, "--config", cfg, "--destination", out,
                           "--cacheDir", os.path.join(c, "hugo-cache")], [out], "hugo")
    jekyll = os.environ.get("JEKYLL") or shutil.which("jekyll")
    if jekyll:
        src, out = os.path.join(c, "jekyll"), os.path.join(out_root, "jekyll")
        cmds["jekyll"] = ([jekyll, "build", "--config", os.path.join(src, "_config.yml"), "--source", src,
                           "--destination", out],
                          [out, os.path.join(src, ".jekyll-cache"), os.path.join(src, ".jekyll-metadata")],
                          "jekyll")
    pelican = find_pelican()
    if pelican:
        src, out = os.path.join(c, "pelican"), os.path.join(out_root, "pelican")
        cmds["pelican"] = ([pelican, os.path.join(src, "content"), "-s", os.path.join(src, "pelicanconf.py"),
                            "-o", out, "-q"], [out], "pelican")
    return cmds


def tool_version(name: str) -> str:
    try:
        if name.startswith("hugo"):
            return subprocess.run(["hugo", "version"], capture_output=True, text=True).stdout.split()[1]
        if name == "jekyll":
            return subprocess.run(["jekyll", "--version"], capture_output=True, text=True).stdout.split()[1]
        if name == "pelican":
            return subprocess.run([find_pelican(), "--version"], capture_output=True, text=True).stdout.strip()
    except (OSError, IndexError):
        pass
    return "?"


def peer_jobs(work: str, c: str, n: int, a) -> dict[str, tuple]:
    """name -> (cmd, wipe, validator name, runs) of the installed peers to run at size n, or
    name -> None when skipped."""
    subprocess.run([PY, os.path.join(HERE, "setup_sites.py"), c, "--peers-dir", os.path.join(HERE, "peers")],
                   check=True)
    out_root = os.path.join(work, f"run{n}", "peers")
    wanted = a.peer_list.split(",")
    jobs: dict[str, tuple] = {}
    for name, (cmd, wipe, vpeer) in peer_commands(c, out_root).items():
        if name not in wanted:
            continue
        if name == "jekyll" and n > a.jekyll_max:
            jobs[name] = None
            continue
        jobs[name] = (cmd, wipe, vpeer, 1 if (name == "jekyll" and n >= 5000) else a.runs)
    return jobs


def bench_peers(work: str, c: str, n: int, a, jobs: dict[str, tuple], colds: dict[str, dict]) -> list[dict]:
    """Records of the peers' cold builds (measured already in `colds`, or here) and their check."""
    logf = open(os.path.join(work, f"run{n}", "peers.log"), "ab")
    recs = []
    for name, job in jobs.items():
        if job is None:
            recs.append({"tool": name, "n": n, "skipped": f"N > --jekyll-max {a.jekyll_max} (quadratic)"})
            continue
        cmd, wipe, vpeer, runs = job
        r = colds.get(name)
        if r is None:
            log(f"{name} N={n}: cold build x{runs}")
            r = timed(cmd, runs, prep=lambda w=wipe: rm(*w), logf=logf)
        v = subprocess.run([PY, os.path.join(HERE, "validate_feeds.py"), "--peer", vpeer, "--out", wipe[0],
                            "--manifest", os.path.join(c, "manifest.json")], capture_output=True, text=True)
        log(f"  {name} {r['wall_s']:.2f} s rc={r['rcs']} valid={v.returncode == 0}")
        recs.append({"tool": name, "n": n, "cold": r, "valid": v.returncode == 0,
                     "validate_out": v.stdout.strip()[-400:], "version": tool_version(name)})
    return recs


# ------------------------------------------------------------------ table
def table(results: list[dict]) -> str:
    head = ("| N | tool | cold build wall, median [min–max] | CPU | peak RSS | Syndicator ÷ peer (without archive "
            "pages) "
            "| warm restart: build / serve→healthz | one-edit rebuild (median) | save→served median / p99 "
            "| service peak RSS | feeds valid |")
    lines = [head, "|---:|---|---|---:|---:|---:|---|---:|---|---:|---|"]
    by_n: dict[int, list[dict]] = {}
    for r in results:
        by_n.setdefault(r["n"], []).append(r)
    for n in sorted(by_n):
        rows = by_n[n]
        syn_rec = next((r for r in rows if r["tool"] == "syndicator"), None)
        syn_wall = syn_rec["cold"]["wall_s"] if syn_rec else None
        bare = next((r for r in rows if r["tool"] == NO_ARCHIVES), None)
        bare_wall = bare["cold"]["wall_s"] if bare else None
        for r in rows:
            if r.get("skipped"):
                lines.append(f"| {n:,} | {r['tool']} | skipped: {r['skipped']} | | | | | | | | |")
                continue
            cold = r["cold"]
            bad = "" if cold["rcs"] == [0] else f" rc={cold['rcs']}"
            wall = f"{fs(cold['wall_s'])} [{cold['wall_min']:.2f}–{cold['wall_max']:.2f}]{bad}"
            if r["tool"] == "syndicator":
                s = r.get("serve", {})
                inc = r.get("incremental", {})
                lat = s.get("save_to_served_s") or []
                miss = s.get("save_to_served_misses") or 0
                sts = (f"{fs(med(lat))} / {fs(p99(lat))} (n={len(lat)}"
                       + (f", {miss} not served within the timeout" if miss else "") + ")" if lat else
                       ("n/a (edit not served)" if "save_to_served_s" in s else "n/a"))
                warm = f"{fs(r['warm']['wall_s'])} / {fs(s.get('serve_warm_ready_s'))}"
                if not r.get("state_db"):
                    warm += " (build keeps no state)"
                incr = fs(inc.get("median_s")) + ("" if inc.get("edit_in_output", True) else " (edit missing!)")
                lines.append(f"| {n:,} | **Syndicator** | **{wall}** | {fs(cold['cpu_s'])} | "
                             f"{fs(cold['maxrss_mib'], 'MiB')} | 1.00 | {warm} | {incr} | {sts} | "
                             f"{fs(s.get('service_peak_rss_mib'), 'MiB')} | "
                             f"{'✓' if r['validate']['ok'] else '✗ ' + '; '.join(r['validate']['problems'])} |")
            elif r["tool"] == NO_ARCHIVES:
                lines.append(f"| {n:,} | Syndicator, no archive pages | {wall} | {fs(cold['cpu_s'])} | "
                             f"{fs(cold['maxrss_mib'], 'MiB')} | – | – | – | – | – | "
                             f"{'✓' if r['validate']['ok'] else '✗ ' + '; '.join(r['validate']['problems'])} |")
            else:
                ratio = f"{syn_wall / cold['wall_s']:.2f}" if syn_wall and cold["wall_s"] else "n/a"
                if bare_wall and cold["wall_s"]:
                    ratio += f" ({bare_wall / cold['wall_s']:.2f})"
                lines.append(f"| {n:,} | {r['tool']} {r.get('version', '')} | {wall} | {fs(cold['cpu_s'])} | "
                             f"{fs(cold['maxrss_mib'], 'MiB')} | {ratio} | – | – | – | – | "
                             f"{'✓' if r.get('valid') else '✗'} |")
    return "\n".join(lines)


def run_real(a) -> int:
    import real
    tools = {"syn": syn, "write_config": write_config, "rm": rm, "interleaved": interleaved,
             "timed": timed, "compile_package": compile_package}
    try:
        rec = real.run(a.work, a.runs, tools, log)
    finally:
        empty_trash()
    with open(os.path.join(a.work, "results.jsonl"), "a", encoding="utf-8") as f:
        f.write(json.dumps({"started": dt.datetime.now(dt.UTC).isoformat(), "real": rec}) + "\n")
    out = real.table(rec) + f"\n\n{platform.platform()}; {os.cpu_count()} CPUs; Python {platform.python_version()}\n"
    with open(os.path.join(a.work, "real.md"), "w", encoding="utf-8") as f:
        f.write(out)
    print(out)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,100000",
                    help="comma-separated post counts (default 1000,10000,100000; 100,000 takes ~30 min)")
    ap.add_argument("--peers", action="store_true", help="also time the installed peers on the same corpus")
    ap.add_argument("--peer-list", default="hugo,hugo-atom,jekyll,pelican")
    ap.add_argument("--jekyll-max", type=int, default=10000, help="skip Jekyll above this N (it is quadratic)")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per cold/warm build (median reported)")
    ap.add_argument("--edits", type=int, default=7, help="one-edit in-process rebuilds (median reported)")
    ap.add_argument("--trials", type=int, default=20, help="save→served trials")
    ap.add_argument("--spread", type=int, default=200,
                    help="saves of random posts after the save→served trials, before the service's RSS is read")
    ap.add_argument("--restarts", type=int, default=3, help="warm serve restarts (median reported)")
    ap.add_argument("--ready-timeout", type=float, default=600.0, help="max seconds for serve to become ready")
    ap.add_argument("--edit-timeout", type=float, default=5.0, help="max seconds per save→served trial")
    ap.add_argument("--no-serve", action="store_true", help="skip the serve measurements")
    ap.add_argument("--real", action="store_true",
                    help="only the real site (../shared/corpus-real/) beside Hugo, cold and repeat builds")
    ap.add_argument("--work", default=os.path.join(HERE, "out"), help="corpora and outputs (default bench/out)")
    a = ap.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in a.sizes.split(",") if s]
    os.makedirs(a.work, exist_ok=True)
    if a.real:
        return run_real(a)
    results = []
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        for n in sizes:
            c = corpus(a.work, n, a.peers)
            peers = peer_jobs(a.work, c, n, a) if a.peers else {}
            jobs = {"syndicator": syndicator_cold_job(a.work, c, n, a),
                    NO_ARCHIVES: no_archives_job(a.work, c, n, a)}
            jobs.update({name: (job[0], lambda w=job[1]: rm(*w), job[3]) for name, job in peers.items() if job})
            log(f"N={n}: cold builds, {a.runs} rounds of {', '.join(jobs)}")
            colds = interleaved(jobs)
            results.append(bench_syndicator(a.work, c, n, a, colds.pop("syndicator")))
            results.append(no_archives_record(a.work, c, n, colds.pop(NO_ARCHIVES)))
            if a.peers:
                results += bench_peers(a.work, c, n, a, peers, colds)
    finally:
        empty_trash()
    with open(os.path.join(a.work, "results.jsonl"), "a", encoding="utf-8") as f:
        for r in results:
            f.write(json.dumps({"started": started, **r}, ensure_ascii=False) + "\n")
    import yaml
    env = (f"{started}; {platform.platform()}; {os.cpu_count()} CPUs; Python {platform.python_version()}; "
           f"PyYAML libyaml={getattr(yaml, '__with_libyaml__', False)}; cold/warm = median of {a.runs} "
           f"(Jekyll at N ≥ 5000: 1 run); one edit = median of {a.edits}; save→served = {a.trials} trials, "
           f"{a.edit_timeout:.0f} s timeout each; service peak RSS = after those and {a.spread} saves of random posts")
    out = table(results) + "\n\n" + env + "\n"
    with open(os.path.join(a.work, "table.md"), "w", encoding="utf-8") as f:
        f.write(out)
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
