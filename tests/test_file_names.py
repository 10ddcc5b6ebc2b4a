"""File names that are not UTF-8 (a folder copied from an old Windows or Latin-1 machine): each is
one error naming the file with its bad bytes escaped, never a traceback, and the other posts are
published as usual. Real files with such names, the real CLI in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from syndicator.config import load_settings
from syndicator.pipeline.build import build
from tests.conftest import SEEDS

POST = b"---\ntitle: Caf\xc3\xa9\ndate: 2024-01-01\n---\nbody\n"


@pytest.fixture
def seeds(tmp_path: Path) -> Path:
    target = tmp_path / "seeds"
    shutil.copytree(SEEDS, target)
    try:
        with open(os.path.join(os.fsencode(target), b"caf\xe9-post.md"), "wb") as f:
            f.write(POST)
        folder = os.path.join(os.fsencode(target), b"dir\xff")
        os.mkdir(folder)
        with open(os.path.join(folder, b"x.md"), "wb") as f:
            f.write(POST)
    except OSError as e:  # pragma: no cover - a file system that refuses such names
        pytest.skip(f"this file system refuses names that are not UTF-8: {e}")
    return target


EXPECTED = [
    "caf\\xe9-post.md: error: file name is not UTF-8 (a name saved in another encoding): rename it to publish it",
    "dir\\xff/x.md: error: file name is not UTF-8 (a name saved in another encoding): rename it to publish it",
]


def test_each_name_is_one_error_and_the_rest_is_published(tmp_path: Path, seeds: Path) -> None:
    settings = load_settings(env={}, overrides={"seeds_dir": seeds, "feeds_dir": tmp_path / "feeds",
                                                "state_dir": tmp_path / "var"})
    first = build(settings)
    assert sorted(str(e) for e in first.errors) == EXPECTED
    titles = [item["title"] for item in json.loads((tmp_path / "feeds" / "all.json").read_bytes())["items"]]
    assert titles and "Café" not in titles
    again = build(settings)  # the state holds the others; the names are reported again
    assert sorted(str(e) for e in again.errors) == EXPECTED
    assert not again.written


@pytest.mark.parametrize("command", ["check", "build"])
def test_the_cli_reports_them_without_a_traceback(tmp_path: Path, seeds: Path, command: str) -> None:
    args = ["--seeds", str(seeds)] + (["--out", str(tmp_path / "feeds"), "--strict"] if command == "build" else [])
    done = subprocess.run([sys.executable, "-m", "syndicator", command, *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    for line in EXPECTED:
        assert line in done.stderr + done.stdout
