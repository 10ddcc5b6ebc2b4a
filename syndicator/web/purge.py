"""PURGE requests to the HTTP caches in front of the web nodes (`purge_caches`).

A web node sends them after it has loaded a new generation, for each output that changed or
went: every node does, so the last purge of a path comes after the last node serves its new
bytes, and a cache cannot keep a copy it fetched from a node that was still behind. Requests go
from a thread of their own, one connection per cache, never holding up the node; a cache
that does not answer is logged once until it answers again.
"""

from __future__ import annotations

import http.client
import logging
import queue
import threading
from collections.abc import Iterable
from urllib.parse import quote, urlsplit

from syndicator import urls

log = logging.getLogger("syndicator.web")

TIMEOUT = 2.0


def request_paths(rels: Iterable[str]) -> list[str]:
    """The URL paths readers fetch the outputs `rels` under (the index also under /)."""
    paths = []
    for rel in rels:
        paths.append("/" + quote(rel))
        if rel == urls.INDEX:
            paths.append("/")
    return paths


class Purger:
    def __init__(self, caches: Iterable[str]) -> None:
        self.caches = [urlsplit(url) for url in caches]
        self._queue: queue.SimpleQueue[list[str] | None] = queue.SimpleQueue()
        self._failing: set[str] = set()
        self._thread = threading.Thread(target=self._run, name="syndicator-purge", daemon=True)
        self._thread.start()

    def purge(self, rels: Iterable[str]) -> None:
        paths = request_paths(rels)
        if paths:
            self._queue.put(paths)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=TIMEOUT * 2)

    def _run(self) -> None:
        while (paths := self._queue.get()) is not None:
            for cache in self.caches:
                self._send(cache.netloc, paths)

    def _send(self, netloc: str, paths: list[str]) -> None:
        conn = http.client.HTTPConnection(netloc, timeout=TIMEOUT)
        try:
            for path in paths:
                conn.request("PURGE", path)
                conn.getresponse().read()
        except OSError as e:
            if netloc not in self._failing:
                log.warning("cannot purge %s from the cache at %s: %s", paths[0], netloc, e)
                self._failing.add(netloc)
            return
        finally:
            conn.close()
        self._failing.discard(netloc)
