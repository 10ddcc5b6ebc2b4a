"""The published files as served: bytes, gzip bytes and validators, cached by each file's stat.

A feed reader's poll then costs one stat() and a dict lookup instead of a read, a hash and a
compression. The writer replaces files by atomic rename, so the stat key (size, mtime, inode,
ctime) changes with every new file even when its size and mtime happen to match the old one.

Bounded by bytes (`file_cache_mb`), the least recently served out first: a client that walks
every archive page and post page (an RFC 5005 client, a crawler) would otherwise leave the
whole published site in the service's memory (10,000 posts: 84 → 408 MiB for one walk).
"""

from __future__ import annotations

import hashlib
import os
import stat as statmod
import threading
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path

from werkzeug.security import safe_join

from syndicator import formats, urls
from syndicator.bounded import Bounded
from syndicator.compress import gunzip, gzip_bytes

#: Extension → Content-Type of the files that are published; nothing else is served.
CONTENT_TYPES = formats.CONTENT_TYPES
#: Files above this size are not kept in memory (feeds are tens of KB).
MAX_CACHED_BYTES = 8 * 1024 * 1024

StatKey = tuple[int, int, int, int]


@dataclass(frozen=True, slots=True)
class Entry:
    """One file as served: identity and gzip bytes with their validators."""

    key: StatKey
    data: bytes
    #: strong ETag of `data`: a hash of the bytes, so stable across rebuilds and restarts
    etag: str
    gz: bytes
    #: strong ETag of `gz` (other bytes, so another tag)
    gz_etag: str
    #: the file's mtime (the writer sets it to the feed's newest update), as an HTTP-date
    last_modified: str
    mtime: int
    content_type: str


class Served:
    """Entries by relative path, each good while what identifies the path's bytes (its key)
    is the same; at most `max_bytes` of them (their bytes and gzip bytes), the least recently
    served out first. `FileCache` keys them by a file's stat, a web node by its published
    generation (web/published.py)."""

    def __init__(self, max_bytes: int) -> None:
        self._entries: Bounded[str, Entry] = Bounded(max_bytes, _size)
        self._lock = threading.Lock()

    @property
    def size(self) -> int:
        """Bytes held (each entry's bytes and gzip bytes)."""
        return self._entries.bytes

    def get(self, rel: str, key: object, size: int, load: Callable[[], Entry | None]) -> Entry | None:
        """The entry kept for `rel` if its key is `key`, else what `load` makes of the path's
        `size` bytes (kept unless None, or larger than MAX_CACHED_BYTES)."""
        entry = self._entries.get(rel)
        if entry is not None and entry.key == key:
            with self._lock:
                self._entries.touch(rel)
            return entry
        entry = load()
        if entry is not None and size <= MAX_CACHED_BYTES:
            with self._lock:
                self._entries.put(rel, entry)
        return entry


class FileCache:
    """Entries of files under `root`, keyed by relative path and checked against a fresh stat."""

    def __init__(self, root: Path, max_bytes: int = 16 << 20) -> None:
        self.root = root
        self._served = Served(max_bytes)

    @property
    def size(self) -> int:
        """Bytes held (each entry's bytes and gzip bytes)."""
        return self._served.size

    def get(self, rel: str) -> Entry | None:
        """The entry for a path that `safe_rel` accepted; None when it is not a regular file
        inside `root`."""
        path = safe_join(str(self.root), rel)
        if path is None:
            return None
        try:
            st = os.stat(path)
        except (OSError, ValueError):
            return None
        if not statmod.S_ISREG(st.st_mode):
            return None
        key = (st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
        return self._served.get(rel, key, st.st_size, lambda: self._load(rel, path, key, st.st_mtime))

    def _load(self, rel: str, path: str, key: StatKey, mtime: float) -> Entry | None:
        if not _inside(self.root, path):  # a symlink pointing out of feeds/
            return None
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None
        if len(data) != key[0]:  # replaced while reading: do not cache a torn pair
            key = (-1, -1, -1, -1)
        gz = _read_twin(path + ".gz", data, self.root)
        return entry_of(data, gz, mtime, os.path.splitext(rel)[1], key)


def _size(entry: Entry) -> int:
    return len(entry.data) + len(entry.gz)


def entry_of(data: bytes, gz: bytes, mtime: float, ext: str, key: StatKey = (-1, -1, -1, -1),
             digest: str | None = None) -> Entry:
    """An entry for these bytes (`mtime`: when they last changed; `ext`: the file extension;
    `digest`: their hash when it is known, as a web node's spool names them)."""
    if digest is None:
        digest = hashlib.sha256(data).hexdigest()[:32]
    return Entry(key=key, data=data, etag=f'"{digest}"', gz=gz, gz_etag=f'"{digest}-gzip"',
                 last_modified=formatdate(int(mtime), usegmt=True), mtime=int(mtime),
                 content_type=CONTENT_TYPES[ext])


def _inside(root: Path, path: str) -> bool:
    real = os.path.realpath(path)
    return os.path.commonpath([str(root), real]) == str(root)


def _read_twin(gz_path: str, data: bytes, root: Path) -> bytes:
    """The precompressed twin when it holds exactly these bytes, else a fresh compression
    (a twin can lag its file for an instant while the writer replaces both)."""
    try:
        if _inside(root, gz_path):
            with open(gz_path, "rb") as f:
                gz = f.read()
            if gunzip(gz) == data:
                return gz
    except (OSError, ValueError):
        pass
    return gzip_bytes(data)


def safe_rel(path: str) -> str | None:
    """The relative file path for a URL path, or None when it is not one we could publish:
    no empty, `.`/`..` or dot-prefixed segments, no backslashes, NULs, colons, control
    characters or `.gz`, and a published extension.

    This is a whitelist of what the writer publishes, not only a guard against escaping
    feeds/: `werkzeug.security.safe_join` (used by `FileCache.get` for the join) accepts
    dotfiles (`.manifest.json`, `.redirects.json`), the `.gz` twins, backslashes and NULs on
    POSIX, and normalises `a//b` and `a/./b`, which would serve one file under several URLs."""
    if path in ("", "/"):
        return urls.INDEX
    if not path.startswith("/"):
        return None
    rel = path[1:]
    if any(c in rel for c in "\\\x00:") or any(ord(c) < 0x20 for c in rel):
        return None
    parts = rel.split("/")
    if any(not p or p.startswith(".") for p in parts):
        return None
    if os.path.splitext(rel)[1] not in CONTENT_TYPES:
        return None
    return rel
