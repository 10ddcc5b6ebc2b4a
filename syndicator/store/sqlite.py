"""The Store in one SQLite file (the only sqlite3 user): what the daemon remembers across restarts.

Per path: the fingerprint and bytes hash of the last confirmed read and what it gave (so an
unchanged folder is not re-parsed after a restart), the stable id, first-seen and last-change
times, and the last good normalized post (so a post that breaks keeps serving). Per output:
the digest of what it was rendered from (so a restart re-renders nothing that did not change).

WAL and one transaction per tick: a kill -9 leaves either the old or the new tick, never a mix.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pickle
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from syndicator import model
from syndicator.model import Post, Problem
from syndicator.store import Fingerprint, Record

#: Bump when the tables or the post encoding change: an older file is discarded, not migrated
#: (everything in it can be rebuilt from seeds/, only `updated` history is lost).
SCHEMA_VERSION = 2
FILE_NAME = "state.sqlite3"

log = logging.getLogger("syndicator.state")

#: Columns of `posts`: the fingerprint (size, mtime_ns) and sha256 of the last confirmed read,
#: NULL fingerprint meaning "re-read"; its problems as JSON [[message, line, severity]];
#: `current` = `good` is what those bytes gave; the stable id and the id normalize gave (to tell
#: an author's id change from a move); the last good post and its bytes' hash.
_TABLES = (
    "CREATE TABLE IF NOT EXISTS posts (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, hash TEXT,"
    " problems TEXT NOT NULL, not_a_post INTEGER NOT NULL, current INTEGER NOT NULL, id TEXT, own_id TEXT,"
    " good TEXT, good_hash TEXT, first_seen TEXT NOT NULL, changed TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS outputs (rel TEXT PRIMARY KEY, digest TEXT NOT NULL)",
)


# -- post encoding: pickle, the fastest way back to the frozen model on a restart ------------
# The file lives in state_dir, which only the service writes; anyone who can write it can
# already run code as the service. A change to the model's fields changes SCHEMA (below), so
# a pickle of another shape is never loaded.

_CLASSES = (model.Post, model.Topic, model.Source, model.Image, model.Related)
_MODEL_SHAPE = hashlib.sha256(
    repr([(c.__name__, [f.name for f in fields(c)]) for c in _CLASSES]).encode()
).hexdigest()[:12]
SCHEMA = f"{SCHEMA_VERSION}-{_MODEL_SHAPE}"


def encode_post(post: Post) -> bytes:
    if not isinstance(post.extra, dict):  # the EMPTY mapping proxy does not pickle
        post = replace(post, extra=dict(post.extra))
    return pickle.dumps(post, protocol=pickle.HIGHEST_PROTOCOL)


def decode_post(blob: bytes) -> Post:
    post = pickle.loads(blob)
    if not isinstance(post, Post):
        raise ValueError("not a post")
    return post


def _problems_json(problems: Iterable[Problem]) -> str:
    return json.dumps([[p.message, p.line, p.severity] for p in problems], ensure_ascii=False)


# -- the database --------------------------------------------------------------------------


class SQLiteStore:
    """One open state file. `key` names the settings and code the cached reads and renders were
    made with; when it differs, those caches are dropped but ids and times are kept."""

    def __init__(self, path: Path, key: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        try:
            self._open(key)
        except sqlite3.DatabaseError as e:
            # not a database (or damaged beyond SQLite's own recovery): keep it for a post-mortem
            # and start afresh; everything but `updated` history is rebuilt from seeds/
            log.error("state file %s unusable (%s); moved aside, starting with an empty one", path, e)
            with contextlib.suppress(Exception):
                self.db.close()
            os.replace(path, path.with_name(path.name + ".corrupt"))
            for suffix in ("-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            self._open(key)

    def _open(self, key: str) -> None:
        path = self.path
        # check_same_thread=False: the scheduler thread and the start-up thread take turns,
        # serialized by the Builder's lock.
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable up to the last checkpoint-safe commit
        self.db.execute("PRAGMA busy_timeout=5000")
        with self.transaction():
            self._prepare(key)

    def _prepare(self, key: str) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("schema") != SCHEMA:
            self.db.execute("DROP TABLE IF EXISTS posts")
            self.db.execute("DROP TABLE IF EXISTS outputs")
            self.db.execute("DELETE FROM meta")
        for statement in _TABLES:
            self.db.execute(statement)
        if meta.get("key") != key:
            self.db.execute("UPDATE posts SET size = NULL, mtime_ns = NULL")
            self.db.execute("DELETE FROM outputs")
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?), ('key', ?)", (SCHEMA, key))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    # -- posts ---------------------------------------------------------------------------------

    def has_posts(self) -> bool:
        return self.db.execute("SELECT 1 FROM posts LIMIT 1").fetchone() is not None

    def load(self) -> dict[str, Record]:
        records = {}
        for row in self.db.execute("SELECT * FROM posts"):
            try:
                records[row[0]] = _record(row)
            except (ValueError, KeyError, TypeError, AttributeError, EOFError, pickle.UnpicklingError):
                continue  # an entry this code cannot read is re-read from seeds/
        return records

    def save(self, records: Iterable[Record], gone: Iterable[str]) -> None:
        """Store changed records and forget deleted paths, in one transaction."""
        with self.transaction():
            self.db.executemany("DELETE FROM posts WHERE path = ?", [(p,) for p in gone])
            self.db.executemany(
                "INSERT OR REPLACE INTO posts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (_row(r) for r in records),  # one row at a time: a cold start saves them all
            )

    # -- Jekyll _config.yml files -----------------------------------------------------------------

    def site_configs(self) -> dict[str, Fingerprint]:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'site_configs'").fetchone()
        try:
            return {rel: (int(fp[0]), int(fp[1])) for rel, fp in json.loads(row[0]).items()} if row else {}
        except (ValueError, TypeError, IndexError, AttributeError):
            return {}

    def save_site_configs(self, fingerprints: dict[str, Fingerprint]) -> None:
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('site_configs', ?)",
                            (json.dumps(fingerprints, sort_keys=True),))

    # -- outputs -------------------------------------------------------------------------------

    def output_digests(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT rel, digest FROM outputs").fetchall())

    def save_outputs(self, digests: dict[str, str], removed: Iterable[str]) -> None:
        with self.transaction():
            self.db.executemany("DELETE FROM outputs WHERE rel = ?", [(r,) for r in removed])
            self.db.executemany("INSERT OR REPLACE INTO outputs VALUES (?, ?)", list(digests.items()))


def _row(r: Record) -> tuple[Any, ...]:
    size, mtime = r.fingerprint if r.fingerprint else (None, None)
    return (
        r.path, size, mtime, r.hash, _problems_json(r.problems), int(r.not_a_post), int(r.current),
        r.id, r.own_id, encode_post(r.good) if r.good else None, r.good_hash,
        r.first_seen.isoformat(), r.changed.isoformat(),
    )


def _record(row: tuple[Any, ...]) -> Record:
    (path, size, mtime, digest, problems, not_a_post, current, post_id, own_id, good, good_hash,
     first_seen, changed) = row
    return Record(
        path=path,
        fingerprint=(size, mtime) if size is not None and mtime is not None else None,
        hash=digest,
        problems=tuple(Problem(path, m, line, sev) for m, line, sev in json.loads(problems)),
        not_a_post=bool(not_a_post),
        current=bool(current),
        id=post_id,
        own_id=own_id,
        good=decode_post(good) if good else None,
        good_hash=good_hash,
        first_seen=datetime.fromisoformat(first_seen),
        changed=datetime.fromisoformat(changed),
    )
