"""The former lxml-based sanitiser and text extractor (a second parse after nh3), kept as the
reference `syndicator.markup`'s single-pass code is tested against."""

from __future__ import annotations

import html as htmllib
import re
from functools import partial

import lxml.html
from lxml import etree

from syndicator import markup
from syndicator.plaintext import strip_illegal

_SPACES = re.compile(r"\s+")
_PARSER = lxml.html.HTMLParser(huge_tree=True, remove_comments=True)


def _fragment(html: str) -> etree._Element:
    return lxml.html.fragment_fromstring(html or "", create_parent="div", parser=_PARSER)


def _drop_hidden(root: etree._Element) -> None:
    for el in list(root.iter()):
        if el is root or not isinstance(el.tag, str):
            continue
        if el.get("hidden") is not None or markup._HIDDEN.search(el.get("style") or ""):
            el.drop_tree()
    for el in root.iter():
        if isinstance(el.tag, str):
            el.attrib.pop("style", None)
            el.attrib.pop("hidden", None)


def _absolutize(root: etree._Element, base: str) -> None:
    # lxml finds href, src and cite; poster and srcset it does not know
    root.rewrite_links(partial(markup._absolute, base), resolve_base_href=False)
    for el in root.iter(etree.Element):
        for name, resolve in (("poster", markup._absolute), ("srcset", markup._absolute_srcset)):
            value = el.get(name)
            if value is not None:
                resolved = resolve(base, value)
                if resolved is None:
                    del el.attrib[name]
                else:
                    el.set(name, resolved)


def _serialize(root: etree._Element) -> str:
    # root.text is parsed (unescaped) text: it must be escaped again, or `&lt;script&gt;`
    # left by nh3 (e.g. from inside a removed <iframe>) would come back as a live tag.
    parts = [htmllib.escape(root.text, quote=False)] if root.text else []
    parts += [lxml.html.tostring(child, encoding="unicode") for child in root]
    return "".join(parts).strip()


def sanitize(html: str, base: str) -> str:
    """`sanitize` done with a second, lxml parse."""
    cleaned = strip_illegal(markup._clean(html, None))
    if not cleaned.strip():
        return ""
    root = _fragment(markup._limit_depth(cleaned))
    _drop_hidden(root)
    _absolutize(root, base)
    return _serialize(root)


def to_text(html: str) -> str:
    """`to_text` done with lxml."""
    if "<" not in html and "&" not in html:
        return _SPACES.sub(" ", html).strip()
    root = _fragment(strip_illegal(html))
    for el in root.iter(*markup._BREAKS):
        el.tail = " " + (el.tail or "")
    return _SPACES.sub(" ", root.text_content()).strip()
