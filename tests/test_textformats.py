"""Front matter: the fast YAML path (yaml-rs) must give exactly what PyYAML's path gives.

`load_front(split, fast=False)` is the reference; every case is loaded both ways and compared
strictly (types included: `1`, `1.0` and `True` are all equal in Python), or both must fail
with the same error.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syndicator import textformats as tf

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
CORPUS = ROOT.parent / "shared" / "corpus"


def same(a: object, b: object) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)  # type: ignore[index]
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))  # type: ignore[arg-type]
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)  # type: ignore[arg-type]
    if isinstance(a, (datetime, date)):
        return a == b and getattr(a, "tzinfo", None) == getattr(b, "tzinfo", None)
    return a == b


def outcome(split: tf.Split, fast: bool) -> tuple[str, object]:
    try:
        fm = tf.load_front(split, fast=fast)
    except tf.YAMLSyntaxError as e:
        return "error", (e.message, e.line)
    return "ok", fm


def check_both(text: str) -> tf.FrontMatter | None:
    split = tf.Split("yaml", text, "", 2)
    fast_kind, fast = outcome(split, True)
    ref_kind, ref = outcome(split, False)
    assert fast_kind == ref_kind, (text, fast, ref)
    if ref_kind == "error":
        assert fast == ref, text
        return None
    assert isinstance(fast, tf.FrontMatter) and isinstance(ref, tf.FrontMatter)
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
        split = tf.split(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, tf.YAMLSyntaxError):
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
    assert fronts and all(f is not None and tf._load_fast(f) is not None for f in fronts)


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
            "from syndicator import textformats as tf\n"
            "fm = tf.load_front(tf.split('---\\ntitle: x\\ndate: 2022-01-01\\n---\\nbody'))\n"
            "print(tf.yaml_rs, repr(fm.data), dict(fm.lines))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "None {'title': 'x', 'date': datetime.date(2022, 1, 1)} {'title': 2, 'date': 3}"
