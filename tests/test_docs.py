"""The README documents every setting (datasette's test_settings_are_documented)."""

from __future__ import annotations

import re

import pytest

from syndicator.config import SETTINGS

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_setting_is_documented(setting) -> None:
    assert re.search(rf"^\| `{setting.name}` \|", README, re.M), f"add {setting.name} to README's settings table"


def test_regen_command_is_documented() -> None:
    assert "python -m tests.regen_golden" in README
