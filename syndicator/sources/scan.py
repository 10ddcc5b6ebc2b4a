"""Which files under seeds/ are posts: one sorted walk that skips everything else.

Hidden files, editor backups and locks, and the images, styles and data that live beside posts
are skipped by name, before any stat. The walk stays inside the folder (symlinks out of it and
loops back to a parent are not followed), so a seeds tree can make a build neither read
elsewhere nor run forever.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from operator import attrgetter
from pathlib import Path

from syndicator.sources.sites import SITE_CONFIG

#: Names that are never posts: hidden files, editor backups and locks, Jekyll's site config.
_IGNORED = re.compile(r"^(\.|_config.*\.ya?ml$|.*~$|.*\.sw[a-p]$|#.*#$)")
#: Suffixes of files that live beside posts but are not posts.
_NOT_POSTS = frozenset(
    ".yml .yaml .json .toml .css .js .map .png .jpg .jpeg .gif .webp .svg .ico .pdf .zip .gz .xml .rss .atom".split()
)


_NAME = attrgetter("name")


def is_candidate(name: str) -> bool:
    if _IGNORED.match(name):
        return False
    dot = name.rfind(".")  # (os.path.splitext's suffix for a name not starting with a dot)
    return dot <= 0 or name[dot:].lower() not in _NOT_POSTS


def scan(root: Path, site_configs: bool = False) -> Iterator[tuple[str, os.stat_result]]:
    """Yield (relative POSIX path, stat) of every candidate file, sorted, without following
    symlinks that leave the folder; with `site_configs`, Jekyll `_config.yml` files too (so a
    watcher notices when one changes)."""
    real_root = root.resolve()
    stack = [(root, "")]
    try:
        root_st = root.stat()
        seen_dirs = {(root_st.st_dev, root_st.st_ino)}  # a symlink back to a parent is a loop
    except OSError:
        seen_dirs = set()
    while stack:
        folder, prefix = stack.pop()
        try:
            with os.scandir(folder) as found:
                entries = list(found)
        except OSError:
            continue
        entries.sort(key=_NAME, reverse=True)
        for entry in entries:
            name = entry.name
            if not is_candidate(name) and not (site_configs and name == SITE_CONFIG):
                continue
            rel = prefix + name
            try:
                if entry.is_symlink() and not _inside(Path(entry.path), real_root):
                    continue
                st = entry.stat()
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                if (st.st_dev, st.st_ino) in seen_dirs:
                    continue
                seen_dirs.add((st.st_dev, st.st_ino))
                stack.append((Path(entry.path), rel + "/"))
            elif stat.S_ISREG(st.st_mode):
                yield rel, st


def scan_sorted(root: Path) -> list[tuple[str, os.stat_result]]:
    return sorted(scan(root))


def _inside(path: Path, real_root: Path) -> bool:
    try:
        return path.resolve().is_relative_to(real_root)
    except OSError:
        return False
