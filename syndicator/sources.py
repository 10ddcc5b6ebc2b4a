"""Readers: find post files under seeds/, decode them and split off the front matter.

A reader returns raw data (RawPost) and knows nothing about feeds; normalize.py builds the model.
"""

from __future__ import annotations

import codecs
import os
import re
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syndicator import textformats
from syndicator.errors import PostError
from syndicator.model import EMPTY, RawPost

#: Names that are never posts: hidden files, editor backups and locks, Jekyll's site config.
_IGNORED = re.compile(r"^(\.|_config.*\.ya?ml$|.*~$|.*\.sw[a-p]$|#.*#$)")
#: Suffixes of files that live beside posts but are not posts.
_NOT_POSTS = frozenset(
    ".yml .yaml .json .toml .css .js .map .png .jpg .jpeg .gif .webp .svg .ico .pdf .zip .gz .xml .rss .atom".split()
)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
_CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


SITE_CONFIG = "_config.yml"


def is_candidate(name: str) -> bool:
    return not _IGNORED.match(name) and os.path.splitext(name)[1].lower() not in _NOT_POSTS


def is_site_config(rel: str) -> bool:
    return rel.rsplit("/", 1)[-1] == SITE_CONFIG


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
            entries = sorted(os.scandir(folder), key=lambda e: e.name, reverse=True)
        except OSError:
            continue
        for entry in entries:
            if not is_candidate(entry.name) and not (site_configs and entry.name == SITE_CONFIG):
                continue
            rel = prefix + entry.name
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


def decode(data: bytes, rel: str) -> str:
    """Bytes to text: BOMs honoured, UTF-8 expected, GB18030 recognised, binary rejected."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return _newlines(data.decode(codec))
            except UnicodeDecodeError as e:
                raise PostError(rel, f"not valid {codec.upper()} despite its byte-order mark: {e.reason}") from None
    nul = data.find(b"\0")
    if nul >= 0:
        raise PostError(rel, f"binary data, not text (NUL byte at offset {nul})", _line_at(data, nul))
    try:
        return _newlines(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        bad = e.start
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        text = ""
    # Chinese sites often still save GBK/GB18030; accept it only when it reads as Chinese.
    non_ascii = sum(1 for ch in text if ord(ch) > 127)
    if text and non_ascii and len(_CJK.findall(text)) >= 0.6 * non_ascii:
        return _newlines(text)
    raise PostError(
        rel, f"not UTF-8 text (invalid byte 0x{data[bad]:02x} at offset {bad}); save it as UTF-8",
        _line_at(data, bad),
    )


def _line_at(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


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
            data = textformats.load_site_config(path.read_text(encoding="utf-8-sig"))
        except FileNotFoundError:
            return EMPTY
        except (OSError, UnicodeDecodeError) as e:
            self.errors.append(PostError(rel, f"cannot read site config: {e}"))
            return EMPTY
        except textformats.YAMLSyntaxError as e:
            self.errors.append(PostError(rel, e.message, e.line))
            return EMPTY
        if not isinstance(data, Mapping):
            return EMPTY
        keys = ("url", "baseurl", "timezone", "lang", "permalink", "title", "author")
        return {k: data[k] for k in keys if data.get(k) is not None}


def read_bytes(root: Path, rel: str, max_bytes: int) -> bytes:
    try:
        # os-level calls: a cold build reads thousands of small files, and open() adds a
        # buffer and three system calls to each. O_NONBLOCK: a named pipe put where a post
        # was must not hang the reader (it changes nothing for a regular file).
        fd = os.open(os.path.join(root, rel), os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError
            if not stat.S_ISREG(st.st_mode):
                raise PostError(rel, "not a regular file (a pipe, socket or device), not a post")
            size = st.st_size
            if size > max_bytes:
                raise PostError(rel, f"file is {size:,} bytes, over the {max_bytes:,}-byte limit (max_post_bytes)")
            data = _read_up_to(fd, size, max_bytes + 1)
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise PostError(rel, "file disappeared before it could be read") from None
    except IsADirectoryError:
        raise PostError(rel, "is a directory, not a post") from None
    except PermissionError:
        raise PostError(rel, "permission denied") from None
    except OSError as e:
        raise PostError(rel, f"cannot read: {e.strerror or e}") from None
    if len(data) > max_bytes:
        raise PostError(rel, f"file grew past the {max_bytes:,}-byte limit (max_post_bytes) while being read")
    return data


def _read_up_to(fd: int, size: int, limit: int) -> bytes:
    """Up to `limit` bytes: one read for a file of `size`, more when it grows meanwhile."""
    chunks = [os.read(fd, min(size + 1, limit))]
    total = len(chunks[0])
    while chunks[-1] and total < limit:
        chunks.append(os.read(fd, min(1 << 20, limit - total)))
        total += len(chunks[-1])
    return b"".join(chunks) if len(chunks) > 1 else chunks[0]


def parse(data: bytes, rel: str, site: Mapping[str, Any] = EMPTY) -> RawPost:
    """Decode and split one post's bytes into a RawPost."""
    text = decode(data, rel)
    if not text.strip():
        raise PostError(rel, "empty file")
    try:
        parts = textformats.split(text)
        if parts.format is None:
            raise PostError(rel, "no front matter: a post starts with a '---' line", 1)
        front = textformats.load_front(parts)
    except textformats.YAMLSyntaxError as e:
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
