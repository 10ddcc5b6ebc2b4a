"""What `serve` counts, for Prometheus at /metrics (the one module that imports
prometheus_client). One `Metrics` per service, with its own registry, so tests and several
apps in one process do not share counts."""

from __future__ import annotations

import re
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

CONTENT_TYPE = CONTENT_TYPE_LATEST

#: Feed readers that report how many of their users subscribe to the feed they fetch, in their
#: User-Agent: "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 42 subscribers; )",
#: "Mozilla/5.0 (compatible; Inoreader/1.0; …; 7 subscribers; )", "Feedbin feed-id:1 - 3 subscribers".
_SUBSCRIBERS = re.compile(r"(\d+) (?:subscribers|readers)\b", re.I)
#: Names a reader label may take: what is not one of these is counted as "other" (a label per
#: User-Agent would let any client grow the metrics without bound).
KNOWN_READERS = ("Feedly", "Inoreader", "Feedbin", "NewsBlur", "TheOldReader", "Bloglovin", "FeedHQ",
                 "Miniflux", "FreshRSS", "Tiny Tiny RSS", "NetNewsWire", "Feedspot", "BazQux", "Netvibes")


def reader_subscribers(user_agent: str) -> tuple[str, int] | None:
    """(reader, subscriber count) a User-Agent reports, None when it reports none."""
    found = _SUBSCRIBERS.search(user_agent)
    if found is None:
        return None
    lowered = user_agent.lower()
    name = next((r for r in KNOWN_READERS if r.lower() in lowered), "other")
    return name, int(found.group(1))


class Metrics:
    """The service's counters and gauges; `exposition()` is the text /metrics answers."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.passes = Counter("syndicator_build_passes", "Build passes, by outcome (ok, held, failed).",
                              ["outcome"], registry=r)
        self.duration = Histogram("syndicator_build_duration_seconds", "Time a pass that published took.",
                                  buckets=(0.005, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
                                  registry=r)
        self.posts = Gauge("syndicator_posts_published", "Posts the last pass published.", registry=r)
        self.post_errors = Gauge("syndicator_post_errors", "Posts with errors at the last pass (each keeps its last "
                                 "good version).", registry=r)
        self.feeds_written = Counter("syndicator_feeds_written", "Feed files written because their bytes changed.",
                                     registry=r)
        self.files_written = Counter("syndicator_files_written", "Files written (feeds, pages, index, OPML).",
                                     registry=r)
        self.requests = Counter("syndicator_http_requests", "HTTP requests answered, by route and status.",
                                ["route", "status"], registry=r)
        self.sent = Counter("syndicator_http_sent_bytes", "Body bytes sent.", registry=r)
        self.saved = Counter("syndicator_http_saved_bytes", "Body bytes not sent: by 304 Not Modified answers "
                             "(the file's size) and by gzip (the file's size less the gzip bytes).", ["by"],
                             registry=r)
        self.replay = Gauge("syndicator_http_cache_bytes", "Bytes of answers kept in memory for replay.",
                            registry=r)
        self.files = Gauge("syndicator_file_cache_bytes", "Bytes of published files (with their gzip twins) kept "
                           "in memory to answer from.", registry=r)
        self.subscribers = Gauge("syndicator_feed_subscribers", "Subscribers a feed reader reports in its "
                                 "User-Agent when fetching a feed (latest report).", ["reader", "feed"], registry=r)

        self._requests: dict[tuple[str, int], Any] = {}

    def passed(self, result: Any) -> None:
        """After a pass (a BuildResult)."""
        if result.held is not None:
            self.passes.labels("held").inc()
            return
        self.passes.labels("ok").inc()
        self.duration.observe(result.duration_ms / 1000)
        self.posts.set(result.posts_published)
        self.post_errors.set(len(result.errors))
        self.feeds_written.inc(result.feeds_written)
        self.files_written.inc(len(result.written))

    def failed(self) -> None:
        self.passes.labels("failed").inc()

    def answered(self, route: str, status: int, count: int) -> None:
        child = self._requests.get((route, status))
        if child is None:  # (labels() costs more than the count: each pair is looked up once)
            child = self._requests[(route, status)] = self.requests.labels(route, str(status))
        child.inc(count)

    def sent_bytes(self, size: int) -> None:
        if size:
            self.sent.inc(size)

    def saved_by(self, by: str, size: int) -> None:
        if size > 0:
            self.saved.labels(by).inc(size)

    def reported(self, feed: str, user_agent: str) -> None:
        found = reader_subscribers(user_agent)
        if found is not None:
            self.subscribers.labels(found[0], feed).set(found[1])

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
