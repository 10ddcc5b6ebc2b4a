"""The one bounded cache `serve` keeps its replayed answers, files and custom feeds in."""

from __future__ import annotations

from syndicator.bounded import Bounded


def test_bytes_and_count_bound_it_oldest_out_first_and_a_touch_makes_an_entry_new() -> None:
    cache: Bounded[str, bytes] = Bounded(10, len, max_entries=3)
    for key in "abc":
        cache.put(key, b"xx")
    cache.touch("a")
    cache.put("d", b"xx")  # the count: the oldest untouched one goes
    assert list(cache) == ["c", "a", "d"] and cache.bytes == 6
    cache.put("e", b"xxxxxx")  # the bytes: the oldest goes to make room, no more than that
    assert list(cache) == ["a", "d", "e"] and cache.bytes == 10
    cache.put("d", b"x")  # a replaced entry is counted once, as the newest
    assert list(cache) == ["a", "e", "d"] and cache.bytes == 9
    cache.put("f", b"x" * 11)  # larger than the whole bound: not kept, and nothing else goes for it
    assert "f" not in cache and list(cache) == ["a", "e", "d"]
    assert cache.pop("e") == b"xxxxxx" and cache.pop("e") is None and cache.bytes == 3
    cache.clear()
    assert len(cache) == 0 and cache.bytes == 0 and cache.get("d") is None
