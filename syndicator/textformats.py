"""Front matter and YAML/TOML: the one module that imports PyYAML and python-frontmatter.

Gives back plain Python data plus the line of each top-level key, so errors can point at lines.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

import frontmatter
import yaml

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
    lines: dict[str, int] = field(default_factory=dict)
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
        try:
            front, body = handler.split(stripped)
        except ValueError:  # no closing delimiter
            raise YAMLSyntaxError(
                f"front matter opened at line {skipped + 1} is never closed "
                f"(no closing '{handler.END_DELIMITER}' line)", skipped + 1
            ) from None
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
_TAB_INDENT = re.compile(r"^( *)\t+", re.MULTILINE)


def _remove_unprintable(text: str, offset: int) -> tuple[str, list[tuple[str, int | None]]]:
    """Mojibake (`â€\x9d`) is repaired first; other control characters are dropped."""
    if not _UNPRINTABLE.search(text):
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


def _load_yaml_front(split_: Split) -> FrontMatter:
    offset = split_.first_line - 1
    front, warnings = _remove_unprintable(split_.front, offset)
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


def load_front(split_: Split) -> FrontMatter:
    if split_.format == "toml":
        return _load_toml_front(split_)
    return _load_yaml_front(split_)


def load_site_config(text: str) -> Any:
    """A Jekyll _config.yml."""
    return load_yaml(text)
