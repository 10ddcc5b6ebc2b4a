"""The service's allocator setting (syndicator/allocator.py): after a pass-like burst of large
blocks among small long-lived objects, the memory is the system's again; without the setting
(the control) glibc keeps it, so the test can tell the two apart."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: A pass in miniature: a 1 MiB block freed (what raises glibc's threshold), then 150 MiB of
#: 200 KiB blocks, each followed by a small object that outlives them (as the catalog's do),
#: all freed but the small ones. Prints VmRSS (KiB) before and after. The small objects are
#: 1 KiB: above 512 bytes CPython asks malloc rather than its own arenas, so they sit between
#: the large blocks in glibc's heap (with 300 bytes nothing did, and whether glibc kept the
#: freed blocks depended on what else happened to lie at the top of its heap).
_BURST = """
import json, sys
from syndicator import allocator
def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
if sys.argv[1] == "set":
    assert allocator.keep_large_blocks_apart()
first = bytearray(1 << 20)
del first
before = rss()
large, small = [], []
for i in range(750):
    large.append(bytearray(200 * 1024))
    small.append(bytearray(1024))
del large
print(json.dumps([before, rss()]))
"""


def _grown(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", _BURST, mode], capture_output=True, text=True, check=True).stdout
    before, after = json.loads(out)
    return int(after - before)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_large_blocks_are_given_back() -> None:
    kept = _grown("unset")
    given_back = _grown("set")
    assert kept > 100 * 1024, f"control: glibc kept only {kept} KiB (the test cannot tell the settings apart)"
    assert given_back < 20 * 1024, f"{given_back} KiB still held after the large blocks were freed"



#: Small blocks: 120 MiB of 1 KiB strings, one in 64 kept (as a pass's objects, some of which
#: outlive it), the rest freed. Prints VmRSS (KiB) before the burst, after the free, and after
#: allocator.trim() when asked.
_SMALL = """
import json, sys
from syndicator import allocator
def rss():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
before = rss()
made = [str(i).ljust(1000) for i in range(120_000)]
kept = made[::64]
del made
freed = rss()
if sys.argv[1] == "trim":
    assert allocator.trim()
print(json.dumps([before, freed, rss()]))
"""


def _small(mode: str) -> tuple[int, int]:
    out = subprocess.run([sys.executable, "-c", _SMALL, mode], capture_output=True, text=True, check=True).stdout
    before, freed, after = json.loads(out)
    return int(freed - before), int(after - before)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim")
def test_the_free_pages_small_blocks_leave_are_given_back_by_a_trim() -> None:
    held, still = _small("none")
    assert held > 80 * 1024 and abs(still - held) < 1024, f"control: {held} KiB held after the free, {still} KiB later"
    _, trimmed = _small("trim")
    assert trimmed < 20 * 1024, f"{trimmed} KiB still held after the trim"
