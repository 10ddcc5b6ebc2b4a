"""What reading one post may cost: YAML aliases of a long value are held to a budget of expanded
text (yaml_safe.MAX_EXPANDED_CHARS, or the header's own length if larger), not only to a count
of values, in post headers, Jekyll `_config.yml` files and the service's own config.

The build runs as a real process under a hard address-space limit (`prlimit --as`): a post that
needs more memory than that stops with MemoryError, and with it every other post's publishing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from syndicator import sources
from syndicator.config import load_settings
from syndicator.errors import ConfigError, PostError
from syndicator.sources import frontmatter
from syndicator.sources.yaml_safe import MAX_EXPANDED_CHARS
from tests.conftest import SEEDS

#: A hard limit on the build's address space, far over what a build of seeds/ needs (~150 MB)
#: and far under what the bomb below needs when it is read (1.5 GB).
ADDRESS_SPACE = 400 * 1024 * 1024
LONG = "x" * 40_000


def _header(copies: int, value: str = LONG) -> str:
    """A news item whose excerpt is `copies` aliases of one anchored value."""
    return ("---\ntitle: Aliases\npublishedDateTime: 2024-01-01T00:00:00Z\n"
            f"webUrl: https://example.com/a\nanchor: &a \"{value}\"\n"
            f"excerpt: [{', '.join(['*a'] * copies)}]\n---\nbody\n")


BOMB = _header(19_000)  # 117 KB of text, 760 MB of strings


def test_the_bomb_is_small_and_under_the_value_count() -> None:
    assert len(BOMB) < 120_000
    assert BOMB.count("*a") < 20_000


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "pyyaml"])
def test_string_alias_bomb_is_refused_with_the_budget(fast: bool) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(Exception) as caught:
            frontmatter.load_front(frontmatter.split(BOMB), fast=fast)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert f"{MAX_EXPANDED_CHARS:,} characters" in str(caught.value)
    assert "budget" in str(caught.value)
    assert peak < 16 * 1024 * 1024, f"peak {peak:,} bytes"


def test_the_error_names_the_file() -> None:
    with pytest.raises(PostError) as caught:
        sources.parse(BOMB.encode(), "news/bomb.md")
    assert str(caught.value).startswith("news/bomb.md: YAML expands to more than 1,048,576 characters")


def test_nested_list_aliases_count_every_use() -> None:
    text = ("---\ntitle: Lists\ndate: 2024-01-01\nl: &l [" + ", ".join([f'"{"y" * 1000}"'] * 40) + "]\n"
            "tags: [" + ", ".join(["*l"] * 30) + "]\n---\n")
    with pytest.raises(PostError, match="reading budget of one file"):
        sources.parse(text.encode(), "lists.md")


def test_aliases_within_the_budget_are_read() -> None:
    post = sources.parse(_header(25).encode(), "fine.md")  # 25 x 40 KB: 1,000,000 characters
    assert post.meta["excerpt"] == [LONG] * 25


def test_a_long_header_without_aliases_has_its_own_length_as_budget() -> None:
    text = f"---\ntitle: Long\ndate: 2024-01-01\nexcerpt: \"{'z' * (MAX_EXPANDED_CHARS + 10)}\"\nnote: '*'\n---\n"
    post = sources.parse(text.encode(), "long.md")
    assert len(post.meta["excerpt"]) == MAX_EXPANDED_CHARS + 10


def test_site_config_alias_bomb_is_refused(tmp_path: Path) -> None:
    (tmp_path / "_config.yml").write_text(f"title: &t \"{LONG}\"\ndescription: [{', '.join(['*t'] * 19_000)}]\n")
    sites = sources.SiteConfigs(tmp_path)
    assert sites.for_post("a.md") == {}
    (error,) = sites.errors
    assert str(error).startswith("_config.yml: YAML expands to more than 1,048,576 characters")


def test_service_config_alias_bomb_is_one_line(tmp_path: Path) -> None:
    config = tmp_path / "syndicator.yaml"
    config.write_text(f"site_title: &t \"{LONG}\"\nwebsub_hubs: [{', '.join(['*t'] * 19_000)}]\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path=config, env={})
    assert str(caught.value).startswith(f"{config}: YAML expands to more than")
    assert "None" not in str(caught.value)


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit (util-linux) is needed")
def test_build_under_an_address_space_limit_publishes_the_rest(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    (seeds / "bomb.md").write_text(BOMB)
    feeds = tmp_path / "feeds"
    done = subprocess.run(
        ["prlimit", f"--as={ADDRESS_SPACE}", sys.executable, "-m", "syndicator", "build",
         "--seeds", str(seeds), "--out", str(feeds)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "MemoryError" not in done.stderr and "Traceback" not in done.stderr
    assert "bomb.md: error: YAML expands to more than 1,048,576 characters, the reading budget of one file" in done.stderr
    items = json.loads((feeds / "all.json").read_text("utf-8"))["items"]
    assert items and all("Aliases" not in item.get("title", "") for item in items)


def test_a_long_key_repeated_by_aliases_is_not_copied_into_each_warning() -> None:
    text = f"---\ntitle: T\ndate: 2022-05-26\nanchor: &a \"{'k' * 25_000}\"\n" + "? *a\n" * 2_500 + "---\n"
    tracemalloc.start()
    try:
        post = sources.parse(text.encode(), "keys.md")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024, f"peak {peak:,} bytes"  # 65 MB when each warning held the key
    assert post.warnings and all(len(message) < 200 for message, _ in post.warnings)
