"""Items made once a publish: a post is an item of several documents of one build (the all
feed, its topics' feeds, their archive pages), and making its item is most of a document's
cost. Inside `shared_items()` a renderer keeps each item it makes, by the post and what else
the item depends on, for the documents rendered after it, until the publish ends.

Bounded: a build renders documents in the order of their items' dates (plan.py), so a post's
documents come close together. 10,000 items hold nearly every repeat at 10,000 posts
(bench/gen_corpus.py: 21,000 entries made for 65,000 uses, against 31,000 with 3,000 kept);
serialized entries are counted by their size too, so long posts cannot make it unbounded.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from typing import Any

from syndicator.model import Post

#: items kept at most (by all renderers together), and bytes of serialized items
LIMIT = 10_000
BYTES = 32 << 20

#: (id of the post, *key) -> (the post, the item); None outside `shared_items`
_KEPT: OrderedDict[tuple[Hashable, ...], tuple[Post, Any]] | None = None
_size = 0  # bytes of the kept items that are bytes


@contextmanager
def shared_items() -> Iterator[None]:
    global _KEPT, _size
    (outer, outer_size), _KEPT, _size = (_KEPT, _size), OrderedDict(), 0
    try:
        yield
    finally:
        _KEPT, _size = outer, outer_size


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
    global _size
    if _KEPT is None:
        return
    old = _KEPT.pop((id(post), *key), None)
    _size += _bytes(item) - (_bytes(old[1]) if old else 0)
    _KEPT[(id(post), *key)] = (post, item)
    while _KEPT and (len(_KEPT) > LIMIT or _size > BYTES):
        _size -= _bytes(_KEPT.popitem(last=False)[1][1])


def _bytes(item: Any) -> int:
    return len(item) if isinstance(item, bytes) else 0
