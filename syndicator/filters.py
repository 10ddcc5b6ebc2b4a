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
| `group=story` | one per story: posts of several sources on one news as one item (stories.py) |

An item's description is its summary: the text a reader shows before opening it. Title and
description are each read as one line (line breaks as spaces), so `^` and `$` are their ends.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import operator
import time
from array import array
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import urlencode

import re2

from syndicator.model import Post, summaries

#: RE2's memory for one compiled pattern (its program and DFA cache), bytes.
MAX_PROGRAM = 1 << 20
#: filter_time is rounded to this many seconds, so one cached answer serves a minute of polls.
TIME_STEP = 60

PATTERNS = ("filter", "filter_title", "filter_description", "filterout", "filterout_title",
            "filterout_description")
KEYS = (*PATTERNS, "filter_case_sensitive", "filter_time", "limit", "lang", "min_quality", "group")


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
    #: one item per story (`group=story`, see stories.py)
    group: bool = False

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

    def candidates(self, haystack: Haystack) -> Iterator[int] | None:
        """The positions, in order, of the posts of `haystack` that the first pattern that keeps
        items may match (a superset: each still goes through `matcher`); None when there is
        no such pattern or it cannot be read line by line (`\\A`, `\\z`, `(?-m)`)."""
        keep = [(key, p) for key, p in self.patterns if not key.startswith("filterout")]
        if not keep or any(mark in keep[0][1] for mark in ("\\A", "\\z", "-m")):
            return None
        key, pattern = keep[0]
        compiled = _compile_lines(pattern, self.ignore_case)
        scans = []
        if not key.endswith("_description"):
            scans.append(_line_numbers(compiled, haystack.titles, haystack.title_starts))
        if not key.endswith("_title"):
            scans.append(_line_numbers(compiled, haystack.summaries, haystack.summary_starts))
        return _distinct(heapq.merge(*scans)) if len(scans) > 1 else scans[0]

    def time_key(self, now: float | None = None) -> int | None:
        """What the answer depends on besides the posts: the filter_time cut, in steps."""
        return None if self.within is None else _time_cut(self.within, now)


class Haystack:
    """The titles and summaries of a list of posts as two UTF-8 texts, one line a post (line
    breaks inside read as spaces), and where each line starts: one RE2 scan of a text finds the
    posts a pattern may match in a list of 100,000 in tens of milliseconds, where a search per
    post takes seconds. Built once per list and pass (see Catalog.haystack)."""

    def __init__(self, posts: Sequence[Post]) -> None:
        self.titles, self.title_starts = _lines([p.title for p in posts])
        self.summaries, self.summary_starts = _lines(summaries(posts))

    @property
    def size(self) -> int:
        return len(self.titles) + len(self.summaries) + 16 * len(self.title_starts)

    @classmethod
    def patched(cls, base_posts: Sequence[Post], base: Haystack, posts: Sequence[Post]) -> Haystack:
        """The haystack of `posts` made from `base`, that of `base_posts` (the same list a pass
        ago): the lines of the posts both have (the same objects) are copied a run at a time,
        only the others' are made (their summaries read from the state in one go). After a
        pass that changed a few posts of 100,000, a third to a fifth of the time of making it afresh."""
        runs = _runs(base_posts, posts)
        fresh = [posts[at] for at, first, _ in runs if first < 0]
        made = cls.__new__(cls)
        made.titles, made.title_starts = _spliced(base.titles, base.title_starts, runs,
                                                  _encoded([p.title for p in fresh]))
        made.summaries, made.summary_starts = _spliced(base.summaries, base.summary_starts, runs,
                                                       _encoded(summaries(fresh)))
        return made


def _runs(base: Sequence[Post], posts: Sequence[Post]) -> list[tuple[int, int, int]]:
    """`posts` as (position, first, last): positions `first`..`last` of `base` in a row, or
    first = last = -1 for a post `base` does not have. Loops in C over the posts (a few
    runs of 100,000 posts: the loop in Python cost more than the copies)."""
    n = len(posts)
    if not n:
        return []
    where = dict(zip(map(id, base), range(len(base)), strict=True))
    # a post not in base gets a number of its own far below any position, two apart from the
    # next: a step of exactly 1 is then always two neighbours of base, in its order
    old = list(map(where.get, map(id, posts), range(-2 - 2 * n, -4 * n - 2, -2)))
    del where
    starts = [0, *(k + 1 for k, step in enumerate(map(operator.sub, old[1:], old[:-1])) if step != 1), n]
    runs = []
    for at, end in itertools.pairwise(starts):
        first = old[at]
        runs.append((at, first, first + end - at - 1) if first >= 0 else (at, -1, -1))
    return runs


def _encoded(texts: list[str]) -> list[bytes]:
    """Each text as one line of UTF-8 (line breaks as spaces), looped over in C."""
    return list(map(str.encode, map(_NO_LF, map(_NO_CR, texts))))


_NO_CR = operator.methodcaller("replace", "\r", " ")
_NO_LF = operator.methodcaller("replace", "\n", " ")


def _spliced(text: bytes, starts: array[int], runs: list[tuple[int, int, int]],
             fresh: list[bytes]) -> tuple[bytes, array[int]]:
    """The lines of `runs` (see _runs): a run of lines of `text` (whose lines begin at
    `starts`) copied as one slice, each new post's line the next of `fresh`."""
    pieces: list[bytes] = []
    out, at = array("q"), 0
    fresh_lines = iter(fresh)
    for _, first, last in runs:
        if first < 0:
            line = next(fresh_lines)
            pieces.append(line)
            out.append(at)
            at += len(line) + 1
            continue
        begin = starts[first]
        end = starts[last + 1] - 1 if last + 1 < len(starts) else len(text)
        pieces.append(text[begin:end])
        out.extend(map((at - begin).__add__, starts[first:last + 1]))
        at += end - begin + 1
    return b"\n".join(pieces), out


def _lines(texts: list[str]) -> tuple[bytes, array[int]]:
    data = _encoded(texts)
    # where each line starts: the lengths of those before it, newlines included
    starts = array("q", itertools.accumulate(map((1).__add__, map(len, data)), initial=0))
    starts.pop()
    return b"\n".join(data), starts


def _time_cut(within: int, now: float | None) -> int:
    now = time.time() if now is None else now
    return int(now - within) // TIME_STEP * TIME_STEP


def _line_numbers(pattern: Any, text: bytes, starts: array[int]) -> Iterator[int]:
    last = -1
    for found in pattern.finditer(text):
        line = bisect.bisect_right(starts, found.start()) - 1
        if line != last:
            yield line
            last = line


def _distinct(numbers: Iterator[int]) -> Iterator[int]:
    last = -1
    for n in numbers:
        if n != last:
            yield n
            last = n


@lru_cache(maxsize=256)
def _compile_lines(pattern: str, ignore_case: bool) -> Any:
    """`pattern` for a text of one post a line: `^` and `$` at each line, no match across one."""
    options = _options(ignore_case)
    options.never_nl = True
    return re2.compile(("(?m)" + pattern).encode(), options)


def _pattern_test(key: str, pattern: Any) -> Callable[[Post], bool]:
    search = pattern.search
    keep = key.startswith("filter_") or key == "filter"
    if key.endswith("_title"):
        def found(post: Post) -> bool:
            return search(_flat(post.title)) is not None
    elif key.endswith("_description"):
        def found(post: Post) -> bool:
            return search(_flat(post.summary)) is not None
    else:
        def found(post: Post) -> bool:
            return search(_flat(post.title)) is not None or search(_flat(post.summary)) is not None
    if keep:
        return found
    return lambda post: not found(post)


def _flat(text: str) -> str:
    """The text as patterns see it: one line (line breaks read as spaces)."""
    return text.replace("\r", " ").replace("\n", " ") if "\n" in text or "\r" in text else text


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
    if "group" in given and given["group"] != "story":
        raise FilterError(f"group must be story, not {given['group']!r}")
    group = "group" in given
    for _, pattern in patterns:
        _compile(pattern, ignore_case)  # a bad pattern is answered before anything is looked up
    if limit == items_per_feed:
        limit = None
    normal = [*patterns, *([("filter_case_sensitive", "false")] if ignore_case and patterns else []),
              *([("filter_time", str(within))] if within is not None else []),
              *([("lang", ",".join(languages))] if languages else []),
              *([("limit", str(limit))] if limit is not None else []),
              *([("min_quality", str(quality))] if quality is not None else []),
              *([("group", "story")] if group else [])]
    return Filters(query=urlencode(sorted(normal)), pairs=tuple(sorted(normal)), patterns=tuple(patterns),
                   ignore_case=ignore_case and bool(patterns),
                   within=within, limit=limit, languages=languages, min_quality=quality, group=group)
