"""`serve` on several machines (state_url set): builders that elect one publisher, and web nodes.

Election: every builder holds a dedicated session to PostgreSQL and tries the advisory lock
`ELECTION_KEY` on it every CAMPAIGN_INTERVAL seconds; the one that gets it raises the epoch in
`leadership` and publishes until it loses the session. The session says something every
HEARTBEAT seconds and the server ends any session of ours silent for LOCK_IDLE_MS (a
killed, paused or cut-off leader), which frees the lock for a standby within ~3 s; a killed
process frees it at once. The epoch is the fence: every write of a pass (state and outputs)
first reads it, in the same transaction, and a builder whose epoch is not the current one is
refused (`Fenced`), so a leader that wakes up after a standby took over writes nothing. A
transaction left open by a paused leader is ended by the server after LOCK_IDLE_MS too, so it
cannot hold the new leader's epoch back.

The new leader starts afresh from the shared state: its first pass reads its own copy of the
posts against the records in PostgreSQL (files whose bytes are those recorded are not changes)
and publishes what differs from the published outputs, so an edit the old leader recorded but
did not publish is published now.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from syndicator import parallel, websub
from syndicator.config import Settings
from syndicator.errors import SyndicatorError
from syndicator.pipeline import Builder, BuildResult, guard, preload
from syndicator.pipeline.warm import WarmReads
from syndicator.publishers.database import DatabasePublisher
from syndicator.store import local
from syndicator.store.pg import Database, Unreachable, require_current
from syndicator.store.postgres import PostgresStore, PostgresSubscriptions
from syndicator.watch import Watcher
from syndicator.websub.hub import Hub
from syndicator.websub.ping import Pinger

log = logging.getLogger("syndicator.cluster")

ELECTION_KEY = 0x5359_4E44_0002
CAMPAIGN_INTERVAL = 0.25
HEARTBEAT = 0.5
LOCK_IDLE_MS = 3000
#: Server settings of the builder's sessions: a transaction or a lock session left open by a
#: process that stopped answering is ended by the server.
_LOCK_SESSION = {"idle_session_timeout": LOCK_IDLE_MS, "idle_in_transaction_session_timeout": LOCK_IDLE_MS}
_DATA_SESSION = {"idle_in_transaction_session_timeout": LOCK_IDLE_MS}


class Fenced(SyndicatorError):
    """This builder is no longer the elected publisher: its writes are refused."""


class Election:
    """One builder's part in the election (see the module's doc)."""

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name
        self.epoch: int | None = None
        self.lost = threading.Event()
        self._db: Database | None = None
        self._complained = False

    def campaign(self, stop: threading.Event, standing_by: Callable[[], object] | None = None) -> bool:
        """Wait until elected (True) or told to stop (False). `standing_by` is called once
        another builder is seen to hold the lock."""
        while not stop.is_set():
            try:
                if self._try():
                    return True
                if standing_by is not None:
                    standing_by()
                    standing_by = None
            except Unreachable as e:
                self._close()
                if not self._complained:
                    log.warning("cannot take part in the election: %s; trying again", e)
                    self._complained = True
            stop.wait(CAMPAIGN_INTERVAL)
        return False

    def _try(self) -> bool:
        if self._db is None:
            self._db = Database(self.url, server=_LOCK_SESSION, watched=True)
        if not self._db.execute("SELECT pg_try_advisory_lock(%s)", (ELECTION_KEY,))[0][0]:
            return False
        rows = self._db.execute("UPDATE leadership SET epoch = epoch + 1, holder = %s, since = now() "
                                "RETURNING epoch", (self.name,))
        self.epoch = int(rows[0][0])
        self.lost.clear()
        self._complained = False
        threading.Thread(target=self._heartbeat, args=(self._db,), name="syndicator-heartbeat", daemon=True).start()
        return True

    def _heartbeat(self, db: Database) -> None:
        while not self.lost.wait(HEARTBEAT):
            try:
                db.execute("SELECT 1")
            except Unreachable as e:
                log.warning("lost the publisher lock (epoch %s): %s", self.epoch, e)
                self.lost.set()

    def fence(self, db: Database) -> None:
        """Inside a writing transaction: Fenced unless this builder's epoch is the current one."""
        current = int(db.execute("SELECT epoch FROM leadership FOR SHARE")[0][0])
        if self.lost.is_set() or current != self.epoch:
            self.lost.set()
            raise Fenced(f"no longer the elected publisher (epoch {self.epoch}, current {current}): write refused")

    def resign(self) -> None:
        self.lost.set()
        self._close()

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


class Publishing:
    """A builder: campaigns, and while elected builds from its posts folder into PostgreSQL."""

    def __init__(self, settings: Settings, key: str, report: Any) -> None:
        self.settings = settings
        self.key = key
        self.report = report  # daemon.BuildLog
        self.stop = threading.Event()
        self.election = Election(settings.state_url, f"{socket.gethostname()}:{os.getpid()}")
        self.builder: Builder | None = None
        #: this builder's reads of its posts, kept current while it stands by (see pipeline/warm.py)
        self.warm = WarmReads(settings)
        self._warming: threading.Thread | None = None
        self._thread: threading.Thread | None = None
        #: WebSub: external hubs pinged, and our own hub's deliveries, by the elected builder only
        self.pinger = Pinger(websub.external(settings))
        self.hub: Hub | None = None

    def start(self) -> Publishing:
        self.pinger.start()
        self._thread = threading.Thread(target=self.run, name="syndicator-publishing", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop: a pass in progress finishes, then the lock is let go."""
        self.stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.pinger.close()

    def run(self) -> None:
        try:
            self._run()
        finally:
            self._warm_no_more()

    def _run(self) -> None:
        while not self.stop.is_set():
            if not self.election.campaign(self.stop, self._stand_by):
                break
            self._warm_no_more()
            log.info("elected publisher (epoch %d)", self.election.epoch)
            try:
                self._lead()
            except (Fenced, Unreachable) as e:
                log.warning("stepping down: %s", e)
            except Exception:  # noqa: BLE001 - a standby may do better; this one campaigns again
                log.exception("stepping down after an error")
                self.stop.wait(CAMPAIGN_INTERVAL * 8)
            finally:
                self.builder = None
                self.election.resign()

    def _stand_by(self) -> None:
        """Another builder publishes: keep a read of the posts warm for when this one takes over."""
        if self._warming is None:
            log.info("standing by; keeping a read of %s warm (%d files read so far)", self.settings.seeds_dir,
                     len(self.warm.reads))
            self.warm.halt.clear()
            self._warming = threading.Thread(target=self._keep_warm, name="syndicator-warm", daemon=True)
            self._warming.start()

    def _keep_warm(self) -> None:
        """The whole folder once, then what the watcher sees, until `warm.halt`."""
        try:
            self.warm.refresh()
        except Exception:  # noqa: BLE001 - the watcher's scans try again
            log.exception("reading %s while standing by failed", self.settings.seeds_dir)
        if self.warm.halt.is_set():
            return
        watcher = Watcher(self.settings.seeds_dir, self.settings.scan_interval, self.warm.refresh,
                          self.warm.refresh_paths).start()
        self.warm.halt.wait()
        watcher.stop()

    def _warm_no_more(self) -> None:
        if self._warming is not None:
            self.warm.halt.set()  # a warm-up in progress stops at its next chunk
            self._warming.join()
            self._warming = None

    def _lead(self) -> None:
        elected, cpu = time.monotonic(), time.process_time()
        s = self.settings
        db = Database(s.state_url, server=_DATA_SESSION, watched=True)
        try:
            fence = self.election.fence
            publisher = DatabasePublisher(db, fence=fence)
            self.builder = builder = Builder(s, state=PostgresStore(db, self.key, fence=fence), settle=True,
                                             publisher=publisher,
                                             confirmations=guard.Confirmations(s, s.state_dir), warm=self.warm,
                                             long_lived=True)
            result = builder.build()
            preload()
            parallel.keep_long_lived(collect=True)  # (a builder of an earlier term may be let go)
            read, warm = builder.tracker.read_counts
            log.info("taking over: %d files looked at again, %d of them from the warm read, %d read now; "
                     "%.1f s since elected (%.1f s CPU)", read, warm, read - warm, time.monotonic() - elected,
                     time.process_time() - cpu)
            self._published(result, "takeover")
            if websub.own_hub(s):  # sends each subscriber what it has not had, then each change
                subscriptions = PostgresSubscriptions(s.state_url)
                self.hub = Hub(s, subscriptions, publisher.read, shared=True).start()
            watcher = Watcher(s.seeds_dir, s.scan_interval, lambda: self._pass(builder.rebuild_if_changed),
                              lambda paths: self._pass(lambda: builder.rebuild_paths(paths))).start()
            try:
                while not self.election.lost.wait(0.2) and not self.stop.is_set():
                    pass
            finally:
                watcher.stop()
        finally:
            if self.hub is not None:
                self.hub.close()
                self.hub = None
                subscriptions.close()
            db.close()

    def _pass(self, run: Any) -> None:
        try:
            result: BuildResult | None = run()
        except (Fenced, Unreachable) as e:  # the loop in run() steps down and campaigns again
            log.warning("pass not published: %s", e)
            self.election.lost.set()
            return
        if result is not None:
            self._published(result)

    def _published(self, result: BuildResult, event: str = "rebuild") -> None:
        """After each pass: its log line, then the hubs are told which feeds changed."""
        self.report(result, event)
        websub.announce(self.settings, result.written, self.pinger, self.hub)


def _check_database(settings: Settings) -> None:
    """Unreachable, or not at this schema: one line, exit 2 (raised). A web node started beside
    its database (an orchestrator starts both at once) waits for it instead, listening:
    /healthz says starting, with the reason, and the schema is checked once it is reached."""
    first: Database | None = None
    try:
        first = Database(settings.state_url)
        require_current(first)
    except Unreachable as e:
        if settings.role != "web":
            raise
        log.warning("%s; answering 503 until it can be reached", e)
    finally:
        if first is not None:
            first.close()


def run(settings: Settings) -> int:
    """`serve` with state_url: the role's parts, until SIGTERM or SIGINT."""
    from syndicator import daemon  # (daemon imports this module when state_url is set)

    _check_database(settings)
    stop = threading.Event()
    servers: list[Any] = []

    def shutdown(signum: int, _frame: Any) -> None:
        if not stop.is_set():
            log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()
        for server in servers:
            server.close()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    web = settings.role in ("web", "all")
    if web:
        daemon.check_port(settings.host, settings.port)
    with contextlib.ExitStack() as held:
        if settings.role == "all":  # feeds/ is written too: one writer per folder
            held.enter_context(local.lock(settings.feeds_dir, local.FEEDS_LOCK_NAME, private=False))
        if web:  # one node per spool: each removes the files its own generation no longer names
            held.enter_context(local.lock(spool_dir(settings), SPOOL_LOCK_NAME))
        publishing = None
        if settings.role in ("builder", "all"):
            publishing = Publishing(settings, local.shared_cache_key(settings), daemon.BuildLog()).start()
        files = None
        try:
            if web:
                files = _web(settings, stop, servers)
            else:
                log.info("building %s into PostgreSQL (role builder)", settings.seeds_dir)
                stop.wait()
        finally:
            stop.set()
            if publishing is not None:
                publishing.close()
            if files is not None:
                files.stop()
    log.info("stopped")
    return 0


SPOOL_LOCK_NAME = "spool.lock"


def spool_dir(settings: Settings) -> Path:
    """Where a web node keeps the published bytes (web/spool.py)."""
    return settings.state_dir / "published"


def _bytes_of(files: Any) -> Callable[[str], bytes | None]:
    """A web node's published bytes of a path (what a hub topic must be)."""

    def read(rel: str) -> bytes | None:
        entry = files.get(rel)
        return None if entry is None else entry.data

    return read


def _web(settings: Settings, stop: threading.Event, servers: list[Any]) -> Any:
    """Serve the published site until `stop` (the server is put in `servers` for the signal
    handler to close); the node's copy of it."""
    from syndicator.server import create_server
    from syndicator.web import create_app
    from syndicator.web.published import FolderCopy, PublishedFiles
    from syndicator.web.purge import Purger

    purger = Purger(settings.purge_caches) if settings.purge_caches else None
    copy: FolderCopy | None = None
    files = PublishedFiles(settings.state_url, spool_dir(settings), changed=purger.purge if purger else None,
                           loaded_hook=lambda: copy.wake.set() if copy is not None else None,
                           cache_bytes=settings.file_cache_mb << 20)
    if settings.role == "all":  # the published site in feeds/ as well, for nginx
        copy = FolderCopy(settings.feeds_dir, files, durable=settings.durable_writes).start()
        files.stopped.append(copy.stop)
    files.start()  # (the server listens meanwhile: /healthz says starting, a file not yet loaded is a 503)
    hub = None
    if websub.own_hub(settings):  # requests taken and verified here; the elected builder delivers
        subscriptions = PostgresSubscriptions(settings.state_url)
        hub = Hub(settings, subscriptions, _bytes_of(files), deliver=False, shared=True).start()
        files.stopped.extend([hub.close, subscriptions.close])

    def status() -> dict[str, Any]:
        doc = files.status()
        return doc if hub is None else {**doc, "websub_hub": hub.status()}

    app = create_app(settings, status=status, files=files, redirect_table=files.redirects, hub=hub,
                     starting=lambda: not files.loaded.is_set())
    server = create_server(app, host=settings.host, port=settings.port, threads=settings.threads,
                           root=settings.feeds_dir, key=files.key, replay_bytes=settings.file_cache_mb << 20)
    servers.append(server)
    if not stop.is_set():
        log.info("serving the published site from PostgreSQL on http://%s:%s/ (role %s)", settings.host,
                 server.effective_port, settings.role)
        server.run()
    return files
