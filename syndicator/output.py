"""Writing feeds/: atomic (temp file + rename), only when the bytes change, with .gz beside.

A reader or nginx never sees a half-written file, and unchanged files keep their mtime,
so their ETag and Last-Modified stay put.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from syndicator import parallel
from syndicator.compress import gzip_bytes
from syndicator.formats import FORMATS
from syndicator.urls import POSTS_DIR

MANIFEST = ".manifest.json"
#: Extensions that get a precompressed twin for nginx gzip_static.
COMPRESSED = tuple(f.extension for f in FORMATS.values() if f.twin)
#: Post pages go without: there are thousands, each read now and then by a person rather than
#: polled by readers, and a twin doubles what a cold build creates on disk.
NO_TWIN = POSTS_DIR


@dataclass(frozen=True, slots=True)
class Output:
    data: bytes
    #: Becomes the file's mtime: the newest update of what it shows (Last-Modified).
    modified: datetime | None = None


@dataclass
class WriteReport:
    written: list[str] = field(default_factory=list)
    unchanged: int = 0
    removed: list[str] = field(default_factory=list)
    #: What the manifest lists after the write.
    files: set[str] = field(default_factory=set)


def atomic_write(path: Path, data: bytes, mtime: float | None = None) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with _create(tmp) as f:
            f.write(data)
            if mtime is not None:
                f.flush()  # a write after utime would set the mtime again
                os.utime(f.fileno(), (mtime, mtime))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _create(path: Path) -> BinaryIO:
    """Open a new file for writing, making its folder first if there is none (found by trying:
    a build writes thousands of files into a few folders)."""
    try:
        return open(path, "wb")
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "wb")


def same_bytes(path: Path, data: bytes) -> bool:
    try:
        if path.stat().st_size != len(data):
            return False
        return path.read_bytes() == data
    except OSError:
        return False


def has_twin(rel: str) -> bool:
    return rel.endswith(COMPRESSED) and not rel.startswith(NO_TWIN)


def write_file(root: Path, rel: str, out: Output) -> bool:
    """Write one output (and its .gz); False when the bytes on disk are already these."""
    path = root / rel
    mtime = out.modified.timestamp() if out.modified else None
    gz = path.with_name(path.name + ".gz")
    twin = has_twin(rel)
    if same_bytes(path, out.data):
        if twin and not gz.exists():
            atomic_write(gz, gzip_bytes(out.data), mtime)
        return False
    if twin:
        atomic_write(gz, gzip_bytes(out.data), mtime)
    else:
        gz.unlink(missing_ok=True)  # an older build's twin would be served instead
    atomic_write(path, out.data, mtime)
    return True


def read_manifest(root: Path) -> list[str]:
    try:
        data = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        return [p for p in data.get("files", []) if isinstance(p, str)]
    except (OSError, ValueError, AttributeError):
        return []


def _write_all(root: Path, outputs: Mapping[str, Output]) -> list[str]:
    """Write every output; the paths whose bytes changed. Thousands of outputs (a cold build's
    pages) are split with a forked second process."""
    def work(rels: Sequence[str]) -> list[str]:
        return [rel for rel in rels if write_file(root, rel, outputs[rel])]

    return sorted(parallel.fork_split(sorted(outputs), work))


def write_tree(root: Path, outputs: Mapping[str, Output], prune: bool = True,
               keep: Iterable[str] = ()) -> WriteReport:
    """Write every output; remove files an earlier build wrote that are no longer produced
    (only when `prune`: a build with unreadable posts must not remove their feeds).
    `keep`: files known to be current already (not rendered again), still produced."""
    keep = set(keep)
    report = WriteReport(unchanged=len(keep))
    report.written = _write_all(root, outputs)
    report.unchanged += len(outputs) - len(report.written)
    previous = read_manifest(root)
    kept = set(outputs) | keep
    if prune:
        for rel in previous:
            if rel not in kept and _safe_rel(rel):
                for victim in (root / rel, root / (rel + ".gz")):
                    victim.unlink(missing_ok=True)
                report.removed.append(rel)
    else:
        kept |= {rel for rel in previous if _safe_rel(rel) and (root / rel).exists()}
    _write_manifest(root, kept)
    report.files = kept
    return report


def _write_manifest(root: Path, files: Iterable[str]) -> None:
    manifest = json.dumps({"files": sorted(files)}, indent=0).encode()
    if not same_bytes(root / MANIFEST, manifest):
        atomic_write(root / MANIFEST, manifest)


def write_changes(root: Path, outputs: Mapping[str, Output], removed: Iterable[str], files: set[str],
                  stale: set[str], prune: bool = True) -> WriteReport:
    """`write_tree` for a change: write `outputs`, drop `removed` (no longer produced), without
    reading or rewriting the manifest unless the set of files changed. `files` (what the
    manifest lists) and `stale` (listed, no longer produced, kept while not pruning) are the
    caller's and are updated in place."""
    report = WriteReport()
    report.written = _write_all(root, outputs)
    report.unchanged += len(outputs) - len(report.written)
    changed = False
    for rel in outputs:
        stale.discard(rel)
        if rel not in files:
            files.add(rel)
            changed = True
    removed = set(removed) - set(outputs)
    if prune:
        for rel in sorted((removed | stale) & files):
            if _safe_rel(rel):
                for victim in (root / rel, root / (rel + ".gz")):
                    victim.unlink(missing_ok=True)
                report.removed.append(rel)
            files.discard(rel)
            changed = True
        stale.clear()
    else:
        for rel in removed & files:
            if _safe_rel(rel) and (root / rel).exists():
                stale.add(rel)
            else:
                files.discard(rel)
                changed = True
    if changed:
        _write_manifest(root, files)
    report.files = files
    return report


def _safe_rel(rel: str) -> bool:
    return not rel.startswith(("/", "\\")) and ".." not in Path(rel).parts
