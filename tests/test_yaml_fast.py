"""The yaml-rs fast path (yaml_fast.py) must give exactly what PyYAML's path (yaml_safe.py) gives.

`frontmatter.load_front(split, fast=False)` is the reference; every case is loaded both ways and compared
strictly (types included: `1`, `1.0` and `True` are all equal in Python), or both must fail
with the same error.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syndicator.sources import frontmatter, yaml_fast
from syndicator.sources.yaml_safe import YAMLSyntaxError

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
CORPUS = ROOT.parent / "shared" / "corpus"


def same(a: object, b: object) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)  # type: ignore[index]
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))  # type: ignore[arg-type]
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)  # type: ignore[arg-type]
    if isinstance(a, (datetime, date)):
        zone_a, zone_b = getattr(a, "tzinfo", None), getattr(b, "tzinfo", None)
        return a == b and type(zone_a) is type(zone_b) and zone_a == zone_b
    return a == b


def outcome(split: frontmatter.Split, fast: bool) -> tuple[str, object]:
    try:
        fm = frontmatter.load_front(split, fast=fast)
    except YAMLSyntaxError as e:
        return "error", (e.message, e.line)
    return "ok", fm


def check_both(text: str) -> frontmatter.FrontMatter | None:
    split = frontmatter.Split("yaml", text, "", 2)
    fast_kind, fast = outcome(split, True)
    ref_kind, ref = outcome(split, False)
    assert fast_kind == ref_kind, (text, fast, ref)
    if ref_kind == "error":
        assert fast == ref, text
        return None
    assert isinstance(fast, frontmatter.FrontMatter) and isinstance(ref, frontmatter.FrontMatter)
    assert same(fast.data, ref.data), (text, fast.data, ref.data)
    assert fast.lines == ref.lines, (text, fast.lines, ref.lines)
    assert fast.warnings == ref.warnings, text
    return fast


def front_matters() -> list[Path]:
    files = [p for p in sorted(DATA.rglob("*")) if p.is_file() and not p.name.endswith(".json")]
    files += sorted((ROOT / "seeds").glob("*"))
    if CORPUS.is_dir():
        files += sorted(CORPUS.rglob("*.md"))
    return files


def yaml_front(path: Path) -> str | None:
    try:
        split = frontmatter.split(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, YAMLSyntaxError):
        return None
    return split.front if split.format == "yaml" else None


def test_every_data_file_and_corpus_post_loads_the_same_both_ways() -> None:
    checked = 0
    for path in front_matters():
        front = yaml_front(path)
        if front is not None:
            check_both(front)
            checked += 1
    assert checked > 50  # the data files were found (more when the corpus is beside the repo)


def test_the_fast_path_is_taken_for_the_sample_posts() -> None:
    fronts = [yaml_front(p) for p in sorted((ROOT / "seeds").glob("*"))]
    assert fronts and all(f is not None and yaml_fast.load_fast(f) is not None for f in fronts)


# YAML 1.1 and 1.2 read these plain scalars differently, or only PyYAML's path handles them.
TRICKY = [
    "yes", "No", "on", "OFF", "y", "n", "true", "TRUE", "False", "null", "Null", "~", "",
    "012", "-012", "+0800", "0800", "0o12", "0x1F", "-0x1F", "0x_1F", "0b101", "0_12", "1_000", "00", "007",
    "1:30", "190:20:30.15", "1e3", "1E3", "1.0e3", "1.0e+3", "6.02e+23", "0e0", "-.5", "+.5", ".5", "1.",
    "-0", "+1", "1.5", "1_0.5", ".inf", "-.Inf", ".nan", ".NaN", "=", "<<", "0", "12:30:00",
    "2022-05-26", "2022-5-6", "2022-05-26 12:19:14", "2022-05-26 12:19:14 +0800", "2022-05-26T12:19:14Z",
    "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10 -5", "2022-02-30", "2022-05-26T25:00:00Z",
    "!!str 1", "!!binary aGVsbG8=", "!foo x", "&a 1", "*a", "? x", "a: b", "'", "\"", "#x", "- x",
    "标题", "Ünïcödé", "tab\there", "x\u2028y", "x\x85y",
]


@pytest.mark.parametrize("value", TRICKY)
@pytest.mark.parametrize("style", ["plain", "single", "double", "literal", "folded", "flow", "item", "key"])
def test_tricky_scalars(value: str, style: str) -> None:
    check_both(render_scalar_doc(value, style))


def render_scalar_doc(value: str, style: str) -> str:
    if style == "plain":
        return f"title: x\nvalue: {value}\n"
    if style == "single":
        return "value: '" + value.replace("'", "''") + "'\n"
    if style == "double":
        return "value: " + json.dumps(value, ensure_ascii=False) + "\n"
    if style == "literal":
        return f"value: |\n  {value}\nnext: 1\n"
    if style == "folded":
        return f"value: >-\n  {value}\n"
    if style == "flow":
        return f"value: [{value}, {value}]\n"
    if style == "item":
        return f"list:\n  - {value}\n  - a\n"
    return f"{value}: 1\nb: 2\n"


def test_a_date_written_both_plain_and_quoted_keeps_the_quoted_one_text() -> None:
    fm = check_both('a: 2022-05-26\nb: "2022-05-26"\nc: |\n  2022-05-26\n')
    assert fm is not None and fm.data["a"] == date(2022, 5, 26) and fm.data["b"] == "2022-05-26"


# ---- timestamps: the common shapes are built without PyYAML's constructor ----------------------

TIMESTAMPS = [
    # the shapes built directly
    "2021-01-27T04:31:22Z", "2021-01-27t04:31:22Z", "2021-01-27 04:31:22Z", "2021-01-27T04:31:22 Z",
    "2021-01-27", "2024-02-29", "2021-01-27 04:31:22", "2021-01-27T04:31:22", "2021-01-27t04:31:22",
    "0001-01-01T00:00:00Z", "9999-12-31 23:59:59", "2021-01-27T04:31:22.5Z", "2021-01-27T04:31:22.123456Z",
    "2021-01-27T04:31:22.1234567Z", "2021-01-27T04:31:22.000000999Z", "2021-01-27T04:31:22.05",
    "2022-05-26 12:19:14 +08:00", "2022-05-26 12:19:14+08:00", "2022-05-26 12:19:14 +08",
    "2022-05-26T12:19:14-00:30", "2022-05-26T12:19:14-05", "2022-05-26T12:19:14+00:00",
    "2022-05-26T12:19:14-00:00", "2022-05-26T12:19:14.25 -05:30", "2022-05-26T12:19:14+23:59",
    "2022-05-26t12:19:14.999999999-23:59",
    # out of range: PyYAML keeps the text
    "2022-02-30", "2021-02-29", "0000-01-01", "2021-13-01", "2021-00-10", "2021-01-27T24:00:00Z",
    "2021-01-27T23:60:00Z", "2021-01-27T23:59:60Z", "2021-01-27 04:31:22 +24:00", "2021-01-27 04:31:22 -24",
    "2021-01-27 04:31:22 +99", "2021-01-27 04:31:22 +05:60", "2021-01-27T00:00:00.5+23:60",
    # other shapes 1.1 reads as timestamps: PyYAML's constructor builds them
    "2021-1-2 3:04:05", "2021-01-27  04:31:22", "2021-01-27T04:31:22.Z", "2021-01-27 4:31:22 +8",
    "2021-01-27T04:31:22   -5:30", "2021-01-27T04:31:22.+1",
    # text in 1.1 (and 1.2)
    "2022-05-26 12:19:14 +0800", "2021-01-27T04:31:22z", "2021-01-27T04:31:22+0530", "2021-1-2",
    "2021-01-27T04:31", "2021-01-27X04:31:22Z", "20210127T043122Z", "2021-01-27T04:31:22Z+01:00",
    "١٢٣٤-٠١-٠١", "2021-01-27T04:31:22+", "+2021-01-27",
]


@pytest.mark.parametrize("value", TIMESTAMPS)
@pytest.mark.parametrize("style", ["plain", "single", "double", "flow", "item", "key", "twice", "quoted too",
                                   "then quoted", "then in text"])
def test_timestamps(value: str, style: str) -> None:
    check_both(render_timestamp_doc(value, style))


def render_timestamp_doc(value: str, style: str) -> str:
    if style == "twice":
        return f"a: {value}\nb: x\nc: {value}\n"
    if style == "quoted too":
        return f"a: {value}\nb: 'at {value}'\n"
    if style == "then quoted":  # the same text, plain first: only the plain one is a timestamp
        return f"a: {value}\nb: \"{value}\"\nc: '{value}'\n"
    if style == "then in text":
        return f"a: {value}\nb: x {value}\n"
    return render_scalar_doc(value, style)


@pytest.mark.parametrize("value", TIMESTAMPS)
def test_plain_timestamps_take_the_fast_path(value: str) -> None:
    text = f"title: x\ndate: {value}\nlist:\n  - at: {value}\n    n: true\n"
    fast = yaml_fast.load_fast(text)
    assert fast is not None, value
    fm = check_both(text)
    assert fm is not None and same(fast[0], fm.data)


timestamp_parts = st.tuples(
    st.sampled_from(["2021", "0000", "0001", "9999", "1970", "20211"]),
    st.sampled_from(["01", "1", "12", "13", "00", "02", "1_"]),
    st.sampled_from(["27", "7", "29", "30", "31", "00", "2"]),
    st.sampled_from(["", "T", "t", " ", "  ", "X"]),
    st.sampled_from(["04", "4", "23", "24", "00", ""]),
    st.sampled_from([":31", ":60", ":5", ""]),
    st.sampled_from([":22", ":59", ":60", ":2", ""]),
    st.sampled_from(["", ".", ".5", ".123456", ".1234567", ".0000001", ".9999999"]),
    st.sampled_from(["", " ", "  "]),
    st.sampled_from(["", "Z", "z", "+08", "+8", "-00:30", "+0800", "+08:00", "-23:59", "+24", "-24:00",
                     "+05:60", "+00:00", "-0", "+123"]),
).map("".join)


@settings(max_examples=800, deadline=None)
@given(timestamp_parts, st.sampled_from(["plain", "plain", "double", "item", "twice", "quoted too", "then quoted"]))
def test_generated_timestamps_load_the_same_both_ways(value: str, style: str) -> None:
    check_both(render_timestamp_doc(value, style))


def test_timestamp_objects_are_the_ones_pyyaml_makes() -> None:
    from datetime import UTC, timedelta, timezone

    fm = check_both("a: 2021-01-27T04:31:22Z\nb: 2022-05-26 12:19:14.5 -00:30\nc: 2021-01-27\n"
                    "d: 2021-01-27 04:31:22\ne: 2022-05-26T12:19:14+00:00\n")
    assert fm is not None
    assert fm.data["a"] == datetime(2021, 1, 27, 4, 31, 22, tzinfo=UTC)
    assert fm.data["b"].tzinfo == timezone(-timedelta(minutes=30)) and fm.data["b"].microsecond == 500000
    assert type(fm.data["c"]) is date and fm.data["d"].tzinfo is None
    assert type(fm.data["e"].tzinfo) is timezone and fm.data["e"].utcoffset() == timedelta(0)


# ---- the screens: cheaper forms of the original checks ---------------------------------------

ORIGINAL_RISKY_FLOAT = re.compile(r"[0-9.][eE]|[-+]\.[0-9]|_[0-9.]|[0-9.]_")
screen_text = st.text(st.sampled_from(list("0123456789._-+eEoOxa :,[]{}\n\t")), max_size=40)


@settings(max_examples=1500, deadline=None)
@given(screen_text)
def test_risky_float_screen_is_the_original(text: str) -> None:
    assert bool(yaml_fast._RISKY_FLOAT.search(text)) == bool(ORIGINAL_RISKY_FLOAT.search(text))


NUMBER_WORD = re.compile(r"[0-9a-fA-FxXoO_+\-.:inINfFnNaA]*")


def original_ints_unusual(text: str) -> bool:
    """A leading zero or underscore where a node may start: in a flow collection (`, 0`, `[0`;
    a `,` only on a line where one starts), or a plain word that may be a number (`: 012`, not
    `: 01Net`)."""
    for line in text.split("\n"):
        line = "\n" + line
        for m in yaml_fast._LEADING_ZERO.finditer(line):
            kind = m.group(0)[0]
            if kind == ",":
                if yaml_fast._FLOW.search(line):
                    return True
            elif kind in "[{" or NUMBER_WORD.fullmatch(line[m.end():].split(" ", 1)[0]):
                return True
    return False


def assert_int_screen_is_the_original(text: str) -> None:
    try:
        yaml_fast._Checker(text)._check_ints()
        unusual = False
    except yaml_fast._Unusual:
        unusual = True
    assert unusual == original_ints_unusual(text), text


@settings(max_examples=1500, deadline=None)
@given(screen_text)
def test_int_screen_is_the_original(text: str) -> None:
    assert_int_screen_is_the_original(text)


@pytest.mark.parametrize("text", [
    "name: 01Net\nn: 1\n", "name: 01:30\nn: 1\n", "name: 0x1F\nn: 1\n", "a: 012 # c\nn: 1\n",
    "a: [1, 2]\nb: 'x 1,000'\nn: 1\n", "a: [1,012]\nn: 1\n", "a: -_1x\nn: 1\n", "- 0_1\n- 2\n",
    "date: 2022-05-26 12:19:14 +0800\nn: 012\n", "date: 2022-05-26 12:19:14 +0800\nn: [1, _2]\n",
    "a: x +01\nb: -007\nc: 1\n", "a: 1,000\nb: 10,000\n", "a: 1,_0\nb: [1]\n", "a: +0800\n", "- 0o17\n",
    "a:\n  - 1\n  -   +0_1\n", "{a: 1, b: 02}\n", "012\n", "_1\n", "a: 0\nb: 0.5\nc: 10\n",
])
def test_int_screen_cases(text: str) -> None:
    assert_int_screen_is_the_original(text)
    check_both(text)


@settings(max_examples=800, deadline=None)
@given(st.lists(st.sampled_from(["a: ", "b: ", ": ", "'", '"', "\\", "\\x32", "\\x30", "\\t", "\\ ", "\n",
                                 "\n  ", " ", "x", "# ", "2021-01-27", "021-01-27", "2021-01-27T04:31:22Z",
                                 "2021-01-27 04:31:22"]), max_size=10))
def test_timestamps_with_quotes_and_escapes_load_the_same_both_ways(pieces: list[str]) -> None:
    check_both("".join(pieces))


ESCAPED_STAMPS = [
    # escapes elsewhere in the header no longer send plain timestamps to PyYAML
    'a: "say \\"hi\\"\\r\\n"\nb: 2021-01-27T04:31:22Z\nc:\n  - d: 2021-01-27T04:31:22Z\n',
    # but a quoted value that is a timestamp's text only through an escape stays text
    'a: 2021-01-27\nb: "\\x32021-01-27"\n', 'a: 2021-01-27\nb: "2021-01-\\x327"\nc: "\\""\n',
    # ... and so does a quoted string over several lines that holds a `key: date` line
    'a: 2021-01-27\nb: "x\\"\n  c: 2021-01-27\n  y"\nd: "2021-01-\\x327"\n',
    # a date written both plain and quoted, with escapes: the quoted one is text
    'a: 2021-01-27\nb: "2021-01-27"\nc: "\\""\n', 'a: 2021-01-27 # \\"\nb: x: 2021-01-27\n',
    # a quoted timestamp's text made by an escape or a line break inside the quotes, with a
    # `key: date` line in a comment or in another quoted string as many times as values
    '# x: 2020-01-01\nc: "2\\x3020-01-01"\n', '# x: 2020-01-01 12:00:00\nc: "2020-01-01\n  12:00:00"\n',
    'a: "x\n  b: 2020-01-01 12:00:00\n  "\nc: "2020-01-01\n  12:00:00"\n',
    '# x: 2020-01-01 12:00:00\nc: "2020-01-01\\ 12:00:00"\n', '# x: 2020-01-01\nc: "2020-01-\\\n  01"\n',
    # escapes that make no timestamp character: the plain timestamps stay on the fast path
    'a: 2021-01-27T04:31:22Z\nb: "x\\ty \\u2014 \\r\\n \\x41"\n',
]


@pytest.mark.parametrize("text", ESCAPED_STAMPS)
def test_escaped_headers_with_timestamps(text: str) -> None:
    check_both(text)


def test_escapes_elsewhere_keep_plain_timestamps_on_the_fast_path() -> None:
    assert yaml_fast.load_fast(ESCAPED_STAMPS[0]) is not None
    assert yaml_fast.load_fast(ESCAPED_STAMPS[1]) is None
    assert yaml_fast.load_fast(ESCAPED_STAMPS[-1]) is not None
    # a date elsewhere than in a `key: date` line (a URL, a title) takes the slower pass
    assert yaml_fast.load_fast('a: 2021-01-27\nb: "on 2021-01-28 x"\nc: http://x/2020-01-02/\n') is not None


QUOTED_MARKS = [
    # a mark inside a one-line quoted string is text
    'title: "Windows, & Azure"\n', "title: 'Q, & A: > |'\n", 'list:\n  - "a, !b"\n  - x\n',
    'a:\n  - t: "x, &y \\"z\\""\n', "a: 'it''s, &x'\n",
    # real tags, anchors and block scalars beside them still go to PyYAML
    'title: "a, &b"\nc: &d 1\ne: *d\n', 'title: "a, &b"\nc: |\n  x\n', 'title: "a, &b"\nc: !!str 1\n',
    # what only looks like one quoted string
    'a: "x" &y\n', 'a: "x, &y" # z\n', '"a, &b": 1\n', 'a: "x\n  b: &c "\n', "a: 'x\n  b, &c'\n",
    'a: "x, &y\\x41"\n', 'a: "x, &y\\\n  z"\n', 'a: [1, &x 2]\n', 'a: "b", &c d\n',
]


@pytest.mark.parametrize("text", QUOTED_MARKS)
def test_marks_inside_quoted_strings(text: str) -> None:
    check_both(text)


def test_marks_inside_quoted_strings_keep_the_fast_path() -> None:
    for text in QUOTED_MARKS[:5]:
        assert yaml_fast.load_fast(text) is not None, text
    for text in QUOTED_MARKS[5:8]:
        assert yaml_fast.load_fast(text) is None, text


def original_quoted_marks(text: str) -> set[str] | None:
    """_quoted_marks as first written: every mark looked at, from Python."""
    quoted: set[str] = set()
    for m in re.finditer(r"[!&|>]", text):
        at = m.start()
        if not yaml_fast._starts_node(text, at)[0]:
            continue
        start = text.rfind("\n", 0, at) + 1
        end = text.find("\n", at)
        line = yaml_fast._QUOTED_LINE.fullmatch(text, start, len(text) if end == -1 else end)
        if line is None or not line.start(1) < at < line.end(1) - 1:
            return None
        quoted.add(line.group(1))
    return quoted


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(["a: ", ": ", "- ", " ", "  ", "\n", "x", "&", "!", "|", ">", '"', "'", ",", "[",
                                 "{", "?", "-", "a=1&b"]), max_size=14))
def test_mark_screen_is_the_original(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert yaml_fast._quoted_marks(text) == original_quoted_marks(text), text


def original_simple_flows(text: str) -> bool:
    """_simple_flows as first written: the brackets found by a regex."""
    line_end = -1
    for m in re.finditer(r"[\[{]", text):
        at = m.start()
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


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(["a: ", ": ", "- ", " ", "\n", "x", "[", "]", "{", "}", ",", "?", ":", "-"]),
                max_size=14))
def test_flow_screen_is_the_original(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert yaml_fast._simple_flows(text) == original_simple_flows(text), text


def test_a_quoted_string_the_data_does_not_have_sends_the_header_to_pyyaml() -> None:
    """Second guard behind _QUOTED_LINE: the string each mark was found in was read as one."""
    yaml_fast._check_quoted({'"x, &y"', "'a, !b'"}, {"t": ["x, &y"], "u": "a, !b"})
    with pytest.raises(yaml_fast._Unusual):
        yaml_fast._check_quoted({'"x, &y"'}, {"t": ["x, "], "y": None})
    with pytest.raises(yaml_fast._Unusual):
        yaml_fast._check_quoted({'"x, &y\\e"'}, {"t": "x, &y\x1b"})


def test_the_real_header_shapes_take_the_fast_path() -> None:
    """tests/data/yaml/: the shapes a real news site's headers have (escaped quotes, `, &` in
    quoted titles, `01Net`, `1,000` beside a flow list, repeated dates in related lists)."""
    paths = sorted((DATA / "yaml").glob("*.md"))
    assert paths
    for path in paths:
        front = yaml_front(path)
        assert front is not None and yaml_fast.load_fast(front + "\n") is not None, path


def test_words_known_to_be_text_load_the_same_before_and_after() -> None:
    yaml_fast._PLAIN_TEXT.clear()
    texts = ["news: ok\ntopics: [news, ok]\n", "news: yes\nok: [news, No]\n", "yes: news\n", "ok: [1, news]\n"]
    for text in texts * 2:  # the second time, with what the first learnt
        check_both(text)
    assert {"news", "ok"} <= yaml_fast._PLAIN_TEXT and not {"yes", "No"} & yaml_fast._PLAIN_TEXT


def test_alias_bomb_is_refused_on_both_paths() -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 6)]
    assert check_both("\n".join(lines)) is None


# ---- generated documents ---------------------------------------------------------------------

words = st.sampled_from(["title", "date", "tags", "yes", "on", "1", "null", "x y", "标题", "a-b", "url"])
plain_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\x00"), max_size=12)
scalars = st.one_of(st.sampled_from(TRICKY), plain_text, st.integers(-10**6, 10**6).map(str),
                    st.floats(allow_nan=False).map(repr))


def scalar_text(value: str, style: str) -> str:
    if style == "single":
        return "'" + value.replace("'", "''") + "'"
    if style == "double":
        return json.dumps(value, ensure_ascii=False)
    return value


styled = st.tuples(scalars, st.sampled_from(["plain", "plain", "single", "double"])).map(lambda t: scalar_text(*t))


def block(node: object, indent: int) -> str:
    pad = " " * indent
    if isinstance(node, dict):
        return "".join(
            f"{pad}{k}:" + (f"\n{block(v, indent + 2)}" if isinstance(v, (dict, list)) and v else f" {flow(v)}\n")
            for k, v in node.items())
    if isinstance(node, list):
        return "".join(
            f"{pad}-" + (f"\n{block(v, indent + 2)}" if isinstance(v, (dict, list)) and v else f" {flow(v)}\n")
            for v in node)
    return f"{pad}{node}\n"


def flow(node: object) -> str:
    if isinstance(node, dict):
        return "{" + ", ".join(f"{k}: {flow(v)}" for k, v in node.items()) + "}"
    if isinstance(node, list):
        return "[" + ", ".join(flow(v) for v in node) + "]"
    return str(node)


trees = st.recursive(
    styled,
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(words, children, max_size=4)),
    max_leaves=12,
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(words, trees, min_size=1, max_size=6), st.booleans())
def test_generated_documents_load_the_same_both_ways(doc: dict[str, object], as_flow: bool) -> None:
    check_both(flow(doc) if as_flow else block(doc, 0))


@settings(max_examples=400, deadline=None)
@given(st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=80))
def test_arbitrary_text_loads_the_same_both_ways(text: str) -> None:
    check_both(text)


def test_without_yaml_rs_pyyaml_reads_everything() -> None:
    import subprocess
    import sys

    code = ("import sys; sys.modules['yaml_rs'] = None\n"
            "from syndicator.sources import frontmatter, yaml_fast\n"
            "fm = frontmatter.load_front(frontmatter.split('---\\ntitle: x\\ndate: 2022-01-01\\n---\\nbody'))\n"
            "print(yaml_fast.yaml_rs, repr(fm.data), dict(fm.lines))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "None {'title': 'x', 'date': datetime.date(2022, 1, 1)} {'title': 2, 'date': 3}"
