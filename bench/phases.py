#!/usr/bin/env python3
"""Where a cold build's time goes: wraps the pipeline's functions with timers (no profiler
overhead on the rest) and runs one Builder.build() in process on a fresh feeds dir.

  phases.py SEEDS_DIR [--work DIR] [--repeat 1]

Inclusive times (a phase contains the ones indented under it). Nothing in syndicator/ is
changed: the wrappers are installed on the module attributes at run time.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from syndicator import markup, plaintext, slugs, sources
from syndicator.config import load_settings
from syndicator.pipeline import Builder, collect, read, track
from syndicator.pipeline import feeds as feedplan
from syndicator.publishers import directory as output
from syndicator.render import RENDERERS, Renderer, pages
from syndicator.sources import frontmatter

T: dict[str, float] = defaultdict(float)
N: dict[str, int] = defaultdict(int)


def wrap(mod, name: str, label: str) -> None:
    fn = getattr(mod, name)

    def timed(*a, **k):
        t0 = time.thread_time()
        try:
            return fn(*a, **k)
        finally:
            T[label] += time.thread_time() - t0
            N[label] += 1

    setattr(mod, name, timed)


ROWS = [  # (label, indent)
    ("build (total)", 0),
    ("scan (stat every file)", 1),
    ("refresh: read_one (read + parse + normalize)", 1),
    ("read file bytes", 2),
    ("YAML front matter (frontmatter.load_front)", 2),
    ("normalize", 2),
    ("Markdown (markup.markdown_to_html)", 3),
    ("sanitise (markup.sanitize: nh3)", 3),
    ("language guess (plaintext.guess_language)", 3),
    ("slugify (slugs.slug)", 3),
    ("collect + feeds.plan", 1),
    ("render feeds (feedgen RSS)", 1),
    ("render feeds (feedgen Atom)", 1),
    ("render feeds (JSON Feed)", 1),
    ("render pages (post pages, index, OPML)", 1),
    ("write_tree", 1),
    ("gzip twins (output.gzip_bytes)", 2),
    ("atomic_write (open/write/utime/rename)", 2),
    ("same_bytes (compare with disk)", 2),
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("seeds")
    ap.add_argument("--work", default=None)
    ap.add_argument("--gc", choices=["on", "off", "freeze"], default="on",
                    help="off: gc.disable() for the build; freeze: gc.freeze() after imports and a "
                         "high gen-0 threshold (what a fix in the CLI/daemon could do)")
    a = ap.parse_args(argv)
    import gc
    if a.gc == "off":
        gc.disable()
    elif a.gc == "freeze":
        gc.freeze()
        gc.set_threshold(100_000, 50, 100)
    work = a.work or tempfile.mkdtemp(prefix="syn-phases-")
    shutil.rmtree(os.path.join(work, "feeds"), ignore_errors=True)
    shutil.rmtree(os.path.join(work, "state"), ignore_errors=True)
    settings = load_settings(None, env={}, overrides={
        "seeds_dir": Path(a.seeds), "feeds_dir": Path(work) / "feeds", "state_dir": Path(work) / "state",
        "base_url": "https://feeds.example.org/"})

    wrap(Builder, "scan", "scan (stat every file)")
    wrap(track, "read_one", "refresh: read_one (read + parse + normalize)")
    wrap(sources, "read_bytes", "read file bytes")
    wrap(frontmatter, "load_front", "YAML front matter (frontmatter.load_front)")
    wrap(read, "normalize", "normalize")
    wrap(markup, "markdown_to_html", "Markdown (markup.markdown_to_html)")
    wrap(markup, "sanitize", "sanitise (markup.sanitize: nh3)")
    wrap(plaintext, "guess_language", "language guess (plaintext.guess_language)")
    wrap(slugs, "slug", "slugify (slugs.slug)")
    wrap(collect.Collection, "apply", "collect + feeds.plan")
    wrap(feedplan.Planner, "update", "collect + feeds.plan")
    for fmt, label in (("rss", "feedgen RSS"), ("atom", "feedgen Atom"), ("json", "JSON Feed")):
        r = RENDERERS[fmt]
        holder = type("H", (), {"f": staticmethod(r.render)})
        wrap(holder, "f", f"render feeds ({label})")
        RENDERERS[fmt] = Renderer(holder.f, r.media_type, r.label)
    for name in ("post_page", "index", "opml"):
        wrap(pages, name, "render pages (post pages, index, OPML)")
    wrap(output.DirectoryPublisher, "publish", "write_tree")
    wrap(output, "gzip_bytes", "gzip twins (output.gzip_bytes)")
    wrap(output, "atomic_write", "atomic_write (open/write/utime/rename)")
    wrap(output, "same_bytes", "same_bytes (compare with disk)")

    t0 = time.thread_time()
    res = Builder(settings).build()
    T["build (total)"] = time.thread_time() - t0
    total = T["build (total)"]
    import gc as _gc
    print(f"gc={a.gc}; collections per generation: {[st['collections'] for st in _gc.get_stats()]}")
    print(f"cold build of {a.seeds}: {res.posts_read} posts, {len(res.feeds)} feeds x 3 formats, "
          f"{len(res.written)} files written, {total:.2f} s in process (thread CPU time: robust to other load)")
    print(f"{'phase':56s} {'seconds':>8s} {'share':>6s} {'calls':>7s}")
    for label, ind in ROWS:
        print(f"{'  ' * ind + label:56s} {T[label]:8.3f} {100 * T[label] / total:5.1f}% {N[label] or 1:7d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
