"""The Publisher for a folder (feeds/): atomic writes (temp file + rename), only when the bytes
change, with a `.gz` twin beside each feed for nginx `gzip_static`, and a manifest of what it
published so files it no longer produces are taken down even across restarts.

A reader or nginx never sees a half-written file, and unchanged files keep their mtime, so
their ETag and Last-Modified stay put.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any, BinaryIO

from syndicator import parallel, redirects
from syndicator.compress import gzip_bytes
from syndicator.formats import FORMATS
from syndicator.publishers import Output, Outputs, PublishReport
from syndicator.urls import POSTS_DIR

MANIFEST = ".manifest.json"
#: The site record (see Publisher.site_record): a dotfile, so never served.
SITE_RECORD = ".site.json"
#: Extensions that get a precompressed twin for nginx gzip_static.
COMPRESSED = tuple(f.extension for f in FORMATS.values() if f.twin)
#: Post pages go without: there are thousands, each read now and then by a person rather than
#: polled by readers, and a twin doubles what a cold build creates on disk.
NO_TWIN = POSTS_DIR


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


def _safe_rel(rel: str) -> bool:
    return not rel.startswith(("/", "\\")) and ".." not in Path(rel).parts


class DirectoryPublisher:
    """Publishes into `root`. Remembers what the manifest lists (`files`) and what is listed
    but no longer produced, kept while a pass does not prune (`stale`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._files: set[str] | None = None  # read from the manifest on first use
        self._stale: set[str] = set()

    def exists(self, rel: str) -> bool:
        return (self.root / rel).is_file()

    def has_manifest(self) -> bool:
        """Whether an earlier run published here (and finished at least one pass)."""
        return (self.root / MANIFEST).is_file()

    def remove_temp_files(self) -> None:
        """Temp files a killed writer left behind (call only while no writer can be running)."""
        if self.root.is_dir():
            for tmp in self.root.rglob(".*.tmp"):
                tmp.unlink(missing_ok=True)

    def publish(self, outputs: Outputs, remove: Iterable[str], prune: bool,
                produced: AbstractSet[str] | None = None) -> PublishReport:
        full = produced is not None
        files = self._files if self._files is not None and not full else set(read_manifest(self.root))
        remove = set(remove)
        if produced is not None:  # everything listed earlier that this pass does not produce
            remove |= files - produced
        report = PublishReport(written=self._write_all(outputs))
        changed = not files.issuperset(outputs)
        files.update(outputs)
        self._stale.difference_update(outputs)
        remove -= outputs.keys()
        if prune:
            changed |= self._take_down((remove | self._stale) & files, files, report)
            self._stale.clear()
        else:
            changed |= self._hold(remove & files, files)
        if changed or full:
            self._write_manifest(files)
        self._files = files
        return report

    def _take_down(self, victims: set[str], files: set[str], report: PublishReport) -> bool:
        for rel in sorted(victims):
            if _safe_rel(rel):
                for path in (self.root / rel, self.root / (rel + ".gz")):
                    path.unlink(missing_ok=True)
                report.removed.append(rel)
            files.discard(rel)
        return bool(victims)

    def _hold(self, victims: set[str], files: set[str]) -> bool:
        """Not produced any more, kept until a pass prunes (a file already gone is forgotten)."""
        changed = False
        for rel in victims:
            if _safe_rel(rel) and (self.root / rel).exists():
                self._stale.add(rel)
            else:
                files.discard(rel)
                changed = True
        return changed

    def _write_all(self, outputs: Outputs) -> list[str]:
        """Write every output; the paths whose bytes changed. Thousands of outputs (a cold
        build's pages) are split with a forked second process."""
        root = self.root

        def work(rels: Sequence[str]) -> list[str]:
            return [rel for rel in rels if write_file(root, rel, outputs.output(rel))]

        return sorted(parallel.fork_split(sorted(outputs), work))

    def _write_manifest(self, files: Iterable[str]) -> None:
        manifest = json.dumps({"files": sorted(files)}, indent=0).encode()
        if not same_bytes(self.root / MANIFEST, manifest):
            atomic_write(self.root / MANIFEST, manifest)

    def redirects(self) -> dict[str, str]:
        return redirects.load(self.root)

    def save_redirects(self, table: Mapping[str, str]) -> None:
        path = self.root / redirects.REDIRECTS
        data = redirects.dump(table)
        if (table or path.exists()) and not same_bytes(path, data):
            atomic_write(path, data)

    def site_record(self) -> dict[str, Any]:
        try:
            data = json.loads((self.root / SITE_RECORD).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def save_site_record(self, record: Mapping[str, Any]) -> None:
        data = json.dumps(dict(record), sort_keys=True, indent=0).encode()
        if not same_bytes(self.root / SITE_RECORD, data):
            atomic_write(self.root / SITE_RECORD, data)
