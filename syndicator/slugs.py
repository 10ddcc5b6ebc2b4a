"""Topic and page slugs: ASCII, transliterated, always safe as one path segment. The one module
that imports pypinyin and python-slugify."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from functools import lru_cache

MAX_SLUG = 80
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")

#: Chinese names this code slugged before (the state's records), by name
_KNOWN: dict[str, str] = {}


def remember(pairs: Iterable[tuple[str, str]]) -> None:
    """(name, slug) pairs that this code made (records read with it): a service that edits a
    post of a known Chinese topic then needs no phrase tables (0.3 s and 55 MiB on its first
    edit otherwise); only a new Chinese name loads them."""
    _KNOWN.update((name, made) for name, made in pairs if _HAN.search(name))


@lru_cache(maxsize=4096)  # a few dozen topic names, slugified for every post
def slug(name: str) -> str:
    """`Facebook AI` → `facebook-ai`; Chinese by the common reading of each word (pypinyin's
    phrase tables: `广告` → `guang-gao`, `什么` → `shen-me`, `银行` → `yin-hang`), with a break
    between Latin and Chinese runs (`Zookeeper入门` → `zookeeper-ru-men`).

    Names with no transliterable letters get a stable hash so they still have a file.
    """
    if _HAN.search(name):
        known = _KNOWN.get(name)
        if known is not None:
            return known
        # imported here: its phrase tables take 0.3 s and 55 MiB, for Chinese names only
        from pypinyin import lazy_pinyin

        # lazy_pinyin gives one syllable per character and passes other runs through whole
        return _slugify("-".join(lazy_pinyin(name)), name)
    return _slugify(name, name)


@lru_cache(maxsize=4096)
def legacy_slug(name: str) -> str:
    """The slug earlier versions gave (a reading per character, `长大` → `chang-da`): feeds
    published under it answer 301 to `slug(name)`."""
    return _slugify(name, name)


def _slugify(text: str, name: str) -> str:
    from slugify import slugify  # (on first use: a build with nothing to read makes no slug)

    # HTML entities (`&amp;`, `&#38;`) are decoded after transliteration, which only non-ASCII
    # text changes: ASCII text without `&` has none, and its search (a pattern of every entity
    # name, ~50 µs a title) is skipped, for the same slug
    entities = "&" in text or not text.isascii()
    made = slugify(text, entities=entities, decimal=entities, hexadecimal=entities, max_length=MAX_SLUG,
                   word_boundary=True, save_order=True)
    if made:
        return made
    return "topic-" + hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
