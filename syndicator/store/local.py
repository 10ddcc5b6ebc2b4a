"""The state of a site on this machine: the SQLite file in state_dir, held by one process.

`serve` and `build` both open it here, under two locks, state_dir's and feeds_dir's: two
processes writing one feeds/ (each with its own memory) would undo each other's work, and a
`build` over a folder it built before re-reads only the files that changed.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from pathlib import Path

import syndicator
from syndicator.config import Settings
from syndicator.errors import AlreadyRunning
from syndicator.store.sqlite import FILE_NAME, SQLiteStore

LOCK_NAME = "syndicator.lock"
#: The lock in feeds_dir: a dotfile, which neither `serve` nor contrib/nginx.conf serves.
FEEDS_LOCK_NAME = ".syndicator.lock"
#: Settings that change nothing a post or feed is made of: changing them keeps the caches.
_RUNTIME_ONLY = {"host", "port", "threads", "log_format", "log_level", "scan_interval", "cache_max_age", "state_dir",
                 "state_url", "role", "hold_removals_share", "hold_removals_min", "confirm_removals", "custom_feeds",
                 "custom_cache_entries", "custom_cache_mb", "file_cache_mb", "filter_max_length",
                 "websub_lease_seconds", "websub_max_subscribers", "websub_max_per_host", "websub_allow_networks",
                 "status_networks", "trusted_proxies", "durable_writes",
                 "access_log", "metrics_networks", "purge_caches"}


@contextmanager
def lock(folder: Path, name: str = LOCK_NAME, private: bool = True) -> Iterator[None]:
    """Hold an exclusive flock on <folder>/<name> (with our pid in it). The kernel drops it
    when the process dies, even by kill -9, so there is no stale lock. A folder made here is
    private to the service's user unless it is to be published (the state folder holds drafts)."""
    folder.mkdir(mode=0o700 if private else 0o777, parents=True, exist_ok=True)
    path = folder / name
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.fchmod(fd, 0o600)  # made by an older version: readable to all
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise AlreadyRunning(f"another syndicator (pid {pid}) is already running and holds {folder} "
                                 f"(lock {path}); stop it first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


def cache_key(settings: Settings) -> str:
    """Names the settings and code that cached reads and renders depend on."""
    h = hashlib.sha256(syndicator.__version__.encode())
    for f in fields(settings):
        if f.name not in _RUNTIME_ONLY:
            h.update(f"{f.name}={getattr(settings, f.name)!r}\n".encode())
    package = Path(syndicator.__file__).parent
    for path in sorted([*package.rglob("*.py"), *package.glob("templates/*")]):
        h.update(path.relative_to(package).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def shared_cache_key(settings: Settings) -> str:
    """`cache_key` for builders that share one database (state_url): each has its own copy of
    the posts and its own feeds_dir, wherever it keeps them, and the key must not differ for
    that (a new leader would drop every cached render and re-render the whole site)."""
    return cache_key(replace(settings, seeds_dir=Path("seeds"), feeds_dir=Path("feeds")))


@contextmanager
def locked(settings: Settings) -> Iterator[None]:
    """state_dir and feeds_dir locked, for one process at a time."""
    with lock(settings.state_dir), lock(settings.feeds_dir, FEEDS_LOCK_NAME, private=False):
        yield


@contextmanager
def opened(settings: Settings) -> Iterator[SQLiteStore]:
    """state_dir's state file, with both folders locked while it is open (`serve` waits for a
    state file it cannot open; a `build` stops with the reason)."""
    with locked(settings):
        state = SQLiteStore(settings.state_dir / FILE_NAME, cache_key(settings))
        try:
            yield state
        finally:
            state.close()
