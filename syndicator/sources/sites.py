"""Jekyll site configs: the `_config.yml` files inside seeds/, each applying to the folder below it.

A post copied from a Jekyll site takes its base URL, time zone, language and permalink style
from there, so each folder's settings are those of its own config over its parent's. Each
config is read once, and a broken one is reported in `errors` without failing its posts; so is
one whose `url` is no http(s) URL or whose `baseurl` is no path (links.py), which would make
every item of the site a script link.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syndicator.errors import PostError
from syndicator.links import BadURL, site_path, web_url
from syndicator.model import EMPTY
from syndicator.sources.yaml_safe import YAMLSyntaxError, load_yaml

SITE_CONFIG = "_config.yml"
#: The settings of a Jekyll site a post's feed entry depends on.
_KEYS = ("url", "baseurl", "timezone", "lang", "permalink", "title", "author", "collections")


def is_site_config(rel: str) -> bool:
    return rel.rsplit("/", 1)[-1] == SITE_CONFIG


@dataclass
class SiteConfigs:
    """Jekyll `_config.yml` files inside seeds/, each applying to the folder below it."""

    root: Path
    _cache: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    errors: list[PostError] = field(default_factory=list)

    def for_post(self, rel: str) -> Mapping[str, Any]:
        return self._for_dir(os.path.dirname(rel))

    def _for_dir(self, rel_dir: str) -> Mapping[str, Any]:
        if rel_dir in self._cache:
            return self._cache[rel_dir]
        parent = self._for_dir(os.path.dirname(rel_dir)) if rel_dir else EMPTY
        merged = {**parent, **self._read(rel_dir)}
        self._cache[rel_dir] = merged
        return merged

    def _read(self, rel_dir: str) -> Mapping[str, Any]:
        path = self.root / rel_dir / SITE_CONFIG
        rel = f"{rel_dir}/{SITE_CONFIG}" if rel_dir else SITE_CONFIG
        try:
            data = load_yaml(path.read_text(encoding="utf-8-sig"))
        except FileNotFoundError:
            return EMPTY
        except (OSError, UnicodeDecodeError) as e:
            self.errors.append(PostError(rel, f"cannot read site config: {e}"))
            return EMPTY
        except YAMLSyntaxError as e:
            self.errors.append(PostError(rel, e.message, e.line))
            return EMPTY
        if not isinstance(data, Mapping):
            return EMPTY
        site = {k: data[k] for k in _KEYS if data.get(k) is not None}
        try:
            return _checked_urls(site)
        except BadURL as e:  # every item of the site would carry it: the config is refused
            self.errors.append(PostError(rel, f"site config not used: {e}"))
            return EMPTY


def _checked_urls(site: dict[str, Any]) -> dict[str, Any]:
    """`url` an absolute http(s) URL and `baseurl` a path, both encoded as URIs must be."""
    if "url" in site:
        site["url"] = web_url(str(site["url"]))
    if "baseurl" in site:
        site["baseurl"] = site_path(str(site["baseurl"]))
    return site
