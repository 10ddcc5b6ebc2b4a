"""Topic and page slugs: ASCII, transliterated, always safe as one path segment."""

from __future__ import annotations

import hashlib
from functools import lru_cache

from slugify import slugify

MAX_SLUG = 80


@lru_cache(maxsize=4096)  # a few dozen topic names, slugified for every post
def slug(name: str) -> str:
    """`Facebook AI` → `facebook-ai`, `智通财经网新闻` → `zhi-tong-cai-jing-wang-xin-wen`.

    Names with no transliterable letters get a stable hash so they still have a file.
    """
    made = slugify(name, max_length=MAX_SLUG, word_boundary=True, save_order=True)
    if made:
        return made
    return "topic-" + hashlib.sha1(name.encode("utf-8", "surrogatepass")).hexdigest()[:10]
