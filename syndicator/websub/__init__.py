"""WebSub (W3C Recommendation, 2018): the hubs a feed names, the pings that tell external hubs
a feed changed (ping.py), and the service's own hub (hub.py).

`websub_hubs` lists hub URLs; the word `self` stands for the hub `serve` runs itself, at
`urls.hub_url(base_url)`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from syndicator import urls
from syndicator.config import Settings
from syndicator.formats import FEED_EXTENSIONS

if TYPE_CHECKING:
    from syndicator.websub.hub import Hub
    from syndicator.websub.ping import Pinger

#: The `websub_hubs` entry that means the service's own hub.
SELF = "self"


def advertised(settings: Settings) -> tuple[str, ...]:
    """The hub URLs every feed names (rel="hub")."""
    return tuple(urls.hub_url(settings.base_url) if hub == SELF else hub for hub in settings.websub_hubs)


def external(settings: Settings) -> tuple[str, ...]:
    """The hubs to ping after a pass: every configured hub but our own."""
    return tuple(hub for hub in settings.websub_hubs if hub != SELF)


def own_hub(settings: Settings) -> bool:
    return SELF in settings.websub_hubs


def topics(written: Iterable[str]) -> list[str]:
    """The feeds (topics) among the paths a pass wrote: archive pages name no hub."""
    return [rel for rel in written if rel.endswith(FEED_EXTENSIONS) and urls.archive_page(rel) is None]


def announce(settings: Settings, written: Iterable[str], pinger: Pinger, hub: Hub | None) -> None:
    """After a pass (the service's, or the elected builder's): the external hubs are pinged and
    our own hub's subscribers sent the feeds among `written`."""
    changed = topics(written)
    pinger.publish(settings.base_url + rel for rel in changed)
    if hub is not None:
        hub.changed(changed)
