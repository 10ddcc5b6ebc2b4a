"""State that outlives restarts: the Builder with a real SQLite file and an injected clock."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from syndicator.pipeline import Builder
from syndicator.config import Settings
from syndicator.store.sqlite import FILE_NAME, decode_post, encode_post
from syndicator.store.sqlite import SQLiteStore as State

POST = "---\ntitle: {title}\ndate: 2024-03-01 10:00\ntags: [state]\n---\n\nBody of {title}.\n"
OWN_DATE = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: int = 60) -> None:
        self.now += timedelta(seconds=seconds)


def open_builder(settings: Settings, clock: Clock, key: str = "k") -> Builder:
    return Builder(settings, clock=clock, state=State(settings.state_dir / FILE_NAME, key))


def post_at(builder: Builder, rel: str):
    return builder.records[rel].good


def write_keeping_stat(path: Path, text: str) -> None:
    """New bytes, same size and mtime: only a cache keyed by the fingerprint would miss it."""
    st = path.stat()
    assert len(text.encode()) == st.st_size
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_post_encoding_round_trips(settings: Settings) -> None:
    builder = Builder(settings)
    builder.build()
    for record in builder.records.values():
        if record.good is not None:
            again = decode_post(encode_post(record.good))
            assert again == record.good and dict(again.extra) == dict(record.good.extra)


def test_updated_ids_moves_and_last_good_across_restarts(settings: Settings) -> None:
    clock = Clock()
    path = settings.seeds_dir / "note.md"
    path.write_text(POST.format(title="One"), encoding="utf-8")
    builder = open_builder(settings, clock)
    builder.build()
    first = post_at(builder, "note.md")
    assert first.updated == OWN_DATE  # first seen: its own date

    clock.tick()
    path.write_text(POST.format(title="Two"), encoding="utf-8")
    builder.build()
    edited = post_at(builder, "note.md")
    assert (edited.id, edited.updated) == (first.id, clock.now)

    clock.tick()
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 5_000_000_000))  # touch: same bytes
    builder.build()
    assert post_at(builder, "note.md").updated == edited.updated

    path.write_text("---\ntitle: [broken\n---\n", encoding="utf-8")
    result = builder.build()
    assert [e.path for e in result.errors] == ["note.md"]
    assert any(p.title == "Two" for p in result.posts)  # last good version still published

    # restart on the same state file: the error and the last good version come back unparsed
    builder.state.close()
    builder = open_builder(settings, clock)
    result = builder.build()
    assert result.changed_paths == [] and [e.path for e in result.errors] == ["note.md"]
    assert any(p.title == "Two" and p.updated == edited.updated for p in result.posts)

    # fixed (back to the last good bytes) and moved in one go: id and `updated` stay
    clock.tick()
    path.unlink()
    (settings.seeds_dir / "notes").mkdir()
    moved = settings.seeds_dir / "notes" / "renamed.md"
    moved.write_text(POST.format(title="Two"), encoding="utf-8")  # the last good bytes again
    result = builder.build()
    assert result.moved == [("note.md", "notes/renamed.md")]
    post = post_at(builder, "notes/renamed.md")
    assert (post.id, post.updated) == (first.id, edited.updated)  # same bytes as the last good

    # the move survives a restart, and the cache is keyed by fingerprint: nothing is re-read
    builder.state.close()
    write_keeping_stat(moved, POST.format(title="Owt"))
    builder = open_builder(settings, clock)
    result = builder.build()
    assert result.changed_paths == []
    assert post_at(builder, "notes/renamed.md").title == "Two"
    assert post_at(builder, "notes/renamed.md").id == first.id

    # other settings or code (another key): cached reads are dropped, ids and times kept
    builder.state.close()
    builder = open_builder(settings, clock, key="other")
    builder.build()
    post = post_at(builder, "notes/renamed.md")
    assert post.title == "Owt" and post.id == first.id and post.updated == clock.now

    # deleted: gone from the feeds and from the state
    moved.unlink()
    result = builder.build()
    assert all(p.id != first.id for p in result.posts)
    with sqlite3.connect(settings.state_dir / FILE_NAME) as db:
        assert db.execute("SELECT count(*) FROM posts WHERE path LIKE 'note%'").fetchone() == (0,)
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_other_schema_version_is_discarded(settings: Settings) -> None:
    builder = open_builder(settings, Clock())
    builder.build()
    builder.state.close()
    with sqlite3.connect(settings.state_dir / FILE_NAME) as db:
        db.execute("UPDATE meta SET value = '0' WHERE key = 'schema'")
    state = State(settings.state_dir / FILE_NAME, "k")
    assert state.load() == {}


def test_unreadable_state_file_is_moved_aside(settings: Settings) -> None:
    settings.state_dir.mkdir(parents=True)
    (settings.state_dir / FILE_NAME).write_bytes(b"not a database at all" * 100)
    builder = open_builder(settings, Clock())
    assert builder.build().posts_published == 4
    assert (settings.state_dir / (FILE_NAME + ".corrupt")).exists()


def test_cli_build_needs_no_state(settings: Settings) -> None:
    from syndicator.pipeline import build

    assert build(settings).posts_published == 4
    assert not settings.state_dir.exists()


def test_posts_pickled_the_older_way_still_load(settings: Settings) -> None:
    """Posts are pickled as constructor calls; a state file written by an earlier version holds
    the dataclass default form (`__newobj__` + `__setstate__`), which must still load."""
    import copyreg
    import io
    import pickle
    import pickletools

    from syndicator import model

    class OldForm(pickle.Pickler):
        def reducer_override(self, obj):  # type: ignore[no-untyped-def]
            if type(obj).__module__ == model.__name__ and hasattr(obj, "__getstate__"):
                return copyreg.__newobj__, (type(obj),), obj.__getstate__()
            return NotImplemented

    builder = Builder(settings)
    builder.build()
    posts = [r.good for r in builder.records.values() if r.good is not None]
    assert any(p.related or p.images for p in posts)  # nested model objects are covered
    for post in posts:
        buf = io.BytesIO()
        OldForm(buf, protocol=pickle.HIGHEST_PROTOCOL).dump(replace(post, extra=dict(post.extra)))
        old_ops = {op.name for op, _, _ in pickletools.genops(buf.getvalue())}
        assert {"NEWOBJ", "BUILD"} <= old_ops
        assert "BUILD" not in {op.name for op, _, _ in pickletools.genops(encode_post(post))}
        assert decode_post(buf.getvalue()) == post
