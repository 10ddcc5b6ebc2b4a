"""Post bodies to safe HTML: Markdown rendering, sanitising, absolute URLs, plain text.

The one module that imports cmarkgfm, nh3 and lxml.html.
"""

from __future__ import annotations

import html as htmllib
import re

import lxml.html
import nh3
from lxml import etree
from cmarkgfm import cmark

from syndicator.text import strip_illegal

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
#: Deeper nesting is flattened (its text kept): libxml2 silently drops content below ~2,000
#: levels, and feed readers choke long before. No real post nests this deep.
MAX_DEPTH = 100
# A tag as nh3 serialises it: attribute values always double-quoted, `"` inside escaped.
_TAG = re.compile(r'<(/?)([A-Za-z][A-Za-z0-9-]*)((?:\s+[^\s"\'=<>/]+(?:="[^"]*")?)*)\s*/?>')
_VOID = frozenset("area base br col embed hr img input link meta source track wbr".split())


_CHAR_REF = re.compile(r"&#(?:[xX]([0-9A-Fa-f]{1,8})|([0-9]{1,10}));")


def _xml_char(code: int) -> bool:
    return (code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD
            or 0x10000 <= code <= 0x10FFFF)


def _drop_illegal_refs(text: str) -> str:
    """`&#1;`, `&#xFFFE;`: references to characters XML forbids (cmark would emit bytes that
    are not UTF-8 for some of them)."""
    def keep(m: re.Match[str]) -> str:
        code = int(m.group(1), 16) if m.group(1) else int(m.group(2))
        return m.group(0) if _xml_char(code) else ""

    return _CHAR_REF.sub(keep, text) if "&#" in text else text


def markdown_to_html(text: str) -> str:
    """CommonMark with raw HTML allowed (sanitised afterwards)."""
    # cmark-gfm (C): ~10x faster than pure-Python renderers on the same CommonMark output.
    # Only the table and strikethrough extensions: GFM's tagfilter would turn <script> into
    # visible text instead of letting the sanitiser drop it.
    text = _drop_illegal_refs(text)
    try:
        return cmark.markdown_to_html_with_extensions(text, options=cmark.Options.CMARK_OPT_UNSAFE,
                                                      extensions=["table", "strikethrough"])
    except UnicodeDecodeError:  # cmark wrote bytes that are not UTF-8: show the text as text
        return f"<pre>{htmllib.escape(text)}</pre>"


def _fragment(html: str) -> etree._Element:
    return lxml.html.fragment_fromstring(html or "", create_parent="div", parser=_PARSER)


def _limit_depth(html: str) -> str:
    """Drop the tags nested deeper than MAX_DEPTH, keeping their text (nh3 output is balanced)."""
    if html.count("<") <= MAX_DEPTH:
        return html
    out: list[str] = []
    stack: list[bool] = []  # for each open element: was its tag kept
    pos = 0
    for m in _TAG.finditer(html):
        out.append(html[pos:m.start()])
        pos = m.end()
        closing, name = m.group(1), m.group(2).lower()
        if name in _VOID:
            keep = len(stack) < MAX_DEPTH
        elif closing:
            keep = stack.pop() if stack else False
        else:
            keep = len(stack) < MAX_DEPTH
            stack.append(keep)
        if keep:
            out.append(m.group(0))
    out.append(html[pos:])
    return "".join(out)


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
    # root.text is parsed (unescaped) text: it must be escaped again, or `&lt;script&gt;`
    # left by nh3 (e.g. from inside a removed <iframe>) would come back as a live tag.
    parts = [htmllib.escape(root.text, quote=False)] if root.text else []
    parts += [lxml.html.tostring(child, encoding="unicode") for child in root]
    return "".join(parts).strip()


def sanitize(html: str, base: str) -> str:
    """Remove scripts, styles, handlers, unsafe URLs and hidden elements; absolutize links."""
    cleaned = nh3.clean(
        html, tags=_TAGS, attributes=_ATTRS, url_schemes=_SCHEMES,
        strip_comments=True, link_rel=None, clean_content_tags={"script", "style"},
    )
    cleaned = strip_illegal(cleaned)  # nh3 decodes `&#1;` to a control character XML forbids
    if not cleaned.strip():
        return ""
    cleaned = _limit_depth(cleaned)
    root = _fragment(cleaned)
    _drop_hidden(root)
    _absolutize(root, base)
    return _serialize(root)


def to_text(html: str) -> str:
    """Visible text of an HTML fragment, whitespace collapsed."""
    if "<" not in html and "&" not in html:
        return _SPACES.sub(" ", html).strip()
    root = _fragment(strip_illegal(html))
    for el in root.iter("br", "p", "li", "div", "h1", "h2", "h3", "h4", "tr"):
        el.tail = " " + (el.tail or "")
    return _SPACES.sub(" ", root.text_content()).strip()
