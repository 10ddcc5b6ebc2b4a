"""Every URL that reaches an output: absolute http(s), a real host, percent-encoded as a URI must be.

URLs come from posts, from Jekyll `_config.yml` files and from the settings; readers follow
them and validators check them. A `javascript:`, `data:` or `vbscript:` URL in a site's `url`
would make every item of that site a script link; a quote, space or `<>` left as it is makes
the URI invalid (the W3C validator's InvalidUriChar). So: web_url gives the URL every reader and
validator takes, or raises BadURL saying what is wrong, and clean_url (post fields) gives it or
None. What must be encoded is; what is already encoded stays as it is.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from syndicator.plaintext import strip_illegal

#: What stays as it is in a path, query or fragment (RFC 3986 pchar, `/`, `?`, `%` when it
#: starts an escape, and `[]`, which URLs already published hold); everything else is encoded.
_KEEP_IN_PART = "!$&'()*+,;=:@/?~[]"
#: A `%` that starts no escape (`100%`): encoded as `%25`.
_LONE_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")
#: A host name as DNS and URIs have it once IDNA-encoded (labels of letters, digits, `-`, `_`).
_HOST = re.compile(r"[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]*[a-z0-9_])?)*\.?")
#: An absolute http(s) URL made only of characters a URI holds as they are: nothing to clean.
_PLAIN_URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::\d{1,4})?"
                        r"(?:[/?#](?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)?")


class BadURL(ValueError):
    """Not a URL that may reach an output; the message says why."""


def web_url(value: str, base: str | None = None) -> str:
    """`value` (resolved against `base` when relative) as an absolute http(s) URL, encoded
    where it must be; BadURL when it is another scheme, has no host or a malformed one."""
    if _PLAIN_URL.fullmatch(value):  # the common case, ~20 per news item
        return value
    text = strip_illegal(value).strip()
    if not text:
        raise BadURL("empty URL")
    try:
        parts = urlsplit(urljoin(base, text) if base else text)
        port = parts.port
    except ValueError as e:
        raise BadURL(f"malformed URL {_shown(text)}: {e}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        what = f"a {scheme}: URL" if scheme else "not an absolute URL"
        raise BadURL(f"{_shown(text)} is {what}; only http:// and https:// URLs are allowed")
    host = _host(parts.hostname or "", text)
    userinfo, at, written = parts.netloc.rpartition("@")
    # a host as written keeps its spelling (a published link is an item's id); IDNA otherwise
    netloc = written if host == parts.hostname else host if port is None else f"{host}:{port}"
    if at:
        netloc = quote(userinfo, safe=":%") + "@" + netloc
    return urlunsplit((scheme, netloc, _encoded(parts.path), _encoded(parts.query), _encoded(parts.fragment)))


@lru_cache(maxsize=8192)
def clean_url(value: str, base: str) -> str | None:
    """A URL from a post (resolved against the post's site), or None when it cannot be one.
    Remembered: a news site's items list the same related stories again and again (the real
    site in ../shared/corpus-real/: 161,000 related URLs, 4,200 different ones)."""
    if _PLAIN_URL.fullmatch(value):
        return value
    if value.strip().startswith("#"):
        return None
    try:
        return web_url(value, base)
    except BadURL:
        return None


def site_path(value: str) -> str:
    """A Jekyll `baseurl` (`/blog`): a path of its own, encoded; BadURL when it is a URL."""
    text = strip_illegal(value).strip()
    if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:|^//|^\\", text):
        raise BadURL(f"baseurl {_shown(text)} must be a path like /blog, not a URL")
    return _encoded(text).strip("/")


def _encoded(part: str) -> str:
    return _LONE_PERCENT.sub("%25", quote(part, safe=_KEEP_IN_PART + "%")) if part else part


def _host(host: str, text: str) -> str:
    if not host:
        raise BadURL(f"{_shown(text)} has no host")
    if ":" in host:  # an IPv6 literal, bracketed in the URL
        if not re.fullmatch(r"[0-9a-f:.]+", host):
            raise BadURL(f"{_shown(text)} has a malformed IPv6 host")
        return f"[{host}]"
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise BadURL(f"{_shown(text)} has a malformed host") from None
    if not _HOST.fullmatch(ascii_host):
        raise BadURL(f"{_shown(text)} has a malformed host")
    return ascii_host


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:79] + "…")
