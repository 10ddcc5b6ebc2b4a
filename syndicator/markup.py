"""Post bodies to safe HTML: Markdown rendering, sanitising, absolute URLs, plain text of HTML.

Bodies come from anyone and go to every feed reader: what leaves here has only allowed tags,
attributes and URL schemes, absolute URLs, and no deeper nesting than readers can take. The one
module that imports cmarkgfm and nh3 (tests/html_reference.py holds the lxml-based reference
the single-pass sanitiser is tested against).
"""

from __future__ import annotations

import html as htmllib
import re
from collections.abc import Iterator
from functools import lru_cache, partial
from urllib.parse import quote, urljoin, urlsplit

import nh3
from cmarkgfm import cmark

from syndicator.plaintext import strip_illegal, truncate

_TAGS = (set(nh3.ALLOWED_TAGS) - {"map", "area"}) | {"figure", "figcaption", "picture", "source", "video", "audio"}
_ATTRS = {tag: set(attrs) for tag, attrs in nh3.ALLOWED_ATTRIBUTES.items()}
_ATTRS.setdefault("*", set()).update({"style", "hidden"})  # read to drop hidden elements, then removed
_ATTRS.setdefault("img", set()).update({"srcset", "loading"})
_ATTRS["source"] = {"src", "srcset", "type", "media"}
_ATTRS["video"] = {"src", "poster", "controls", "width", "height"}
_ATTRS["audio"] = {"src", "controls"}
_SCHEMES = {"http", "https", "mailto"}
_SAFE_PREFIXES = ("http://", "https://", "mailto:")
_SCHEMES_OR_NONE = _SCHEMES | {""}  # no scheme: a relative URL (from a relative base)
_HIDDEN = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
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
        html: str = cmark.markdown_to_html_with_extensions(text, options=cmark.Options.CMARK_OPT_UNSAFE,
                                                           extensions=["table", "strikethrough"])
        return html
    except UnicodeDecodeError:  # cmark wrote bytes that are not UTF-8: show the text as text
        return f"<pre>{htmllib.escape(text)}</pre>"


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


# ---- sanitising ------------------------------------------------------------------------
# One nh3 pass does the work: its attribute filter makes URLs absolute and empties `style`
# unless it hides the element, so in its output (balanced, attribute values double-quoted)
# a `hidden` or a non-empty `style` marks an element to drop. No second parse (the former lxml
# one is kept as the tests' reference in tests/html_reference.py).

#: Allowed attributes holding one URL: what lxml's make_links_absolute rewrote (href, src,
#: cite) plus `poster`, which it missed.
_URL_ATTRS = frozenset({"href", "src", "cite", "poster"})
_ATTR = re.compile(r'\s+([^\s"\'=<>/]+)(?:="([^"]*)")?')  # one attribute as nh3 writes it
# Text and tags up to the next tag with a `style` or `hidden` attribute. Whole tags are matched,
# quoted values included, so nothing inside an attribute value is ever taken for a tag.
# Possessive: a plain `*` keeps a backtracking entry per tag (~1 KB each, gigabytes for a huge post).
_UNMARKED = re.compile(r'(?:[^<]++|</?[A-Za-z][A-Za-z0-9-]*'
                       r'(?:\s+(?!(?:hidden|style)[\s=/>])[^\s"\'=<>/]+(?:="[^"]*")?)*\s*/?>)*+')
# libxml2 wrote href/src with spaces, controls and non-ASCII percent-encoded: keep doing so
# (for every URL) so feeds stay byte for byte as they were and every URL is a valid URI.
# (Written as "not printable ASCII": the same class, [\x00-\x20\x7f-\U0010ffff], spelled
# as ranges took 2.4 ms to compile at every start; this takes 0.07.)
_URI_UNSAFE = re.compile(r"[^\x21-\x7e]+")
_SRCSET_URL = re.compile(r"[\t\n\f\r ,]*([^\t\n\f\r ]+)")
_SRCSET_DESCRIPTORS = re.compile(r"[^,(]*(?:\([^)]*\)?[^,(]*)*")  # up to a comma outside ( )


def _percent_encode(m: re.Match[str]) -> str:
    return quote(m.group(0), safe="")


#: An absolute http(s) URL that urljoin gives back as it is: lowercase scheme, a plain host, and
#: no `;`, empty `?`/`#`, space, control or non-ASCII character (which would be rewritten).
_PLAIN_ABSOLUTE = re.compile(
    r"https?://[A-Za-z0-9.-]+(?::[0-9]*)?(?:/[A-Za-z0-9\-._~:/@!$&'()*+,=%]*)?"
    r"(?:\?[A-Za-z0-9\-._~:/?@!$&'()*+,=%]+)?(?:#[A-Za-z0-9\-._~:/?#@!$&'()*+,=%]+)?")


@lru_cache(maxsize=4096)  # a site's posts repeat the same links and images
def _absolute(base: str, value: str) -> str | None:
    """`value` resolved against `base` as lxml's make_links_absolute did (None: drop it), and
    never a scheme other than http, https or mailto (nh3 checks only href, src and poster)."""
    if _PLAIN_ABSOLUTE.fullmatch(value):  # most links in posts: nothing to resolve or encode
        return value
    try:
        url = urljoin(base, strip_illegal(value).strip())
        if not url.startswith(_SAFE_PREFIXES) and urlsplit(url).scheme.lower() not in _SCHEMES_OR_NONE:
            return None
    except ValueError:
        return None
    return _URI_UNSAFE.sub(_percent_encode, url)


def _srcset_candidates(value: str) -> Iterator[tuple[str, str]]:
    """(url, descriptors) pairs, split as the HTML standard does (URLs may contain commas)."""
    pos = 0
    while m := _SRCSET_URL.match(value, pos):
        url, pos = m.group(1), m.end()
        if url.endswith(","):
            yield url.rstrip(","), ""
            continue
        descriptors = _SRCSET_DESCRIPTORS.match(value, pos)
        assert descriptors is not None  # matches the empty string
        yield url, descriptors.group(0).strip()
        pos = descriptors.end() + 1


def _absolute_srcset(base: str, value: str) -> str | None:
    candidates = []
    for url, descriptors in _srcset_candidates(value):
        absolute = _absolute(base, url)
        if absolute:
            candidates.append(f"{absolute} {descriptors}" if descriptors else absolute)
    return ", ".join(candidates) or None


def _filter_attribute(base: str, element: str, name: str, value: str) -> str | None:
    if name in _URL_ATTRS:
        return _absolute(base, value)
    if name == "srcset":
        return _absolute_srcset(base, value)
    if name == "style":
        # only marks a hidden element; emptied rather than dropped, as nh3 would move the
        # last attribute into its place and reorder the tag
        return value if _HIDDEN.search(value) else ""
    return value


@lru_cache(maxsize=64)  # one per site base URL; building one converts the allow-list each time
def _cleaner(base: str | None) -> nh3.Cleaner:
    return nh3.Cleaner(
        tags=_TAGS, attributes=_ATTRS, url_schemes=_SCHEMES, strip_comments=True, link_rel=None,
        # a whole HTML page as a body (a newsletter): its <head>'s <title> is not text of the post
        clean_content_tags={"script", "style", "title"},
        attribute_filter=None if base is None else partial(_filter_attribute, base),
    )


def _clean(html: str, base: str | None) -> str:
    """nh3 with our allow-list; with a base, URLs come out absolute and `style`/`hidden` are
    left only on hidden elements."""
    return _cleaner(base).clean(_flatten_deep(html))


#: Raw nesting beyond this is flattened before the parser sees it: html5ever looks through the
#: whole stack of open elements for each new one, so 20,000 nested `<div>`s took 8 s and a
#: 1 MiB post of them would take minutes. Far beyond MAX_DEPTH, so what comes out is the same.
MAX_RAW_DEPTH = 4 * MAX_DEPTH
_RAW_TAG = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)(?:\s[^<>]*)?/?>")
#: Elements the parser closes on its own (a new `<p>` ends the last one), and the void ones:
#: never counted as open.
_SELF_ENDING = _VOID | frozenset("p li dt dd option optgroup tr td th thead tbody tfoot rb rt rp colgroup "
                                 "caption head body html".split())


def _flatten_deep(html: str) -> str:
    """The tags of elements opened deeper than MAX_RAW_DEPTH removed, their text kept. Depth is
    counted as the parser does for well-nested markup; an end tag closes up to the nearest open
    element of its name, or nothing."""
    if html.count("<") <= MAX_RAW_DEPTH:
        return html
    out: list[str] = []
    stack: list[tuple[str, bool]] = []  # (name, tag kept) of each open element
    open_count: dict[str, int] = {}  # so an end tag with nothing to close looks at no stack
    pos = 0
    for m in _RAW_TAG.finditer(html):
        name = m.group(2).lower()
        if name in _SELF_ENDING:
            continue
        keep = True
        if not m.group(1):
            keep = len(stack) < MAX_RAW_DEPTH
            stack.append((name, keep))
            open_count[name] = open_count.get(name, 0) + 1
        elif open_count.get(name):
            at = next(i for i in range(len(stack) - 1, -1, -1) if stack[i][0] == name)
            keep = stack[at][1]
            for closed, _ in stack[at:]:  # each element is closed once: linear overall
                open_count[closed] -= 1
            del stack[at:]
        if not keep:
            out.append(html[pos:m.start()])
            pos = m.end()
    out.append(html[pos:])
    return "".join(out)


def _element_end(html: str, start: int) -> int:
    """End of the element whose start tag is at `start` (nh3 output: every tag explicit)."""
    depth = 0
    for m in _TAG.finditer(html, start):
        if m.group(2).lower() in _VOID:
            if depth == 0:
                return m.end()
        elif m.group(1):
            depth -= 1
            if depth == 0:
                return m.end()
        else:
            depth += 1
    return len(html)  # unclosed: unreachable with nh3 output; dropping the rest never leaks


def _kept_tag(tag: re.Match[str]) -> str | None:
    """A marked start tag without its emptied `style`, or None: the element is hidden."""
    attrs = {a.group(1).lower(): a for a in _ATTR.finditer(tag.group(3))}
    style = attrs.get("style")
    if "hidden" in attrs or style is None or style.group(2):
        return None
    cut = tag.start(3)
    return tag.string[tag.start():cut + style.start()] + tag.string[cut + style.end():tag.end()]


def _drop_marked(html: str) -> str:
    """Remove the elements marked hidden (with their content) and the emptied `style`s."""
    if ' hidden="' not in html and ' style="' not in html:
        return html
    out: list[str] = []
    pos = 0
    while (unmarked := _UNMARKED.match(html, pos)) and (start := unmarked.end()) < len(html):
        out.append(html[pos:start])
        tag = _TAG.match(html, start)
        if tag is None:  # a `<` that starts no tag: nh3 never writes one, but never loop on it
            out.append("<")
            pos = start + 1
        elif (kept := _kept_tag(tag)) is None:
            pos = _element_end(html, start)
        else:
            out.append(kept)
            pos = tag.end()
    out.append(html[pos:])
    return "".join(out)


def sanitize(html: str, base: str) -> str:
    """Remove scripts, styles, handlers, unsafe URLs and hidden elements; absolutize links."""
    cleaned = strip_illegal(_clean(html, base))  # nh3 decodes `&#1;` to a character XML forbids
    cleaned = _drop_marked(cleaned)
    if not cleaned.strip():
        return ""
    # libxml2 wrote U+00A0 as is; so do we, so unchanged posts keep byte-identical feeds
    return _limit_depth(cleaned).replace("&nbsp;", "\xa0").strip()


# ---- plain text ------------------------------------------------------------------------

#: Elements whose end separates words (a space goes after them).
_BREAKS = frozenset({"br", "p", "li", "div", "h1", "h2", "h3", "h4", "tr"})
_BREAK_TAG = re.compile(r"<br>|</(?:p|li|div|h[1-4]|tr)>")
_OPEN_TAG = re.compile(r"<(?:p|li|div|h[1-4]|tr)>")
_TEXT_CLEANER = nh3.Cleaner(tags=_BREAKS, attributes={}, strip_comments=True)


def to_text(html: str) -> str:
    """Visible text of an HTML fragment, whitespace collapsed."""
    if "<" not in html and "&" not in html:
        return " ".join(html.split())
    return _parsed_text(strip_illegal(html), char_refs="&#" in html)


def _parsed_text(html: str, char_refs: bool) -> str:
    """`to_text` of HTML without characters XML forbids; `char_refs`: it had a `&#`."""
    # nh3 keeps text, drops script/style content and writes back only the break elements,
    # each explicitly closed and without attributes: two regexes then finish the job.
    marked = _TEXT_CLEANER.clean(html)
    text = htmllib.unescape(_OPEN_TAG.sub("", _BREAK_TAG.sub(" ", marked)))
    if char_refs:  # nh3 decodes `&#1;` to a character XML forbids
        text = strip_illegal(text)
    return " ".join(text.split())  # str.split() and re's \s agree on what is whitespace


# ---- a summary from the start of the body ---------------------------------------------
# The parser reads its input in order and, outside tables, only ever appends to the tree (the
# adoption agency moves misnested elements, never text out of order), so the text of html[:n]
# begins as the whole text does, up to what the cut changed at its very end. That is at most the
# reference the cut falls in, read as plain text (`&` and up to 31 letters:
# `&CounterClockwiseContourIntegral;` is the longest name), after one collapsed space. Anything
# else a cut leaves is shorter (`<`, `</`, `&#x`, one character for a numeric reference,
# `</textarea` short of its `>`), nothing (a tag, comment or attribute cut off) or whitespace
# (what is left open gets closed: break elements add spaces, stripped at the end). So all but
# the last _CUT_DAMAGE characters of a prefix's text begin the whole text; once those are longer
# than its limit, `truncate` (which reads text[:limit - 1] and whether len(text) > limit) gives
# the same for both.
_CUT_DAMAGE = 1 + 32
#: Foster parenting: text found directly in a table, section or row (the sanitiser leaves some
#: when it flattens deep nesting) goes before the table, ahead of cells that came earlier. A
#: prefix stops short of the first table.
_TABLE = re.compile(r"<table", re.IGNORECASE)


def summary_text(html: str, limit: int) -> str:
    """`truncate(to_text(html), limit)`, parsing no more of a long `html` than that needs."""
    text = _long_prefix_text(html, limit + 1 + _CUT_DAMAGE) if "<" in html or "&" in html else None
    return truncate(to_text(html) if text is None else text, limit)


def _long_prefix_text(html: str, need: int) -> str | None:
    """The text of a prefix of `html` (which has markup), if one at most half as long as `html`
    gives `need` characters."""
    size = 2 * need  # markup takes room too; grown from the text density seen when too short
    while 2 * size <= len(html):  # all prefixes together: at most the work of the whole
        text, stopped = _prefix_text(html, size)
        if len(text) >= need:
            return text
        if stopped:  # a longer prefix stops at the same place
            return None
        size = max(2 * size, size * need * 5 // (4 * max(len(text), 1)))
    return None


def _prefix_text(html: str, size: int) -> tuple[str, bool]:
    """The text of html[:size], or of less when a table starts in it; and whether one did."""
    prefix = strip_illegal(html[:size])
    if table := _TABLE.search(prefix):
        prefix = prefix[:table.start()]
    # to_text strips what `&#` references decode to if the whole body has a `&#` (searching it
    # all takes longer than the parse); only one in the prefix can put such a character in
    return _parsed_text(prefix, char_refs="&#" in prefix and "&#" in html), table is not None
