"""Items made once a publish: a post is an item of several documents of one build (the all
feed, its topics' feeds, their archive pages), and making its item is most of a document's
cost. Inside `shared_items()` a renderer keeps each item it makes, by the post and what else
the item depends on, for the documents rendered after it, until the publish ends.

Bounded: a build renders documents in the order of their items' dates (plan.py), so a post's
documents come close together; more entries cost memory (a kept lxml element keeps its whole
document alive) for few more hits.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from typing import Any

from syndicator.model import Post

#: items kept at most (by all renderers together)
LIMIT = 3000

#: (id of the post, *key) -> (the post, the item); None outside `shared_items`
_KEPT: OrderedDict[tuple[Hashable, ...], tuple[Post, Any]] | None = None


@contextmanager
def shared_items() -> Iterator[None]:
    global _KEPT
    outer, _KEPT = _KEPT, OrderedDict()
    try:
        yield
    finally:
        _KEPT = outer


def active() -> bool:
    return _KEPT is not None


def kept(post: Post, *key: Hashable) -> Any | None:
    """The item kept for `post` and `key`, or None."""
    if _KEPT is None:
        return None
    k = (id(post), *key)
    hit = _KEPT.get(k)
    if hit is None or hit[0] is not post:  # held with its post, so the id is not reused meanwhile
        return None
    _KEPT.move_to_end(k)
    return hit[1]


def keep(post: Post, item: Any, *key: Hashable) -> None:
    if _KEPT is None:
        return
    _KEPT[(id(post), *key)] = (post, item)
    if len(_KEPT) > LIMIT:
        _KEPT.popitem(last=False)
