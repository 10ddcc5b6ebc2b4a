"""Reading posts: find the files under seeds/, read and decode them, split off the front matter.

A reader returns raw data (RawPost) and knows nothing about feeds; normalize.py builds the
model. Every name callers need is here; scan.py finds the files, files.py reads and decodes
them, sites.py finds Jekyll site configs and frontmatter.py splits and loads headers.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from syndicator.errors import PostError
from syndicator.model import EMPTY, RawPost
from syndicator.sources.files import decode, read_bytes
from syndicator.sources.scan import is_candidate, scan, scan_sorted
from syndicator.sources.sites import SITE_CONFIG, SiteConfigs, is_site_config
from syndicator.sources.yaml_safe import YAMLSyntaxError

__all__ = [
    "SITE_CONFIG", "PostError", "SiteConfigs", "decode", "is_candidate", "is_site_config", "parse",
    "read_bytes", "read_post", "scan", "scan_sorted",
]


def parse(data: bytes, rel: str, site: Mapping[str, Any] = EMPTY) -> RawPost:
    """Decode and split one post's bytes into a RawPost."""
    # imported on first use: a build with nothing to read (an unchanged folder) never loads
    # the header parsers (python-frontmatter, yaml-rs, the fast path's checks)
    from syndicator.sources import frontmatter

    text = decode(data, rel)
    if not text.strip():
        raise PostError(rel, "empty file")
    try:
        parts = frontmatter.split(text)
        if parts.format is None:
            raise PostError(rel, "no front matter: a post starts with a '---' line", 1)
        front = frontmatter.load_front(parts)
    except YAMLSyntaxError as e:
        raise PostError(rel, e.message, e.line) from None
    if front.data is None:
        raise PostError(rel, "front matter is empty", parts.first_line)
    if not isinstance(front.data, dict):
        kind = type(front.data).__name__
        raise PostError(rel, f"front matter must be a mapping of key: value, not a {kind}", parts.first_line)
    body = parts.body.strip("\n")
    return RawPost(
        path=rel, meta=front.data, body=body if body.strip() else None,
        lines=front.lines, site=site, warnings=tuple(front.warnings),
    )


def read_post(root: Path, rel: str, max_bytes: int, sites: SiteConfigs | None = None) -> RawPost:
    data = read_bytes(root, rel, max_bytes)
    return parse(data, rel, sites.for_post(rel) if sites else EMPTY)
