"""Reading stage: which files there are (fingerprints), and one file → a post or its problems.

Every failure of one file becomes a `Problem` of that file, never an exception: one bad post
never stops a pass.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from syndicator import sources
from syndicator.config import Settings
from syndicator.errors import PostError
from syndicator.model import Post, Problem, pickled_by_constructor
from syndicator.normalize import NotAPost, normalize
from syndicator.store import Fingerprint


@pickled_by_constructor  # a forked reader sends thousands back
@dataclass(frozen=True, slots=True)
class ReadResult:
    """What reading one file gave: a post, or why not."""

    fingerprint: Fingerprint
    post: Post | None = None
    problems: tuple[Problem, ...] = ()
    not_a_post: bool = False
    #: sha256 of the bytes read, 32 bytes (None when they could not be read).
    digest: bytes | None = None


def read_one(root: Path, rel: str, fingerprint: Fingerprint, settings: Settings,
             sites: sources.SiteConfigs) -> ReadResult:
    """Read and normalize one file; every failure becomes a Problem, never an exception."""
    digest = None
    try:
        data = sources.read_bytes(root, rel, settings.max_post_bytes)
        digest = hashlib.sha256(data).digest()
        raw = sources.parse(data, rel, sites.for_post(rel))
        if fingerprint[1]:
            raw = replace(raw, mtime=fingerprint[1] / 1e9)
        post, warnings = normalize(raw, settings)
        return ReadResult(fingerprint, post, tuple(warnings), digest=digest)
    except PostError as e:
        return ReadResult(fingerprint, None, (Problem(e.path, e.message, e.line, "error"),), digest=digest)
    except NotAPost as e:  # said, never silent: a post's owner must see why it is not in the feeds
        return ReadResult(fingerprint, None, (Problem(rel, str(e), None, "warning"),), not_a_post=True,
                          digest=digest)
    except RecursionError:
        return ReadResult(fingerprint, None, (Problem(rel, "nested too deeply to read", None, "error"),),
                          digest=digest)


class Scanned(dict[str, Fingerprint]):
    """A full scan's fingerprints; and the paths whose names are not UTF-8 (shown with their
    bytes escaped, `caf\\xe9.md`), which no post can be made of: its path could go neither into
    a feed nor into the state. Each is reported as an error instead."""

    not_utf8: tuple[str, ...] = ()


NOT_UTF8 = "file name is not UTF-8 (a name saved in another encoding): rename it to publish it"


def scan(seeds_dir: Path) -> Scanned:
    """Fingerprints of every post file and every Jekyll _config.yml."""
    out, bad = Scanned(), []
    for rel, st in sources.scan(seeds_dir, site_configs=True):
        if is_utf8(rel):
            out[rel] = (st.st_size, st.st_mtime_ns)
        else:
            bad.append(rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace"))
    out.not_utf8 = tuple(bad)
    return out


def is_utf8(name: str) -> bool:
    """Whether a name read from the file system (undecodable bytes as surrogates) was UTF-8."""
    return name.isascii() or not any("\udc80" <= ch <= "\udcff" for ch in name)


def split_sites(scanned: dict[str, Fingerprint]) -> tuple[dict[str, Fingerprint], dict[str, Fingerprint]]:
    """(post files, Jekyll site configs) of a scan."""
    sites = {rel: fp for rel, fp in scanned.items() if sources.is_site_config(rel)}
    return ({rel: fp for rel, fp in scanned.items() if rel not in sites} if sites else scanned), sites


def stat_paths(seeds_dir: Path, paths: Iterable[str]) -> tuple[dict[str, Fingerprint], set[str]] | None:
    """Fingerprints of just these files (absolute, or relative to seeds/), as `scan` would
    give them, and the set of post paths looked at. None when only a full scan can tell (a
    folder, a symlink, a Jekyll _config.yml)."""
    root = os.path.abspath(seeds_dir)
    real_root = os.path.realpath(root)
    scanned: dict[str, Fingerprint] = {}
    touched: set[str] = set()
    for path in paths:
        full = os.path.abspath(os.path.join(root, path))
        rel = os.path.relpath(full, root).replace(os.sep, "/")
        if rel in (".", "..") or rel.startswith("../"):
            continue
        if not is_utf8(rel):
            return None  # reported by the full scan
        if sources.is_site_config(rel):
            return None
        parts = rel.split("/")
        if not all(sources.is_candidate(part) for part in parts):
            continue  # scan never looks there
        touched.add(rel)
        try:
            st = os.lstat(full)
        except OSError:
            continue  # gone
        if not stat.S_ISREG(st.st_mode) or os.path.realpath(full) != os.path.join(real_root, *parts):
            return None  # a folder, or a symlink on the way: what scan sees there is its business
        scanned[rel] = (st.st_size, st.st_mtime_ns)
    return scanned, touched
