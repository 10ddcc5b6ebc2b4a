"""A web node's copy of the published bytes, on its own disk, each file named by its ETag.

A web node must keep answering with a whole generation while PostgreSQL is away, so it cannot
fetch bytes on demand; holding them all in memory cost the published site's size twice over
(with gzip), 2.7 GB at 100,000 posts. Here they are files instead, and memory holds what names
them (web/published.py) plus a bounded cache of the ones served.

A name is the hash the ETag is made of, so a name always holds the same bytes: a generation is
swapped by replacing the table of names, never a file, and two outputs with the same bytes
share one file. A file no output names any more is removed only `GRACE` seconds later: a
request that looked its name up in the generation before may still be about to read it.
The folder outlives the process, so a restarted node fetches only what changed meanwhile.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

#: Seconds a file stays after the last output naming it went (longer than any request).
GRACE = 60.0
_TMP = ".tmp-"


def twin_name(name: str) -> str:
    return name + ".gz"


class Spool:
    """Files named by ETag under `root`; reference counts of the names the current generation uses."""

    def __init__(self, root: Path, clock: Callable[[], float] = time.monotonic) -> None:
        self.root = root
        self.clock = clock
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._present: dict[str, int] = {}  # name -> size on disk
        for entry in os.scandir(root):
            if entry.name.startswith(_TMP):  # a write a kill cut short
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
            elif entry.is_file(follow_symlinks=False) and not entry.name.endswith(".lock"):
                self._present[entry.name] = entry.stat().st_size
        self._uses: dict[str, int] = {}
        #: names no output uses, and since when
        self._orphaned: dict[str, float] = {name: self.clock() for name in self._present}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._present)

    def has(self, name: str, size: int, twin: bool) -> bool:
        """Whether the bytes of `name` (`size` long) and, with `twin`, their gzip twin are here."""
        return self._present.get(name) == size and (not twin or twin_name(name) in self._present)

    def put(self, name: str, data: bytes, gz: bytes | None) -> None:
        """Keep these bytes (and their twin) under `name`; no fsync: the folder is a cache, and a
        file torn by a crash has the wrong size, so `has` says to fetch it again."""
        self._write(name, data)
        if gz is not None:
            self._write(twin_name(name), gz)

    def read(self, name: str) -> bytes:
        """The bytes under `name` (FileNotFoundError once swept)."""
        with open(self.root / name, "rb") as f:
            return f.read()

    def _write(self, name: str, data: bytes) -> None:
        tmp = self.root / f"{_TMP}{name}"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, self.root / name)
        with self._lock:
            self._present[name] = len(data)

    # -- which names the current generation uses ---------------------------------------------------

    def use(self, name: str) -> None:
        self._uses[name] = self._uses.get(name, 0) + 1
        self._orphaned.pop(name, None)
        self._orphaned.pop(twin_name(name), None)

    def release(self, name: str) -> None:
        left = self._uses.get(name, 0) - 1
        if left > 0:
            self._uses[name] = left
            return
        self._uses.pop(name, None)
        now = self.clock()
        for gone in (name, twin_name(name)):
            if gone in self._present:
                self._orphaned[gone] = now

    def reset(self) -> None:
        """No name is used (a whole generation is about to be named again)."""
        now = self.clock()
        self._uses.clear()
        self._orphaned = {name: self._orphaned.get(name, now) for name in self._present}

    def sweep(self) -> int:
        """Remove the files unused for `GRACE` seconds; how many went."""
        cut = self.clock() - GRACE
        old = [name for name, since in self._orphaned.items() if since <= cut]
        for name in old:
            del self._orphaned[name]
            with self._lock:
                self._present.pop(name, None)
            try:
                os.unlink(self.root / name)
            except FileNotFoundError:
                pass
        return len(old)
