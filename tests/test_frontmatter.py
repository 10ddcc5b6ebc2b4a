"""Front matter: the cheaper screens in frontmatter.py find what the checks they stand for find.

The boundary patterns must split a post exactly as python-frontmatter's handlers do, and the
printable-text screen must never let through a character YAML refuses.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from syndicator.sources import frontmatter
from tests.test_yaml_fast import front_matters


def test_printable_screen() -> None:
    refused = [c for c in map(chr, range(0x110000)) if frontmatter._UNPRINTABLE.match(c)]
    assert len(refused) > 2000
    for c in refused:
        assert not frontmatter._printable(c) and not frontmatter._printable(f"ab\n{c}")
        assert not frontmatter._printable(f"标题{c}x")
    assert frontmatter._printable("title: x\n") and frontmatter._printable("title: 标题\n")


@settings(max_examples=500, deadline=None)
@given(st.text(st.characters(codec="utf-8"), max_size=30))
def test_printable_screen_never_misses(text: str) -> None:
    assert frontmatter._printable(text) == (not frontmatter._UNPRINTABLE.search(text))
    assert frontmatter._printable(text + "’") == (not frontmatter._UNPRINTABLE.search(text))


@settings(max_examples=1500, deadline=None)
@given(st.text(st.sampled_from(list("-+ \n\t\x0ba")), max_size=30))
def test_boundaries_split_as_the_handlers_do(text: str) -> None:
    for name, handler in frontmatter.HANDLERS.items():
        assert frontmatter._BOUNDARIES[name].split(text, 2) == handler.FM_BOUNDARY.split(text, 2)


def test_boundaries_split_the_data_files_as_the_handlers_do() -> None:
    for path in front_matters():
        try:
            text = path.read_text(encoding="utf-8").lstrip()
        except UnicodeDecodeError:
            continue
        for name, handler in frontmatter.HANDLERS.items():
            assert frontmatter._BOUNDARIES[name].split(text, 2) == handler.FM_BOUNDARY.split(text, 2), path


@settings(max_examples=800, deadline=None)
@given(st.text(st.sampled_from(list("-.%<\n\t\r a\x85\u2028\u2029’\x0b")), max_size=30))
def test_the_fast_path_screen_given_the_unusual_characters_is_the_screen_of_the_text(text: str) -> None:
    """load_fast looks for tabs and line breaks in what frontmatter._unusual left of a header."""
    from syndicator.sources import yaml_fast

    assert yaml_fast._not_fast(text, frontmatter._unusual(text)) == yaml_fast._not_fast(text)
