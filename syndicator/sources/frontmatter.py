"""Front matter: split a post's header (YAML `---` or TOML `+++`) from its body and load it.

Gives back plain Python data plus the line of each top-level key and warnings for what was
repaired, so messages can point at file lines. YAML takes the yaml-rs path (yaml_fast.py) where
it gives what PyYAML gives and PyYAML's (yaml_safe.py) otherwise; the mistakes editors and
scrapers make all the time are repaired when that makes a header readable. The one module that
imports python-frontmatter.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import frontmatter

from syndicator.sources.yaml_fast import load_fast
from syndicator.sources.yaml_safe import YAMLSyntaxError, check_bounded, load_doc

#: python-frontmatter's handlers find and split the front matter: YAML `---` (Jekyll) and TOML
#: `+++` (Hugo). Its own TOML handler needs the `toml` package; tomllib loads it here instead.
HANDLERS = {
    "yaml": frontmatter.default_handlers.YAMLHandler(),
    "toml": frontmatter.default_handlers.BaseHandler(re.compile(r"^\+{3,}\s*$", re.MULTILINE), "+++", "+++"),
}
#: The handlers' FM_BOUNDARY patterns (`^-{3,}\s*$`, `^\+{3,}\s*$`, multiline) with the same
#: matches, written to start with a literal: the regex engine then jumps to each `---` instead of
#: trying a match at every position of the file (~5x faster on a post).
_BOUNDARIES = {
    "yaml": re.compile(r"---(?<![^\n]---)-*\s*$", re.MULTILINE),
    "toml": re.compile(r"\+\+\+(?<![^\n]\+\+\+)\+*\s*$", re.MULTILINE),
}


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
        boundary = handler.FM_BOUNDARY
        assert boundary is not None  # both handlers have one
        opening = boundary.match(stripped)
        assert opening is not None  # detect() matched
        # the boundary pattern stops before the delimiter line's newline: skip that remainder
        first_line = skipped + 1 + stripped.count("\n", 0, opening.end())
        if front.startswith("\n"):
            front, first_line = front[1:], first_line + 1
        front = front.removesuffix("\n")  # the closing delimiter's line break
        return Split(name, front, body, first_line)
    return Split(None, "", text, 1)


def load_front(split_: Split, fast: bool = True) -> FrontMatter:
    """`fast=False`: PyYAML only (the reference the fast path is tested against).

    Every header is read here, whichever loader reads it, and held to one budget: aliases
    (`*name`) are the only way a few lines load more than they hold, and what they load is
    bounded (check_bounded) before anything is built from it."""
    if split_.format == "toml":
        front = _load_toml_front(split_)
    else:
        front = _load_yaml_front(split_, fast)
    if split_.format == "toml" or "*" in split_.front:
        check_bounded(front.data, len(split_.front))
    return front


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
#: Printable ASCII and the line break: what most of a header is made of.
_PLAIN_ASCII = bytes(range(0x20, 0x7F)) + b"\n"
_TAB_INDENT = re.compile(r"^( *)\t+", re.MULTILINE)


def _unusual(text: str) -> str:
    """The characters of `text` other than printable ASCII and line breaks, in order, found at
    C speed: those bytes are deleted from a copy (a non-ASCII character's UTF-8 sequence is
    left whole). A regex's class tried at each position of a 27 KB header costs several times more."""
    if text.isascii():
        return text.encode("ascii").translate(None, _PLAIN_ASCII).decode("ascii")
    return text.encode("utf-8", "surrogatepass").translate(None, _PLAIN_ASCII).decode("utf-8", "surrogatepass")


def _printable(text: str) -> bool:
    """No _UNPRINTABLE character (most headers hold a few curly quotes or no-break spaces)."""
    return not _UNPRINTABLE.search(_unusual(text))


def _remove_unprintable(text: str, offset: int) -> tuple[str, list[tuple[str, int | None]]]:
    """Mojibake (`â€\x9d`) is repaired first; other control characters are dropped."""
    if _printable(text):
        return text, []
    return _removed(text, offset)


def _removed(text: str, offset: int) -> tuple[str, list[tuple[str, int | None]]]:
    from syndicator.plaintext import repair  # ftfy is heavy; only load it for broken input

    fixed: list[str] = []
    warnings: list[tuple[str, int | None]] = []
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
    front = split_.front
    warnings: list[tuple[str, int | None]] = []
    unusual: str | None = _unusual(front)
    if unusual and _UNPRINTABLE.search(unusual):
        front, warnings = _removed(front, offset)
        unusual = None
    # the line break before the closing `---` ends the last line: a block scalar there keeps it
    front += "\n"
    fast = load_fast(front, offset, unusual) if fast_path else None
    if fast is not None:
        return FrontMatter(fast[0], fast[1], warnings)
    try:
        data, loader = load_doc(front)
    except YAMLSyntaxError as first:
        data, loader = _load_repaired(front, first, offset, warnings)
    lines = {k: v + offset for k, v in loader.key_lines.items()}
    for key, line in loader.duplicates:
        shown = repr(key if len(key) <= 60 else key[:60] + "…")  # an alias may repeat a long key
        warnings.append((f"duplicate key {shown}: the last one is used", line + offset))
    return FrontMatter(data, lines, warnings)


def _load_repaired(front: str, first: YAMLSyntaxError, offset: int,
                   warnings: list[tuple[str, int | None]]) -> tuple[Any, Any]:
    """Two mistakes editors and scrapers make all the time, `title: Foo: bar` and tabs for
    indentation, repaired when that makes the header readable, with a warning on each line;
    else `first`, the error of the header as written."""
    tabbed, tab_lines = _indent_tabs(front)
    repaired, changed = _quote_colon_values(tabbed)
    if not changed and not tab_lines:
        raise _shifted(first, offset) from None
    try:
        data, loader = load_doc(repaired)
    except YAMLSyntaxError:
        if tab_lines and ("\t" in first.message or "cannot start any token" in first.message):
            raise YAMLSyntaxError("invalid YAML: tab used for indentation (YAML allows only spaces)",
                                  tab_lines[0] + 1 + offset if tab_lines else first.line) from None
        raise _shifted(first, offset) from None
    warnings.extend(("value containing ': ' read as text; quote it", n + 1 + offset) for n in changed)
    warnings.extend(("tab indentation read as two spaces each; indent YAML with spaces", n + 1 + offset)
                    for n in tab_lines)
    return data, loader


def _shifted(error: YAMLSyntaxError, offset: int) -> YAMLSyntaxError:
    return YAMLSyntaxError(error.message, error.line + offset if error.line else None)


def _load_toml_front(split_: Split) -> FrontMatter:
    front, warnings = _remove_unprintable(split_.front, split_.first_line - 1)
    try:
        data = tomllib.loads(front)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"line (\d+)", str(e))
        at = int(m.group(1)) + split_.first_line - 1 if m else None
        if at is None and "end of document" in str(e):
            at = split_.first_line + front.count("\n")
        raise YAMLSyntaxError(f"invalid TOML: {str(e).split(' (at')[0]}", at) from None
    except RecursionError:
        raise YAMLSyntaxError("invalid TOML: nested too deeply", None) from None
    lines: dict[str, int] = {}
    for number, line in enumerate(split_.front.split("\n")):
        m = re.match(r"^\s*([A-Za-z_][\w-]*)\s*=", line)
        if m and m.group(1) not in lines:
            lines[m.group(1)] = number + split_.first_line
    return FrontMatter(data, lines, warnings)
