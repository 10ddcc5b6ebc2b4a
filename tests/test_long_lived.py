"""What a service keeps for good is left out of cyclic collections (parallel.keep_long_lived),
and so is what the command's imports make, with the real collector."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import weakref
from collections.abc import Callable
from pathlib import Path

from syndicator import parallel
from syndicator.pipeline import Builder, BuildResult
from tests.regen_golden import golden_settings


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


def test_kept_objects_are_frozen_and_a_later_keep_frees_the_cycles_let_go_since() -> None:
    try:
        gc.collect()
        node = Node()
        gone = weakref.ref(node)
        parallel.keep_long_lived(collect=False)
        assert gc.get_freeze_count() > 0
        del node
        gc.collect()
        assert gone() is not None  # frozen: a full collection no longer walks it
        parallel.keep_long_lived(collect=True)  # (a new Builder replaced the one before)
        assert gone() is None
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()


#: Runs the `syndicator` command's entry point as the installed script does, counting the
#: collections made while it imports and what is frozen once it runs.
_PROBE = """
import gc, json, sys
import click
counts = {"collections": 0}
gc.callbacks.append(lambda phase, info: phase == "stop" and counts.update(collections=counts["collections"] + 1))
sys.argv = ["syndicator", "config"]
original = click.echo
def echo(*args, **kwargs):  # the first line the command prints: its imports are done by then
    counts.setdefault("at_first_output", dict(counts, frozen=gc.get_freeze_count(), enabled=gc.isenabled()))
    return original(*args, **kwargs)
click.echo = echo
from syndicator.__main__ import run
try:
    run()
except SystemExit:
    pass
sys.stderr.write(json.dumps(counts))
"""


def test_the_command_freezes_what_its_imports_make_and_collects_nothing_meanwhile() -> None:
    """~55,000 objects the imports make live as long as the process: collecting during the
    imports finds nothing, and each full collection after them would walk them all again."""
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stderr.strip().splitlines()[-1])["at_first_output"]
    assert seen["collections"] == 0
    assert seen["frozen"] > 20_000
    assert seen["enabled"] is True


def test_a_first_pass_collects_nothing_and_a_long_lived_builder_keeps_what_it_made_frozen(tmp_path: Path) -> None:
    """A Builder's first pass (a start: every record loaded, collected and planned) makes
    objects that all live on: at 100,000 posts a restart spent 0.75 s of its 3.7 s catch-up
    in collections that freed nothing. None runs during it, and a service's Builder leaves
    what it made out of the collections that follow (the first of them would walk it all)."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for i in range(500):
        (seeds / f"post-{i}.md").write_text(
            f"---\ntitle: Post {i}\ndate: 2024-01-{i % 28 + 1:02d}\ntags: [t{i % 7}, u{i % 3}]\n---\n"
            + f"Body {i}, with some words. " * 20 + "\n", encoding="utf-8")
    settings = golden_settings(seeds, tmp_path / "feeds", tmp_path / "var")
    stops: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "stop":
            stops.append(info["generation"])

    def counted(run: Callable[[], BuildResult]) -> tuple[BuildResult, int]:
        gc.collect()  # (each from an empty young generation)
        stops.clear()
        return run(), len(stops)

    def first_pass(builder: Builder) -> Callable[[], BuildResult]:
        scanned = builder.scan()  # (as a service's start has it: the scan is made before)
        return lambda: builder.build(scanned)

    gc.callbacks.append(count)
    try:
        gc.unfreeze()
        first, plain = counted(first_pass(Builder(settings)))
        plain_frozen = gc.get_freeze_count()
        kept, long_lived = counted(first_pass(Builder(settings, long_lived=True)))
        kept_frozen = gc.get_freeze_count()
        gc.unfreeze()
        checked, check = counted(Builder(settings).check)  # (`syndicator check`: all read, none published)
    finally:
        gc.callbacks.remove(count)
        gc.unfreeze()
    assert first.posts_published == kept.posts_published == 500
    # the code before made dozens of collections in that pass; one comes once they resume
    assert plain <= 1
    assert plain_frozen == 0  # nothing frozen by a Builder that is let go
    assert long_lived == 0 and kept_frozen > 10_000
    assert checked.posts_read == 500 and check <= 1  # (the code before: several)
