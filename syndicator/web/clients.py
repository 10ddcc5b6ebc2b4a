"""Who is asking: the client's address, taken from X-Forwarded-For only when the request comes
from a trusted proxy, and whether it lies in a list of networks (settings `trusted_proxies`,
`status_networks`)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Networks = tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


def networks(texts: Iterable[str]) -> Networks:
    """Parsed networks (the settings have validated them)."""
    return tuple(ipaddress.ip_network(t, strict=False) for t in texts)


def parse(text: str) -> Address | None:
    """An address as a request gives it (IPv4-mapped IPv6 read as IPv4, a zone dropped);
    None if it is not one."""
    try:
        address = ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def within(address: Address | None, nets: Networks) -> bool:
    return address is not None and any(address in net for net in nets)


def client(remote: str, forwarded_for: str | None, trusted: Networks) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the last
    address in X-Forwarded-For that is not a trusted proxy (what a client writes there itself
    comes before what the proxies add, so it is never taken for theirs)."""
    if not forwarded_for or not within(parse(remote), trusted):
        return remote
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        address = parse(hop)
        if address is None:
            return hop  # not an address: not a proxy of ours either
        if not within(address, trusted):
            return str(address)
    return hops[0] if hops else remote
