"""The Store in one SQLite file (the only sqlite3 user): what the daemon remembers across restarts.

Per path: the fingerprint and bytes hash of the last confirmed read and what it gave (so an
unchanged folder is not re-parsed after a restart), the stable id, first-seen and last-change
times, and the last good normalized post (so a post that breaks keeps serving). Per output:
the digest of what it was rendered from (so a restart re-renders nothing that did not change).

WAL and one transaction per tick: a kill -9 leaves either the old or the new tick, never a mix.
The folder is the service user's alone (0700, files 0600): the file holds drafts, and what it
says is what the next start reads. Rows are checked as they are read (codec.py): one that is not
what this code writes is dropped and its file read again from seeds/.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import fields, replace
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import orjson

from syndicator import model, parallel
from syndicator.errors import StateUnavailable
from syndicator.model import LazyPost, Post, Problem
from syndicator.store import Fingerprint, Record, Subscription
from syndicator.store.codec import Decoder, SchemaError, encode_light, encode_post, split

#: Bump when the tables or the post encoding change: an older file is discarded, not migrated
#: (everything in it can be rebuilt from seeds/, only `updated` history is lost). Version 3
#: stores posts as JSON; the pickles of versions 1 and 2 are dropped unread. Version 4: posts
#: carry `related_more` (related lists capped by the `related_shown` setting). Version 5: a post is
#: two lines, the fields every pass uses and those only rendering reads (see codec.py). Version 6:
#: the summary moves to the second line, and each post's summary has a row of `summaries` too.
SCHEMA_VERSION = 6
FILE_NAME = "state.sqlite3"

log = logging.getLogger("syndicator.state")
T = TypeVar("T")

#: Columns of `posts`: the fingerprint (size, mtime_ns) and sha256 of the last confirmed read,
#: NULL fingerprint meaning "re-read"; its problems as JSON [[message, line, severity]];
#: `current` = `good` is what those bytes gave; the stable id and the id normalize gave (to tell
#: an author's id change from a move); the last good post (light line in `good`, heavy line in
#: `heavy`) and its bytes' hash.
_TABLES = (
    "CREATE TABLE IF NOT EXISTS posts (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, hash TEXT,"
    " problems TEXT NOT NULL, not_a_post INTEGER NOT NULL, current INTEGER NOT NULL, id TEXT, own_id TEXT,"
    " good BLOB, good_hash TEXT, first_seen TEXT NOT NULL, changed TEXT NOT NULL, heavy BLOB)",
    "CREATE TABLE IF NOT EXISTS outputs (rel TEXT PRIMARY KEY, digest TEXT NOT NULL)",
    # the summary of each post with a last good version (also in its heavy line): a search of
    # every post's summary reads this small table, not the posts' pages
    "CREATE TABLE IF NOT EXISTS summaries (path TEXT PRIMARY KEY, summary TEXT NOT NULL) WITHOUT ROWID",
)
#: Subscriptions of our own WebSub hub: kept through a schema change (nothing else has them).
_SUBSCRIPTIONS = ("CREATE TABLE IF NOT EXISTS subscriptions (topic TEXT NOT NULL, callback TEXT NOT NULL, "
                  "secret TEXT, expires TEXT NOT NULL, delivered TEXT, PRIMARY KEY (topic, callback))")
#: Every save of records clears the mark that the outputs were made from the stored records.
_NOT_CURRENT = "DELETE FROM meta WHERE key = 'outputs_current'"
_COLUMNS = "path, size, mtime_ns, hash, problems, not_a_post, current, id, own_id, good, good_hash, first_seen, changed"
#: `good` holds a post's light line, `heavy` (last, so that a load of the others never reads its
#: pages) its heavy line (see codec.py).
#: Records saved per statement (their encoded rows are held until it runs).
_SAVE_BATCH = 1000
#: From this many records, a save runs in a forked child beside the rest of the pass (see `save`).
DETACH_AT = 2000
#: Summaries asked for at once by path (SQLite's default limit of parameters is 32,766).
LOOKUPS_AT_ONCE = 500
#: From this many summaries asked for, the whole table is read instead.
SUMMARIES_SCANNED = 5000


# -- post encoding: JSON, read back field by field (see codec.py) -------------------------------
# A change to the model's fields changes SCHEMA (below), so a row of another shape is never
# read as this one.

_CLASSES = (model.Post, model.Topic, model.Source, model.Image, model.Related)
_MODEL_SHAPE = hashlib.sha256(
    repr([(c.__name__, [f.name for f in fields(c)]) for c in _CLASSES]).encode()
).hexdigest()[:12]
SCHEMA = f"{SCHEMA_VERSION}-{_MODEL_SHAPE}"


def _problems_json(problems: Iterable[Problem]) -> str:
    return json.dumps([[p.message, p.line, p.severity] for p in problems], ensure_ascii=False)


# -- the database --------------------------------------------------------------------------


class SQLiteStore:
    """One open state file. `key` names the settings and code the cached reads and renders were
    made with; when it differs, those caches are dropped but ids and times are kept."""

    def __init__(self, path: Path, key: str) -> None:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = path
        #: which loaded posts keep their heavy fields in memory (see `keep_loaded`)
        self._resident = model.Resident()
        self._loader = model.Loader(self._heavy, self._summaries, self._resident)
        try:
            self._open(key)
        except sqlite3.DatabaseError as e:
            self._close_quietly()
            if not _damaged(e):  # locked by another process, read-only, full: the file is fine
                raise StateUnavailable(f"state database {path}: {e}"
                                       + (" (another process holds it)" if _locked(e) else "")) from None
            # not a database (or damaged beyond SQLite's own recovery): keep it for a post-mortem
            # and start afresh; everything but `updated` history is rebuilt from seeds/
            log.error("state file %s is damaged (%s); set aside as %s.corrupt, starting with an empty one",
                      path, e, path.name)
            os.replace(path, path.with_name(path.name + ".corrupt"))
            for suffix in ("-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
            self._open(key)

    def _close_quietly(self) -> None:
        db = getattr(self, "_db", None)
        if db is not None:
            with contextlib.suppress(Exception):
                db.close()

    def _open(self, key: str) -> None:
        self._hub_db: sqlite3.Connection | None = None
        self._hub_lock = threading.Lock()
        #: the connection that reads posts' heavy fields (any thread; a forked child opens its own)
        self._reader: tuple[int, sqlite3.Connection] | None = None
        self._reader_lock = threading.Lock()
        #: a save running in a forked child (see `save`), and what waits for it to be done
        self._pending: parallel.Detached | None = None
        self._after: list[Callable[[], None]] = []
        _private(self.path)
        self._db = self._connect()
        self.db.execute("PRAGMA journal_mode=WAL")
        with self.transaction():
            self._prepare(key)

    def _connect(self) -> sqlite3.Connection:
        # check_same_thread=False: the scheduler thread and the start-up thread take turns,
        # serialized by the Builder's lock.
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable up to the last checkpoint-safe commit
        db.execute("PRAGMA busy_timeout=5000")
        return db

    @property
    def db(self) -> sqlite3.Connection:
        """The connection of this process's reads and writes, once a save in a child is done."""
        if self._pending is not None:
            self._settle()
        return self._db

    def _settle(self) -> None:
        """Wait for the save in a child, raise its error, then make the writes that waited."""
        job, self._pending = self._pending, None
        after, self._after = self._after, []
        if job is not None:
            job.wait()
        for write in after:
            write()

    def _prepare(self, key: str) -> None:
        self.db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        meta = dict(self.db.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("schema") != SCHEMA:
            if "schema" in meta:
                log.warning("state file %s was written by another version (schema %s, this one %s): discarded "
                            "unread, posts are read again from seeds/ (`updated` history is lost)",
                            self.path, meta["schema"], SCHEMA)
            self.db.execute("DROP TABLE IF EXISTS posts")
            self.db.execute("DROP TABLE IF EXISTS outputs")
            self.db.execute("DROP TABLE IF EXISTS summaries")
            self.db.execute("DELETE FROM meta")
        for statement in (*_TABLES, _SUBSCRIPTIONS):
            self.db.execute(statement)
        if meta.get("key") != key:
            self.db.execute("UPDATE posts SET size = NULL, mtime_ns = NULL")
            self.db.execute("DELETE FROM outputs")
            self.db.execute(_NOT_CURRENT)
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?), ('key', ?)", (SCHEMA, key))

    def rekey(self, key: str) -> None:
        """The settings or code changed while open (a reload): drop what `key` invalidates, as
        opening with it would."""
        with self.transaction():
            self._prepare(key)

    def transaction(self) -> AbstractContextManager[None]:
        return _transaction(self.db)

    def close(self) -> None:
        try:
            self._settle()
        finally:
            self._close_all()

    def _close_all(self) -> None:
        self._db.close()
        if self._hub_db is not None:
            self._hub_db.close()
        with self._reader_lock:
            if self._reader is not None and self._reader[0] == os.getpid():
                self._reader[1].close()
            self._reader = None

    # -- posts ---------------------------------------------------------------------------------

    def has_posts(self) -> bool:
        return self.db.execute("SELECT 1 FROM posts LIMIT 1").fetchone() is not None

    def load(self) -> dict[str, Record]:
        """Every record; each post with its light fields only (the rest is read on first use,
        from this file: of a large site, most posts are in no feed and never rendered again)."""
        records: dict[str, Record] = {}
        dropped: list[tuple[int, object, SchemaError]] = []
        decoder = Decoder()
        loader = self._loader

        def good(light: bytes | str) -> Post:
            if type(light) is not bytes:
                raise SchemaError("a post is not a blob")
            return decoder.light(light, loader)

        with parallel.no_cycle_collection():  # every record lives on: a collection would find nothing
            for rowid, *row in self.db.execute(f"SELECT rowid, {_COLUMNS} FROM posts"):
                try:
                    record = _record(row, good)
                except SchemaError as e:
                    dropped.append((rowid, row[0], e))
                    continue
                records[record.path] = record
        if dropped:
            _, path, error = dropped[0]
            log.warning("state file %s: %d entries are not what this version writes (first: %r, %s); dropped, "
                        "their files are read again from seeds/", self.path, len(dropped), path, error)
            with self.transaction():
                self.db.executemany("DELETE FROM posts WHERE rowid = ?", [(rowid,) for rowid, _, _ in dropped])
                self.db.executemany("DELETE FROM summaries WHERE path = ?",
                                    [(path,) for _, path, _ in dropped if type(path) is str])
        return records

    def keep_loaded(self, posts: Iterable[Post]) -> None:
        """The posts of `load` whose heavy fields stay in memory once read; of the others, only
        the last model.SPARE_LOADED read (see model.Resident)."""
        self._resident.keep(posts)

    def lighten(self, records: list[Record]) -> list[Record]:
        """Records just saved, each post read from its file made a LazyPost of this file with its
        heavy fields in memory, to be let go once no feed shows it (model.Resident): a service
        that runs for months holds what its feeds show and the last few others, not every post
        read since it started. As they are while their save runs in a child (see `save`): the
        rows to read them back from are not here yet."""
        if self._pending is not None:
            return records
        return [replace(r, good=model.held_lazily(r.good, self._loader)) if type(r.good) is Post else r
                for r in records]

    def fingerprints(self) -> dict[str, Fingerprint | None]:
        return {path: None if size is None or mtime_ns is None else (size, mtime_ns)
                for path, size, mtime_ns in self.db.execute("SELECT path, size, mtime_ns FROM posts")}

    def save(self, records: Iterable[Record], gone: Iterable[str], restamped: Iterable[Record] = ()) -> None:
        """Store changed records and forget deleted paths, in one transaction.

        From DETACH_AT records (a cold build) in a process that may fork, the transaction runs
        in a forked child while this process goes on with the pass (encoding and inserting
        100,000 records takes 4-5 s, which would otherwise hold up everything after it). The
        next use of the connection here waits for it and raises its error, so what follows a
        save (outputs, the mark that they are current) is still written after it. No
        connection to the file is open across the fork: SQLite's locks are per process, and
        a child must not inherit a connection's view of them."""
        records, gone, restamped = list(records), list(gone), list(restamped)
        if len(records) >= DETACH_AT and self._hub_db is None and parallel.may_fork():
            self._settle()
            self._close_all()
            try:
                self._pending = parallel.detach(lambda: self._save_in_child(records, gone, restamped),
                                                f"saving {len(records)} posts to {self.path}")
            finally:
                self._db = self._connect()
            if self._pending is not None:
                return
        with self.transaction():
            _save(self.db, records, gone, restamped)

    def _save_in_child(self, records: list[Record], gone: list[str], restamped: list[Record]) -> None:
        db = self._connect()
        try:
            with _transaction(db):
                _save(db, records, gone, restamped)
        finally:
            db.close()

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The connection that reads what LazyPosts leave in the file (any thread; a forked
        child opens its own)."""
        with self._reader_lock:
            if self._reader is None or self._reader[0] != os.getpid():
                db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA busy_timeout=5000")
                self._reader = (os.getpid(), db)
            yield self._reader[1]

    def _heavy(self, post: Post) -> tuple[Any, ...]:
        """The heavy fields of a post loaded from this file (see `load`)."""
        with self._reading() as db:
            row = db.execute("SELECT good, heavy FROM posts WHERE path = ?", (post.path,)).fetchone()
        try:
            if row is None or type(row[0]) is not bytes or type(row[1]) is not bytes:
                raise SchemaError("gone")
            light, heavy = row
            if light != encode_light(post):
                raise SchemaError("another post since")
            return Decoder().heavy(heavy)
        except SchemaError as e:
            # only a change of the file by another hand gets here: what was loaded is not there
            raise StateUnavailable(f"state database {self.path}: the stored version of {post.path} changed "
                                   f"while in use ({e}); restart to read it again") from None

    def _summaries(self, posts: Sequence[Post]) -> list[str]:
        """The summaries of posts loaded from this file, in order. A post whose path has none
        any more was deleted since it was loaded (a catalog of the pass before still holds
        it): it has no text to be found by."""
        paths = [post.path for post in posts]
        found: dict[str, str] = {}
        with self._reading() as db:
            if len(paths) >= SUMMARIES_SCANNED:  # one pass over the table beats as many lookups
                found.update(db.execute("SELECT path, summary FROM summaries"))
            else:
                for batch in _batched(paths, LOOKUPS_AT_ONCE):
                    found.update(db.execute(f"SELECT path, summary FROM summaries WHERE path IN "
                                            f"({','.join('?' * len(batch))})", batch))
        texts = list(map(found.get, paths, itertools.repeat("")))
        if not all(type(text) is str for text in texts):  # (a row another hand wrote) nothing to find by
            texts = [text if type(text) is str else "" for text in texts]
        return texts

    # -- Jekyll _config.yml files -----------------------------------------------------------------

    def site_configs(self) -> dict[str, Fingerprint]:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'site_configs'").fetchone()
        try:
            return {rel: (int(fp[0]), int(fp[1])) for rel, fp in json.loads(row[0]).items()} if row else {}
        except (ValueError, TypeError, IndexError, AttributeError):
            return {}

    def save_site_configs(self, fingerprints: dict[str, Fingerprint]) -> None:
        if self._pending is not None:  # after the records being saved, as it would be without a child
            self._after.append(lambda: self.save_site_configs(fingerprints))
            return
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('site_configs', ?)",
                            (json.dumps(fingerprints, sort_keys=True),))

    # -- outputs -------------------------------------------------------------------------------

    def output_digests(self) -> dict[str, str]:
        rows = self.db.execute("SELECT rel, digest FROM outputs").fetchall()
        return {rel: digest for rel, digest in rows if type(rel) is str and type(digest) is str}

    def save_outputs(self, digests: dict[str, str], removed: Iterable[str]) -> None:
        with self.transaction():
            self.db.executemany("DELETE FROM outputs WHERE rel = ?", [(r,) for r in removed])
            self.db.executemany("INSERT OR REPLACE INTO outputs VALUES (?, ?)", list(digests.items()))


    def outputs_current(self) -> bool:
        return self.last_pass() is not None

    def mark_outputs_current(self, summary: str = "") -> None:
        self.db.execute("INSERT OR REPLACE INTO meta VALUES ('outputs_current', ?)", (summary,))

    def last_pass(self) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'outputs_current'").fetchone()
        return None if row is None else str(row[0])

    # -- subscriptions of our own hub ----------------------------------------------------------
    # Their own connection and lock: the hub's threads write while a pass holds `db`.

    @contextmanager
    def _hub(self) -> Iterator[sqlite3.Connection]:
        with self._hub_lock:
            if self._hub_db is None:
                self._hub_db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
                self._hub_db.execute("PRAGMA busy_timeout=5000")
                self._hub_db.execute("PRAGMA synchronous=NORMAL")  # as `db`: WAL, durable to the last checkpoint
            yield self._hub_db

    def subscriptions(self) -> list[Subscription]:
        with self._hub() as db:
            rows = db.execute("SELECT topic, callback, secret, expires, delivered FROM subscriptions").fetchall()
        out = []
        for topic, callback, secret, expires, delivered in rows:
            try:
                out.append(Subscription(topic, callback, secret, _aware(expires), delivered))
            except (ValueError, TypeError, SchemaError):
                log.warning("state file %s: a subscription of %r is unreadable; dropped", self.path, callback)
                self.drop_subscription(topic, callback)
        return out

    def save_subscription(self, subscription: Subscription) -> None:
        s = subscription
        with self._hub() as db:
            db.execute("INSERT OR REPLACE INTO subscriptions VALUES (?, ?, ?, ?, ?)",
                       (s.topic, s.callback, s.secret, s.expires.isoformat(), s.delivered))

    def drop_subscription(self, topic: str, callback: str) -> None:
        with self._hub() as db:
            db.execute("DELETE FROM subscriptions WHERE topic = ? AND callback = ?", (topic, callback))

    def mark_delivered(self, topic: str, callback: str, delivered: str) -> None:
        with self._hub() as db:
            db.execute("UPDATE subscriptions SET delivered = ? WHERE topic = ? AND callback = ?",
                       (delivered, topic, callback))


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _save(db: sqlite3.Connection, records: list[Record], gone: list[str], restamped: list[Record]) -> None:
    """The statements of SQLiteStore.save, inside the caller's transaction."""
    db.execute(_NOT_CURRENT)
    paths = [(p,) for p in gone]
    db.executemany("DELETE FROM posts WHERE path = ?", paths)
    db.executemany("DELETE FROM summaries WHERE path = ?", paths)
    # a batch at a time: a cold start saves every post
    for batch in _batched(records, _SAVE_BATCH):
        rows = [_split_row(_row(r)) for r in batch]
        db.executemany("INSERT OR REPLACE INTO posts VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        summaries, unstored = [], []  # (a last good version that could not be stored has none)
        for r, row in zip(batch, rows, strict=True):
            if r.good is not None and row[9] is not None:
                summaries.append((r.path, r.good.summary))
            else:
                unstored.append((r.path,))
        db.executemany("INSERT OR REPLACE INTO summaries VALUES (?, ?)", summaries)
        db.executemany("DELETE FROM summaries WHERE path = ?", unstored)
    db.executemany(f"UPDATE posts SET size = ?, mtime_ns = ? WHERE {RESTAMPED}", [restamp(r) for r in restamped])


def _batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size` (the last shorter); itertools.batched from Python 3.12."""
    batch: list[T] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _damaged(error: sqlite3.DatabaseError) -> bool:
    """The file is not a database or its pages are broken (not: busy, locked, read-only, full)."""
    name = getattr(error, "sqlite_errorname", "") or ""
    if name:
        return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))
    return not isinstance(error, sqlite3.OperationalError)


def _locked(error: sqlite3.DatabaseError) -> bool:
    name = getattr(error, "sqlite_errorname", "") or ""
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


#: The rows `restamp` gives new fingerprints: a last good version that could not be stored keeps
#: no fingerprint (so a restart reads the file again), and is not given one here either.
RESTAMPED = "path = ? AND (good IS NOT NULL) = ?"


def restamp(r: Record) -> tuple[Any, ...]:
    """Parameters of the UPDATE of a record whose fingerprint alone changed (see RESTAMPED)."""
    size, mtime = r.fingerprint if r.fingerprint else (None, None)
    return size, mtime, r.path, r.good is not None


def _row(r: Record) -> tuple[Any, ...]:
    size, mtime = r.fingerprint if r.fingerprint else (None, None)
    try:
        good = encode_post(r.good) if r.good else None
    except TypeError as e:  # orjson's error: text JSON cannot hold (a lone surrogate)
        # no reader gives such text; if one ever does, the pass goes on and a restart reads the file again
        log.warning("%s: last good version not stored (%s); it is read again after a restart", r.path, e)
        good, size, mtime = None, None, None
    return (
        r.path, size, mtime, _hex(r.hash), _problems_json(r.problems), int(r.not_a_post), int(r.current),
        r.id, r.own_id, good, _hex(r.good_hash), r.first_seen.isoformat(), r.changed.isoformat(),
    )


def _split_row(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row of `_row` as this file's table holds it: `good` split into its two lines."""
    good = row[9]
    light, heavy = split(good) if good is not None else (None, None)
    return (*row[:9], light, *row[10:], heavy)


def _record(row: list[Any], decode: Callable[[Any], Post]) -> Record:
    """The record a row holds (`decode` reads its post); SchemaError for a row this code did not write."""
    (path, size, mtime, stored_hash, problems, not_a_post, current, post_id, own_id, good, stored_good_hash,
     first_seen, changed) = row
    if type(path) is not str or not all(v is None or type(v) is str
                                        for v in (stored_hash, post_id, own_id, stored_good_hash)):
        raise SchemaError("a text column holds something else")
    if not (type(size) is type(mtime) is int or size is mtime is None) or not_a_post not in (0, 1) \
            or current not in (0, 1):
        raise SchemaError("a number column holds something else")
    try:
        post = decode(good) if good is not None else None
        # one string for what the record and its post say alike (a restart of a large site
        # holds them all): the path, the ids, the hash of the bytes, the times
        if own_id == post_id:
            own_id = post_id
        digest = _unhex(stored_hash)
        good_hash = digest if stored_good_hash == stored_hash else _unhex(stored_good_hash)
        if isinstance(post, LazyPost):
            if post.path == path:
                _set(post, "path", path)
            if post.id == post_id:
                if post.link is post.id:  # (see Decoder: a news item's link is its id)
                    _set(post, "link", post_id)
                _set(post, "id", post_id)
        seen = _time(first_seen)
        return Record(
            path=path,
            fingerprint=(size, mtime) if size is not None and mtime is not None else None,
            hash=digest,
            problems=_problems(path, problems) if problems != "[]" else (),
            not_a_post=bool(not_a_post),
            current=bool(current),
            id=post_id,
            own_id=own_id,
            good=post,
            good_hash=good_hash,
            first_seen=seen,
            changed=seen if changed == first_seen else _time(changed),
        )
    except (ValueError, TypeError) as e:
        raise SchemaError(f"{type(e).__name__}: {e}") from None


def _hex(digest: bytes | None) -> str | None:
    return None if digest is None else digest.hex()


def _unhex(text: str | None) -> bytes | None:
    """A stored hash; ValueError for text that is not one."""
    if text is None:
        return None
    digest = bytes.fromhex(text)
    if len(digest) != 32:
        raise ValueError(f"{text!r} is not a sha256")
    return digest


def _problems(path: str, value: Any) -> tuple[Problem, ...]:
    items = orjson.loads(value)
    if type(items) is not list:
        raise SchemaError("problems is not a list")
    problems = []
    for message, line, severity in items:
        if type(message) is not str or not (line is None or type(line) is int) or severity not in _SEVERITIES:
            raise SchemaError("problem of the wrong shape")
        problems.append(Problem(path, message, line, severity))
    return tuple(problems)


_SEVERITIES = ("error", "warning")
_set = object.__setattr__


def _aware(value: Any) -> datetime:
    when = datetime.fromisoformat(value)
    if when.tzinfo is None:
        raise SchemaError(f"time {value!r} has no offset")
    return when


#: The first-seen and last-change times of records, one object per distinct time: a cold build
#: gives every post the same first-seen time, and a load made 100,000 equal datetimes of it.
_time = lru_cache(maxsize=4096)(_aware)


def _private(path: Path) -> None:
    """Create the state file readable by this user only (SQLite gives its -wal and -shm files
    the same mode), and tighten files an older version created."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            if name.stat().st_mode & 0o077:
                os.chmod(name, 0o600)
        except FileNotFoundError:
            pass
        except OSError as e:
            log.warning("cannot make %s private: %s", name, e)
