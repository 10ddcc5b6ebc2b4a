"""Settings: layers, validation, hints."""

from __future__ import annotations

from pathlib import Path

import pytest

from syndicator.config import SETTINGS, load_settings
from syndicator.errors import ConfigError


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "syndicator.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_match_the_issue() -> None:
    s = load_settings(env={})
    assert (s.items_per_feed, s.include_drafts, s.timezone, s.max_post_bytes) == (50, False, "UTC", 1024 * 1024)
    assert {"site_title", "base_url", "author", "timezone", "seeds_dir", "feeds_dir", "items_per_feed",
            "include_drafts", "topic_aliases", "max_post_bytes"} <= {x.name for x in SETTINGS}


def test_layers_later_wins(tmp_path: Path) -> None:
    path = _file(tmp_path, "site_title: File\nitems_per_feed: 5\nauthor: File Author\n")
    s = load_settings(path, env={"SYNDICATOR_ITEMS_PER_FEED": "7", "SYNDICATOR_AUTHOR": "Env"},
                      overrides={"author": "Flag", "site_title": None})
    assert (s.site_title, s.items_per_feed, s.author) == ("File", 7, "Flag")


def test_env_types_are_coerced() -> None:
    s = load_settings(env={"SYNDICATOR_INCLUDE_DRAFTS": "yes", "SYNDICATOR_TOPIC_ALIASES": "{ML: Machine Learning}",
                           "SYNDICATOR_BASE_URL": "https://feeds.example.org"})
    assert s.include_drafts is True and s.topic_aliases == {"ML": "Machine Learning"}
    assert s.base_url == "https://feeds.example.org/"


@pytest.mark.parametrize("text, hint", [
    ("items_per_fed: 3\n", "did you mean 'items_per_feed'?"),
    ("timezon: UTC\n", "did you mean 'timezone'?"),
    ("include_draft: true\n", "did you mean 'include_drafts'?"),
    ("base_uri: https://x.org/\n", "did you mean 'base_url'?"),
])
def test_unknown_key_names_it_and_the_closest(tmp_path: Path, text: str, hint: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(_file(tmp_path, text), env={})
    assert repr(text.split(":")[0]) in str(err.value) and hint in str(err.value)


@pytest.mark.parametrize("text", [
    "items_per_feed: lots\n", "items_per_feed: 0\n", "items_per_feed: true\n", "include_drafts: maybe\n",
    "base_url: ftp://example.org/\n", "timezone: Mars/Olympus\n", "topic_aliases: [a, b]\n",
    "site_title: {a: 1}\n", "max_post_bytes: -1\n", "tag_date: yesterday\n", "opml_format: xml\n",
])
def test_bad_values_rejected(tmp_path: Path, text: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(_file(tmp_path, text), env={})
    assert text.split(":")[0] in str(err.value)


def test_missing_or_malformed_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.yaml", env={})
    with pytest.raises(ConfigError, match=r"syndicator\.yaml:\d+"):
        load_settings(_file(tmp_path, "site_title: [oops\n"), env={})
    with pytest.raises(ConfigError, match="mapping"):
        load_settings(_file(tmp_path, "- a\n- b\n"), env={})


def test_bad_env_value_names_the_origin() -> None:
    with pytest.raises(ConfigError, match="environment"):
        load_settings(env={"SYNDICATOR_PORT": "eighty"})
