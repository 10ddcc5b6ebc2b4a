"""Our own WebSub hub (`websub_hubs: [self]`, served by `serve` at <base_url>hub): the hub role
of the W3C WebSub Recommendation for the feeds of this site.

- **Requests** (`POST hub.mode=subscribe|unsubscribe`, `hub.callback`, `hub.topic`, optional
  `hub.lease_seconds` and `hub.secret`) are checked at once and answered 202, or 4xx with the
  reason: the topic must be one of our feeds (not an archive page), the callback an http(s)
  URL at an allowed address, the secret under 200 bytes, and the topic and the callback's host
  under their subscription limits.
- **Intent verification** runs afterwards: a GET to the callback with `hub.challenge`; only a
  2xx answer whose body is the challenge makes (or renews, or ends) the subscription.
- **Distribution**: when a pass changes a feed, every subscriber of it gets the whole feed in
  a POST with its Content-Type, `Link: <hub>; rel="hub", <feed>; rel="self"` and, when it gave
  a secret, `X-Hub-Signature: sha256=<HMAC-SHA256 of the body>`. What a subscriber has is kept
  as a hash of the bytes it got, so a subscriber is sent the feed only when its bytes differ
  (changes that come while a delivery waits are sent once, and a restart sends only what
  changed meanwhile). A failing callback is tried again after RETRY_DELAYS, then that version
  is dropped with a log line; `410 Gone` ends the subscription.
- **Leases** always end: expired subscriptions get nothing and are removed.
- Callbacks resolve to public addresses only, unless `websub_allow_networks` lists the
  network: the address judged is the one connected to (see http.py), so a callback cannot
  reach the service's own machine or network (SSRF).

On several machines (`state_url`) the subscriptions are in PostgreSQL: each web node runs a hub
that takes requests and verifies them (`deliver=False`), and the elected builder runs one that
only delivers; both read the table again before they act on it (`shared`).

Verifications and deliveries run on threads of their own, WORKERS of them, more (up to
MAX_WORKERS) while all are waiting on slow callbacks: a slow or dead subscriber holds one
thread for at most http.TIMEOUT per try, and delays neither a pass nor another subscriber.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import ipaddress
import itertools
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode, urlsplit

from syndicator import urls, websub
from syndicator.config import Settings
from syndicator.errors import SyndicatorError
from syndicator.formats import CONTENT_TYPES, FEED_EXTENSIONS
from syndicator.store import Subscription, Subscriptions
from syndicator.websub import http

log = logging.getLogger("syndicator.websub")

#: Shortest lease granted, in seconds.
MIN_LEASE = 1
#: hub.secret "MUST be less than 200 bytes" (WebSub 5.1).
MAX_SECRET = 199
MAX_CALLBACK = 2048
#: Verifications waiting at most; further requests are answered 503.
MAX_PENDING = 1000
WORKERS = 8
#: Workers at most: more are started while every one is waiting on a slow callback, so a slow
#: or dead subscriber holds a thread (for http.TIMEOUT per try), never the others' deliveries.
MAX_WORKERS = 256
#: Seconds `close()` waits for deliveries in progress (their subscribers get them after a restart).
CLOSE_SECONDS = 2.0
#: Seconds an extra worker waits for work before it ends.
IDLE_SECONDS = 30.0
#: Seconds before each retry of a failed delivery (then that version is dropped).
RETRY_DELAYS = (1.0, 4.0, 16.0, 64.0, 256.0)

Key = tuple[str, str]  # (topic path, callback)
Send = Callable[..., http.Answer]


class Refused(Exception):
    """A request the hub does not take: its status and reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


@dataclass(frozen=True, slots=True)
class Intent:
    mode: str
    topic: str
    callback: str
    secret: str | None
    lease: int


def address_policy(networks: Iterable[str]) -> http.Allow:
    """Public unicast addresses, and any in `networks`."""
    allowed = [ipaddress.ip_network(n, strict=False) for n in networks]

    def allow(address: http.Address) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in net for net in allowed):
            return True
        return address.is_global and not address.is_multicast

    return allow


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class Hub:
    """The hub. `read(rel)`: a published feed's bytes (None when not published)."""

    def __init__(self, settings: Settings, store: Subscriptions, read: Callable[[str], bytes | None],
                 send: Send = http.request, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 workers: int = WORKERS, delays: tuple[float, ...] = RETRY_DELAYS,
                 deliver: bool = True, shared: bool = False) -> None:
        """`deliver`: send changed feeds to subscribers (False: take requests only); `shared`:
        other processes change `store` too, so it is read again before it is acted on."""
        self.settings = settings
        self.delivers = deliver
        self.shared = shared
        self.base_url = settings.base_url
        self.url = urls.hub_url(settings.base_url)
        self.hubs = websub.advertised(settings)
        self.allow = address_policy(settings.websub_allow_networks)
        self._store = store
        self._read = read
        self._send = send
        self._clock = clock
        self._workers = workers
        self._delays = delays
        self._subs: dict[Key, Subscription] = {}
        self._pending: dict[Key, Intent] = {}
        self._jobs: list[tuple[float, int, str, Key, Intent | None]] = []
        self._seq = itertools.count()
        self._queued: set[Key] = set()  # deliveries waiting
        self._running: set[Key] = set()
        self._again: set[Key] = set()  # changed while being delivered
        self._attempts: dict[Key, int] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._names = itertools.count()
        self._alive = 0
        self._idle = 0
        self.delivered = 0
        self.failed = 0

    # -- life ----------------------------------------------------------------------------------

    def start(self) -> Hub:
        """Load the subscriptions and send each one what changed while the service was down."""
        self._reload()
        if self.delivers:
            with self._cond:
                for key in self._subs:
                    self._queue_delivery(key)
        with self._cond:
            for _ in range(self._workers):
                self._spawn()
        return self

    def _reload(self) -> None:
        """The subscriptions as the store has them now (expired ones dropped)."""
        now = self._clock()
        subs = {}
        for sub in self._store.subscriptions():
            if sub.expires <= now:
                self._store.drop_subscription(sub.topic, sub.callback)
            else:
                subs[sub.topic, sub.callback] = sub
        with self._cond:
            self._subs = subs

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        deadline = time.monotonic() + CLOSE_SECONDS  # a delivery still waiting is left to the exit
        for thread in list(self._threads):
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def status(self) -> dict[str, Any]:
        with self._cond:
            return {"url": self.url, "subscriptions": len(self._subs), "verifications_waiting": len(self._pending),
                    "deliveries_waiting": len(self._queued), "delivered": self.delivered, "failed": self.failed}

    # -- requests ------------------------------------------------------------------------------

    def request(self, form: Mapping[str, str]) -> tuple[int, str]:
        """A subscriber's POST: (status, text of the answer)."""
        try:
            intent = self._intent(form)
            if intent.mode == "subscribe":
                self._check_address(intent.callback)  # (a DNS look-up: not while holding the lock)
            if self.shared:
                self._reload()  # the limits count what every node admitted
            with self._cond:
                self._admit(intent)
                self._pending[intent.topic, intent.callback] = intent
                self._push(0.0, "verify", (intent.topic, intent.callback), intent)
        except Refused as e:
            return e.status, str(e)
        except SyndicatorError as e:  # the shared store cannot be reached
            return 503, f"cannot take subscription requests now ({e}); try again later"
        return 202, f"{intent.mode} request accepted; verifying intent with {intent.callback}"

    def _intent(self, form: Mapping[str, str]) -> Intent:
        mode = form.get("hub.mode", "")
        if mode not in ("subscribe", "unsubscribe"):
            raise Refused(400, "hub.mode must be subscribe or unsubscribe")
        callback = form.get("hub.callback", "")
        problem = "too long" if len(callback) > MAX_CALLBACK else http.check_url(callback)
        if problem:
            raise Refused(400, f"hub.callback: {problem}")
        topic = self._topic(form.get("hub.topic", ""))
        secret = form.get("hub.secret") or None
        if secret is not None and len(secret.encode()) > MAX_SECRET:
            raise Refused(400, f"hub.secret must be less than {MAX_SECRET + 1} bytes")
        return Intent(mode, topic, callback, secret, self._lease(form.get("hub.lease_seconds")))

    def _topic(self, url: str) -> str:
        rel = url[len(self.base_url):] if url.startswith(self.base_url) else ""
        if not rel.endswith(FEED_EXTENSIONS) or urls.archive_page(rel) is not None or self._read(rel) is None:
            raise Refused(400, f"hub.topic: {url!r} is not a feed of {self.base_url}")
        return rel

    def _lease(self, asked: str | None) -> int:
        longest = self.settings.websub_lease_seconds
        if not asked:
            return longest
        try:
            return max(MIN_LEASE, min(int(asked), longest))
        except ValueError:
            raise Refused(400, "hub.lease_seconds must be a number of seconds") from None

    def _admit(self, intent: Intent) -> None:
        """The limits (called holding the lock)."""
        key = (intent.topic, intent.callback)
        if len(self._pending) >= MAX_PENDING and key not in self._pending:
            raise Refused(503, "too many verifications waiting; try again later")
        if intent.mode != "subscribe" or key in self._subs or key in self._pending:
            return
        keys = [*self._subs, *self._pending]
        if sum(1 for topic, _ in keys if topic == intent.topic) >= self.settings.websub_max_subscribers:
            raise Refused(403, "this topic has as many subscriptions as it may have")
        host = urlsplit(intent.callback).hostname
        if sum(1 for _, cb in keys if urlsplit(cb).hostname == host) >= self.settings.websub_max_per_host:
            raise Refused(403, f"{host} has as many subscriptions as it may have")

    def _check_address(self, callback: str) -> None:
        parts = urlsplit(callback)
        try:
            http.addresses(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80), self.allow)
        except http.RequestFailed as e:
            raise Refused(403, f"hub.callback: {e}") from None

    # -- distribution --------------------------------------------------------------------------

    def changed(self, rels: Iterable[str]) -> None:
        """A pass wrote these feeds: send them to their subscribers."""
        topics = set(rels)
        if not self.delivers or not topics:
            return
        if self.shared:
            self._reload()  # (subscribed, renewed or ended on a web node since the last pass)
        now = self._clock()
        with self._cond:
            for key, sub in list(self._subs.items()):
                if sub.expires <= now:
                    self._expire(key)
                elif key[0] in topics:
                    self._queue_delivery(key)

    def _queue_delivery(self, key: Key, delay: float = 0.0) -> None:
        if key in self._running:
            self._again.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._push(delay, "deliver", key, None)

    def _push(self, delay: float, kind: str, key: Key, intent: Intent | None) -> None:
        heapq.heappush(self._jobs, (time.monotonic() + delay, next(self._seq), kind, key, intent))
        if delay <= 0 and not self._idle and self._threads and self._alive < MAX_WORKERS:
            self._spawn()  # every worker is busy (slow callbacks): another takes this one
        self._cond.notify()

    def _expire(self, key: Key) -> None:
        self._subs.pop(key, None)
        self._attempts.pop(key, None)
        self._store.drop_subscription(*key)
        log.info("websub: lease of %s for %s ended", key[1], key[0])

    # -- the workers ---------------------------------------------------------------------------

    def _spawn(self) -> None:
        """One more worker (called holding the lock)."""
        self._alive += 1
        thread = threading.Thread(target=self._work, name=f"syndicator-websub-{next(self._names)}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _due(self) -> bool:
        return bool(self._jobs) and self._jobs[0][0] <= time.monotonic()

    def _take(self) -> tuple[str, Key, Intent | None] | None:
        """The next due job, waiting for it; None when this worker is to end (called holding
        the lock). Workers beyond the first ones end after IDLE_SECONDS without work."""
        self._idle += 1
        try:
            while not self._closed and not self._due():
                wait = self._jobs[0][0] - time.monotonic() if self._jobs else IDLE_SECONDS
                if not self._cond.wait(min(wait, IDLE_SECONDS)) and not self._due() \
                        and self._alive > self._workers:
                    break
            else:
                if not self._closed:
                    _, _, kind, key, intent = heapq.heappop(self._jobs)
                    return kind, key, intent
            self._alive -= 1
            return None
        finally:
            self._idle -= 1

    def _work(self) -> None:
        while True:
            with self._cond:
                job = self._take()
                if job is None:
                    return
                kind, key, intent = job
                if kind == "deliver":
                    self._queued.discard(key)
                    self._running.add(key)
                if self._due() and not self._idle and self._alive < MAX_WORKERS:
                    self._spawn()  # every worker is busy (slow callbacks): another takes what is due
            try:
                if intent is not None:
                    self._verify(intent)
                else:
                    self._deliver(key)
            except SyndicatorError as e:  # the shared store cannot be reached: that job is lost
                log.warning("websub: %s to %s not done: %s", kind, key[1], e)
            except Exception:  # a bug must not end the worker
                log.exception("websub: %s to %s failed", kind, key[1])
            finally:
                if intent is None:
                    with self._cond:
                        self._running.discard(key)
                        if key in self._again:
                            self._again.discard(key)
                            self._queue_delivery(key)

    def _verify(self, intent: Intent) -> None:
        key = (intent.topic, intent.callback)
        challenge = secrets.token_urlsafe(24)
        params = [("hub.mode", intent.mode), ("hub.topic", self.base_url + intent.topic), ("hub.challenge", challenge)]
        if intent.mode == "subscribe":
            params.append(("hub.lease_seconds", str(intent.lease)))
        url = intent.callback + ("&" if "?" in intent.callback else "?") + urlencode(params)
        try:
            answer = self._send("GET", url, allow=self.allow)
            confirmed = 200 <= answer.status < 300 and answer.body.strip() == challenge.encode()
            why = "" if confirmed else f"HTTP {answer.status}" if answer.status >= 300 else "wrong challenge"
        except http.RequestFailed as e:
            confirmed, why = False, str(e)
        with self._cond:
            self._pending.pop(key, None)
            if not confirmed:
                log.info("websub: %s of %s to %s not confirmed (%s)", intent.mode, intent.callback, intent.topic, why)
            elif intent.mode == "unsubscribe":
                if self._subs.pop(key, None) is not None:
                    self._store.drop_subscription(*key)
                log.info("websub: %s unsubscribed from %s", intent.callback, intent.topic)
            else:
                self._subscribe(key, intent)

    def _subscribe(self, key: Key, intent: Intent) -> None:
        old = self._subs.get(key)
        body = self._read(intent.topic)
        # a new subscriber has the feed as it is now; a renewal keeps what it was sent
        delivered = old.delivered if old else (digest(body) if body is not None else None)
        sub = Subscription(intent.topic, intent.callback, intent.secret,
                           self._clock() + timedelta(seconds=intent.lease), delivered)
        self._store.save_subscription(sub)
        self._subs[key] = sub
        log.info("websub: %s %s to %s for %d s", intent.callback, "renewed" if old else "subscribed",
                 intent.topic, intent.lease)

    def _deliver(self, key: Key) -> None:
        with self._cond:
            sub = self._subs.get(key)
            if sub is not None and sub.expires <= self._clock():
                self._expire(key)
                return
        body = self._read(key[0]) if sub is not None else None
        if sub is None or body is None:
            return
        version = digest(body)
        if version == sub.delivered:
            return
        try:
            answer = self._send("POST", sub.callback, body, self._headers(sub, body), allow=self.allow)
            status, why = answer.status, f"HTTP {answer.status}"
        except http.RequestFailed as e:
            status, why = 0, str(e)
        with self._cond:
            if key not in self._subs:
                return
            if 200 <= status < 300:
                self._delivered(key, version)
            elif status == 410:
                log.info("websub: %s answered 410 Gone; subscription to %s ended", key[1], key[0])
                self._subs.pop(key, None)
                self._store.drop_subscription(*key)
            else:
                self._failed(key, version, why)

    def _headers(self, sub: Subscription, body: bytes) -> dict[str, str]:
        links = [*(f'<{hub}>; rel="hub"' for hub in self.hubs), f'<{self.base_url}{sub.topic}>; rel="self"']
        headers = {"Content-Type": CONTENT_TYPES["." + sub.topic.rpartition(".")[2]], "Link": ", ".join(links)}
        if sub.secret:
            headers["X-Hub-Signature"] = signature(sub.secret, body)
        return headers

    def _delivered(self, key: Key, version: str) -> None:
        self._subs[key] = replace(self._subs[key], delivered=version)
        self._attempts.pop(key, None)
        self._store.mark_delivered(*key, version)  # (not a renewal made meanwhile on another node)
        self.delivered += 1

    def _failed(self, key: Key, version: str, why: str) -> None:
        self.failed += 1
        attempt = self._attempts.get(key, 0)
        if attempt >= len(self._delays):
            log.warning("websub: delivery of %s to %s failed (%s); dropped after %d attempts",
                        key[0], key[1], why, attempt + 1,
                        extra={"fields": {"topic": key[0], "callback": key[1], "dropped": True}})
            self._attempts.pop(key, None)
            self._delivered(key, version)  # that version is given up: the next change is sent
            self.delivered -= 1
            return
        delay = self._delays[attempt]
        self._attempts[key] = attempt + 1
        log.warning("websub: delivery of %s to %s failed (%s); retry %d of %d in %.0f s", key[0], key[1], why,
                    attempt + 1, len(self._delays), delay,
                    extra={"fields": {"topic": key[0], "callback": key[1], "retry_in": delay}})
        self._queued.add(key)  # (still running: queued here, not through _queue_delivery)
        self._push(delay, "deliver", key, None)

