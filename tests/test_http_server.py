"""The HTTP server at the door (syndicator/server.py): the real `syndicator serve` process and
nginx with contrib/nginx.conf on the same feeds/, both on 127.0.0.1 random ports, spoken to with
raw sockets: many idle or slow clients, the request shapes nginx refuses, shutdown, replays.

Each conformance case asserts the same answer from both servers, so the test states what nginx
does as well as what we do.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.serverproc import ServerProcess, nginx_in_front

pytestmark = pytest.mark.skipif(not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()),
                                reason="nginx is not installed")

CROWD = 1000  # idle or slow-loris connections held open while a new client asks
ANSWER_WITHIN = 0.100  # seconds


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, int]]:
    """{"syndicator": port, "nginx": port} on the same feeds/."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = 2 * CROWD + 512  # this process holds the crowd and the probes
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))
    work = tmp_path_factory.mktemp("http")
    srv = ServerProcess(work / "syndicator", env={"SYNDICATOR_LOG_LEVEL": "warning"})
    with srv, nginx_in_front(srv, work, connections=4 * CROWD) as ngx:
        yield {"syndicator": srv.port, "nginx": ngx.port}
    assert srv.proc is not None and srv.proc.returncode == 0, srv.log()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def exchange(port: int, data: bytes, timeout: float = 3.0) -> tuple[str, bytes, bool]:
    """Send `data`, read one answer: (status line or "" if none came, body, closed afterwards)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        status, body = _read_answer(s, time.monotonic() + timeout)
        s.settimeout(0.5)
        try:
            closed = s.recv(1) == b""
        except TimeoutError:
            closed = False
        except ConnectionResetError:
            closed = True
        return status, body, closed


def _read_answer(s: socket.socket, deadline: float) -> tuple[str, bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = s.recv(65536)
        except TimeoutError:
            return "", b""
        if not chunk:
            return "", b""
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    while length and len(body) < int(length.group(1)):
        s.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return head.split(b"\r\n", 1)[0].decode("latin-1"), body


def new_client_seconds(port: int) -> float:
    """How long a new client waits for a whole answer (inf when none within 3 s)."""
    started = time.perf_counter()
    status, body, _ = exchange(port, b"GET /all.rss HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    return time.perf_counter() - started if status.startswith("HTTP/1.1 200") and body else float("inf")


def open_crowd(port: int, first_bytes: bytes) -> list[socket.socket]:
    crowd = []
    for _ in range(CROWD):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        if first_bytes:
            s.sendall(first_bytes)
        s.setblocking(False)
        crowd.append(s)
    return crowd


def trickle(crowd: list[socket.socket], stop: threading.Event, every: float = 2.0) -> None:
    """Slow loris: one more header byte on every connection every `every` seconds."""
    while not stop.wait(every):
        for s in crowd:
            try:
                s.send(b"X")
            except OSError:
                pass


@pytest.mark.parametrize("kind", ["idle", "slow-loris"])
@pytest.mark.parametrize("name", ["syndicator", "nginx"])
def test_new_client_answered_while_a_thousand_connections_wait(servers: dict[str, int], name: str,
                                                               kind: str) -> None:
    port = servers[name]
    crowd = open_crowd(port, b"GET /all.rss HTTP/1.1\r\nHost: t\r\n" if kind == "slow-loris" else b"")
    stop = threading.Event()
    loris = threading.Thread(target=trickle, args=(crowd, stop), daemon=True)
    try:
        if kind == "slow-loris":
            loris.start()
        waits = []
        for _ in range(10):  # over ~5 s: the slow-loris clients send a few bytes meanwhile
            time.sleep(0.5)
            waits.append(new_client_seconds(port))
        # the median, so one scheduling hiccup of a busy test machine does not decide
        assert statistics.median(waits) < ANSWER_WITHIN and max(waits) < 1.0, (name, kind, waits)
    finally:
        stop.set()
        if loris.is_alive():
            loris.join()
        for s in crowd:
            s.close()


# -- request shapes nginx refuses (or answers) ----------------------------------------------------

@pytest.mark.parametrize("name", ["syndicator", "nginx"])
def test_content_length_with_transfer_encoding_is_400_and_closed(servers: dict[str, int], name: str) -> None:
    """The request smuggling shape: two framings, of which a proxy and a server may pick different
    ones. Refused outright, and the connection closed so no second request hides in the body."""
    status, _, closed = exchange(servers[name], b"GET /all.rss HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                                                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\n\r\n")
    assert status.startswith("HTTP/1.1 400") and closed, (name, status, closed)


@pytest.mark.parametrize("name", ["syndicator", "nginx"])
def test_bare_lf_request_is_answered_and_keeps_its_connection(servers: dict[str, int], name: str) -> None:
    """Lines ended by LF alone (RFC 9112 2.2 lets a server accept them; nginx does): answered at
    once, and the connection serves the next request."""
    with socket.create_connection(("127.0.0.1", servers[name]), timeout=3) as s:
        for _ in range(2):
            s.sendall(b"GET /all.rss HTTP/1.1\nHost: t\n\n")
            status, body = _read_answer(s, time.monotonic() + 2)
            assert status.startswith("HTTP/1.1 200") and b"<rss" in body, (name, status)


@pytest.mark.parametrize("name", ["syndicator", "nginx"])
def test_http11_without_host_is_400(servers: dict[str, int], name: str) -> None:
    for request in (b"GET /all.rss HTTP/1.1\r\n\r\n", b"GET /all.rss HTTP/1.1\r\nHost:\r\n\r\n",
                    b"GET /all.rss HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"):
        status, _, closed = exchange(servers[name], request)
        assert status.startswith("HTTP/1.1 400") and closed, (name, request, status)
    # HTTP/1.0 has no Host requirement
    assert re.match(r"HTTP/1\.[01] 200 ", exchange(servers[name], b"GET /all.rss HTTP/1.0\r\n\r\n")[0])


# -- replayed answers follow the file -------------------------------------------------------------

def test_replayed_answers_follow_a_rewritten_file(tmp_path: Path) -> None:
    """The same request, asked again after the writer replaced the file, gets the new bytes --
    even when the new file has the old one's size and mtime (the rename changes the inode)."""
    with ServerProcess(tmp_path, env={"SYNDICATOR_LOG_LEVEL": "warning"}) as srv:
        path = srv.feeds_dir / "all.json"
        original = path.read_bytes()
        for _ in range(3):
            assert srv.request("GET", "/all.json")[2] == original
        etag = srv.request("GET", "/all.json")[1]["ETag"]
        assert srv.request("GET", "/all.json", {"If-None-Match": etag})[0] == 304
        st = path.stat()
        same_size = original.replace(b'"version"', b'"VERSION"')
        tmp = path.with_name(".all.json.tmp")
        tmp.write_bytes(same_size)
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
        os.replace(tmp, path)
        status, h, body = srv.request("GET", "/all.json")
        assert status == 200 and body == same_size and h["ETag"] != etag
        assert srv.request("GET", "/all.json", {"If-None-Match": etag})[0] == 200
        path.unlink()
        assert srv.request("GET", "/all.json")[0] == 404

        # a browser gets the feed's page at the feed's URL: its answer follows the page's file
        nav = {"Sec-Fetch-Dest": "document"}
        page = srv.feeds_dir / "all.html"
        for _ in range(3):
            assert srv.request("GET", "/all.rss", nav)[2] == page.read_bytes()
        tmp = page.with_name(".all.html.tmp")
        tmp.write_bytes(page.read_bytes().replace(b"<h1>", b"<h1>Rewritten "))
        os.replace(tmp, page)
        assert b"<h1>Rewritten " in srv.request("GET", "/all.rss", nav)[2]


# -- start and stop ---------------------------------------------------------------------------------

def test_sigterm_with_clients_connected_exits_0_soon(tmp_path: Path) -> None:
    """Neither a reader keeping its connection open nor one halfway through its headers holds the
    service up on SIGTERM (the server would wait for the header timeout)."""
    srv = ServerProcess(tmp_path, env={"SYNDICATOR_LOG_LEVEL": "warning"}).start()
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=3) as idle, \
                socket.create_connection(("127.0.0.1", srv.port), timeout=3) as halfway:
            idle.sendall(b"GET /all.rss HTTP/1.1\r\nHost: t\r\n\r\n")
            assert _read_answer(idle, time.monotonic() + 3)[0].startswith("HTTP/1.1 200")
            halfway.sendall(b"GET /all.rss HTTP/1.1\r\nHost: t\r\n")
            time.sleep(0.2)
            started = time.monotonic()
            assert srv.stop(timeout=10) == 0, srv.log()
            assert time.monotonic() - started < 4
            idle.settimeout(1)
            assert idle.recv(1) == b""  # closed by the server
    finally:
        srv.kill()


def test_port_in_use_stops_serve_with_the_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        srv = ServerProcess(tmp_path, port=taken.getsockname()[1], startup_timeout=10)
        with pytest.raises(RuntimeError):
            srv.start()
    assert "Address already in use" in srv.log() and srv.proc.returncode not in (0, None)


def test_server_on_port_0_reports_its_port_and_stops(tmp_path: Path) -> None:
    from syndicator.server import create_server

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Length", "2")])
        return [b"ok"]

    server = create_server(app, "127.0.0.1", 0, threads=2, root=tmp_path)
    with pytest.raises(OSError):  # the same port again: an OSError the daemon can report
        create_server(app, "127.0.0.1", server.effective_port, threads=2, root=tmp_path)
    runner = threading.Thread(target=server.run)
    runner.start()
    try:
        status, body, _ = exchange(server.effective_port, b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert server.effective_port > 0 and status.startswith("HTTP/1.1 200") and body == b"ok"
    finally:
        server.close()
        runner.join(10)
    assert not runner.is_alive()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.effective_port), timeout=1).close()
