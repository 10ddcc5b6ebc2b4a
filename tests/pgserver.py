"""A database of its own on the PostgreSQL server the tests use, dropped afterwards.

The server is named by SYNDICATOR_TEST_PG (default postgresql://postgres@127.0.0.1:5432/postgres,
the one `.ci/run` installs and starts). It is read when this module is imported, before the
fixtures clear SYNDICATOR_* variables. A server that cannot be reached fails the test: nothing
here is skipped.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from syndicator.store.pg import Database

ADMIN_URL = os.environ.get("SYNDICATOR_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def database_url(name: str) -> str:
    parts = urlsplit(ADMIN_URL)
    return urlunsplit(parts._replace(path="/" + name))


def create_database() -> str:
    name = "syndicator_test_" + secrets.token_hex(6)
    admin = Database(ADMIN_URL)
    try:
        admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        admin.close()
    return name


def drop_database(name: str) -> None:
    admin = Database(ADMIN_URL)
    try:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of a new, empty database."""
    name = create_database()
    try:
        yield database_url(name)
    finally:
        drop_database(name)


class Proxy:
    """A TCP relay between a client and the PostgreSQL server of `url`, that can be cut (every
    connection through it closed, new ones closed at once) and restored: PostgreSQL as seen
    from a node whose network went away."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self.listener = socket.create_server(("127.0.0.1", 0))
        port = self.listener.getsockname()[1]
        self.url = urlunsplit(parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{port}"))
        self.open: set[socket.socket] = set()
        self.down = threading.Event()
        self._lock = threading.Lock()

    def __enter__(self) -> Proxy:
        self.acceptor = threading.Thread(target=self._accept, daemon=True)
        self.acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut()
        # close() alone leaves accept() blocked (and the thread alive, which keeps later tests
        # in this process from forking: parallel.py forks only while it is the one thread)
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        self.acceptor.join(5)

    def cut(self) -> None:
        self.down.set()
        with self._lock:
            for sock in self.open:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self.open.clear()

    def restore(self) -> None:
        self.down.clear()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.down.is_set():
                client.close()
                continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self.open.update((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def server_binaries() -> Path | None:
    """The folder of Debian's PostgreSQL server programs (initdb, pg_ctl), newest version."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name)
                   if p.parent.parent.name.isdigit() else 0)
    return found[-1].parent if found else None


class OwnServer:
    """A PostgreSQL server of a test's own (initdb in a temporary folder, pg_ctl on a free port,
    trust authentication on 127.0.0.1), which it may stop and start again: the shared server
    the other tests use is never restarted. Run as the `postgres` user when we are root (the
    server refuses to run as root). Skips the test, saying why, when that cannot be done."""

    def __init__(self) -> None:
        binaries = server_binaries()
        if binaries is None:
            pytest.skip("no PostgreSQL server programs in /usr/lib/postgresql/*/bin (Debian's postgresql): "
                        "a server of the test's own cannot be started")
        self.bin = binaries
        self.user: str | None = None
        if os.geteuid() == 0:
            import pwd

            try:
                pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip("running as root with no `postgres` user to run a PostgreSQL server of the test's own")
            self.user = "postgres"
        self.folder = Path(tempfile.mkdtemp(prefix="syndicator-pg-"))
        if self.user is not None:
            shutil.chown(self.folder, self.user)
        self.data = self.folder / "data"
        self.port = _free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 120) -> None:
        done = subprocess.run([str(self.bin / args[0]), *args[1:]], user=self.user, cwd=self.folder,
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stdout}{done.stderr}")

    def __enter__(self) -> OwnServer:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)

    def start(self) -> None:
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off "
                   "-c max_connections=50")
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-o", options, "-w",
                  "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        """`fast`: what a restart of the service does (clients are told and disconnected)."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def log(self) -> str:
        try:
            return (self.folder / "server.log").read_text(errors="replace")
        except OSError:
            return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
