"""Readers: which files are posts, and shape detection from content, not the file name."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syndicator import sources
from syndicator.config import load_settings
from syndicator.normalize import NotAPost, detect_shape, normalize
from syndicator.sources import files
from syndicator.sources.scan import _IGNORED, _NOT_POSTS

from .conftest import SEEDS


def test_scan_skips_hidden_backups_and_site_config(tmp_path: Path) -> None:
    for name in ["post.md", ".hidden.md", "post.md~", ".#post.md", "post.md.swp", "_config.yml", "sub/x.txt",
                 "sub/pic.png", "expected.json"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("---\ntitle: x\n---\n")
    assert [rel for rel, _ in sources.scan_sorted(tmp_path)] == ["post.md", "sub/x.txt"]


def test_shape_from_content_not_extension() -> None:
    shapes = {p.name: detect_shape(sources.read_post(SEEDS, p.name, 1 << 20)) for p in sorted(SEEDS.glob("*.txt"))}
    assert shapes == {
        "000_7e8a7cf94ba4d3cc.txt": "news", "001_26d079db35c95b1a.txt": "news", "002_4daa3943c2b2dbc1.txt": "post",
        "003_e55540d199a53fa6.txt": "news", "004_882cc4a5fc2a4bd2.txt": "news",
    }


def test_jekyll_page_is_not_a_post_even_without_body(tmp_path: Path) -> None:
    # emilianoyoung/ai index.html in the corpus: front matter only, with `excerpt`, layout: page
    (tmp_path / "index.html").write_text('---\nlayout: page\ntitle: "AI News"\nexcerpt: "Recent news."\n'
                                         "permalink: /web/news/\n---\n")
    raw = sources.read_post(tmp_path, "index.html", 1 << 20)
    with pytest.raises(NotAPost):
        normalize(raw, load_settings(env={}))


def test_nested_value_with_colon_is_repaired(tmp_path: Path) -> None:
    # detale/ai in the corpus: an image title with ': ' inside a list
    (tmp_path / "n.txt").write_text('---\ntitle: "T"\nexcerpt: "E"\npublishedDateTime: 2019-06-13T08:16:00Z\n'
                                    "webUrl: https://example.com/n\nimages:\n  - url: https://example.com/i.jpg\n"
                                    "    title: If you can't reach Cloud, we'll bring it: AWS CEO\n---\n")
    raw = sources.read_post(tmp_path, "n.txt", 1 << 20)
    post, problems = normalize(raw, load_settings(env={}))
    assert post.images[0].title == "If you can't reach Cloud, we'll bring it: AWS CEO"
    assert [(p.severity, p.line) for p in problems] == [("warning", 8)]


def test_read_bytes_whole_file_limit_and_errors(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_bytes(b"x" * 5000)
    assert sources.read_bytes(tmp_path, "a.md", 5000) == b"x" * 5000
    with pytest.raises(sources.PostError, match="5,000 bytes, over the 4,999-byte limit"):
        sources.read_bytes(tmp_path, "a.md", 4999)
    (tmp_path / "d.md").mkdir()
    with pytest.raises(sources.PostError, match="is a directory"):
        sources.read_bytes(tmp_path, "d.md", 5000)
    with pytest.raises(sources.PostError, match="disappeared"):
        sources.read_bytes(tmp_path, "gone.md", 5000)


def test_read_stops_at_the_limit_when_the_file_grows() -> None:
    """A file that grows between fstat and read (a pipe stands in for it): read on past its
    first size, never past the limit."""
    import os

    def read_from_pipe(written: bytes) -> bytes:
        r, w = os.pipe()
        os.write(w, written)
        os.close(w)
        try:
            return files._read_up_to(r, 10, 2001)  # fstat said 10 bytes; the limit is 2,001
        finally:
            os.close(r)

    assert read_from_pipe(b"y" * 3000) == b"y" * 2001
    assert read_from_pipe(b"z" * 300) == b"z" * 300


def test_a_named_pipe_is_refused_without_waiting(tmp_path: Path) -> None:
    import os
    import threading

    os.mkfifo(tmp_path / "pipe.md")  # nothing ever writes to it: opening it to read could block
    outcome: list[BaseException] = []

    def read() -> None:
        try:
            sources.read_bytes(tmp_path, "pipe.md", 5000)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            outcome.append(e)

    reader = threading.Thread(target=read, daemon=True)  # a daemon: a hang cannot hold the run
    reader.start()
    reader.join(10)
    assert not reader.is_alive(), "reading a named pipe blocked"
    assert isinstance(outcome[0], sources.PostError) and "not a regular file" in outcome[0].message


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab.~#_-JSONymlswpcfg"), min_size=1, max_size=14)
       | st.sampled_from(["a.JSON", "x.md", ".x.json", "_config.yml", "b.swp", "c~", "#d#", "e.", "f.tar.gz"]))
def test_is_candidate_as_splitext_says(name: str) -> None:
    """The scan's name filter, which takes the suffix without os.path.splitext, skips exactly
    the names it skipped with it."""
    expected = not _IGNORED.match(name) and os.path.splitext(name)[1].lower() not in _NOT_POSTS
    assert sources.is_candidate(name) == expected
