"""Requests the service sends (WebSub pings, intent verifications, content deliveries): the
stdlib's http.client, the one module that makes outgoing HTTP requests.

Every request has a timeout per socket operation, a bounded answer (what a hub or subscriber
says back is a status and a short body), follows no redirect, and goes only to an address the
caller's `allow` accepts: the host is resolved once, each address is judged, and the connection
is made to a judged address (the name is not resolved again, so a DNS answer that changes
between the check and the connection cannot point the request elsewhere).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

#: Seconds a connect, a send or a read may take.
TIMEOUT = 10.0
#: Bytes of an answer's body that are read; the rest is left unread.
MAX_ANSWER = 64 * 1024

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Allow = Callable[[Address], bool]


class RequestFailed(Exception):
    """A request that got no HTTP answer (refused address, DNS, connection, timeout)."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: bytes


def check_url(url: str) -> str | None:
    """Why `url` cannot be requested (None: it can): an absolute http(s) URL with a host."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a bad port)
    except ValueError:
        return "not a URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "not an absolute http(s) URL"
    if parts.username or parts.password:
        return "a URL with a user name or password"
    return None


def addresses(host: str, port: int, allow: Allow | None) -> list[str]:
    """The addresses of `host` that `allow` accepts; RequestFailed when there are none."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as e:
        raise RequestFailed(f"cannot resolve {host}: {getattr(e, 'strerror', None) or e}") from None
    usable = []
    for *_, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
        if allow is None or allow(address):
            usable.append(str(address))
    if not usable:
        raise RequestFailed(f"{host} resolves to an address that is not allowed ({found[0][4][0]})")
    return usable


def request(method: str, url: str, body: bytes | None = None, headers: Mapping[str, str] | None = None,
            allow: Allow | None = None, timeout: float = TIMEOUT) -> Answer:
    """Send one request and read the answer's status and (bounded) body."""
    problem = check_url(url)
    if problem:
        raise RequestFailed(f"{url}: {problem}")
    parts = urlsplit(url)
    host = parts.hostname or ""
    secure = parts.scheme == "https"
    port = parts.port or (443 if secure else 80)
    target = addresses(host, port, allow)[0]
    import http.client  # (on first use: most builds and passes send nothing)

    conn = (http.client.HTTPSConnection(host, port, timeout=timeout) if secure
            else http.client.HTTPConnection(host, port, timeout=timeout))

    def connect(_address: tuple[str, int], timeout: float | None = None, source: object = None) -> socket.socket:
        return socket.create_connection((target, port), timeout)

    conn._create_connection = connect  # type: ignore[attr-defined]  # the judged address, not a new lookup
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request(method, path, body=body, headers={"User-Agent": "syndicator", **(headers or {})})
        resp = conn.getresponse()
        return Answer(resp.status, resp.read(MAX_ANSWER))
    except (OSError, http.client.HTTPException) as e:
        raise RequestFailed(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__) from None
    finally:
        conn.close()
