"""A cache bounded by bytes, and by count if asked: entries in the order they were kept (or last
touched), the oldest out first. `serve` keeps three: the answers it replays (server.Replay), the
published files it answers from (web.files) and the custom feeds it rendered (web.custom); each
guards its own with a lock of its own."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Bounded(Generic[K, V]):
    """At most `max_bytes` of entries (each `size(value)` bytes) and `max_entries` of them; an
    entry larger than the whole bound is not kept."""

    def __init__(self, max_bytes: int, size: Callable[[V], int], max_entries: int | None = None) -> None:
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._size = size
        self._entries: OrderedDict[K, V] = OrderedDict()
        #: bytes held
        self.bytes = 0
        # (a lookup is the hot path of every replayed answer: the dict's own method, no call of ours)
        self.get: Callable[[K], V | None] = self._entries.get

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def __iter__(self) -> Iterator[K]:
        return iter(list(self._entries))

    def items(self) -> list[tuple[K, V]]:
        """The entries, oldest first (a copy: the caller may pop while it walks them)."""
        return list(self._entries.items())

    def touch(self, key: K) -> None:
        """`key` (if kept) is the most recently used from now on."""
        if key in self._entries:
            self._entries.move_to_end(key)

    def put(self, key: K, value: V) -> None:
        """Keep `value` under `key` (replacing what was), the oldest out first to make room."""
        self.pop(key)
        size = self._size(value)
        if size > self.max_bytes:
            return
        while self._entries and ((self.max_entries is not None and len(self._entries) >= self.max_entries)
                                 or self.bytes + size > self.max_bytes):
            self.bytes -= self._size(self._entries.popitem(last=False)[1])
        self._entries[key] = value
        self.bytes += size

    def pop(self, key: K) -> V | None:
        value = self._entries.pop(key, None)
        if value is not None:
            self.bytes -= self._size(value)
        return value

    def clear(self) -> None:
        self._entries.clear()
        self.bytes = 0
