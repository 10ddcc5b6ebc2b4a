"""What a pass leaves in feeds/: takedowns, `.gz` twins and file times, on real files."""

from __future__ import annotations

import json
import os
from pathlib import Path

from syndicator.compress import gunzip, gzip_bytes
from syndicator.config import Settings, load_settings
from syndicator.pipeline.build import Builder, build
from syndicator.publishers.directory import AHEAD_NS, DirectoryPublisher, stamp
from syndicator.store.sqlite import FILE_NAME, SQLiteStore

POST = "---\ntitle: {title}\ndate: 2024-03-01 10:00\ntags: [{tag}]\n---\n\nBody of {title}.\n"
BROKEN = "---\ntitle: [unclosed\ndate: 2024-03-01 10:00\n---\n\nBody.\n"


def _settings(tmp_path: Path) -> Settings:
    (tmp_path / "seeds").mkdir(exist_ok=True)
    return load_settings(env={}, overrides={"seeds_dir": tmp_path / "seeds", "feeds_dir": tmp_path / "feeds",
                                            "state_dir": tmp_path / "var"})


def _builder(settings: Settings) -> Builder:
    return Builder(settings, state=SQLiteStore(settings.state_dir / FILE_NAME, "k"))


def _on_disk(feeds: Path) -> set[str]:
    """Published files as the manifest would list them (no dotfiles, no twins)."""
    return {p.relative_to(feeds).as_posix() for p in feeds.rglob("*")
            if p.is_file() and not p.name.startswith(".") and not p.name.endswith(".gz")}


def _manifest(feeds: Path) -> set[str]:
    return set(json.loads((feeds / ".manifest.json").read_text())["files"])


def _titles(feeds: Path) -> set[str]:
    return {item["title"] for item in json.loads((feeds / "all.json").read_bytes())["items"]}


# -- takedowns -----------------------------------------------------------------------------------


def test_deletion_is_published_while_another_post_is_broken(tmp_path: Path) -> None:
    """A broken post keeps its last good version (page, feed items); a post deleted in the
    same pass goes at once: its page, and the feeds of a topic only it had."""
    settings = _settings(tmp_path)
    keep, gone = settings.seeds_dir / "keep.md", settings.seeds_dir / "gone.md"
    keep.write_text(POST.format(title="Keep", tag="kept"), encoding="utf-8")
    gone.write_text(POST.format(title="Gone", tag="only-gone"), encoding="utf-8")
    feeds = settings.feeds_dir
    builder = _builder(settings)
    builder.build()
    assert {"posts/keep.html", "posts/gone.html", "topics/only-gone.rss"} <= _on_disk(feeds)

    keep.write_text(BROKEN, encoding="utf-8")
    gone.unlink()
    result = builder.build()
    assert [e.path for e in result.errors] == ["keep.md"]
    assert _titles(feeds) == {"Keep"}  # the broken post's last good version
    assert "posts/keep.html" in _on_disk(feeds) and "topics/kept.atom" in _on_disk(feeds)
    assert not (feeds / "posts" / "gone.html").exists()
    assert not list((feeds / "topics").glob("only-gone.*"))  # twins included
    assert {"posts/gone.html", "topics/only-gone.rss"} & set(result.removed) == {"posts/gone.html",
                                                                                 "topics/only-gone.rss"}
    assert _manifest(feeds) == _on_disk(feeds)

    # a restart over the same state (a full pass, errors still there) takes nothing else down
    builder.state.close()
    builder = _builder(settings)
    before = _on_disk(feeds)
    result = builder.build()
    assert result.errors and not result.removed
    assert _on_disk(feeds) == before == _manifest(feeds)


def test_a_stateless_build_drops_what_it_cannot_read(tmp_path: Path) -> None:
    """`syndicator build` remembers no last good version: a broken post's page goes with its
    feed items, and the manifest says so."""
    settings = _settings(tmp_path)
    keep, other = settings.seeds_dir / "keep.md", settings.seeds_dir / "other.md"
    keep.write_text(POST.format(title="Keep", tag="kept"), encoding="utf-8")
    other.write_text(POST.format(title="Other", tag="kept"), encoding="utf-8")
    build(settings)
    keep.write_text(BROKEN, encoding="utf-8")
    result = build(settings)
    assert result.errors and "posts/keep.html" in result.removed
    assert _titles(settings.feeds_dir) == {"Other"}
    assert _manifest(settings.feeds_dir) == _on_disk(settings.feeds_dir)


# -- .gz twins -----------------------------------------------------------------------------------


def _stale_twin(feeds: Path, rel: str) -> None:
    """What a kill between writing a twin and its file leaves: the twin of other bytes, with
    the file's mtime (the cheap check alone would not see it)."""
    path = feeds / rel
    (feeds / f"{rel}.gz").write_bytes(gzip_bytes(path.read_bytes().replace(b"Body of", b"Stale body of")))
    st = path.stat()
    os.utime(feeds / f"{rel}.gz", ns=(st.st_atime_ns, st.st_mtime_ns))


def _twins_agree(feeds: Path) -> dict[str, bool]:
    return {gz.name: gunzip(gz.read_bytes()) == gz.with_suffix("").read_bytes()
            and gz.stat().st_mtime_ns == gz.with_suffix("").stat().st_mtime_ns for gz in feeds.rglob("*.gz")}


def test_twins_that_disagree_are_repaired_on_the_next_start(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    for i in range(3):
        (settings.seeds_dir / f"p{i}.md").write_text(POST.format(title=f"P{i}", tag="t"), encoding="utf-8")
    feeds = settings.feeds_dir
    builder = _builder(settings)
    builder.build()
    builder.state.close()
    _stale_twin(feeds, "all.rss")
    _stale_twin(feeds, "topics/t.atom")
    (feeds / "index.html.gz").unlink()
    assert not all(_twins_agree(feeds).values())

    # a restart over the same state hands over nothing (no digest changed): the start checks
    builder = _builder(settings)
    result = builder.build()
    assert not result.written
    agree = _twins_agree(feeds)
    assert all(agree.values()) and "index.html.gz" in agree and len(agree) == 4 + 4 + 2  # all and t (three formats and a page), index, OPML
    builder.state.close()

    # `syndicator build` (no state) hands every output over: each unchanged file's twin is checked
    _stale_twin(feeds, "all.json")
    assert build(settings).written == []
    assert all(_twins_agree(feeds).values())


def test_a_kill_between_a_twin_and_its_file_is_mended_at_the_next_start(tmp_path: Path) -> None:
    """A write renames the twin first: killed before the file's rename, the twin holds the new
    bytes, stamped later than the old file it sits beside. The next start sees the stamps
    differ (without reading the file) and writes the twin again; twins in step are kept."""
    settings = _settings(tmp_path)
    (settings.seeds_dir / "p.md").write_text(POST.format(title="P", tag="t"), encoding="utf-8")
    feeds = settings.feeds_dir
    builder = _builder(settings)
    builder.build()
    builder.state.close()
    plain, twin = feeds / "all.rss", feeds / "all.rss.gz"
    newer = plain.read_bytes().replace(b"Body of P", b"Body of Q")  # (as long: only the stamps tell)
    assert newer != plain.read_bytes() and len(newer) == len(plain.read_bytes())
    twin.write_bytes(gzip_bytes(newer))
    later = plain.stat().st_mtime_ns + S
    os.utime(twin, ns=(later, later))
    kept = feeds / "all.atom.gz"
    kept_at = kept.stat().st_mtime_ns

    builder = _builder(settings)
    assert not builder.build().written
    builder.state.close()
    assert gunzip(twin.read_bytes()) == plain.read_bytes()
    assert twin.stat().st_mtime_ns == plain.stat().st_mtime_ns
    assert kept.stat().st_mtime_ns == kept_at and gunzip(kept.read_bytes()) == (feeds / "all.atom").read_bytes()


# -- file times (Last-Modified) ------------------------------------------------------------------

S = 1_000_000_000


def test_stamps_move_with_the_bytes_and_stay_near_the_clock() -> None:
    assert stamp(None, 1000.7) == 1000 * S  # whole seconds, as Last-Modified shows them
    assert stamp(999 * S + 5, 1000.2) == 1000 * S
    assert stamp(1000 * S, 1000.9) == 1001 * S  # a second version within the second still moves
    assert stamp(1001 * S, 1000.9) == 1002 * S
    assert stamp(1002 * S, 1000.9) == 1000 * S  # but runs no further ahead than AHEAD_NS
    assert AHEAD_NS == 2 * S
    assert stamp(4_070_944_800 * S, 1000.0) == 1000 * S  # a 2099 stamp is not followed


def test_file_times_are_publish_times(tmp_path: Path) -> None:
    """New bytes get the publish time (not a date they show), unchanged ones keep theirs, and
    times ahead of the clock are pulled back: at a process's first pass (what an older
    version stamped for a post dated 2099) and when the clock goes back."""
    settings = _settings(tmp_path)
    post = settings.seeds_dir / "p.md"
    post.write_text(POST.format(title="One", tag="t"), encoding="utf-8")
    feeds = settings.feeds_dir
    now = [1_700_000_000.25]

    def builder() -> Builder:
        return Builder(settings, publisher=DirectoryPublisher(feeds, clock=lambda: now[0]))

    def mtimes() -> dict[str, int]:
        return {p.relative_to(feeds).as_posix(): p.stat().st_mtime_ns for p in feeds.rglob("*")
                if p.is_file() and not p.name.startswith(".")}

    first = builder()
    first.build()
    assert set(mtimes().values()) == {1_700_000_000 * S}
    post.write_text(POST.format(title="Two", tag="t"), encoding="utf-8")  # within the same second
    first.build()
    assert mtimes()["all.rss"] == mtimes()["all.rss.gz"] == 1_700_000_001 * S
    assert mtimes()["topics/t.json"] == 1_700_000_001 * S
    now[0] += 60
    before = mtimes()
    first.build()  # nothing changed: nothing restamped
    assert mtimes() == before

    # an older version stamped the feeds of a post dated 2099 with 2099
    for rel in ("all.atom", "all.atom.gz", "posts/p.html"):
        os.utime(feeds / rel, (4_070_944_800, 4_070_944_800))
    second = builder()
    second.build()
    assert max(mtimes().values()) <= int(now[0]) * S
    assert mtimes()["all.atom"] == mtimes()["all.atom.gz"] == mtimes()["posts/p.html"] == int(now[0]) * S

    # the clock is set back an hour while running (a forward jump corrected)
    now[0] -= 3600
    second.build()
    assert max(mtimes().values()) <= int(now[0]) * S + AHEAD_NS


# -- the Committer: a cold build's durable renames in a process of their own ----------------------


def _stage(root: Path, name: str, data: bytes) -> tuple[Path, Path]:
    path = root / name
    tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    return tmp, path


def test_the_committer_renames_what_two_processes_hand_it(tmp_path: Path) -> None:
    from syndicator.publishers.directory import Committer

    committer = Committer(tmp_path)
    committer.start()
    pid = os.fork()
    if pid == 0:  # a second writer, as the forked one of a cold build
        try:
            for i in range(200):
                committer.hand([_stage(tmp_path, f"child{i}.rss", b"c%d" % i)])
        finally:
            os._exit(0)
    # many at once: more than one write to the pipe, each whole
    committer.hand([_stage(tmp_path, f"parent{i}.rss", b"p%d" % i) for i in range(300)])
    os.waitpid(pid, 0)
    committer.finish()
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {f"child{i}.rss" for i in range(200)} | {f"parent{i}.rss" for i in range(300)}
    assert (tmp_path / "child7.rss").read_bytes() == b"c7" and (tmp_path / "parent299.rss").read_bytes() == b"p299"


def test_a_committer_that_dies_fails_the_publish_and_leaves_temp_files_only(tmp_path: Path) -> None:
    import signal
    import time

    import pytest

    from syndicator.publishers.directory import Committer

    committer = Committer(tmp_path)
    assert committer.start() and committer._job is not None
    os.kill(committer._job.pid, signal.SIGKILL)
    while Path(f"/proc/{committer._job.pid}/stat").read_text().split(") ")[1][0] != "Z":
        time.sleep(0.01)  # dead, not reaped yet
    with pytest.raises(BrokenPipeError):
        committer.hand([_stage(tmp_path, "a.rss", b"a")])
    with pytest.raises(OSError, match=r"syncing and renaming files in .* stopped before it was done "
                                      r"\(killed by signal 9\)"):
        committer.finish()
    assert not (tmp_path / "a.rss").exists()
    DirectoryPublisher(tmp_path).remove_temp_files()
    assert list(tmp_path.iterdir()) == []


def test_a_path_too_long_for_one_pipe_write_is_renamed_by_its_writer(tmp_path: Path) -> None:
    """A pipe write of at most PIPE_BUF bytes is never interleaved with another writer's: a
    pair of paths longer than that (a folder kilobytes deep) is synced and renamed by the
    writer itself, and the rest still goes to the Committer."""
    from syndicator.publishers.directory import Committer

    deep = tmp_path.joinpath(*["d" * 200] * 11)  # 2,200 bytes of folders
    deep.mkdir(parents=True)
    committer = Committer(tmp_path)
    committer.start()
    committer.hand([_stage(tmp_path, "short.rss", b"s"), _stage(deep, "long.rss", b"l"),
                    _stage(tmp_path, "after.rss", b"a")])
    assert (deep / "long.rss").read_bytes() == b"l"  # here, at once
    committer.finish()
    assert (tmp_path / "short.rss").read_bytes() == b"s" and (tmp_path / "after.rss").read_bytes() == b"a"
    assert not [p for p in tmp_path.rglob("*.tmp")]
