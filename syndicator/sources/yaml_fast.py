"""yaml-rs loads the common shapes of front matter several times faster than PyYAML, with the same result.

Why: PyYAML (YAML 1.1, as Jekyll's Psych reads it; yaml_safe.py) is the reference: what it makes
of a header is what the header means. Building its nodes and objects in Python costs ~0.25 ms a
post, most of a cold build's YAML time; yaml-rs (Rust) parses the same plain headers several
times faster.

Why it is safe: yaml-rs reads YAML 1.2, so load_fast gives its result only where the two cannot
disagree, and None otherwise, which sends the header to PyYAML. Cheap screens of the text turn
away, before yaml-rs runs, what only PyYAML's path handles or the two read differently: tags,
anchors, block scalars, flow collections with `:` or `?` in them or over several lines, tabs
(repaired there), line breaks 1.1 knows and 1.2 does not, merge keys, directives, several
documents. A mark that only looks like a tag, anchor or block scalar because it sits inside a
one-line quoted string (`title: "Windows, & Azure"`) is no reason to leave: the string must then
be in what yaml-rs built. Then _Checker walks what yaml-rs built and holds it to YAML 1.1's semantics, refusing:
- a string 1.1 would have read as something else (`yes`, `1:30`, `=`); 1.1 timestamps, which
  yaml-rs leaves as text, are built as PyYAML builds them when each is a plain `key: value`
  (with escapes in the text, `\"`, also when the plain ones are all there is of that text);
- a number that 1.1 may have read differently: an int when some node starts with a leading
  zero or underscore (`012`, `0o12`, `-0_1`, `_1`), a float when the text has an exponent,
  a signed `.5` or an underscore beside a digit;
- a key that is not a string.
Errors and duplicate keys go to PyYAML too, which reports them with their lines. A false alarm
only costs speed. Without yaml-rs (no wheel for the platform) PyYAML reads everything.

Held to PyYAML by tests/test_yaml_fast.py: every data file, sample post and corpus post, the
scalars and timestamps 1.1 and 1.2 read differently, and generated documents are loaded both
ways (`frontmatter.load_front(split, fast=False)` is PyYAML alone) and must give the same data,
types, key lines and warnings, or the same error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from syndicator.sources.yaml_safe import (
    IMPLICIT_RESOLVERS,
    MAX_NODES,
    TIMESTAMP_TAG,
    KeyLines,
    construct_timestamp,
)

yaml_rs: Any
try:
    import yaml_rs
except ImportError:  # pragma: no cover
    yaml_rs = None


class _Unusual(Exception):
    """What yaml-rs made of the text may not be what PyYAML makes of it."""


def _not_fast(text: str, unusual: str | None = None) -> bool:
    """Tabs, 1.1-only line breaks, merge keys, directives, document markers. `unusual`: the
    text's characters other than printable ASCII and line breaks, when the caller has them
    (frontmatter.py does), searched instead of the text. One-character needles are found at
    memchr speed: a rare one (`<`, `%`) goes first to spare most texts the slower scan for the
    two-character mark; both document markers are one regex's pass (over text with dashes in
    every URL, each `in` of `\n---` costs as much as the regex)."""
    if unusual is None:
        unusual = text
    return ("\t" in unusual or "\r" in unusual or _DOCUMENT_MARK.search(text) is not None
            or ("<" in text and "<<" in text) or ("%" in text and "\n%" in text)
            or text.startswith(("%", "---", "..."))
            or (not unusual.isascii() and ("\x85" in unusual or "\u2028" in unusual or "\u2029" in unusual)))


_DOCUMENT_MARK = re.compile(r"\n(?:---|\.\.\.)")
#: What may start a tag, an anchor or a block scalar, and what may come before one (before the
#: spaces, _BEFORE_NODE). Each mark is found by str.find (memchr), the character before it looked
#: at from Python: the regex `[!&|>]` tries its class at every position of the text (~3x the
#: cost of four finds), and what precedes the `&` of a URL's query is looked at in one step.
_MARKS = "!&|>"
_BEFORE_MARK = frozenset(":-[{,?\n ")
_BEFORE_NODE = frozenset(":-[{,?\n")
#: A line that is one quoted scalar, maybe a list item's or a key's value; group 1 is the scalar.
_QUOTED_LINE = re.compile(r" *(?:- +)*(?:[A-Za-z_][\w-]*: +)?(\"(?:[^\"\\\n]|\\.)*\"|'(?:[^'\n]|'')*') *")
#: The dash after a date's year (`2020-0`): where a timestamp's text may start, 4 characters before.
#: Every place a timestamp's text may start (`2020-1-2`; its first dash is found first, the year
#: by lookbehind): the year, `: ` when it is a line's value right after one, the rest of the line.
_DATES = re.compile(r"-(?<=([0-9]{4})-)(?:(?<=(: )[0-9]{4}-)|)(?=([0-9][0-9]?-[0-9][^\n]*))")
#: A double-quoted string's escape: its code (`x41`, `u2014`) or its character (an escaped line break too).
_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|[\s\S])")
#: Escapes YAML 1.1 turns into a space or a tab (a timestamp's separators).
_SPACE_ESCAPES = frozenset(" t\t")
# Searches that start with a character class try a match at each position of a 2 KB header
# (~10 µs); these start with a rarer class or one literal and check what precedes by lookbehind.
_RISKY_FLOAT = re.compile(r"[-+0-9._](?:(?<=[0-9.])[eE_]|(?<=[-+])\.[0-9]|(?<=_)[0-9.])")
#: Cheap first looks for _LEADING_ZERO: `0` and `_` (with an optional sign) at the start of the
#: text or after what may start a node.
_ZERO = re.compile(r"0(?:(?<![^ \[,{\n]0)|(?<=[-+]0)(?<![^ \[,{\n][-+]0))[0-9oO_]")
_UNDERSCORE = re.compile(r"_(?:(?<![^ \[,{\n]_)|(?<=[-+]_)(?<![^ \[,{\n][-+]_))")
_LEADING_ZERO = re.compile(r"(?:^ *|[:\-] +|[\[{,] *)[-+]?(?:0[0-9oO_]|_)", re.M)
#: Every character of a number in YAML 1.1 or 1.2 (`0x1F`, `0o17`, `1_000`, `1:30`, `.inf`, `.NaN`).
_NUMBER_CHARS = frozenset("0123456789abcdefABCDEFxXoO_+-.:inINfFnNaA")
_FLOW = re.compile(r"(?:^ *|[:\-] +)[\[{]([^\n]*)", re.M)
#: First character of text YAML 1.1 may read as something else -> the longest such text
#: (a word starting with a letter can only be a bool or null: `false`); only that is matched.
_MAYBE_NOT_TEXT = {k: 5 if k.isalpha() else 1 << 62 for k in IMPLICIT_RESOLVERS if k}
#: Text YAML 1.1 reads as a bool, number, null, merge or value key, alias-like scalar
#: (group `other`) or a timestamp (group `ts`).
_IMPLICIT = re.compile(
    "(?P<ts>{})|(?P<other>{})".format(
        "|".join(sorted({f"(?:{r.pattern})" for rs in IMPLICIT_RESOLVERS.values() for t, r in rs
                         if t == TIMESTAMP_TAG})),
        "|".join(sorted({f"(?:{r.pattern})" for rs in IMPLICIT_RESOLVERS.values() for t, r in rs
                         if t != TIMESTAMP_TAG})),
    ), re.X)
#: The usual timestamp shapes (`2021-01-27`, `2021-01-27T04:31:22Z`, `2022-05-26 12:19:14.5 +08:00`),
#: all within what YAML 1.1's timestamp resolver matches; built here as PyYAML's regex-based
#: constructor builds them, in a fraction of its time. Other shapes go to that constructor.
_COMMON_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?: ?(?:(Z)|([-+])([0-9]{2})(?::([0-9]{2}))?))?)?")
#: Strings checked to be text in YAML 1.1 (not a bool, number, null, timestamp...), wherever
#: they are: keys and short words repeat from header to header. Bounded.
_PLAIN_TEXT: set[str] = set()
_PLAIN_TEXT_MAX = 10_000
#: Timestamp text -> what PyYAML makes of it (a date, a datetime: immutable, so shared): a news
#: site's related items repeat the same few thousand dates across every header. Bounded.
_STAMPS: dict[str, Any] = {}
_LIMITS = yaml_rs.AliasLimits(max_total_replayed_events=MAX_NODES) if yaml_rs else None


def _timestamp(v: str, m: re.Match[str] | None) -> Any:
    """What PyYAML's construct_yaml_timestamp (as yaml_safe's loader keeps it) makes of `v`, a
    timestamp; `m`: its _COMMON_TIMESTAMP match, if any."""
    if m is not None:
        try:
            # ISO forms fromisoformat reads the same, ~10x faster: `2021-01-27`,
            # `2021-01-27T04:31:22Z` (Z right after the seconds) and `2021-01-27 04:31:22`
            last = m.lastindex
            if last == 3:
                return date.fromisoformat(v)
            if (last == 8 and len(v) == 20) or last == 6:
                return datetime.fromisoformat(v)
            year, month, day, hour, minute, second, fraction, utc, sign, tz_hour, tz_minute = m.groups()
            tzinfo = None
            if sign is not None:
                delta = timedelta(hours=int(tz_hour), minutes=int(tz_minute or 0))
                tzinfo = timezone(-delta if sign == "-" else delta)
            elif utc is not None:
                tzinfo = UTC
            return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second),
                            int(fraction[:6].ljust(6, "0")) if fraction else 0, tzinfo=tzinfo)
        except (ValueError, OverflowError):
            pass  # out of range: PyYAML's path keeps the text
    return construct_timestamp(v)


def _check_keys(item: dict[Any, Any]) -> None:
    """Every key is text in YAML 1.1 too; each is remembered as such."""
    maybe_not_text = _MAYBE_NOT_TEXT.get
    implicit = _IMPLICIT.match
    for k in item:
        if type(k) is not str or (not k or len(k) <= maybe_not_text(k[0], -1)) and implicit(k):
            raise _Unusual
        if len(_PLAIN_TEXT) < _PLAIN_TEXT_MAX:
            _PLAIN_TEXT.add(k)


class _Checker:
    """yaml-rs output as PyYAML would have built it; _Unusual where that is not certain."""

    def __init__(self, text: str) -> None:
        self.text = text
        #: Timestamp text -> how many values of the data have it (each made a timestamp).
        self._stamps: dict[str, int] = {}

    def walk(self, data: Any) -> Any:
        top = type(data)
        if top is not dict and top is not list:
            data = [data]  # a scalar document: checked as a list of one
        ints, floats = self._values(data)
        if ints:
            self._check_ints()
        if floats and _RISKY_FLOAT.search(self.text):
            raise _Unusual
        if self._stamps:
            self._check_stamps()
        return data if top is dict or top is list else data[0]

    def _check_stamps(self) -> None:
        """Each value made a timestamp was a plain `key: value` line, as 1.1 reads it, not quoted.

        A quoted string is its text written out right after its quote, unless an escape or a
        line break inside the quotes made it. So: (1) no escape in the text makes a character
        of a timestamp (`\\x32`, `\\ `, an escaped line break); (2) each timestamp's text has
        as many `key: text` lines as values; (3) no other place where a timestamp's text may
        start (`2020-1-2`, not right after `: `) starts with one, nor, for a text with a space,
        with its date (a quoted string over several lines makes its line break a space). Two
        regex passes in C and a look at each date found elsewhere (a URL's, a title's)."""
        text = self.text
        stamps = self._stamps
        if "\\" in text:
            _check_escapes(text, stamps)
        plain = dict.fromkeys(stamps, 0)
        others = []
        for year, after, rest in _DATES.findall(text):
            if after:  # a line's value after `: `
                written = f"{year}-{rest}"
                if written in plain:
                    plain[written] += 1
            else:
                others.append(f"{year}-{rest}")
        if plain != stamps:
            raise _Unusual
        if others:
            sizes = {len(v) for v in stamps}
            dates = tuple(v.split(None, 1)[0] for v in stamps if " " in v or "\t" in v)
            for written in others:
                if (dates and written.startswith(dates)) or any(written[:size] in stamps for size in sizes):
                    raise _Unusual

    def _values(self, data: dict[Any, Any] | list[Any]) -> tuple[bool, bool]:  # noqa: C901
        """Check every key and value, timestamps built in place; whether there were ints, floats.
        (One loop over every value of every header: splitting it would cost a call per value.)"""
        maybe_not_text = _MAYBE_NOT_TEXT.get
        plain_text = _PLAIN_TEXT
        stamp_of = _STAMPS.get
        stamps = self._stamps
        stamps_get = stamps.get
        ints = floats = False
        stack = [data]
        seen = 0
        while stack:
            item = stack.pop()
            seen += len(item)
            if seen > MAX_NODES:
                raise _Unusual
            if type(item) is dict:
                if not plain_text.issuperset(item):  # (one C loop over the keys)
                    _check_keys(item)
                pairs: Any = item.items()
            else:
                pairs = enumerate(item)
            # replacing the value of a key or index does not disturb the iteration
            for k, v in pairs:
                t = type(v)
                if t is str:
                    # maybe not text; an empty one was quoted (empty plain text is null in both)
                    if v and len(v) <= maybe_not_text(v[0], -1):
                        stamp = stamp_of(v)
                        if stamp is not None:  # (as _text does, without its call)
                            stamps[v] = stamps_get(v, 0) + 1
                            item[k] = stamp
                        elif v not in plain_text:
                            new = self._text(v)
                            if new is not v:
                                item[k] = new
                elif t is dict or t is list:
                    stack.append(v)
                elif t is int:
                    ints = True
                elif t is float:
                    floats = True
                elif t is not bool and v is not None:
                    raise _Unusual  # a set, bytes
        return ints, floats

    def _text(self, v: str) -> Any:
        if v in _PLAIN_TEXT:
            return v
        stamp = _STAMPS.get(v)
        if stamp is None:
            common = _COMMON_TIMESTAMP.fullmatch(v)
            if common is None:
                m = _IMPLICIT.match(v)
                if m is None:
                    if len(v) <= 5 and len(_PLAIN_TEXT) < _PLAIN_TEXT_MAX:  # words; dates seldom repeat
                        _PLAIN_TEXT.add(v)
                    return v
                if m.lastgroup != "ts":
                    raise _Unusual
            stamp = _timestamp(v, common)
            if len(_STAMPS) < _PLAIN_TEXT_MAX:
                _STAMPS[v] = stamp
        self._stamps[v] = self._stamps.get(v, 0) + 1  # made sure of by _check_stamps
        return stamp

    def _check_ints(self) -> None:
        text = self.text
        hits = [m.start() for m in _ZERO.finditer(text)]
        if "_" in text:
            hits += [m.start() for m in _UNDERSCORE.finditer(text)]
        lines = set()
        for at in hits:
            # _LEADING_ZERO's matches are within a line: search only the lines with a hit
            # (`+0800` in a date); over the whole text it costs more than the rest of the header
            start = text.rfind("\n", 0, at) + 1
            if start in lines:
                continue
            lines.add(start)
            end = text.find("\n", at)
            end = len(text) if end == -1 else end
            for m in _LEADING_ZERO.finditer(text, start, end):
                if m.group(0)[0] == ",":
                    # `10,000` in text is no flow item unless a flow collection starts on its
                    # line (one over several lines never reaches yaml-rs)
                    if _FLOW.search(text, start, end):
                        raise _Unusual
                elif m.group(0)[0] in "[{" or _NUMBER_CHARS.issuperset(text[m.end():end].split(" ", 1)[0]):
                    raise _Unusual
                # else `name: 01Net`: text for both readers (a letter no number has), checked as such


def _check_escapes(text: str, stamps: Mapping[str, int]) -> None:
    """No escape in the text (wherever it is: a backslash outside double quotes is a false
    alarm) makes a character of a timestamp's text, nor joins two lines."""
    chars: set[str] | None = None
    for code in _ESCAPE.findall(text):
        if code == "\n":
            raise _Unusual
        if len(code) > 1 or code in _SPACE_ESCAPES:
            if chars is None:
                chars = set("".join(stamps))
            if (chr(int(code[1:], 16)) if len(code) > 1 else " " if code == " " else "\t") in chars:
                raise _Unusual


def _starts_node(text: str, at: int) -> tuple[bool, int]:
    """Whether what is at `at` may start a node (it follows the text's or a line's start, or
    `:`, `-`, `[`, `{`, `,`, `?`, after spaces), and how many spaces precede it."""
    i = at - 1
    while i >= 0 and text[i] == " ":
        i -= 1
    return i < 0 or text[i] in _BEFORE_NODE, at - 1 - i


def _quoted_marks(text: str) -> set[str] | None:
    """The one-line quoted strings (as written) that hold every place a tag, anchor or block
    scalar could start; None when some such place is not in one."""
    quoted: set[str] = set()
    marks = []
    for mark in _MARKS:
        at = text.find(mark)
        while at != -1:
            if at == 0 or text[at - 1] in _BEFORE_MARK:
                marks.append(at)
            at = text.find(mark, at + 1)
    for at in marks:
        if text[at - 1] == " " and not _starts_node(text, at)[0]:
            continue
        start = text.rfind("\n", 0, at) + 1
        end = text.find("\n", at)
        line = _QUOTED_LINE.fullmatch(text, start, len(text) if end == -1 else end)
        if line is None or not line.start(1) < at < line.end(1) - 1:
            return None
        quoted.add(line.group(1))
    return quoted


def _strings(data: Any) -> list[str]:
    """Every string value in loaded data (not keys: a key is on one line)."""
    out = []
    stack = [data]
    while stack:
        item = stack.pop()
        for v in item.values() if type(item) is dict else item:
            t = type(v)
            if t is str:
                out.append(v)
            elif t is dict or t is list:
                stack.append(v)
    return out


def _check_quoted(quoted: set[str], data: Any) -> None:
    """Each quoted string _quoted_marks found is a string of the data: it was read as one."""
    strings = set(_strings(data) if type(data) is dict or type(data) is list else [data])
    for written in quoted:
        try:
            value = json.loads(written) if written[0] == '"' else written[1:-1].replace("''", "'")
        except ValueError:  # an escape JSON does not have (`\\x41`): not worth decoding here
            raise _Unusual from None
        if value not in strings:
            raise _Unusual


def _simple_flows(text: str) -> bool:
    """Flow collections on one line with no `:` or `?` in them (`[a, b]`): around those two the
    readers part ways (`[?x]`, `[:x]`, `[x:]`). A flow collection starts a line or a value:
    `^ *[` or `: +[` or `- +[`; only the first one of a line is looked at. Each bracket is found
    by str.find (memchr): the class `[\\[{]` is tried at every position of the text."""
    opens = []
    for bracket in "[{":
        at = text.find(bracket)
        while at != -1:
            opens.append(at)
            at = text.find(bracket, at + 1)
    if len(opens) > 1:
        opens.sort()
    line_end = -1
    for at in opens:
        if at < line_end:
            continue
        i = at - 1
        while i >= 0 and text[i] == " ":
            i -= 1
        if not (i < 0 or text[i] == "\n" or (text[i] in ":-" and i < at - 1)):
            continue
        line_end = text.find("\n", at)
        if line_end == -1:
            line_end = len(text)
        rest = text[at + 1:line_end].rstrip()
        if ":" in rest or "?" in rest or not rest.endswith(("]", "}")):
            return False
    return True


def load_fast(text: str, offset: int = 0, unusual: str | None = None) -> tuple[Any, Mapping[str, int]] | None:
    """The data and key lines (shifted by `offset`), or None: PyYAML's path decides. `unusual`:
    the text's characters other than printable ASCII and line breaks, if known (_not_fast)."""
    if yaml_rs is None:  # pragma: no cover
        return None
    if _not_fast(text, unusual):
        return None
    quoted = None
    if "!" in text or "&" in text or "|" in text or ">" in text:
        quoted = _quoted_marks(text)
        if quoted is None:
            return None
    if ("[" in text or "{" in text) and not _simple_flows(text):
        return None
    try:
        data = _Checker(text).walk(yaml_rs.loads(text, parse_datetime=False, alias_limits=_LIMITS))
        if quoted:
            _check_quoted(quoted, data)
    except (yaml_rs.YAMLDecodeError, _Unusual, ValueError, TypeError, RecursionError):
        return None
    return data, KeyLines(text, data, offset)
