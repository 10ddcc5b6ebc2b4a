"""`bench/run.py --real`: a real news site (../shared/corpus-real/, 4,958 items whose headers
average 27 KB) built by Syndicator and by Hugo side by side in one run, cold builds in rounds.

Hugo reads the same files (hardlinked under its content/): its bench site (peers/hugo) plus
`[frontmatter] date = ["publishedDateTime", ":default"]`, taxonomy `topics`, RSS per term,
50 items. Without Hugo (apt install hugo, or HUGO=path) the run says so and times Syndicator
alone. After the cold builds: Syndicator's repeat build over its own output and state
(unchanged folder), then after one post's title changes.
"""
from __future__ import annotations

import glob
import os
import shutil
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
ARCHIVE = os.path.join(HERE, "..", "..", "shared", "corpus-real", "everyday-cc-azure.tar.xz")
HUGO_DATES = '[frontmatter]\n  date = ["publishedDateTime", ":default"]\n'


def unpack(work: str, archive: str) -> str:
    """The site unpacked once under work/real/src (outside the repository's tracked files)."""
    src = os.path.join(work, "real", "src")
    stamp = os.path.join(src, ".unpacked")
    if not os.path.exists(stamp) or open(stamp).read() != str(os.path.getmtime(archive)):
        shutil.rmtree(src, ignore_errors=True)
        os.makedirs(src)
        with tarfile.open(archive) as t:
            t.extractall(src, filter="data")
        with open(stamp, "w") as f:
            f.write(str(os.path.getmtime(archive)))
    return src


def hugo_site(work: str, src: str) -> str:
    site = os.path.join(work, "real", "hugo")
    if not os.path.isdir(os.path.join(site, "content")):
        os.makedirs(os.path.join(site, "content"))
        for name in ("_news", "_newsletters"):
            dest = os.path.join(site, "content", name.lstrip("_"))
            shutil.copytree(os.path.join(src, name), dest, copy_function=os.link)
    shutil.copy(os.path.join(HERE, "peers", "hugo", "hugo.toml"), site)
    with open(os.path.join(site, "real.toml"), "w") as f:
        f.write(HUGO_DATES)
    return site


def run(work: str, runs: int, tools: dict, log, archive: str = ARCHIVE) -> dict:
    """tools: the run.py helpers (syn, write_config, rm, interleaved, timed, compile_package)."""
    if not os.path.exists(archive):
        log(f"--real: {archive} not found; skipped")
        return {"skipped": f"{archive} not found"}
    src = unpack(work, archive)
    d = os.path.join(work, "real")
    feeds, state = os.path.join(d, "feeds"), os.path.join(d, "state")
    cfg = tools["write_config"](os.path.join(d, "syndicator.yaml"), src, feeds, state)
    rm = tools["rm"]
    tools["compile_package"]()
    jobs = {"syndicator": (tools["syn"](cfg, "build"), lambda: rm(feeds, state), runs)}
    hugo = os.environ.get("HUGO") or shutil.which("hugo")
    if hugo:
        site = hugo_site(work, src)
        out = os.path.join(d, "hugo-out")
        jobs["hugo"] = ([hugo, "--quiet", "--source", site, "--config",
                         f"{site}/hugo.toml,{site}/real.toml", "--destination", out,
                         "--cacheDir", os.path.join(d, "hugo-cache")], lambda: rm(out), runs)
    else:
        log("--real: Hugo is not installed (apt install hugo, or HUGO=path): Syndicator alone")
    log(f"real site: cold builds, {runs} rounds of {', '.join(jobs)}")
    rec: dict = {"posts": len(glob.glob(os.path.join(src, "_*", "*"))), "cold": tools["interleaved"](jobs)}
    logf = open(os.path.join(d, "build.log"), "ab")
    rec["repeat"] = tools["timed"](tools["syn"](cfg, "build"), runs, logf=logf)
    edit = sorted(glob.glob(os.path.join(src, "_news", "*.md")))[-1]
    original = open(edit, encoding="utf-8").read()

    def retitle() -> None:
        text = open(edit, encoding="utf-8").read()
        with open(edit, "w", encoding="utf-8") as f:
            f.write(text.replace("\ntitle: ", "\ntitle: x", 1))
    try:
        rec["one_edit"] = tools["timed"](tools["syn"](cfg, "build"), runs, prep=retitle, logf=logf)
    finally:
        with open(edit, "w", encoding="utf-8") as f:
            f.write(original)
    return rec


def table(rec: dict) -> str:
    if "skipped" in rec:
        return f"real site: skipped ({rec['skipped']})"
    cold = rec["cold"]
    syn = cold["syndicator"]
    lines = [f"Real site ({rec['posts']:,} files, ../shared/corpus-real/), cold build, median of "
             f"{len(syn['runs'])} interleaved rounds",
             "", "| tool | wall [min–max] | CPU | peak RSS | Syndicator ÷ tool: wall | CPU |",
             "|---|---|---:|---:|---:|---:|"]
    for name, r in cold.items():
        lines.append(f"| {name} | {r['wall_s']:.2f} s [{r['wall_min']:.2f}–{r['wall_max']:.2f}] | "
                     f"{r['cpu_s']:.2f} s | {r['maxrss_mib']:.0f} MiB | {syn['wall_s'] / r['wall_s']:.2f} | "
                     f"{syn['cpu_s'] / r['cpu_s']:.2f} |")
    if "hugo" not in cold:
        lines.append("| hugo | not installed | | | | |")
    for key, what in (("repeat", "repeat build, unchanged folder"), ("one_edit", "repeat build, one title changed")):
        r = rec[key]
        lines.append(f"\n{what}: {r['wall_s']:.2f} s wall, {r['cpu_s']:.2f} s CPU "
                     f"({r['wall_s'] / syn['wall_s']:.0%} of Syndicator's cold build)")
    return "\n".join(lines)


