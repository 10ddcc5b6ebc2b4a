"""Shared fixtures. No test reads the developer's own config or environment."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from syndicator.config import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("SYNDICATOR_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no config/syndicator.yaml here


@pytest.fixture
def seeds_dir(tmp_path: Path) -> Path:
    target = tmp_path / "seeds"
    shutil.copytree(SEEDS, target)
    return target


@pytest.fixture
def settings(tmp_path: Path, seeds_dir: Path) -> Settings:
    return load_settings(
        env={},
        overrides={"seeds_dir": seeds_dir, "feeds_dir": tmp_path / "feeds", "state_dir": tmp_path / "var"},
    )
