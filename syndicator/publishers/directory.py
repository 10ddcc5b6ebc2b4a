"""The Publisher for a folder (feeds/): atomic writes (temp file + rename), only when the bytes
change, with a `.gz` twin beside each feed for nginx `gzip_static`, and a manifest of what it
published so files it no longer produces are taken down even across restarts.

A reader or nginx never sees a half-written file. A file's mtime is its Last-Modified (for
`serve` and nginx alike), so it says when the bytes last changed: new bytes are stamped with
the publish time, moving forward even for two versions within one second, and unchanged
files keep theirs, so their ETag and Last-Modified stay put. A date inside the output (a
post's, which may be old, in the future or unchanged by an edit) never becomes its mtime:
If-Modified-Since clients would keep a stale version. Times ahead of the clock (an older
version's stamps, a clock set back) are pulled back at the first pass of a process, and at
any pass that finds the clock gone back.

A twin is written before its file and stamped with the same mtime; one that disagrees with its
file (a kill between the two writes, a hand edit) is written again when its file is next looked
at, and at the first pass of a process for every file published: nginx would otherwise answer
gzip clients with another version than the rest.

Durable writes sync a file's bytes before its rename. Files are written in batches (a few
outputs each): every temp file of a batch first, then one syncfs of the folder's file system
(one journal commit instead of one per file: a quarter of the time per file here), then the
renames. A batch of one or two files, or a system without syncfs, syncs each file instead.
A cold build's writers hand their batches to a Committer process, which syncs and renames
them while the writers render on.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import logging
import os
import pickle
import select
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import Any, BinaryIO

from syndicator import parallel, redirects, urls
from syndicator.compress import gzip_bytes, holds
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
#: Bytes of the shortest gzip stream: a 10-byte header and an 8-byte trailer.
_GZIP_MIN = 18
_SECOND = 1_000_000_000
#: How far ahead of the clock a stamp may run (ns): a file that changes several times within
#: one second gets the following seconds, so its Last-Modified moves each time.
AHEAD_NS = 2 * _SECOND

log = logging.getLogger("syndicator.publish")


def atomic_write(path: Path, data: bytes, mtime_ns: int | None = None, durable: bool = False) -> None:
    """`data` into `path` by a rename, so no reader sees it half written. `durable`: the bytes
    are on the disk before the rename (the rename itself is once its folder is synced, see
    `sync_folders`), so a power cut leaves the old file or the new one, never an empty one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with _create(tmp) as f:
            f.write(data)
            if mtime_ns is not None or durable:
                f.flush()  # a write after utime would set the mtime again
            if mtime_ns is not None:
                os.utime(f.fileno(), ns=(mtime_ns, mtime_ns))
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


#: (temp file, path) of files written and not renamed yet
Staged = list[tuple[Path, Path]]


class Batch:
    """Atomic writes made together: `stage` writes each temp file, `commit` syncs them all
    (when durable) and renames each into place, in the order staged. Temp files not renamed
    are removed when the batch ends, by an error or otherwise. `hand`: commit by handing the
    staged files to a Committer instead (which syncs and renames them)."""

    def __init__(self, root: Path, durable: bool, hand: Callable[[Staged], None] | None = None) -> None:
        self.root, self.durable, self._hand = root, durable, hand
        self._staged: Staged = []

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, *exc: object) -> None:
        for tmp, _ in self._staged:
            tmp.unlink(missing_ok=True)
        self._staged.clear()

    def stage(self, path: Path, data: bytes, mtime_ns: int) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self._staged.append((tmp, path))
        with _create(tmp) as f:
            f.write(data)
            f.flush()  # a write after utime would set the mtime again
            os.utime(f.fileno(), ns=(mtime_ns, mtime_ns))

    def commit(self) -> None:
        if self._hand is not None and self._staged:
            self._hand(self._staged)  # (which raises rather than leave them)
            self._staged = []
            return
        if self.durable and self._staged:
            self._sync()
        while self._staged:
            tmp, path = self._staged[0]
            os.replace(tmp, path)
            del self._staged[0]

    def _sync(self) -> None:
        if len(self._staged) > 2 and _syncfs(self.root):
            return
        for tmp, _ in self._staged:
            _fsync_file(tmp)


class Committer:
    """Durable renames of a cold build's writes in a forked process of their own, so that the
    writers do not wait for the disk: they stage their temp files, hand them here, and go on
    rendering; this process syncs everything handed so far at once (one syncfs of the file
    system, or an fsync per file without one) and then renames each into place, in the order
    handed, again and again until every writer is done. Its own process rather than a thread:
    the writers fork (see parallel.py), which a process with threads may not do.

    Use: `start()` before the writers fork (they inherit the pipe), `hand` from any of them,
    `finish()` once they are all done: it waits for the last renames and raises what went
    wrong, if anything did."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._job: parallel.Detached | None = None
        self._write = -1

    def start(self) -> bool:
        """Start the process (see parallel.detach); False when this process may not fork."""
        read_end, self._write = os.pipe()
        with contextlib.suppress(OSError):  # room for what is handed while a sync runs
            fcntl.fcntl(self._write, fcntl.F_SETPIPE_SZ, PIPE_BYTES)

        def serve() -> None:
            os.close(self._write)  # (the writers' end: its copy here would keep the pipe open)
            self._serve(read_end)

        self._job = parallel.detach(serve, f"syncing and renaming files in {self.root}")
        os.close(read_end)
        if self._job is None:
            os.close(self._write)
        return self._job is not None

    def hand(self, staged: Staged) -> None:
        """Hand over staged (temp file, path) pairs, whose bytes are written: from now on they
        are the Committer's to sync and rename."""
        items = [(str(tmp), str(path)) for tmp, path in staged]
        message = pickle.dumps(items, pickle.HIGHEST_PROTOCOL)
        if len(message) + _FRAME > select.PIPE_BUF and len(items) > 1:
            # a write of PIPE_BUF bytes at most is never interleaved with another writer's
            half = len(staged) // 2
            self.hand(staged[:half])
            self.hand(staged[half:])
            return
        if len(message) + _FRAME > select.PIPE_BUF:  # a path of kilobytes: synced and renamed here
            tmp, path = staged[0]
            _fsync_file(tmp)
            os.replace(tmp, path)
            return
        parallel.write_all(self._write, len(message).to_bytes(_FRAME, "little") + message)

    def finish(self) -> None:
        """Wait for every rename handed so far (call once every writer is done with `hand`);
        the Committer's error when it failed, OSError when it died."""
        job, self._job = self._job, None
        if job is None:
            return
        os.close(self._write)
        job.wait()

    def _serve(self, fd: int) -> None:
        """(In the child) read what writers hand over; each time nothing more is waiting, sync
        and rename all of it; until every writer has closed its end."""
        buffer, pending = b"", []
        while True:
            chunk = os.read(fd, 1 << 16)
            if chunk:
                buffer += chunk
                while len(buffer) >= _FRAME:
                    size = int.from_bytes(buffer[:_FRAME], "little")
                    if len(buffer) < _FRAME + size:
                        break  # the rest of it is on its way
                    pending.extend(pickle.loads(buffer[_FRAME:_FRAME + size]))
                    buffer = buffer[_FRAME + size:]
                if len(pending) < COMMIT_MOST and select.select([fd], [], [], 0)[0]:
                    continue  # more is waiting: one sync for it all
            if pending:
                self._commit(pending)
                pending = []
            if not chunk:
                return

    def _commit(self, pending: list[tuple[str, str]]) -> None:
        if not _syncfs(self.root):
            for tmp, _ in pending:
                _fsync_file(tmp)
        for tmp, path in pending:
            os.replace(tmp, path)


#: Bytes of the length before each message handed to a Committer.
_FRAME = 4
#: Files a Committer syncs and renames at once at most (the rest wait for the next sync).
COMMIT_MOST = 1000
#: The pipe to a Committer holds this much (a writer waits when it is full).
PIPE_BYTES = 1 << 20


def _fsync_file(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _syncfs(folder: Path) -> bool:
    """syncfs(2) of the file system holding `folder`: everything written to it is on the disk.
    False where the C library has none (then each file is synced)."""
    libc = _libc()
    if libc is None:
        return False
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"syncfs: {os.strerror(err)}", str(folder))
    finally:
        os.close(fd)
    return True


_LIBC: list[Any] = []


def _libc() -> Any:
    if not _LIBC:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            _LIBC.append(libc if hasattr(libc, "syncfs") else None)
        except OSError:
            _LIBC.append(None)
    return _LIBC[0]


def sync_folders(root: Path, rels: Iterable[str]) -> None:
    """fsync the folders of `rels` (and `root`): the renames and removals in them are on the
    disk once this returns. One call per folder, however many files a pass wrote into it."""
    folders = {os.path.dirname(rel) for rel in rels} | {""}
    for folder in sorted(folders):
        try:
            fd = os.open(os.path.join(root, folder), os.O_RDONLY | os.O_DIRECTORY)
        except FileNotFoundError:
            continue  # (a folder whose last file was taken down)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


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
        size = path.stat().st_size
    except OSError:
        return False
    return size == len(data) and _reads_as(path, data)


def _reads_as(path: Path, data: bytes) -> bool:
    """Whether the file at `path` holds `data` (the caller knows the sizes agree)."""
    try:
        return path.read_bytes() == data
    except OSError:
        return False


def has_twin(rel: str) -> bool:
    """Archive pages go without, too: each is fetched about once per reader, ever, and they
    would double the files a cold build of a large site creates."""
    return rel.endswith(COMPRESSED) and not rel.startswith(NO_TWIN) and urls.archive_page(rel) is None


def stamp(previous_ns: int | None, now: float) -> int:
    """The mtime (ns) for new bytes of a file published at `now`: that time in whole seconds,
    as Last-Modified shows it. When the previous version's stamp is already that second or
    within AHEAD_NS after it, the second after the previous one, so Last-Modified still moves
    (an If-Modified-Since client must not keep the version replaced within the same second);
    a previous stamp further ahead (a clock set back, a date an older version stamped) is not
    followed."""
    second = int(now) * _SECOND
    if previous_ns is not None:
        last = previous_ns - previous_ns % _SECOND
        if second <= last < second + AHEAD_NS:
            return last + _SECOND
    return second


def write_file(root: Path, rel: str, out: Output, now: float, durable: bool = False) -> bool:
    """Write one output (and its .gz) published at `now`; False when the bytes on disk are
    already these (their twin is repaired if it disagrees)."""
    return bool(write_files(root, [(rel, out)], now, durable))


def write_files(root: Path, outputs: Iterable[tuple[str, Output]], now: float, durable: bool = False,
                committer: Committer | None = None) -> list[str]:
    """Write outputs (each with its .gz, the twin renamed just before its file) published at
    `now`, as one Batch; the paths whose bytes changed (twins of the others are repaired if
    they disagree). `committer`: it syncs and renames them (see Committer)."""
    written = []
    with Batch(root, durable, committer.hand if committer is not None else None) as batch:
        for rel, out in outputs:
            path = root / rel
            gz = path.with_name(path.name + ".gz")
            twin = has_twin(rel)
            try:  # one look at what is there (a cold build's thousands of files are not)
                st: os.stat_result | None = os.stat(path)
            except OSError:
                st = None
            if st is not None and st.st_size == len(out.data) and _reads_as(path, out.data):
                if twin:
                    repair_twin(path, out.data, durable)
                continue
            mtime = stamp(st.st_mtime_ns if st is not None else None, now)
            if twin:
                batch.stage(gz, gzip_bytes(out.data), mtime)
            else:
                gz.unlink(missing_ok=True)  # an older build's twin would be served instead
            batch.stage(path, out.data, mtime)
            written.append(rel)
        batch.commit()
    return written


def in_step(path: str) -> bool:
    """Whether the twin of the file at `path` has the file's mtime and, by its trailer, the
    file's length: what a whole write leaves, read from 8 bytes and two stats rather than
    from the file. (A write stamps the twin and its file alike and renames the twin first; a
    kill between the two renames leaves the twin another stamp than the file, since a new
    stamp always differs from the one it replaces, and an editor leaves the file a new mtime.)"""
    try:
        size, mtime = (st := os.stat(path)).st_size, st.st_mtime_ns
        tail = _twin_tail(path + ".gz", mtime)
    except OSError:
        return False
    return tail is not None and int.from_bytes(tail[4:], "little") == size & 0xFFFFFFFF


def _twin_tail(gz: str | Path, mtime: int) -> bytes | None:
    """The last 8 bytes of the twin `gz` (its gzip trailer: CRC-32 and length of what it holds)
    when it has its file's `mtime`; None when it is missing, stamped otherwise or too short."""
    try:
        with open(gz, "rb") as f:
            if os.fstat(f.fileno()).st_mtime_ns != mtime or f.seek(0, os.SEEK_END) < _GZIP_MIN:
                return None
            f.seek(-8, os.SEEK_END)
            return f.read(8)
    except FileNotFoundError:
        return None


def repair_twin(path: Path, data: bytes, durable: bool = False) -> bool:
    """Write the twin of `path` (whose bytes are `data`) again unless it holds these bytes
    with the file's mtime (nginx answers gzip clients with the twin's own Last-Modified and
    ETag). True when it was written."""
    gz = path.with_name(path.name + ".gz")
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        return False
    tail = _twin_tail(gz, mtime)
    if tail is not None and holds(tail, data):
        return False
    atomic_write(gz, gzip_bytes(data), mtime, durable)
    return True


def read_manifest(root: Path) -> list[str]:
    try:
        data = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        return [p for p in data.get("files", []) if isinstance(p, str)]
    except (OSError, ValueError, AttributeError):
        return []


def _sample(rels: list[str]) -> str:
    return ", ".join(rels[:3]) + (" …" if len(rels) > 3 else "")


def _safe_rel(rel: str) -> bool:
    return not rel.startswith(("/", "\\")) and ".." not in rel.split("/")  # as Path(rel).parts, no Path built


def remove_output(root: Path, rel: str) -> bool:
    """Delete the published file `rel` under `root` and its .gz twin; False, touching nothing,
    for a path that would leave `root`."""
    if not _safe_rel(rel):
        return False
    for path in (root / rel, root / (rel + ".gz")):
        path.unlink(missing_ok=True)
    return True


class DirectoryPublisher:
    """Publishes into `root`. Remembers what the manifest lists (`files`). `clock`: the publish
    time (seconds since the epoch), which new files are stamped with. `durable` (the
    `durable_writes` setting): what a pass reports written is on the disk, there to stay
    through a power cut (each file synced before its rename, each folder before the pass
    returns)."""

    def __init__(self, root: Path, clock: Callable[[], float] = time.time, durable: bool = False) -> None:
        self.root = root
        self.clock = clock
        self.durable = durable
        self._files: set[str] | None = None  # read from the manifest on first use
        self._checked = False
        self._last_publish = 0.0

    def exists(self, rel: str) -> bool:
        return (self.root / rel).is_file()

    def listing(self, folder: str) -> set[str]:
        if not _safe_rel(folder):
            return set()
        try:
            with os.scandir(self.root / folder) as it:
                return {entry.name for entry in it}
        except OSError:
            return set()

    def read(self, rel: str) -> bytes | None:
        """The published bytes of `rel`, None when it is not published."""
        if not _safe_rel(rel):
            return None
        try:
            return (self.root / rel).read_bytes()
        except OSError:
            return None

    def has_manifest(self) -> bool:
        """Whether an earlier run published here (and finished at least one pass)."""
        return (self.root / MANIFEST).is_file()

    def remove_temp_files(self) -> None:
        """Temp files a killed writer left behind (call only while no writer can be running)."""
        if self.root.is_dir():
            for tmp in self.root.rglob(".*.tmp"):
                tmp.unlink(missing_ok=True)

    def publish(self, outputs: Outputs, remove: Iterable[str],
                produced: AbstractSet[str] | None = None) -> PublishReport:
        now = self.clock()
        full = produced is not None
        files = self._files if self._files is not None and not full else set(read_manifest(self.root))
        remove = set(remove)
        if produced is not None:  # everything listed earlier that this pass does not produce
            remove |= files - produced
        report = PublishReport(written=self._write_all(outputs, now))
        changed = not files.issuperset(outputs)
        files.update(outputs)
        if produced is not None:  # what it did not write is published already: listed again, should
            # the manifest have been lost (the pages of an archive taken together have a key of their own)
            files.update(rel for rel in produced if not urls.is_archive_prefix(rel))
        remove -= outputs.keys()
        changed |= self._take_down(remove & files, files, report)
        first = not self._checked
        if first:  # twins of what this pass did not hand over (writing checked the rest)
            self._check_files(files, files - outputs.keys(), now)
            self._checked = True
        elif now < self._last_publish - 1:  # the clock went back: earlier stamps are ahead of it
            self._check_files(files, set(), now)
        self._last_publish = now
        if changed or full:
            self.write_manifest(files)
        if self.durable:  # (the first pass may have repaired twins anywhere: every folder)
            sync_folders(self.root, files if first else [*report.written, *report.removed])
        self._files = files
        return report

    def _take_down(self, victims: set[str], files: set[str], report: PublishReport) -> bool:
        for rel in sorted(victims):
            if remove_output(self.root, rel):
                report.removed.append(rel)
            files.discard(rel)
        return bool(victims)

    def _check_files(self, rels: Iterable[str], twins: AbstractSet[str], now: float) -> None:
        """Files of `rels` stamped further ahead of `now` than a stamp may run get `now` (an
        older version stamped dates, the clock was set back); the twins of `twins` out of step
        with their files (`in_step`: a kill between the two writes of an earlier run, a hand
        edit) are written again."""
        second, pulled_back, repaired = int(now) * _SECOND, [], []
        root = str(self.root)
        for rel in sorted(rels):  # thousands of pages: os.path, not pathlib
            if not _safe_rel(rel):
                continue
            path = os.path.join(root, rel)
            try:
                late = os.stat(path).st_mtime_ns > second + AHEAD_NS
                if late:
                    os.utime(path, ns=(second, second))
                    pulled_back.append(rel)
                if (late or rel in twins) and has_twin(rel) and (late or not in_step(path)) \
                        and repair_twin(Path(path), Path(path).read_bytes(), self.durable):
                    repaired.append(rel)
            except OSError:
                continue  # gone: the manifest is tidied when it is taken down
        if pulled_back:
            log.warning("%d files had times ahead of the clock (%s); stamped with the clock's", len(pulled_back),
                        _sample(pulled_back))
        if repaired:
            log.warning("%d .gz twins did not match their files (%s); written again", len(repaired),
                        _sample(repaired))

    def _write_all(self, outputs: Outputs, now: float) -> list[str]:
        """Write every output; the paths whose bytes changed. Thousands of outputs (a cold
        build's pages) are split with a forked second process."""
        root = self.root
        rels = list(outputs)
        # durable writes of a cold build: synced and renamed by a process of their own
        committer = Committer(root) if self.durable and len(rels) >= parallel.MIN_OUTPUTS else None
        if committer is not None and not committer.start():
            committer = None  # (this process may not fork)

        def work(chunk: Sequence[str]) -> list[str]:
            return write_files(root, ((rel, outputs.output(rel)) for rel in chunk), now, self.durable, committer)

        try:  # in the planned order: a post's documents come close together (see plan._add_pages)
            written = parallel.fork_split(rels, work, "writing files")
        except BaseException:
            if committer is not None:
                with contextlib.suppress(Exception):  # (the error that stopped the writers is the one to tell)
                    committer.finish()
            raise
        if committer is not None:
            committer.finish()
        return sorted(written)

    def write_manifest(self, files: Iterable[str]) -> None:
        manifest = json.dumps({"files": sorted(files)}, indent=0).encode()
        if not same_bytes(self.root / MANIFEST, manifest):
            atomic_write(self.root / MANIFEST, manifest, durable=self.durable)

    def redirects(self) -> dict[str, str]:
        return redirects.load(self.root)

    def save_redirects(self, table: Mapping[str, str]) -> None:
        path = self.root / redirects.REDIRECTS
        data = redirects.dump(table)
        if (table or path.exists()) and not same_bytes(path, data):
            self._write_record(path, data)

    def site_record(self) -> dict[str, Any]:
        try:
            data = json.loads((self.root / SITE_RECORD).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def save_site_record(self, record: Mapping[str, Any]) -> None:
        data = json.dumps(dict(record), sort_keys=True, indent=0).encode()
        if not same_bytes(self.root / SITE_RECORD, data):
            self._write_record(self.root / SITE_RECORD, data)

    def _write_record(self, path: Path, data: bytes) -> None:
        atomic_write(path, data, durable=self.durable)
        if self.durable:
            sync_folders(self.root, [])
