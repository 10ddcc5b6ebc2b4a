"""How the service's C allocator hands memory back: the one module that calls glibc's mallopt
and malloc_trim.

glibc serves a request of 128 KiB or more with its own mmap, given back to the system when
freed, but after the first such block is freed it raises that threshold to the block's size
(up to 32 MiB) and from then on carves large blocks out of the heap. A long-lived service
builds a few large blocks on every pass (the JSON of a 50-item feed, a bulk read of the
state, the lists of a 100,000-post catalog): out of the heap, each leaves a hole that keeps
the heap's top pages resident long after the pass. Fixing the threshold keeps every large
block in its own mapping, so the memory a pass took is the system's again when it ends.

Small blocks stay in the arenas: the objects a pass made and freed (the entries of the feeds
and archive pages of a save), or a request thread's reads and compressions, leave free pages
in the middle of an arena that glibc keeps resident. `trim` gives them back after a pass.
"""

from __future__ import annotations

import ctypes
import logging
from typing import Any

log = logging.getLogger("syndicator")

#: mallopt's parameter number for the mmap threshold (malloc.h: M_MMAP_THRESHOLD).
M_MMAP_THRESHOLD = -3
#: Blocks of at least this many bytes get a mapping of their own (glibc's starting value,
#: which setting it keeps from moving).
LARGE_BLOCK = 128 * 1024


def keep_large_blocks_apart(threshold: int = LARGE_BLOCK) -> bool:
    """Fix the mmap threshold at `threshold` bytes; False where the C library is not glibc
    (musl, macOS: nothing to do, their large blocks are given back anyway)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    if mallopt(M_MMAP_THRESHOLD, threshold) != 1:  # mallopt returns 1 on success
        log.debug("mallopt(M_MMAP_THRESHOLD, %d) refused", threshold)
        return False
    return True


def _malloc_trim() -> Any:
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    trim.argtypes = (ctypes.c_size_t,)
    trim.restype = ctypes.c_int
    return trim


_MALLOC_TRIM = _malloc_trim()


def trim() -> bool:
    """Give the arenas' free pages back to the system (tens of microseconds); True when some
    were, False also where the C library has no malloc_trim."""
    return bool(_MALLOC_TRIM(0)) if _MALLOC_TRIM is not None else False
