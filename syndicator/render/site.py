"""The files a site has beside its feeds: /favicon.ico, the feeds' icon.png and robots.txt.

The icons are the operator's files (settings `favicon`, `feed_icon`) or the built-in ones the
package ships (drawn by `syndicator/icons.py`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib import resources

from syndicator import urls
from syndicator.config import Settings

log = logging.getLogger("syndicator.site")

#: Feeds, their pages and archives are there to be fetched by readers and crawlers alike.
ROBOTS = b"""# Everything here is meant to be read: feeds (by feed readers), their pages and the post pages.
User-agent: *
Allow: /
"""


def _shipped(name: str) -> bytes:
    return resources.files("syndicator").joinpath("templates", name).read_bytes()


def _file_or_shipped(path: str, setting: str, name: str) -> bytes:
    if path:
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as e:  # checked at start: gone since
            log.warning("setting %s: cannot read %s (%s): the built-in icon is published", setting, path, e.strerror)
    return _shipped(name)


def favicon(settings: Settings) -> bytes:
    return _file_or_shipped(settings.favicon, "favicon", "favicon.ico")


def icon(settings: Settings) -> bytes:
    return _file_or_shipped(settings.feed_icon, "feed_icon", "icon.png")


def robots(settings: Settings) -> bytes:
    return ROBOTS


#: Published path -> its bytes.
SITE_FILES: dict[str, Callable[[Settings], bytes]] = {urls.FAVICON: favicon, urls.ICON: icon, urls.ROBOTS: robots}
