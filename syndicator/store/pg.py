"""PostgreSQL connections (the only psycopg user): open one, run statements, and the schema's
versioned migrations (`syndicator db upgrade`).

Every other module that talks to PostgreSQL (the Store, the database Publisher, the web
nodes' cache, the leader election) goes through `Database`: statements with `%s`
placeholders, one transaction at a time. A server that cannot be reached, or a connection
that drops, is `Unreachable`: the caller decides whether to retry or to keep serving what it
has.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from syndicator.errors import SyndicatorError
from syndicator.store.migrations import MIGRATIONS

log = logging.getLogger("syndicator.pg")

#: Seconds to wait for a connection before calling the server unreachable.
CONNECT_TIMEOUT = 3
#: libpq settings of a connection whose loss must be noticed in seconds, not minutes: a server
#: (or a network) that stops answering fails its next statement ~3 s later.
WATCHED = {"keepalives": 1, "keepalives_idle": 1, "keepalives_interval": 1, "keepalives_count": 2,
           "tcp_user_timeout": 3000}
#: Advisory lock key taken (for the transaction) while migrating: two `db upgrade` at once wait.
_MIGRATION_LOCK = 0x5359_4E44_0001


class Unreachable(SyndicatorError):
    """PostgreSQL cannot be reached, or the connection dropped."""


class SchemaOutdated(SyndicatorError):
    """The database has not been brought to this version's schema (`syndicator db upgrade`)."""


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "the configured state_url"
    host = info.get("host", "localhost")
    return f"postgresql://{info.get('user', '')}@{host}:{info.get('port', 5432)}/{info.get('dbname', '')}"


class Database:
    """One connection in autocommit mode: each statement commits unless inside `transaction()`.
    Calls are serialized (one statement at a time may run on a connection)."""

    def __init__(self, url: str, server: Mapping[str, object] | None = None, watched: bool = False) -> None:
        """`server`: settings of this session (`idle_session_timeout`, …); `watched`: notice a
        server that stopped answering within a few seconds (TCP keepalives and a send timeout)."""
        self.url = url
        self._lock = threading.RLock()
        options: dict[str, Any] = dict(WATCHED) if watched else {}
        if server:
            options["options"] = " ".join(f"-c {k}={v}" for k, v in server.items())
        try:
            self.conn = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT, **options)
        except psycopg.OperationalError as e:
            raise Unreachable(f"cannot connect to {redacted(url)}: {_first_line(e)}") from None
        except psycopg.ProgrammingError as e:  # a malformed URL
            raise Unreachable(f"state_url is not a usable PostgreSQL URL: {_first_line(e)}") from None

    def close(self) -> None:
        self.conn.close()

    @property
    def closed(self) -> bool:
        return bool(self.conn.closed)

    @property
    def pid(self) -> int:
        """The server process of this session (to tell it apart from others)."""
        return int(self.conn.info.backend_pid)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock, _reached(self.url), self.conn.transaction():
            yield

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read-only transaction that sees one committed state throughout."""
        with self.transaction():
            self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; its rows (none for a statement that returns none)."""
        with self._lock, _reached(self.url):
            cur = self.conn.execute(sql, params or None)
            return cur.fetchall() if cur.description is not None else []

    def rows(self, sql: str, params: Sequence[Any] = (), size: int = 2000) -> Iterator[tuple[Any, ...]]:
        """The rows of a query, fetched `size` at a time (a server-side cursor, in a transaction)."""
        with self.transaction(), self.conn.cursor(name="syndicator_rows") as cur:
            cur.execute(sql, params or None)
            while batch := cur.fetchmany(size):
                yield from batch

    def many(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
        with self._lock, _reached(self.url), self.conn.cursor() as cur:
            cur.executemany(sql, params)

    def notifies(self, timeout: float) -> list[tuple[str, str]]:
        """(channel, payload) of the notifications that arrive within `timeout` seconds."""
        with _reached(self.url):
            return [(n.channel, n.payload) for n in self.conn.notifies(timeout=timeout, stop_after=1)]


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


@contextmanager
def _reached(url: str) -> Iterator[None]:
    try:
        yield
    except psycopg.OperationalError as e:
        raise Unreachable(f"PostgreSQL at {redacted(url)}: {_first_line(e)}") from e


# -- the schema ---------------------------------------------------------------------------------


def version(db: Database) -> int:
    """The schema version the database is at (0: none of ours)."""
    exists = db.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")[0][0]
    if not exists:
        return 0
    return int(db.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")[0][0])


def latest() -> int:
    return MIGRATIONS[-1].version


def upgrade(db: Database, target: int | None = None) -> list[int]:
    """Apply the migrations the database lacks, up to `target` (default: the latest), each in
    its own transaction; the versions applied. Two upgrades at once take turns."""
    target = latest() if target is None else target
    applied = []
    for migration in MIGRATIONS:
        if migration.version > target:
            break
        with db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            db.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                       "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
            if db.execute("SELECT 1 FROM schema_migrations WHERE version = %s", (migration.version,)):
                continue
            for statement in migration.statements:
                db.execute(statement)
            db.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                       (migration.version, migration.name))
            applied.append(migration.version)
            log.info("database schema: applied %d (%s)", migration.version, migration.name)
    return applied


def require_current(db: Database) -> None:
    """SchemaOutdated unless the database is at this version's schema."""
    found = version(db)
    if found > latest():
        raise SchemaOutdated(f"the database {redacted(db.url)} is at schema version {found}, written by a newer "
                             f"Syndicator (this one knows up to {latest()})")
    if found < latest():
        what = "has no Syndicator schema" if found == 0 else f"is at schema version {found}"
        raise SchemaOutdated(f"the database {redacted(db.url)} {what}, this version needs {latest()}: "
                             "run `syndicator db upgrade`")
