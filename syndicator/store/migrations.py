"""The PostgreSQL schema as numbered migrations, applied in order by `syndicator db upgrade`.

Append a migration for every change; never edit one that has shipped (a database at its version
has run it). Each runs in one transaction and is recorded in `schema_migrations`.

Posts are kept as in the SQLite store (`store/sqlite.py`: the same columns, the same JSON
encoding, times as RFC 3339 text with their offsets), so both stores give back the same records.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "posts, output digests and settings key", (
        "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)",
        "CREATE TABLE posts (path text PRIMARY KEY, size bigint, mtime_ns bigint, hash text,"
        " problems text NOT NULL, not_a_post smallint NOT NULL, current smallint NOT NULL, id text, own_id text,"
        " good bytea, good_hash text, first_seen text NOT NULL, changed text NOT NULL)",
        "CREATE TABLE output_digests (rel text PRIMARY KEY, digest text NOT NULL)",
    )),
)
