"""What a service keeps for good is left out of cyclic collections (parallel.keep_long_lived),
and so is what the command's imports make, with the real collector."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import weakref

from syndicator import parallel


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
