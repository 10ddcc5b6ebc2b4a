"""Post bodies to safe HTML: Markdown rendering, sanitising, absolute URLs, plain text.

The one module that imports markdown-it-py, nh3 and lxml.html.
"""

from __future__ import annotations

import re
from functools import lru_cache

import lxml.html
import nh3
from lxml import etree
from markdown_it import MarkdownIt

_TAGS = (set(nh3.ALLOWED_TAGS) - {"map", "area"}) | {"figure", "figcaption", "picture", "source", "video", "audio"}
_ATTRS = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
_ATTRS.setdefault("*", set()).update({"style", "hidden"})  # read to drop hidden elements, then removed
_ATTRS.setdefault("img", set()).update({"srcset", "loading"})
_ATTRS["source"] = {"src", "srcset", "type", "media"}
_ATTRS["video"] = {"src", "poster", "controls", "width", "height"}
_ATTRS["audio"] = {"src", "controls"}
_SCHEMES = {"http", "https", "mailto"}
_HIDDEN = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_SPACES = re.compile(r"\s+")
_PARSER = lxml.html.HTMLParser(huge_tree=True, remove_comments=True)


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    return MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])


def markdown_to_html(text: str) -> str:
    """CommonMark with raw HTML allowed (sanitised afterwards)."""
    return _markdown().render(text)


def _fragment(html: str) -> etree._Element:
    return lxml.html.fragment_fromstring(html or "", create_parent="div", parser=_PARSER)


def _drop_hidden(root: etree._Element) -> None:
    for el in list(root.iter()):
        if el is root or not isinstance(el.tag, str):
            continue
        if el.get("hidden") is not None or _HIDDEN.search(el.get("style") or ""):
            el.drop_tree()
    for el in root.iter():
        if isinstance(el.tag, str):
            el.attrib.pop("style", None)
            el.attrib.pop("hidden", None)


def _absolutize(root: etree._Element, base: str) -> None:
    # scheme-less //host/path and /path both resolve against the post's own site
    root.make_links_absolute(base, resolve_base_href=False, handle_failures="discard")


def _serialize(root: etree._Element) -> str:
    parts = [root.text or ""] if root.text else []
    parts += [lxml.html.tostring(child, encoding="unicode") for child in root]
    return "".join(parts).strip()


def sanitize(html: str, base: str) -> str:
    """Remove scripts, styles, handlers, unsafe URLs and hidden elements; absolutize links."""
    cleaned = nh3.clean(
        html, tags=_TAGS, attributes=_ATTRS, url_schemes=_SCHEMES,
        strip_comments=True, link_rel=None, clean_content_tags={"script", "style"},
    )
    if not cleaned.strip():
        return ""
    root = _fragment(cleaned)
    _drop_hidden(root)
    _absolutize(root, base)
    return _serialize(root)


def to_text(html: str) -> str:
    """Visible text of an HTML fragment, whitespace collapsed."""
    if "<" not in html and "&" not in html:
        return _SPACES.sub(" ", html).strip()
    root = _fragment(html)
    for el in root.iter("br", "p", "li", "div", "h1", "h2", "h3", "h4", "tr"):
        el.tail = " " + (el.tail or "")
    return _SPACES.sub(" ", root.text_content()).strip()
