"""THE URL layout: where every published file lives under feeds/ (and so under base_url).

Paths are relative to the output folder and to `base_url`; a feed is `<stem>.<format>`, its
stem one of the templates below. Read by the planner, the renderers, the web app (redirects),
the index page and OPML. Moving a URL is a one-line change here (plus a redirect from the old
one, see `redirects.py`).
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urljoin

from syndicator.formats import FEED_FORMATS

#: Path templates, relative to feeds/ and base_url.
PATHS: dict[str, str] = {
    "all": "all",                        # stem of the feed of every post
    "topic": "topics/{slug}",            # stem of a topic's feed
    "archive": "{stem}/archive/{n}",     # stem of page n (1 = oldest) of a feed's RFC 5005 archive
    "page": "{stem}.html",               # a feed's page, for people (all.html, topics/<slug>.html)
    "post": "posts/{slug}.html",         # page of a post that has no URL of its own
    "index": "index.html",               # the list of feeds
    "opml": "feeds.opml",                # every feed, to import in one step
    "favicon": "favicon.ico",            # what browsers and readers ask every site for
    "icon": "icon.png",                  # the feeds' icon (Atom <icon>, RSS <image>, JSON Feed icon)
    "robots": "robots.txt",              # crawlers' rules: everything may be fetched
    "hub": "hub",                        # the WebSub hub of `serve` (websub_hubs: [self]); no file
}

ALL_STEM = PATHS["all"]
INDEX = PATHS["index"]
OPML = PATHS["opml"]
FAVICON = PATHS["favicon"]
ICON = PATHS["icon"]
ROBOTS = PATHS["robots"]
#: Folder of the post pages (no `.gz` twins there: see `publishers/directory.py`).
POSTS_DIR = PATHS["post"].partition("{")[0]
_TOPIC_PREFIX = PATHS["topic"].partition("{")[0]
_ARCHIVE_INFIX = PATHS["archive"].format(stem="", n="")


def topic_stem(slug: str) -> str:
    stem = _STEMS.get(slug)
    if stem is None:
        stem = _STEMS[slug] = PATHS["topic"].format(slug=slug)
    return stem


#: topic slug -> its feed's stem (a few dozen topics; asked for each post of every pass)
_STEMS: dict[str, str] = {}


def topic_of_stem(stem: str) -> str | None:
    """The topic slug of a feed stem, None for `all` (or anything else)."""
    return stem[len(_TOPIC_PREFIX):] if stem.startswith(_TOPIC_PREFIX) else None


def archive_stem(stem: str, n: int) -> str:
    return PATHS["archive"].format(stem=stem, n=n)


def archive_prefix(stem: str) -> str:
    """What the paths of every archive page of `stem` start with."""
    return stem + _ARCHIVE_INFIX


def is_archive_prefix(rel: str) -> bool:
    """Whether `rel` is an `archive_prefix` (a key of a feed's pages taken together, no file)."""
    return rel.endswith(_ARCHIVE_INFIX)


def archive_page(rel: str) -> tuple[str, int, str] | None:
    """(feed stem, page number, format) of an archive page's path; None for any other path."""
    head, sep, tail = rel.rpartition(_ARCHIVE_INFIX)
    number, dot, fmt = tail.partition(".")
    if not sep or not head or not dot or not number.isdigit() or number.startswith("0"):
        return None
    return head, int(number), fmt


def hub_url(base_url: str) -> str:
    return base_url + PATHS["hub"]


def feed_path(stem: str, fmt: str) -> str:
    return f"{stem}.{fmt}"


def feed_page(stem: str) -> str:
    """The page that shows a feed to people: where its feeds' home links point."""
    return PATHS["page"].format(stem=stem)


def feed_page_url(base_url: str, stem: str) -> str:
    return base_url + feed_page(stem)


def page_of_feed(rel: str) -> str | None:
    """The page of a feed file's path (`topics/ai.rss` -> `topics/ai.html`), None when `rel`
    is not a feed's path."""
    page = archive_page(rel)  # an archive page's is its feed's
    stem, dot, ext = (page[0], ".", page[2]) if page else rel.rpartition(".")
    return feed_page(stem) if dot and stem and ext in FEED_FORMATS else None


def post_page(slug: str) -> str:
    return PATHS["post"].format(slug=slug)


def feed_url(base_url: str, stem: str, fmt: str) -> str:
    return base_url + feed_path(stem, fmt)


def page_url(base_url: str, slug: str) -> str:
    """URL of the page the service writes for a post: a slug has no `/`, `.`, `?` or `#`, so
    resolving the page path is resolving its folder once and appending."""
    return f"{_posts_url(base_url)}{slug}.html"


@lru_cache(maxsize=16)
def _posts_url(base_url: str) -> str:
    return urljoin(base_url, POSTS_DIR)
