"""`syndicator serve`: take the lock, build, serve feeds/ (syndicator.server) and keep it current
(syndicator.watch) until SIGTERM/SIGINT, then finish the running pass and exit 0."""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

# `pipeline` loads its stages on first use: the server listens first
from syndicator import allocator, firstpass, heal, logs, parallel, pipeline, progress, redirects, reload, websub
from syndicator.config import Settings
from syndicator.dates import rfc3339
from syndicator.errors import CannotListen, ConfigError, StateUnavailable
from syndicator.metrics import Metrics
from syndicator.pipeline import guard
from syndicator.pipeline.catalog import Catalog
from syndicator.publishers.directory import DirectoryPublisher
from syndicator.server import create_server
from syndicator.store import Fingerprint, MemorySubscriptions, Store, Subscriptions, local
from syndicator.store.sqlite import FILE_NAME, SQLiteStore
from syndicator.watch import Watcher
from syndicator.web import create_app, files_cached, reconfigure
from syndicator.web.observe import Observer
from syndicator.websub.hub import Hub
from syndicator.websub.ping import Pinger

if TYPE_CHECKING:
    from syndicator.pipeline import Builder, BuildResult

log = logging.getLogger("syndicator")

#: Seconds a thread holding the GIL runs before another may take it (Python's default: 0.005).
SWITCH_INTERVAL = 0.0005


def check_port(host: str, port: int) -> None:
    """Fail before any work when `serve` could not listen on host:port (in use, no such
    address): a bind with SO_REUSEADDR, as the server's own, then let go."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as e:  # (socket.gaierror included)
        raise CannotListen(f"cannot listen on {host}:{port}: {e.strerror}") from None


STARTING: dict[str, Any] = {"status": "starting", "last_build": None, "posts": 0, "feeds": 0, "errors": []}


def status(builder: Builder, pinger: Pinger | None = None, hub: Hub | None = None) -> dict[str, Any]:
    """The /healthz document."""
    doc = _build_status(builder)
    if pinger is not None and pinger.hubs:
        doc["websub_pings"] = pinger.status()
    if hub is not None:
        doc["websub_hub"] = hub.status()
    return doc


def _build_status(builder: Builder) -> dict[str, Any]:
    last = builder.last
    errors = last.errors if last else []
    held = last.held if last else None
    reason = f"held: {held.reason}" if held else (f"{len(errors)} posts have errors" if errors else None)
    return {
        "status": "starting" if last is None else ("degraded" if reason else "ok"),
        "reason": reason,
        "last_build": rfc3339(last.built_at) if last and last.built_at else None,
        "posts": last.posts_published if last else 0,
        "feeds": len(last.feeds) * 3 if last else 0,
        "errors": [{"path": p.path, "line": p.line, "message": p.message} for p in errors],
    }


class BuildLog:
    """One line per pass (what changed, what was written, how long), plus one warning per error
    when it first appears, so a broken post is logged once rather than on every pass."""

    def __init__(self, confirm: str = "syndicator confirm") -> None:
        self._known: set[tuple[str, str]] = set()
        self._confirm = confirm
        self._held: guard.Hold | None = None

    def __call__(self, result: BuildResult, event: str = "rebuild") -> None:
        if self._log_hold(result.held, event):
            return
        moved_to = {new for _, new in result.moved}
        changed = [p for p in result.changed_paths if p not in moved_to]
        sample = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
        fields_ = {
            "event": event, "changed": len(changed), "moved": len(result.moved), "posts": result.posts_published,
            "feeds_written": result.feeds_written, "files_written": len(result.written),
            "removed": len(result.removed), "errors": len(result.errors), "ms": round(result.duration_ms, 1),
        }
        log.info("%s: %d files changed%s, %d moved; %d posts; %d feeds written (%d files), %d removed; "
                 "%d errors; %.0f ms", event, len(changed), f" ({sample})" if sample else "", len(result.moved),
                 result.posts_published, result.feeds_written, len(result.written), len(result.removed),
                 len(result.errors), result.duration_ms, extra={"fields": fields_})
        known = set()
        for problem in result.errors:
            key = (problem.path, problem.message)
            known.add(key)
            if key not in self._known:
                log.warning("%s", problem, extra={"fields": {"path": problem.path, "line": problem.line}})
        self._known = known

    def _log_hold(self, held: guard.Hold | None, event: str) -> bool:
        """A held pass is logged once, not on every look (True: the pass was held)."""
        if held is not None and held != self._held:
            log.warning("%s held: %s; %s", event, held.reason, guard.advice(held, self._confirm),
                        extra={"fields": {"event": event, "held": held.kind, "published": held.published,
                                          "removing": held.removing}})
        elif held is None and self._held is not None:
            log.info("%s: no longer held", event)
        self._held = held
        return held is not None


def run(settings: Settings, load: Callable[[], Settings] | None = None) -> int:
    """Serve until SIGTERM/SIGINT; `load` reads the settings again on SIGHUP (None: SIGHUP
    only rescans)."""
    logs.setup(settings.log_format, settings.log_level)
    allocator.keep_large_blocks_apart()  # a long-lived process: what a pass takes, it gives back
    hangup = threading.Event()  # set by SIGHUP from here on: never the default, which ends the process
    signal.signal(signal.SIGHUP, lambda _signum, _frame: hangup.set())
    if settings.state_url:  # several machines: an elected builder, web nodes
        from syndicator import cluster

        return cluster.run(settings)
    # both folders: two services on one feeds/ (each with its own state) would undo each other
    # a long pass (a cold build of thousands of posts) says how far it is every few seconds
    with local.locked(settings), progress.reported(log.info, inplace=False):
        check_port(settings.host, settings.port)  # before the first build, which may take a while
        publisher = DirectoryPublisher(settings.feeds_dir, durable=settings.durable_writes)
        publisher.remove_temp_files()  # we hold the lock: no writer of ours is running
        state = open_state(settings)
        try:
            return _Service(settings, state, publisher, load, hangup).run()
        finally:
            state.close()


def open_state(settings: Settings) -> SQLiteStore:
    """The SQLite state file, waited for while it cannot be opened (another process holds it,
    the disk is full): one log line per reason, retries 1 s doubling to a minute."""
    key = local.cache_key(settings)
    opened = heal.retry(lambda: SQLiteStore(settings.state_dir / FILE_NAME, key),
                        heal.Supervised("opening the state database"), threading.Event(),
                        retry_on=(StateUnavailable,))
    assert opened is not None  # (the event is never set: only the database's return ends the wait)
    return opened


def _subscriptions(state: Store) -> Subscriptions:
    """Where our own hub keeps its subscriptions: the SQLite state file (on several machines,
    PostgreSQL: cluster.py, which `run` hands state_url over to)."""
    if isinstance(state, SQLiteStore):
        return state
    return MemorySubscriptions()


def _serve(settings: Settings, state: Store, publisher: DirectoryPublisher) -> int:
    return _Service(settings, state, publisher).run()


class _Service:
    """One running `serve`: the Builder (made by the first pass), the server, the watcher.

    A restart over feeds an earlier run finished serves them at once and catches up in the
    background: the files on disk are whole and current unless seeds/ changed while down, and
    the catch-up pass rewrites only what did. A first start serves at once too: the first pass
    runs in a child process (firstpass.py), /healthz says `starting` with its progress, and a
    file not written yet answers 503 with Retry-After."""

    def __init__(self, settings: Settings, state: Store, publisher: DirectoryPublisher,
                 load: Callable[[], Settings] | None = None, hangup: threading.Event | None = None) -> None:
        self.settings = settings
        self.state = state
        self.publisher = publisher
        self.warm = state.has_posts() and publisher.has_manifest()
        #: a full scan of seeds/ made before the first catch-up (see `_behind`)
        self._scanned: dict[str, Fingerprint] | None = None
        self.ready: list[Builder] = []
        #: how far the first pass has come (/healthz while starting)
        self.progress: firstpass.Progress | None = None
        self.build_log = BuildLog(f"syndicator confirm --state {settings.state_dir}")
        self.stop = threading.Event()
        self.watchers: list[Watcher] = []
        #: the passes: a failure is retried with backoff (a fresh Builder from the state) and
        #: reported in /healthz, so no thread dies and the service heals when the cause goes away
        self.supervised = heal.Supervised("rebuild")
        self.load = load
        self.hangup = hangup or threading.Event()
        self.app: Any = None
        self.metrics = Metrics()
        self.observer = Observer(settings, self.metrics)  # access log and /metrics
        self.server: Any = None
        self.pinger = Pinger(websub.external(settings))
        self.hub = Hub(settings, _subscriptions(state), publisher.read) if websub.own_hub(settings) else None

    def start_builder(self) -> Builder:
        s = self.settings
        builder = pipeline.Builder(s, state=self.state, settle=True, publisher=self.publisher,
                                   confirmations=guard.Confirmations(s, s.state_dir), keep_catalog=s.custom_feeds,
                                   long_lived=True)
        scanned, self._scanned = self._scanned, None  # (the scan `_behind` made, once)
        self._passed(builder.build(scanned), "catch-up" if self.warm or self.ready else "build")
        again = bool(self.ready)
        self.ready[:] = [builder]
        pipeline.preload()
        parallel.keep_long_lived(collect=again)
        return builder

    def starting(self) -> bool:
        return not self.ready

    def status(self) -> dict[str, Any]:
        if self.ready:
            doc = status(self.ready[0], self.pinger, self.hub)
        else:
            doc = {**STARTING, "progress": self.progress} if self.progress else STARTING
        reason = self.supervised.reason
        return {**doc, "status": "degraded", "reason": reason} if reason else doc

    def catalog(self) -> Catalog | None:
        """What custom feeds are made of; None until the first pass is done."""
        return self.ready[0].catalog if self.ready else None

    def watch(self) -> None:
        """The start-up thread: the first pass (a child process's over a fresh folder), the
        pass that catches up from the state, then the watcher's passes. The watcher watches
        from before those passes: a save made while they run is passed on after them, and no
        full scan of the folder is owed for what they might have missed."""

        def tick() -> None:
            self._pass(lambda builder: builder.rebuild_if_changed())

        def on_paths(paths: set[str]) -> None:  # the watcher's events: only these files changed
            self._pass(lambda builder: builder.rebuild_paths(paths))

        self._tick, self._on_paths = tick, on_paths
        watcher = self._watcher()
        self.watchers.append(watcher.observe())
        if not self.warm or self._behind():
            self._first_pass()
        if not self.ready and heal.retry(self.start_builder, self.supervised, self.stop) is None:
            return  # stopped before a pass could be made (the watcher is stopped with the rest)
        if not self.stop.is_set():
            watcher.start()
        while not self.stop.is_set():  # then this thread takes SIGHUPs, one at a time
            if self.hangup.wait(0.2):
                self.hangup.clear()
                self.reload()

    def _watcher(self) -> Watcher:
        return Watcher(self.settings.seeds_dir, self.settings.scan_interval, self._tick, self._on_paths)

    def _watch(self) -> None:
        if not self.stop.is_set():
            self.watchers.append(self._watcher().start())

    def reload(self) -> None:
        """SIGHUP: the settings read again and taken on (the web app's, the log's, the next
        passes'), then a full pass; settings that do not load are logged and change nothing."""
        fresh = reload.reread(self.load, self.settings, self._check) if self.load else self.settings
        if fresh is None:
            return
        self.observer.configure(fresh)  # (the access log opened again: after a rotation)
        for watcher in self.watchers:
            watcher.stop()  # waits for a running pass: the next one is made with the new settings
        self.watchers.clear()
        if (fresh.log_format, fresh.log_level) != (self.settings.log_format, self.settings.log_level):
            logs.setup(fresh.log_format, fresh.log_level)
        if isinstance(self.state, SQLiteStore) and local.cache_key(fresh) != local.cache_key(self.settings):
            self.state.rekey(local.cache_key(fresh))  # reads and renders made with the old ones are dropped
        self.settings = fresh
        self.publisher.durable = fresh.durable_writes
        if self.app is not None:
            reconfigure(self.app, self._app())
            self.server.forget()
        if isinstance(self.state, SQLiteStore) and self._behind():
            self._read_again()
        if self.stop.is_set():  # stopping meanwhile: the child was stopped, the state is as it left it
            return
        self.supervised.attempt(self.start_builder)
        self._watch()

    def _read_again(self) -> None:
        """A reload whose settings change what posts are read into (a setting in the cache key):
        every post is read again. That pass is made by a child process, as a restart's would be
        (`_behind`): what it allocates is not the service's (10,000 posts: 85 → 179 MiB in the
        service, which glibc kept). The running Builder answers custom feeds meanwhile; the
        fresh one then loads the state the child wrote."""
        started = time.monotonic()
        result = firstpass.run(self.settings, self.stop, lambda _progress: None, "reload pass")
        if result is not None:
            self._passed(result, "reload")
            log.debug("reload: posts read again in %.1f s", time.monotonic() - started)

    def _check(self, settings: Settings) -> None:
        redirects.check_targets(settings.redirects, self.publisher.exists)

    def _app(self) -> Any:
        return create_app(self.settings, status=self.status, catalog=self.catalog, hub=self.hub,
                          starting=self.starting)

    def _behind(self) -> bool:
        """Whether a restart's catch-up would read at least parallel.MIN_FILES files: the
        settings or the code changed since the state was written (every post is read again), or
        that many files were saved while the service was down. That pass is then made as a first
        pass is, by a child process: it uses both cores, and what it allocates never becomes the
        service's (in the service, 100,000 posts took 140 s on one core and a peak of 1 GB). Else
        the catch-up takes this scan as its own."""
        from syndicator.pipeline import read

        try:
            scanned = read.scan(self.settings.seeds_dir)
            known = self.state.fingerprints()
        except Exception as e:  # the catch-up meets it again, supervised: retried and reported
            log.debug("restart: could not compare seeds/ with the state (%s)", e)
            return False
        behind = sum(1 for rel, fingerprint in scanned.items() if known.get(rel) != fingerprint)
        self._scanned = None if behind >= parallel.MIN_FILES else scanned
        return self._scanned is None

    def _first_pass(self) -> None:
        started = time.monotonic()
        result = firstpass.run(self.settings, self.stop, self._progressed)
        if result is not None:
            self._passed(result, "build")
            self.warm = True  # what is left is a restart's catch-up
            self.progress = {"step": "loading", "done": 0, "total": 0}
            log.debug("first pass made in %.1f s", time.monotonic() - started)

    def _progressed(self, progress: firstpass.Progress) -> None:
        self.progress = progress

    def _pass(self, work: Callable[[Builder], BuildResult | None]) -> None:
        """One pass under supervision. After a failure, once the backoff allows, a fresh Builder
        from the state makes a full pass: the failed one may have left its memory ahead of the
        files it did not write."""
        if self.supervised.failing:
            if not self.supervised.due():
                return
            self.supervised.attempt(self.start_builder)
            return
        ok, result = self.supervised.attempt(lambda: work(self.ready[0]))
        if ok:
            self._log(result)
        else:
            self.metrics.failed()

    def _log(self, result: BuildResult | None) -> None:
        if result is not None:
            self._passed(result)

    def _passed(self, result: BuildResult, event: str = "rebuild") -> None:
        """After each pass: its log line, then the hubs are told which feeds changed."""
        self.build_log(result, event)
        self.metrics.passed(result)
        websub.announce(self.settings, result.written, self.pinger, self.hub)
        allocator.trim()  # what the pass freed, back to the system

    def run(self) -> int:
        s = self.settings
        self.pinger.start()
        try:  # (a restart: against the files as the last run left them)
            redirects.check_targets(s.redirects, self.publisher.exists)
        except ConfigError:
            self.pinger.close()
            raise
        if self.hub is not None:
            self.hub.start()  # sends what changed while the service was down
        self.app = app = self._app()
        if s.custom_feeds:
            # a custom feed's render holds the GIL for tens of milliseconds: let the threads that
            # answer from memory in between every half millisecond rather than every five
            sys.setswitchinterval(SWITCH_INTERVAL)
        self.server = server = create_server(app, host=s.host, port=s.port, threads=s.threads, root=s.feeds_dir,
                                             outer=self.observer.around, replay_bytes=s.file_cache_mb << 20)
        self.metrics.replay.set_function(server.cache_bytes)
        self.metrics.files.set_function(lambda: files_cached(app))
        starter = threading.Thread(target=self.watch, name="syndicator-start", daemon=True)
        starter.start()

        def shutdown(signum: int, _frame: Any) -> None:
            if not self.stop.is_set():
                log.info("received %s, shutting down", signal.Signals(signum).name)
            self.stop.set()
            server.close()  # ends server.run() below

        signal.signal(signal.SIGTERM, shutdown)
        signal.signal(signal.SIGINT, shutdown)
        log.info("serving %s on http://%s:%s/, watching %s", s.feeds_dir, s.host, server.effective_port, s.seeds_dir)
        try:
            server.run()  # returns after close(): answers in progress sent, connections closed
        finally:
            self.stop.set()
            starter.join()  # a catch-up pass in progress finishes: every file it writes is whole
            for watcher in self.watchers:
                watcher.stop()  # waits for a running pass
            self.pinger.close()
            if self.hub is not None:
                self.hub.close()
            self.observer.close()
        log.info("stopped")
        return 0
