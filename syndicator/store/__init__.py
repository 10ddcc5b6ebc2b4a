"""The Store seam: everything the service remembers between passes and across restarts.

The pipeline talks to a `Store` only: what it knows of each post file (a `Record`), the
fingerprints of the Jekyll site configs it read, and the digest each published output was
rendered from. `sqlite.SQLiteStore` keeps them in one file for `serve` and `build` (opened by
`local.opened`); `MemoryStore` keeps them for one pass (`check`, tests). No SQL and no file paths outside these
modules.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

from syndicator.model import Post, Problem

#: Stat fingerprint of one file (size, mtime_ns): cheap to take, changes on every save.
Fingerprint = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Record:
    """Everything remembered about one path."""

    path: str
    #: of the last confirmed read; None means "read again"
    fingerprint: Fingerprint | None
    #: sha256 of the bytes of that read (32 bytes: the stores keep it as hex text)
    hash: bytes | None
    problems: tuple[Problem, ...]
    not_a_post: bool
    #: `good` is what the current bytes gave (False: they are broken and `good` is older)
    current: bool
    #: the stable id, and the id normalize gave (to tell an author's id change from a move)
    id: str | None
    own_id: str | None
    #: the last good post and the hash of its bytes
    good: Post | None
    good_hash: bytes | None
    first_seen: datetime
    changed: datetime

    @property
    def post(self) -> Post | None:
        """What the current bytes gave (None while they are broken; `good` is then older)."""
        return self.good if self.current else None


@dataclass(frozen=True, slots=True)
class Subscription:
    """A verified subscription to a topic of our own WebSub hub."""

    #: the feed's path (`topics/ai.atom`), so a move of base_url keeps it
    topic: str
    callback: str
    #: the subscriber's hub.secret (deliveries are signed with it), None when it gave none
    secret: str | None
    #: when the lease ends (UTC)
    expires: datetime
    #: sha256 of the feed bytes the subscriber has (delivered, or current when it subscribed)
    delivered: str | None


class Store(Protocol):
    """What the pipeline remembers. Each `save_*` is one transaction: a crash leaves the old
    or the new state, never a mix."""

    def load(self) -> dict[str, Record]: ...

    def has_posts(self) -> bool: ...

    def save(self, records: Iterable[Record], gone: Iterable[str], restamped: Iterable[Record] = ()) -> None:
        """Store changed records and forget deleted paths, in one transaction. `restamped`:
        records whose file was read again and found the same, so only their fingerprint
        changed (a standby taking over over its own copy of the posts: thousands at once)."""
        ...

    def site_configs(self) -> dict[str, Fingerprint]: ...

    def save_site_configs(self, fingerprints: dict[str, Fingerprint]) -> None: ...

    def output_digests(self) -> dict[str, str]: ...

    def save_outputs(self, digests: dict[str, str], removed: Iterable[str]) -> None: ...

    def fingerprints(self) -> dict[str, Fingerprint | None]:
        """Each record's fingerprint (as `load` gives it) and nothing else: cheap."""
        ...

    def keep_loaded(self, posts: Iterable[Post]) -> None:
        """Posts whose fields are read from the store on first use (store/codec.py) keep them
        in memory once read when they are among `posts` (what the feeds show); a store may drop
        those of the others again, to be read on their next use."""
        ...

    def lighten(self, records: list[Record]) -> list[Record]:
        """`records`, just saved, with posts the store can drop the heavy fields of and read
        them again (see keep_loaded), where it can; else as they are."""
        ...

    def outputs_current(self) -> bool:
        """Whether the outputs were last made from the records as stored (no record saved since
        `mark_outputs_current`): a start may then take what they show as published."""
        ...

    def mark_outputs_current(self, summary: str = "") -> None:
        """`summary`: what the pass that made them reported (see `last_pass`)."""
        ...

    def last_pass(self) -> str | None:
        """The summary the last `mark_outputs_current` left, while the outputs are current;
        None otherwise."""
        ...

    def close(self) -> None: ...


class Subscriptions(Protocol):
    """The subscriptions of our own WebSub hub; safe to call from any thread."""

    def subscriptions(self) -> list[Subscription]: ...

    def save_subscription(self, subscription: Subscription) -> None:
        """Add or replace the subscription of (topic, callback)."""
        ...

    def drop_subscription(self, topic: str, callback: str) -> None: ...

    def mark_delivered(self, topic: str, callback: str, delivered: str) -> None:
        """The subscriber now has the feed bytes of this digest; nothing when the subscription
        is gone (another process may have ended it meanwhile)."""
        ...


class MemoryStore:
    """A Store that forgets when the process ends: one `build` remembers nothing to the next
    (the Builder keeps what a long-lived pass needs in its own memory)."""

    def load(self) -> dict[str, Record]:
        return {}

    def has_posts(self) -> bool:
        return False

    def save(self, records: Iterable[Record], gone: Iterable[str], restamped: Iterable[Record] = ()) -> None:
        pass

    def site_configs(self) -> dict[str, Fingerprint]:
        return {}

    def save_site_configs(self, fingerprints: dict[str, Fingerprint]) -> None:
        pass

    def output_digests(self) -> dict[str, str]:
        return {}

    def save_outputs(self, digests: dict[str, str], removed: Iterable[str]) -> None:
        pass

    def fingerprints(self) -> dict[str, Fingerprint | None]:
        return {}

    def keep_loaded(self, posts: Iterable[Post]) -> None:
        pass

    def lighten(self, records: list[Record]) -> list[Record]:
        return records

    def outputs_current(self) -> bool:
        return False

    def mark_outputs_current(self, summary: str = "") -> None:
        pass

    def last_pass(self) -> str | None:
        return None

    def close(self) -> None:
        pass


class MemorySubscriptions:
    """Subscriptions kept for the life of the process."""

    def __init__(self) -> None:
        self._subs: dict[tuple[str, str], Subscription] = {}
        self._lock = threading.Lock()

    def subscriptions(self) -> list[Subscription]:
        with self._lock:
            return list(self._subs.values())

    def save_subscription(self, subscription: Subscription) -> None:
        with self._lock:
            self._subs[subscription.topic, subscription.callback] = subscription

    def drop_subscription(self, topic: str, callback: str) -> None:
        with self._lock:
            self._subs.pop((topic, callback), None)

    def mark_delivered(self, topic: str, callback: str, delivered: str) -> None:
        with self._lock:
            sub = self._subs.get((topic, callback))
            if sub is not None:
                self._subs[topic, callback] = replace(sub, delivered=delivered)
