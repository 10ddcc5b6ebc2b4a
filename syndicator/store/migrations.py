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
    # The published site, for web nodes: each output's bytes (and gzip twin where the format has
    # one) with its ETag and Last-Modified, stamped with the generation that last changed it; a
    # take-down leaves a tombstone of its generation, so a web node asks for what changed since
    # the generation it holds. One generation per publishing pass, made by the leader whose
    # epoch `leadership` holds (a pass by an older epoch is refused).
    Migration(2, "published outputs, generations and the publisher's epoch", (
        "CREATE TABLE leadership (id smallint PRIMARY KEY CHECK (id = 1), epoch bigint NOT NULL,"
        " holder text NOT NULL, since timestamptz NOT NULL)",
        "INSERT INTO leadership VALUES (1, 0, '', now())",
        "CREATE TABLE generations (generation bigint PRIMARY KEY, epoch bigint NOT NULL,"
        " published_at timestamptz NOT NULL DEFAULT now(), written integer NOT NULL, removed integer NOT NULL)",
        "CREATE TABLE published (rel text PRIMARY KEY, data bytea NOT NULL, gz bytea, etag text NOT NULL,"
        " mtime_ns bigint NOT NULL, generation bigint NOT NULL)",
        "CREATE INDEX published_by_generation ON published (generation)",
        "CREATE TABLE taken_down (rel text PRIMARY KEY, generation bigint NOT NULL)",
        "CREATE INDEX taken_down_by_generation ON taken_down (generation)",
        "CREATE TABLE site (key text PRIMARY KEY, value text NOT NULL)",
    )),
    # Our own WebSub hub on several machines: web nodes take the requests and verify them, the
    # elected builder delivers; both read and write the subscriptions here (as in SQLite).
    Migration(3, "subscriptions of our own WebSub hub", (
        "CREATE TABLE subscriptions (topic text NOT NULL, callback text NOT NULL, secret text,"
        " expires timestamptz NOT NULL, delivered text, PRIMARY KEY (topic, callback))",
    )),
)
