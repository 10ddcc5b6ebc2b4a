"""What a service keeps for good is left out of cyclic collections (parallel.keep_long_lived),
with the real collector."""

from __future__ import annotations

import gc
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
