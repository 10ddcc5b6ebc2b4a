"""Front matter and YAML/TOML: the one module that imports PyYAML and python-frontmatter.

Gives back plain Python data plus the line of each top-level key, so errors can point at lines.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import frontmatter
import yaml

try:  # the fast path below; without it (no wheel for the platform) PyYAML reads everything
    import yaml_rs
except ImportError:  # pragma: no cover
    yaml_rs = None

try:  # libyaml's C parser is ~10x faster; fall back where it is not compiled in
    _BaseLoader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _BaseLoader = yaml.SafeLoader  # type: ignore[misc]


#: python-frontmatter's handlers find and split the front matter: YAML `---` (Jekyll) and TOML
#: `+++` (Hugo). Its own TOML handler needs the `toml` package; tomllib loads it here instead.
HANDLERS = {
    "yaml": frontmatter.YAMLHandler(),
    "toml": frontmatter.default_handlers.BaseHandler(re.compile(r"^\+{3,}\s*$", re.MULTILINE), "+++", "+++"),
}
#: The handlers' FM_BOUNDARY patterns (`^-{3,}\s*$`, `^\+{3,}\s*$`, multiline) with the same
#: matches, written to start with a literal: the regex engine then jumps to each `---` instead of
#: trying a match at every position of the file (~5x faster on a post).
_BOUNDARIES = {
    "yaml": re.compile(r"---(?<![^\n]---)-*\s*$", re.MULTILINE),
    "toml": re.compile(r"\+\+\+(?<![^\n]\+\+\+)\+*\s*$", re.MULTILINE),
}

#: Upper bound on scalars + containers reached when walking loaded front matter;
#: YAML aliases can make a few lines expand exponentially ("billion laughs").
MAX_NODES = 20_000


class YAMLSyntaxError(ValueError):
    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass
class FrontMatter:
    data: Any
    #: 1-based file line of each top-level key.
    lines: Mapping[str, int] = field(default_factory=dict)
    #: (message, 1-based file line) for problems that were repaired.
    warnings: list[tuple[str, int | None]] = field(default_factory=list)


@dataclass
class Split:
    format: str | None  # "yaml", "toml" or None when there is no front matter
    front: str
    body: str
    #: 1-based file line where the front matter text starts (after the opening delimiter).
    first_line: int


class _Unusual(Exception):
    """YAML the direct constructor leaves to PyYAML's own."""


_STR, _MAP, _SEQ, _MERGE = (f"tag:yaml.org,2002:{t}" for t in ("str", "map", "seq", "merge"))
_CORE_SCALARS = {f"tag:yaml.org,2002:{t}" for t in ("null", "bool", "int", "float", "timestamp", "str")}


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """Safe loader that records top-level key lines and duplicate keys."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.root: yaml.Node | None = None
        self.key_lines: dict[str, int] = {}
        self.duplicates: list[tuple[str, int]] = []

    def construct_yaml_timestamp(self, node: yaml.Node) -> Any:
        # `date: 2022-02-30` matches YAML's timestamp pattern but is no date: keep the text,
        # so the normalizer names the field and its line instead of failing the whole header.
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError):
            return self.construct_scalar(node)

    def construct_document(self, node: yaml.Node) -> Any:
        self.root = node
        try:
            return self._direct(node, {}, set())
        except _Unusual:
            self.key_lines, self.duplicates = {}, []
            return super().construct_document(node)

    def _direct(self, node: yaml.Node, made: dict[int, Any], open_: set[int]) -> Any:
        """Plain maps, lists and core scalars, built without PyYAML's generic constructor
        machinery (which costs more than libyaml's parse). Merge keys, custom tags, unhashable
        keys and recursive aliases raise _Unusual and take the standard path."""
        key = id(node)
        if key in made:  # an alias: the same object again, as PyYAML does
            return made[key]
        if key in open_:
            raise _Unusual
        if isinstance(node, yaml.ScalarNode):
            value = node.value if node.tag == _STR else self._scalar(node)
        elif node.tag == _MAP:
            open_.add(key)
            value = self._direct_map(node, made, open_)
            open_.discard(key)
        elif node.tag == _SEQ:
            open_.add(key)
            value = [self._direct(item, made, open_) for item in node.value]
            open_.discard(key)
        else:
            raise _Unusual
        made[key] = value
        return value

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        if node.tag not in _CORE_SCALARS:
            raise _Unusual
        return self.yaml_constructors[node.tag](self, node)

    def _direct_map(self, node: yaml.MappingNode, made: dict[int, Any], open_: set[int]) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                raise _Unusual
            k = self._direct(key_node, made, open_)
            if isinstance(k, (dict, list)):
                raise _Unusual
            if isinstance(key_node, yaml.ScalarNode):
                line = key_node.start_mark.line + 1
                if key_node.value in lines:
                    self.duplicates.append((key_node.value, line))
                lines[key_node.value] = line
            out[k] = self._direct(value_node, made, open_)
        if node is self.root:
            self.key_lines = lines
        return out

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:
        seen: dict[str, int] = {}
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                line = key_node.start_mark.line + 1
                if key_node.value in seen:
                    self.duplicates.append((key_node.value, line))
                seen[key_node.value] = line
        if node is self.root:
            self.key_lines = seen
        return super().construct_mapping(node, deep)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def _bounded(data: Any) -> None:
    """Walk the loaded data, failing fast when aliases blow it up past MAX_NODES."""
    budget = MAX_NODES
    stack = [data]
    while stack:
        item = stack.pop()
        budget -= 1
        if budget < 0:
            raise YAMLSyntaxError(
                f"front matter expands to more than {MAX_NODES} values (YAML alias bomb?)", None
            )
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _load_yaml_doc(text: str) -> tuple[Any, _Loader]:
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = e.problem or e.context or "invalid YAML"
        raise YAMLSyntaxError(f"invalid YAML: {problem}", mark.line + 1 if mark else None) from None
    except yaml.YAMLError as e:
        raise YAMLSyntaxError(f"invalid YAML: {e}", None) from None
    except (ValueError, OverflowError) as e:
        raise YAMLSyntaxError(f"invalid value: {e}", None) from None
    except RecursionError:
        raise YAMLSyntaxError("invalid YAML: nested too deeply", None) from None
    finally:
        loader.dispose()
    if "*" in text:  # only aliases (`*name`) can multiply what a few lines load
        _bounded(data)
    return data, loader


# ---- the fast path -------------------------------------------------------------------------
#
# PyYAML (YAML 1.1, as Jekyll's Psych reads it) is the reference: what it makes of a header is
# what the header means. Building its nodes and objects in Python costs ~0.25 ms a post, most of
# a cold build's YAML time; yaml-rs (Rust) parses the same plain headers several times faster.
# It reads YAML 1.2, so its result is used only where the two cannot disagree, and the header
# goes to PyYAML otherwise:
# - text with what only PyYAML's path handles or the two read differently: tags, anchors,
#   block scalars, flow collections with `:` or `?` in them or over several lines, tabs
#   (repaired there), line breaks 1.1 knows and 1.2 does not, merge keys, directives, several
#   documents;
# - a string 1.1 would have read as something else (`yes`, `1:30`, `=`); 1.1 timestamps, which
#   yaml-rs leaves as text, are built as PyYAML builds them when each is a plain `key: value`;
# - a number that 1.1 may have read differently: an int when some node starts with a leading
#   zero or underscore (`012`, `0o12`, `-0_1`, `_1`), a float when the text has an exponent,
#   a signed `.5` or an underscore beside a digit;
# - a key that is not a string, errors and duplicate keys (PyYAML reports those, with lines).
# A false alarm only costs speed; tests/test_textformats.py checks both paths agree.


def _not_fast(text: str) -> bool:
    """Tabs, 1.1-only line breaks, merge keys, directives, document markers. One-character
    needles are found at memchr speed: a rare one (`<`, `%`) goes first to spare most texts
    the slower scan for the two-character mark."""
    return ("\t" in text or "\r" in text or "\n---" in text or "\n..." in text
            or ("<" in text and "<<" in text) or ("%" in text and "\n%" in text)
            or text.startswith(("%", "---", "..."))
            or (not text.isascii() and ("\x85" in text or "\u2028" in text or "\u2029" in text)))


_NODE_MARK = re.compile(r"(?:^|[:\-\[{,?]) *[!&|>]", re.M)  # tag, anchor, block scalar
# Searches that start with a character class try a match at each position of a 2 KB header
# (~10 µs); these start with a rarer class or one literal and check what precedes by lookbehind.
_RISKY_FLOAT = re.compile(r"[-+0-9._](?:(?<=[0-9.])[eE_]|(?<=[-+])\.[0-9]|(?<=_)[0-9.])")
#: Cheap first looks for _LEADING_ZERO: `0` and `_` (with an optional sign) at the start of the
#: text or after what may start a node.
_ZERO = re.compile(r"0(?:(?<![^ \[,{\n]0)|(?<=[-+]0)(?<![^ \[,{\n][-+]0))[0-9oO_]")
_UNDERSCORE = re.compile(r"_(?:(?<![^ \[,{\n]_)|(?<=[-+]_)(?<![^ \[,{\n][-+]_))")
_LEADING_ZERO = re.compile(r"(?:^ *|[:\-] +|[\[{,] *)[-+]?(?:0[0-9oO_]|_)", re.M)
_FLOW = re.compile(r"(?:^ *|[:\-] +)[\[{]([^\n]*)", re.M)
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_RESOLVERS = yaml.resolver.Resolver.yaml_implicit_resolvers
#: First character of text YAML 1.1 may read as something else -> the longest such text
#: (a word starting with a letter can only be a bool or null: `false`); only that is matched.
_MAYBE_NOT_TEXT = {k: 5 if k.isalpha() else 1 << 62 for k in _RESOLVERS if k}
#: Text YAML 1.1 reads as a bool, number, null, merge or value key, alias-like scalar
#: (group `other`) or a timestamp (group `ts`).
_IMPLICIT = re.compile(
    "(?P<ts>{})|(?P<other>{})".format(
        "|".join(sorted({f"(?:{r.pattern})" for rs in _RESOLVERS.values() for t, r in rs if t == _TIMESTAMP_TAG})),
        "|".join(sorted({f"(?:{r.pattern})" for rs in _RESOLVERS.values() for t, r in rs if t != _TIMESTAMP_TAG})),
    ), re.X)
#: The usual timestamp shapes (`2021-01-27`, `2021-01-27T04:31:22Z`, `2022-05-26 12:19:14.5 +08:00`),
#: all within what YAML 1.1's timestamp resolver matches; built here as PyYAML's regex-based
#: constructor builds them, in a fraction of its time. Other shapes go to that constructor.
_COMMON_TIMESTAMP = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[Tt ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]+))?"
    r"(?: ?(?:(Z)|([-+])([0-9]{2})(?::([0-9]{2}))?))?)?")
#: A top-level block-mapping key at the start of a line: plain, no ':' in it.
_TOP_KEY = re.compile(r"^([^\s#'\"{\[\]},&*!|>%@`?:-][^:\n]*?)[ ]*:(?=[ \n]|$)", re.M)
_TIMESTAMPS = _Loader("")  # only its construct_yaml_timestamp is used
#: Strings checked to be text in YAML 1.1 (not a bool, number, null, timestamp...), wherever
#: they are: keys and short words repeat from header to header. Bounded.
_PLAIN_TEXT: set[str] = set()
_PLAIN_TEXT_MAX = 10_000
_LIMITS = yaml_rs.AliasLimits(max_total_replayed_events=MAX_NODES) if yaml_rs else None


def _timestamp(v: str, m: re.Match[str] | None) -> Any:
    """What PyYAML's construct_yaml_timestamp (as _Loader keeps it) makes of `v`, a timestamp;
    `m`: its _COMMON_TIMESTAMP match, if any."""
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
    return _TIMESTAMPS.construct_yaml_timestamp(yaml.ScalarNode(_TIMESTAMP_TAG, v))


class _Checker:
    """yaml-rs output as PyYAML would have built it; _Unusual where that is not certain."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._escaped: bool | None = None

    def walk(self, data: Any) -> Any:
        top = type(data)
        if top is not dict and top is not list:
            data = [data]  # a scalar document: checked as a list of one
        maybe_not_text = _MAYBE_NOT_TEXT.get
        implicit = _IMPLICIT.match
        plain_text = _PLAIN_TEXT
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
                    for k in item:
                        if type(k) is not str or (not k or len(k) <= maybe_not_text(k[0], -1)) and implicit(k):
                            raise _Unusual
                        if len(plain_text) < _PLAIN_TEXT_MAX:
                            plain_text.add(k)
                pairs: Any = item.items()
            else:
                pairs = enumerate(item)
            # replacing the value of a key or index does not disturb the iteration
            for k, v in pairs:
                t = type(v)
                if t is str:
                    # maybe not text; an empty one was quoted (empty plain text is null in both)
                    if v and len(v) <= maybe_not_text(v[0], -1):
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
        if ints:
            self._check_ints()
        if floats and _RISKY_FLOAT.search(self.text):
            raise _Unusual
        return data if top is dict or top is list else data[0]

    def _text(self, v: str) -> Any:
        if v in _PLAIN_TEXT:
            return v
        common = _COMMON_TIMESTAMP.fullmatch(v)
        if common is None:
            m = _IMPLICIT.match(v)
            if m is None:
                if len(v) <= 5 and len(_PLAIN_TEXT) < _PLAIN_TEXT_MAX:  # words; dates seldom repeat
                    _PLAIN_TEXT.add(v)
                return v
            if m.lastgroup != "ts":
                raise _Unusual
        if not self._plain_value(v):
            raise _Unusual
        return _timestamp(v, common)

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
            for m in _LEADING_ZERO.finditer(text, start, len(text) if end == -1 else end):
                # `10,000` in text is no flow item unless there are flow collections
                if m.group(0)[0] != "," or _FLOW.search(text):
                    raise _Unusual

    def _plain_value(self, v: str) -> bool:
        """Every occurrence of `v` is a plain `key: v` line (not quoted, escaped or a block).
        `v` is a timestamp: no `: ` or line break in it, so its occurrences cannot overlap."""
        if self._escaped is None:
            self._escaped = "\\" in self.text
        if self._escaped:
            return False
        text = self.text
        size = len(text)
        at = text.find(v)
        while at != -1:  # one pass over the text, where counting `v` and `: v\n` took two
            end = at + len(v)
            if not text.endswith(": ", 0, at) or (end != size and text[end] != "\n"):
                return False
            at = text.find(v, end)
        return True


class _KeyLines(Mapping[str, int]):
    """1-based line of each top-level key, found when a message first asks (most posts never
    have one): at the start of a line when every key is there exactly once, else by PyYAML."""

    def __init__(self, text: str, keys: Any, offset: int) -> None:
        self._text, self._keys, self._offset = text, keys, offset
        self._lines: dict[str, int] | None = None

    def _found(self) -> dict[str, int]:
        if self._lines is None:
            lines = _top_key_lines(self._text, self._keys)
            if lines is None:
                try:
                    lines = _load_yaml_doc(self._text)[1].key_lines
                except YAMLSyntaxError:  # pragma: no cover - yaml-rs read it
                    lines = {}
            self._lines = {k: v + self._offset for k, v in lines.items()}
        return self._lines

    def __getitem__(self, key: str) -> int:
        return self._found()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._found())

    def __len__(self) -> int:
        return len(self._found())


def _top_key_lines(text: str, keys: Any) -> dict[str, int] | None:
    if not isinstance(keys, dict):
        return {}
    lines: dict[str, int] = {}
    line, pos = 1, 0
    for m in _TOP_KEY.finditer(text):
        line += text.count("\n", pos, m.start())
        pos = m.start()
        lines[m.group(1)] = line
    if len(lines) != len(keys) or any(k not in keys for k in lines):
        return None
    return lines


def _simple_flows(text: str) -> bool:
    """Flow collections on one line with no `:` or `?` in them (`[a, b]`): around those two the
    readers part ways (`[?x]`, `[:x]`, `[x:]`)."""
    for m in _FLOW.finditer(text):
        rest = m.group(1).rstrip()
        if ":" in rest or "?" in rest or not rest.endswith(("]", "}")):
            return False
    return True


def _load_fast(text: str, offset: int = 0) -> tuple[Any, Mapping[str, int]] | None:
    """The data and key lines (shifted by `offset`), or None: PyYAML's path decides."""
    if yaml_rs is None:  # pragma: no cover
        return None
    if _not_fast(text):
        return None
    if ("!" in text or "&" in text or "|" in text or ">" in text) and _NODE_MARK.search(text):
        return None
    if ("[" in text or "{" in text) and not _simple_flows(text):
        return None
    try:
        data = _Checker(text).walk(yaml_rs.loads(text, parse_datetime=False, alias_limits=_LIMITS))
    except (yaml_rs.YAMLDecodeError, _Unusual, ValueError, TypeError, RecursionError):
        return None
    return data, _KeyLines(text, data, offset)


def load_yaml(text: str) -> Any:
    """Plain YAML document (the config file)."""
    return _load_yaml_doc(text)[0]


def dump_yaml_scalar(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True).strip()
    return yaml.safe_dump(value if not hasattr(value, "__fspath__") else str(value),
                          allow_unicode=True).removesuffix("\n...\n").strip()


def split(text: str) -> Split:
    """Find the front matter; leading blank lines before the opening delimiter are allowed.
    `front` starts with the line after the opening delimiter, so its line numbers + first_line - 1
    are file lines."""
    stripped = text.lstrip()
    skipped = text[: len(text) - len(stripped)].count("\n")
    for name, handler in HANDLERS.items():
        if not handler.detect(stripped):
            continue
        parts = _BOUNDARIES[name].split(stripped, 2)  # as handler.split(stripped)
        if len(parts) != 3:  # no closing delimiter
            raise YAMLSyntaxError(
                f"front matter opened at line {skipped + 1} is never closed "
                f"(no closing '{handler.END_DELIMITER}' line)", skipped + 1
            )
        front, body = parts[1], parts[2]
        opening = handler.FM_BOUNDARY.match(stripped)
        assert opening is not None  # detect() matched
        # the boundary pattern stops before the delimiter line's newline: skip that remainder
        first_line = skipped + 1 + stripped.count("\n", 0, opening.end())
        if front.startswith("\n"):
            front, first_line = front[1:], first_line + 1
        front = front.removesuffix("\n")  # the closing delimiter's line break
        return Split(name, front, body, first_line)
    return Split(None, "", text, 1)


# `title: Foo: bar` is invalid YAML that editors and scrapers write all the time.
_UNQUOTED_COLON = re.compile(r"^([ \t]*(?:-[ \t]+)?[A-Za-z_][\w-]*):[ \t]+(?![\"'\[{|>&*!%@`#])(.*?:[ \t].*?)[ \t]*$")


def _quote_colon_values(text: str) -> tuple[str, list[int]]:
    fixed, changed = [], []
    for number, line in enumerate(text.split("\n")):
        m = _UNQUOTED_COLON.match(line)
        if m:
            value = m.group(2).replace("\\", "\\\\").replace('"', '\\"')
            line = f'{m.group(1)}: "{value}"'
            changed.append(number)
        fixed.append(line)
    return "\n".join(fixed), changed


#: What YAML refuses to read (and TOML, and XML 1.0): C0/C1 controls but tab/newline/NEL, BOMs.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufeff\ufffe\uffff]")
_PRINTABLE_ASCII = bytes(c for c in range(128) if not _UNPRINTABLE.match(chr(c)))
_TAB_INDENT = re.compile(r"^( *)\t+", re.MULTILINE)


def _printable(text: str) -> bool:
    """No _UNPRINTABLE character, surely (False: maybe). Faster than the regex's search: it tries
    the character class at each position."""
    if text.isascii():
        return not text.encode("ascii").translate(None, _PRINTABLE_ASCII)
    # every character _UNPRINTABLE matches is one str.isprintable refuses (as are tab and CR)
    return text.replace("\n", " ").isprintable()


def _remove_unprintable(text: str, offset: int) -> tuple[str, list[tuple[str, int | None]]]:
    """Mojibake (`â€\x9d`) is repaired first; other control characters are dropped."""
    if _printable(text) or not _UNPRINTABLE.search(text):
        return text, []
    from syndicator.text import repair  # ftfy is heavy; only load it for broken input

    fixed, warnings = [], []
    for number, line in enumerate(text.split("\n")):
        if _UNPRINTABLE.search(line):
            line = _UNPRINTABLE.sub("", repair(line))
            warnings.append(("control characters removed", number + 1 + offset))
        fixed.append(line)
    return "\n".join(fixed), warnings


def _indent_tabs(text: str) -> tuple[str, list[int]]:
    changed = [text.count("\n", 0, m.start()) for m in _TAB_INDENT.finditer(text)]
    return _TAB_INDENT.sub(lambda m: m.group(1) + "  " * len(m.group(0).lstrip(" ")), text), changed


def _load_yaml_front(split_: Split, fast_path: bool = True) -> FrontMatter:
    offset = split_.first_line - 1
    front, warnings = _remove_unprintable(split_.front, offset)
    # the line break before the closing `---` ends the last line: a block scalar there keeps it
    front += "\n"
    fast = _load_fast(front, offset) if fast_path else None
    if fast is not None:
        return FrontMatter(fast[0], fast[1], warnings)
    try:
        data, loader = _load_yaml_doc(front)
    except YAMLSyntaxError as first:
        # Two mistakes editors and scrapers make all the time: `title: Foo: bar` and tabs for
        # indentation. Repair them when that makes the header readable, and say so.
        tabbed, tab_lines = _indent_tabs(front)
        repaired, changed = _quote_colon_values(tabbed)
        if not changed and not tab_lines:
            raise _shifted(first, offset) from None
        try:
            data, loader = _load_yaml_doc(repaired)
        except YAMLSyntaxError:
            if tab_lines and ("\t" in first.message or "cannot start any token" in first.message):
                raise YAMLSyntaxError("invalid YAML: tab used for indentation (YAML allows only spaces)",
                                      tab_lines[0] + 1 + offset if tab_lines else first.line) from None
            raise _shifted(first, offset) from None
        warnings += [("value containing ': ' read as text; quote it", n + 1 + offset) for n in changed]
        warnings += [("tab indentation read as two spaces each; indent YAML with spaces", n + 1 + offset)
                     for n in tab_lines]
    lines = {k: v + offset for k, v in loader.key_lines.items()}
    for key, line in loader.duplicates:
        warnings.append((f"duplicate key {key!r}: the last one is used", line + offset))
    return FrontMatter(data, lines, warnings)


def _shifted(error: YAMLSyntaxError, offset: int) -> YAMLSyntaxError:
    return YAMLSyntaxError(error.message, error.line + offset if error.line else None)


def _load_toml_front(split_: Split) -> FrontMatter:
    front, warnings = _remove_unprintable(split_.front, split_.first_line - 1)
    try:
        data = tomllib.loads(front)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        line = int(m.group(1)) + split_.first_line - 1 if m else None
        if line is None and "end of document" in str(e):
            line = split_.first_line + front.count("\n")
        raise YAMLSyntaxError(f"invalid TOML: {str(e).split(' (at')[0]}", line) from None
    except RecursionError:
        raise YAMLSyntaxError("invalid TOML: nested too deeply", None) from None
    try:
        _bounded(data)
    except RecursionError:  # pragma: no cover - _bounded is iterative
        raise YAMLSyntaxError("invalid TOML: nested too deeply", None) from None
    lines = {}
    for number, line in enumerate(split_.front.split("\n")):
        m = re.match(r"^\s*([A-Za-z_][\w-]*)\s*=", line)
        if m and m.group(1) not in lines:
            lines[m.group(1)] = number + split_.first_line
    return FrontMatter(data, lines, warnings)


def load_front(split_: Split, fast: bool = True) -> FrontMatter:
    """`fast=False`: PyYAML only (the reference the fast path is tested against)."""
    if split_.format == "toml":
        return _load_toml_front(split_)
    return _load_yaml_front(split_, fast)


def load_site_config(text: str) -> Any:
    """A Jekyll _config.yml."""
    return load_yaml(text)
