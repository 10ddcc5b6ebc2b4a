"""Telling external hubs which feeds changed (WebSub "publishing"): after each pass that wrote
feeds, a POST `hub.mode=publish` with `hub.url` and `hub.topic` (the feed's URL: hubs differ in
which name they read) per changed feed to every hub in `websub_hubs` but our own.

The pings run on a thread of their own, so publishing never waits for a hub. Feeds that
change again before their ping went out are pinged once. A hub that fails (no answer, or not
2xx) is asked again after RETRY_DELAYS, then the ping is dropped; each failed round is one log
line, and /healthz shows each hub's last success and failure.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlencode

from syndicator.websub import http

log = logging.getLogger("syndicator.websub")

#: Seconds before each retry of a failed ping (then it is dropped): about 6 minutes in all.
RETRY_DELAYS = (1.0, 4.0, 16.0, 64.0, 256.0)
FORM = "application/x-www-form-urlencoded"

Send = Callable[[str, bytes], http.Answer]


def _send(hub: str, body: bytes) -> http.Answer:
    return http.request("POST", hub, body, {"Content-Type": FORM})


class _HubQueue:
    """The pings waiting for one hub."""

    def __init__(self) -> None:
        self.urls: dict[str, None] = {}  # in order, once each
        self.attempt = 0
        self.due = 0.0
        self.last_ok: float | None = None
        self.last_error: str | None = None
        self.dropped = 0


class Pinger:
    """Pings `hubs` for changed feed URLs from a background thread."""

    def __init__(self, hubs: Iterable[str], send: Send = _send, delays: tuple[float, ...] = RETRY_DELAYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.hubs = {hub: _HubQueue() for hub in hubs}
        self._send = send
        self._delays = delays
        self._clock = clock
        self._cond = threading.Condition()
        self._closed = False
        self._busy = 0
        self._thread: threading.Thread | None = None

    def start(self) -> Pinger:
        if self.hubs and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="syndicator-websub-ping", daemon=True)
            self._thread.start()
        return self

    def publish(self, feed_urls: Iterable[str]) -> None:
        """Queue a ping for each feed URL to every hub (returns at once)."""
        feed_urls = list(feed_urls)
        if not feed_urls or not self.hubs:
            return
        with self._cond:
            for queue in self.hubs.values():
                if not queue.urls:
                    queue.due = self._clock()
                queue.urls.update(dict.fromkeys(feed_urls))
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return sum(len(q.urls) for q in self.hubs.values()) + self._busy

    def drain(self, timeout: float) -> bool:
        """Wait until every queued ping went out or was dropped (True), or `timeout` passed."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while any(q.urls for q in self.hubs.values()) or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=http.TIMEOUT + 1)

    def status(self) -> dict[str, Any]:
        """For /healthz: per hub, the pings waiting, the last success and the last failure."""
        now = self._clock()
        with self._cond:
            return {hub: {"pending": len(q.urls), "dropped": q.dropped,
                          "last_ok_seconds_ago": round(now - q.last_ok, 1) if q.last_ok is not None else None,
                          "last_error": q.last_error}
                    for hub, q in self.hubs.items()}

    # -- the thread ------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                job = self._next()
                while job is None and not self._closed:
                    self._cond.wait(self._wait())
                    job = self._next()
                if job is None or self._closed:
                    return
                hub, queue = job
                batch, queue.urls = list(queue.urls), {}
                self._busy += 1
            failed = self._ping(hub, batch)
            with self._cond:
                self._busy -= 1
                self._settle(hub, queue, batch, failed)
                self._cond.notify_all()

    def _next(self) -> tuple[str, _HubQueue] | None:
        now = self._clock()
        for hub, queue in self.hubs.items():
            if queue.urls and queue.due <= now:
                return hub, queue
        return None

    def _wait(self) -> float | None:
        dues = [q.due for q in self.hubs.values() if q.urls]
        return max(0.0, min(dues) - self._clock()) if dues else None

    def _ping(self, hub: str, batch: list[str]) -> dict[str, str]:
        """Ping `hub` for each URL; the URLs that failed, with why."""
        failed: dict[str, str] = {}
        for url in batch:
            body = urlencode([("hub.mode", "publish"), ("hub.url", url), ("hub.topic", url)]).encode()
            try:
                answer = self._send(hub, body)
            except http.RequestFailed as e:
                failed[url] = str(e)
                continue
            if not 200 <= answer.status < 300:
                failed[url] = f"HTTP {answer.status}"
        return failed

    def _settle(self, hub: str, queue: _HubQueue, batch: list[str], failed: dict[str, str]) -> None:
        """Record a round; requeue what failed (before anything queued meanwhile) or drop it."""
        if len(failed) < len(batch):
            queue.last_ok = self._clock()
        if not failed:
            queue.attempt = 0
            return
        reason = next(iter(failed.values()))
        queue.last_error = reason
        what = f"websub ping to {hub}: {len(failed)} of {len(batch)} feeds failed ({reason})"
        if queue.attempt >= len(self._delays):
            log.warning("%s; dropped after %d attempts", what, queue.attempt + 1,
                        extra={"fields": {"hub": hub, "failed": len(failed), "dropped": True}})
            queue.dropped += len(failed)
            queue.attempt = 0
            if queue.urls:
                queue.due = self._clock()
            return
        delay = self._delays[queue.attempt]
        queue.attempt += 1
        log.warning("%s; retry %d of %d in %.0f s", what, queue.attempt, len(self._delays), delay,
                    extra={"fields": {"hub": hub, "failed": len(failed), "retry_in": delay}})
        queue.urls = {**dict.fromkeys(failed), **queue.urls}
        queue.due = self._clock() + delay
