"""Filter parameters of custom feeds, named as RSSHub names them: the one module that imports
google-re2.

Regular expressions run on RE2, whose time is linear in the text whatever the pattern (no
backtracking: a pattern cannot hang a thread), with a bounded pattern length and program
size. A pattern RE2 does not accept (a syntax error, a back-reference, a look-around) is an
error naming the reason, answered 400.

Parameters (each at most once; unknown ones are ignored, as RSSHub does):

| parameter | keeps the items |
|---|---|
| `filter` | whose title or description matches |
| `filter_title`, `filter_description` | whose title / description matches |
| `filterout` | whose title and description do not match |
| `filterout_title`, `filterout_description` | whose title / description does not match |
| `filter_case_sensitive` | `false`: the patterns ignore case (default `true`) |
| `filter_time` | published within the last so many seconds |
| `limit` | at most so many (at most `items_per_feed`) |
| `lang` | in one of these languages (comma-separated; `zh` is `zh-CN` too) |
| `min_quality` | whose quality score is at least this (items without one are left out) |

An item's description is its summary: the text a reader shows before opening it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

import re2

from syndicator.model import Post

#: RE2's memory for one compiled pattern (its program and DFA cache), bytes.
MAX_PROGRAM = 1 << 20
#: filter_time is rounded to this many seconds, so one cached answer serves a minute of polls.
TIME_STEP = 60

PATTERNS = ("filter", "filter_title", "filter_description", "filterout", "filterout_title",
            "filterout_description")
KEYS = (*PATTERNS, "filter_case_sensitive", "filter_time", "limit", "lang", "min_quality")


class FilterError(ValueError):
    """A parameter that cannot be honoured (the message says which and why)."""


@dataclass(frozen=True, slots=True)
class Filters:
    """Normalised parameters: equal filters have equal `query` (sorted, defaults left out)."""

    query: str
    #: (name, value) of each parameter that differs from its default, sorted
    pairs: tuple[tuple[str, str], ...] = ()
    patterns: tuple[tuple[str, str], ...] = ()
    ignore_case: bool = False
    within: int | None = None
    limit: int | None = None
    languages: tuple[str, ...] = ()
    min_quality: int | None = None

    def __bool__(self) -> bool:
        return bool(self.query)

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.pairs)

    def matcher(self, now: float | None = None) -> Callable[[Post], bool] | None:
        """A test of one post, None when every post passes."""
        tests: list[Callable[[Post], bool]] = [_pattern_test(key, _compile(p, self.ignore_case))
                                               for key, p in self.patterns]
        if self.within is not None:
            cut = _time_cut(self.within, now)
            tests.append(lambda post: post.published.timestamp() >= cut)
        if self.languages:
            langs = self.languages
            tests.append(lambda post: any(post.language.lower() == la or post.language.lower().startswith(la + "-")
                                          for la in langs))
        if self.min_quality is not None:
            least = self.min_quality
            tests.append(lambda post: post.quality is not None and post.quality >= least)
        if not tests:
            return None
        return lambda post: all(test(post) for test in tests)

    def time_key(self, now: float | None = None) -> int | None:
        """What the answer depends on besides the posts: the filter_time cut, in steps."""
        return None if self.within is None else _time_cut(self.within, now)


def _time_cut(within: int, now: float | None) -> int:
    now = time.time() if now is None else now
    return int(now - within) // TIME_STEP * TIME_STEP


def _pattern_test(key: str, pattern: Any) -> Callable[[Post], bool]:
    search = pattern.search
    keep = key.startswith("filter_") or key == "filter"
    if key.endswith("_title"):
        def found(post: Post) -> bool:
            return search(post.title) is not None
    elif key.endswith("_description"):
        def found(post: Post) -> bool:
            return search(post.summary) is not None
    else:
        def found(post: Post) -> bool:
            return search(post.title) is not None or search(post.summary) is not None
    if keep:
        return found
    return lambda post: not found(post)


def _options(ignore_case: bool) -> Any:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = MAX_PROGRAM
    options.case_sensitive = not ignore_case
    return options


@lru_cache(maxsize=256)
def _compile(pattern: str, ignore_case: bool) -> Any:
    try:
        return re2.compile(pattern, _options(ignore_case))
    except re2.error as e:
        reason = e.args[0].decode(errors="replace") if e.args and isinstance(e.args[0], bytes) else str(e)
        raise FilterError(f"bad pattern {pattern!r}: {reason}") from None


def _number(key: str, text: str, least: int, most: int) -> int:
    if not text.isascii() or not text.isdigit() or not least <= int(text) <= most:
        raise FilterError(f"{key} must be a whole number from {least} to {most}, not {text!r}")
    return int(text)


def _flag(key: str, text: str) -> bool:
    value = text.lower()
    if value not in ("true", "false", "1", "0"):
        raise FilterError(f"{key} must be true or false, not {text!r}")
    return value in ("true", "1")


def parse(args: Mapping[str, Sequence[str]], items_per_feed: int, max_length: int) -> Filters:
    """Filters from query parameters (name -> every value given). Raises FilterError."""
    given: dict[str, str] = {}
    for key in KEYS:
        values = args.get(key, ())
        if len(values) > 1:
            raise FilterError(f"{key} is given {len(values)} times")
        if values:
            given[key] = values[0]
    patterns = []
    for key in PATTERNS:
        if key in given:
            if not given[key] or len(given[key]) > max_length:
                raise FilterError(f"{key} must have 1 to {max_length} characters")
            patterns.append((key, given[key]))
    ignore_case = "filter_case_sensitive" in given and not _flag("filter_case_sensitive",
                                                                 given["filter_case_sensitive"])
    within = _number("filter_time", given["filter_time"], 1, 100 * 365 * 86400) if "filter_time" in given else None
    limit = _number("limit", given["limit"], 1, items_per_feed) if "limit" in given else None
    languages: tuple[str, ...] = ()
    if "lang" in given:
        languages = tuple(sorted({la.strip().lower() for la in given["lang"].split(",") if la.strip()}))
        if not languages or any(len(la) > 35 or not la.replace("-", "").isalnum() or not la.isascii()
                                for la in languages):
            raise FilterError(f"lang must be language tags separated by commas, not {given['lang']!r}")
    quality = _number("min_quality", given["min_quality"], 0, 1_000_000) if "min_quality" in given else None
    for _, pattern in patterns:
        _compile(pattern, ignore_case)  # a bad pattern is answered before anything is looked up
    if limit == items_per_feed:
        limit = None
    normal = [*patterns, *([("filter_case_sensitive", "false")] if ignore_case and patterns else []),
              *([("filter_time", str(within))] if within is not None else []),
              *([("lang", ",".join(languages))] if languages else []),
              *([("limit", str(limit))] if limit is not None else []),
              *([("min_quality", str(quality))] if quality is not None else [])]
    return Filters(query=urlencode(sorted(normal)), pairs=tuple(sorted(normal)), patterns=tuple(patterns),
                   ignore_case=ignore_case and bool(patterns),
                   within=within, limit=limit, languages=languages, min_quality=quality)
