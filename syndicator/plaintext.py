"""Plain-text clean-up: entities, mojibake, control characters, truncation, language guess.

Titles, names and summaries come from scrapers and editors of every kind, and every feed must
carry them as valid XML text; the common clean case is checked at C speed first. The one module
that imports ftfy.
"""

from __future__ import annotations

import html
import re

# Characters XML 1.0 forbids (C0 controls but tab/newline/CR, surrogates, U+FFFE/U+FFFF).
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_SPACES = re.compile(r"\s+")
# UTF-8 read as Latin-1/cp1252 always leaves a lead character (Â-ô) followed by one that
# stood for a continuation byte; without that pair there is nothing for ftfy to fix.
_MOJIBAKE_HINT = re.compile(
    "[\u00c2-\u00f4]"
    "[\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013-\u203a\u20ac\u2122]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_LETTER = re.compile(r"[^\W\d_]")
_HANGUL = re.compile(r"[\uac00-\ud7af]")


#: ASCII bytes XML allows: all but the C0 controls (bar tab, newline, CR) and DEL.
_CLEAN_ASCII = bytes(b for b in range(128) if b >= 0x20 and b != 0x7F or b in b"\t\n\r")


def strip_illegal(text: str) -> str:
    # ASCII text, most of it, is checked at C speed: the character class scans it ~7x slower
    # than deleting the allowed bytes from a copy (for other text the class is the faster).
    if text.isascii() and not text.encode("ascii").translate(None, _CLEAN_ASCII):
        return text
    return _XML_ILLEGAL.sub("", text)


def repair(text: str) -> str:
    """Fix mojibake (`Itâ€™s` → `It’s`) without touching curly quotes or entities."""
    if text.isascii() or not _MOJIBAKE_HINT.search(text):
        return strip_illegal(text)
    import ftfy  # ~8 MiB of tables: loaded only once some text looks like mojibake

    fixed = ftfy.fix_text(
        text, uncurl_quotes=False, unescape_html=False, fix_character_width=False, normalization="NFC"
    )
    return strip_illegal(fixed)


def clean_line(value: object) -> str:
    """A title or name: entities decoded, mojibake fixed, one line, trimmed."""
    if value is None:
        return ""
    text = str(value)
    # the common case, checked at C speed: plain printable ASCII, no entity, no double space
    if text.isascii() and text.isprintable() and "&" not in text and "  " not in text:
        return text.strip()
    return _SPACES.sub(" ", repair(html.unescape(text))).strip()


def truncate(text: str, limit: int) -> str:
    """Cut at a word boundary when there is one near the end, with an ellipsis."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit * 0.6:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–—") + "…"


_CJK_SENTENCE = re.compile("[。！？]")


def first_words(text: str, count: int = 10) -> str:
    """A stand-in title from a text: its first words, never a paragraph."""
    words = text.split()
    # CJK text has no spaces between words, only between sentences or around Latin names, so
    # the first sentence (or 40 characters) it is
    if len(words) <= 1 or _HAN.search(words[0]):
        end = _CJK_SENTENCE.search(text, 1)
        if len(text) > 40 and end and end.start() <= 40:
            return text[: end.start()].strip()
        return truncate(text, 40)
    head = " ".join(words[:count])
    if len(head) > 100:
        return truncate(head, 100)
    return head + ("…" if len(words) > count else "")


def guess_language(text: str, default: str) -> str:
    """BCP 47 primary tag from the script, for posts that declare none."""
    sample = text[:4000]
    if sample.isascii():  # most posts: nothing to count
        return default
    han = _HAN.subn("", sample)[1]  # a count without a list of every match
    if _KANA.search(sample) and len(_KANA.findall(sample)) * 5 >= han:
        return "ja"
    if len(_HANGUL.findall(sample)) > 20:
        return "ko"
    if not han:
        return default
    # letters are never more than the sample's length: count them only when that is not enough
    if han >= 0.3 * len(sample) or han >= 0.3 * max(_LETTER.subn("", sample)[1], 1):
        return "zh"
    return default
