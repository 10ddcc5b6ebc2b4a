"""YAML as PyYAML reads it: plain Python data, the line of each top-level key, guarded loading.

PyYAML reads YAML 1.1, as Jekyll's Psych does, so what it makes of a header is what the header
means; the fast path in yaml_fast.py is held to it. Headers and configs come from anyone: only
the safe loader is used, aliases cannot blow a few lines up past MAX_NODES values or past
MAX_EXPANDED_CHARS characters (check_bounded), and errors carry the line they are on. The one
module that imports PyYAML.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

import yaml

_BaseLoader: type[yaml.SafeLoader] | type[yaml.CSafeLoader]
try:  # libyaml's C parser is ~10x faster; fall back where it is not compiled in
    _BaseLoader = yaml.CSafeLoader
except AttributeError:  # pragma: no cover
    _BaseLoader = yaml.SafeLoader


#: Upper bound on scalars + containers reached when walking loaded front matter;
#: YAML aliases can make a few lines expand exponentially ("billion laughs").
MAX_NODES = 20_000
#: Upper bound on the characters loaded front matter expands to (every key and string, an alias
#: counted each time it is used) beyond the length of the text itself: aliases of one long string
#: stay under MAX_NODES, and `[*a, *a, ...]` 19,000 times over a 40 KB string is a 117 KB header
#: that is 760 MB of text once a post is built from it.
MAX_EXPANDED_CHARS = 1 << 20
TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
#: YAML 1.1's implicit types as PyYAML resolves plain scalars: first character -> [(tag, regex)].
IMPLICIT_RESOLVERS = yaml.resolver.Resolver.yaml_implicit_resolvers


class YAMLSyntaxError(ValueError):
    def __init__(self, message: str, line: int | None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


class _Unusual(Exception):
    """YAML the direct constructor leaves to PyYAML's own."""


_STR, _MAP, _SEQ, _MERGE = (f"tag:yaml.org,2002:{t}" for t in ("str", "map", "seq", "merge"))
_CORE_SCALARS = {f"tag:yaml.org,2002:{t}" for t in ("null", "bool", "int", "float", "timestamp", "str")}


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type,unused-ignore]
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
            assert isinstance(node, yaml.MappingNode)
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


_Loader.add_constructor(TIMESTAMP_TAG, _Loader.construct_yaml_timestamp)
_TIMESTAMPS = _Loader("")  # only its construct_yaml_timestamp is used


def check_bounded(data: Any, text_size: int = 0) -> None:
    """Walk the loaded data, failing fast when aliases blow it up past MAX_NODES values or past
    max(MAX_EXPANDED_CHARS, text_size) characters of keys and strings."""
    nodes, chars = MAX_NODES, max(MAX_EXPANDED_CHARS, text_size)
    stack = [data]
    while stack:
        item = stack.pop()
        nodes -= 1
        if nodes < 0:
            raise YAMLSyntaxError(
                f"front matter expands to more than {MAX_NODES} values (YAML alias bomb?)", None
            )
        if isinstance(item, str):
            chars -= len(item)
            if chars < 0:
                raise YAMLSyntaxError(
                    f"YAML expands to more than {max(MAX_EXPANDED_CHARS, text_size):,} characters, "
                    "the reading budget of one file (aliases repeating a long value?)", None
                )
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def load_doc(text: str) -> tuple[Any, _Loader]:
    """The data of one document, and the loader that read it: its `key_lines` (1-based lines in
    `text`) and `duplicates` ((key, line) pairs)."""
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
    return data, loader


def load_yaml(text: str) -> Any:
    """Plain YAML document (a config file), bounded as front matter is."""
    data = load_doc(text)[0]
    if "*" in text:  # only aliases (`*name`) can multiply what a few lines load
        check_bounded(data, len(text))
    return data


def dump_yaml_scalar(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True).strip()
    return yaml.safe_dump(value if not hasattr(value, "__fspath__") else str(value),
                          allow_unicode=True).removesuffix("\n...\n").strip()


def construct_timestamp(text: str) -> Any:
    """What PyYAML makes of a plain scalar YAML 1.1 resolves as a timestamp (out of range: the text)."""
    return _TIMESTAMPS.construct_yaml_timestamp(yaml.ScalarNode(TIMESTAMP_TAG, text))


#: A top-level block-mapping key at the start of a line: plain, no ':' in it.
_TOP_KEY = re.compile(r"^([^\s#'\"{\[\]},&*!|>%@`?:-][^:\n]*?)[ ]*:(?=[ \n]|$)", re.M)


class KeyLines(Mapping[str, int]):
    """1-based line of each top-level key of a document already loaded (`keys`: its data),
    shifted by `offset`, found when a message first asks (most posts never have one): at the
    start of a line when every key is there exactly once, else by PyYAML."""

    def __init__(self, text: str, keys: Any, offset: int) -> None:
        self._text, self._keys, self._offset = text, keys, offset
        self._lines: dict[str, int] | None = None

    def _found(self) -> dict[str, int]:
        if self._lines is None:
            lines = _top_key_lines(self._text, self._keys)
            if lines is None:
                try:
                    lines = load_doc(self._text)[1].key_lines
                except YAMLSyntaxError:  # pragma: no cover - the document was read once already
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
