"""The Store in PostgreSQL (`state_url: postgresql://…`): what builders remember, shared by every
machine that builds, so a standby that takes over knows each post's id, first-seen and
last-change times and last good version.

The rows are those of the SQLite store (`sqlite.py` encodes and checks them, `codec.py` the
posts), so both stores give back the same records. The schema is the migrations' (`pg.py`,
`syndicator db upgrade`); a database at another version is refused with one line. Each `save_*`
is one transaction, and when a `fence` is given it runs first inside it: a builder that is no
longer the elected publisher has its writes refused rather than mixed with the new one's.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC

from syndicator import parallel
from syndicator.model import Post
from syndicator.store import Fingerprint, Record, Subscription
from syndicator.store.codec import Decoder, SchemaError
from syndicator.store.pg import Database, Unreachable, require_current
from syndicator.store.sqlite import RESTAMPED, SCHEMA, _record, _row, restamp

log = logging.getLogger("syndicator.state")

_COLUMNS = "path, size, mtime_ns, hash, problems, not_a_post, current, id, own_id, good, good_hash, first_seen, changed"
_UPSERT = (f"INSERT INTO posts ({_COLUMNS}) VALUES ({', '.join(['%s'] * 13)}) ON CONFLICT (path) DO UPDATE SET "
           + ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS.split(", ")[1:]))

#: Called inside each writing transaction; raises when this builder may no longer write.
Fence = Callable[[Database], None]


class PostgresStore:
    """The state in a PostgreSQL database at the current schema. `key` names the settings and
    code cached reads and renders were made with; when it differs, those caches are dropped but
    ids and times are kept (as in SQLiteStore)."""

    def __init__(self, db: Database, key: str, fence: Fence | None = None) -> None:
        self.db = db
        self.fence = fence
        require_current(db)
        with self._writing():
            self._prepare(key)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """A transaction that first checks the fence."""
        with self.db.transaction():
            if self.fence is not None:
                self.fence(self.db)
            yield

    def _prepare(self, key: str) -> None:
        meta = dict(self.db.execute("SELECT key, value FROM meta WHERE key IN ('schema', 'key') FOR UPDATE"))
        if meta.get("schema") != SCHEMA:
            if "schema" in meta:
                log.warning("state in %s was written by another version (post shape %s, this one %s): posts are "
                            "read again from seeds/ (`updated` history is lost)", "PostgreSQL", meta["schema"], SCHEMA)
            self.db.execute("DELETE FROM posts")
            self.db.execute("DELETE FROM output_digests")
        if meta.get("key") != key:
            self.db.execute("UPDATE posts SET size = NULL, mtime_ns = NULL")
            self.db.execute("DELETE FROM output_digests")
        for name, value in (("schema", SCHEMA), ("key", key)):
            self._set_meta(name, value)

    def _set_meta(self, name: str, value: str) -> None:
        self.db.execute("INSERT INTO meta VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (name, value))

    def close(self) -> None:
        self.db.close()

    # -- posts ---------------------------------------------------------------------------------

    def has_posts(self) -> bool:
        return bool(self.db.execute("SELECT 1 FROM posts LIMIT 1"))

    def load(self) -> dict[str, Record]:
        records: dict[str, Record] = {}
        dropped: list[tuple[str, SchemaError]] = []
        decoder = Decoder()
        with parallel.no_cycle_collection():  # every record lives on: a collection would find nothing
            for row in self.db.rows(f"SELECT {_COLUMNS} FROM posts"):
                try:
                    record = _record(list(row), decoder.post)
                except SchemaError as e:
                    dropped.append((row[0], e))
                    continue
                records[record.path] = record
        if dropped:
            path, error = dropped[0]
            log.warning("state in PostgreSQL: %d entries are not what this version writes (first: %r, %s); "
                        "dropped, their files are read again from seeds/", len(dropped), path, error)
            with self._writing():
                self.db.many("DELETE FROM posts WHERE path = %s", [(p,) for p, _ in dropped])
        return records

    def keep_loaded(self, posts: Iterable[Post]) -> None:
        pass  # (its posts are whole: `load` reads every field)

    def lighten(self, records: list[Record]) -> list[Record]:
        return records

    def fingerprints(self) -> dict[str, Fingerprint | None]:
        return {path: None if size is None or mtime_ns is None else (int(size), int(mtime_ns))
                for path, size, mtime_ns in self.db.rows("SELECT path, size, mtime_ns FROM posts")}

    def save(self, records: Iterable[Record], gone: Iterable[str], restamped: Iterable[Record] = ()) -> None:
        """Store changed records and forget deleted paths, in one transaction."""
        with self._writing():
            self.db.many("DELETE FROM posts WHERE path = %s", [(p,) for p in gone])
            self.db.many(_UPSERT, (_row(r) for r in records))
            self.db.many("UPDATE posts SET size = %s, mtime_ns = %s WHERE " + RESTAMPED.replace("?", "%s"),
                         [restamp(r) for r in restamped])

    # -- Jekyll _config.yml files -----------------------------------------------------------------

    def site_configs(self) -> dict[str, Fingerprint]:
        rows = self.db.execute("SELECT value FROM meta WHERE key = 'site_configs'")
        try:
            return {rel: (int(fp[0]), int(fp[1])) for rel, fp in json.loads(rows[0][0]).items()} if rows else {}
        except (ValueError, TypeError, IndexError, AttributeError):
            return {}

    def save_site_configs(self, fingerprints: dict[str, Fingerprint]) -> None:
        with self._writing():
            self._set_meta("site_configs", json.dumps(fingerprints, sort_keys=True))

    # -- outputs -------------------------------------------------------------------------------

    def output_digests(self) -> dict[str, str]:
        return {rel: digest for rel, digest in self.db.execute("SELECT rel, digest FROM output_digests")}

    def outputs_current(self) -> bool:
        return False  # several builders take turns: each start looks at everything

    def mark_outputs_current(self, summary: str = "") -> None:
        pass

    def last_pass(self) -> str | None:
        return None

    def save_outputs(self, digests: dict[str, str], removed: Iterable[str]) -> None:
        with self._writing():
            self.db.many("DELETE FROM output_digests WHERE rel = %s", [(r,) for r in removed])
            self.db.many("INSERT INTO output_digests VALUES (%s, %s) "
                         "ON CONFLICT (rel) DO UPDATE SET digest = excluded.digest", list(digests.items()))


class PostgresSubscriptions:
    """The subscriptions of our own WebSub hub in PostgreSQL, shared by the web nodes (which
    take the requests) and the elected builder (which delivers). A connection of its own, made
    again after PostgreSQL was away: the hub's threads call it while passes use theirs."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._db: Database | None = None
        self._lock = threading.Lock()

    @contextmanager
    def _conn(self) -> Iterator[Database]:
        with self._lock:
            if self._db is None or self._db.closed:
                self._db = Database(self.url, watched=True)
            try:
                yield self._db
            except Unreachable:
                self._db.close()
                self._db = None  # the next call connects again
                raise

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def subscriptions(self) -> list[Subscription]:
        with self._conn() as db:
            rows = db.execute("SELECT topic, callback, secret, expires, delivered FROM subscriptions")
        return [Subscription(topic, callback, secret, expires.astimezone(UTC), delivered)
                for topic, callback, secret, expires, delivered in rows]

    def save_subscription(self, subscription: Subscription) -> None:
        s = subscription
        with self._conn() as db:
            db.execute("INSERT INTO subscriptions VALUES (%s, %s, %s, %s, %s) ON CONFLICT (topic, callback) "
                       "DO UPDATE SET secret = excluded.secret, expires = excluded.expires, "
                       "delivered = excluded.delivered", (s.topic, s.callback, s.secret, s.expires, s.delivered))

    def drop_subscription(self, topic: str, callback: str) -> None:
        with self._conn() as db:
            db.execute("DELETE FROM subscriptions WHERE topic = %s AND callback = %s", (topic, callback))

    def mark_delivered(self, topic: str, callback: str, delivered: str) -> None:
        with self._conn() as db:
            db.execute("UPDATE subscriptions SET delivered = %s WHERE topic = %s AND callback = %s",
                       (delivered, topic, callback))
