"""State that outlives restarts: the Builder with a real SQLite file and an injected clock."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import orjson

from syndicator.config import Settings
from syndicator.pipeline import Builder
from syndicator.store.codec import LIGHT_FIELDS, POST_FIELDS, decode_post, encode_post, split
from syndicator.store.sqlite import FILE_NAME
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
    from syndicator.pipeline.build import build

    assert build(settings).posts_published == 4
    assert not settings.state_dir.exists()


# -- a state file that is not what this code wrote ---------------------------------------------


def _build_and_close(settings: Settings) -> Builder:
    builder = open_builder(settings, Clock())
    builder.build()
    builder.state.close()
    return builder


def test_state_rows_never_run_code(settings: Settings, tmp_path: Path, caplog) -> None:
    """A pickle planted in the state file (as anyone who can write it could) is not executed:
    the row is dropped with one log line and its post read again from seeds/."""
    import pickle

    marker = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return open, (str(marker), "w")

    first = _build_and_close(settings)
    path = next(rel for rel, r in first.records.items() if r.good is not None)
    with sqlite3.connect(settings.state_dir / FILE_NAME) as db:
        db.execute("UPDATE posts SET good = ? WHERE path = ?", (pickle.dumps(Payload()), path))
    caplog.set_level("WARNING", logger="syndicator.state")
    builder = open_builder(settings, Clock())
    result = builder.build()
    assert not marker.exists()
    assert result.changed_paths == [path]  # read again from seeds/
    assert builder.records[path].good == first.records[path].good
    assert len([r for r in caplog.records if r.name == "syndicator.state"]) == 1
    assert path in caplog.text and "dropped" in caplog.text


def test_old_pickle_state_is_discarded_unread(settings: Settings, tmp_path: Path, caplog) -> None:
    """A state file of the pickle era (schema 2) is dropped whole, its rows never read."""
    import pickle

    from syndicator.store import sqlite as store

    marker = tmp_path / "code-ran"

    class Payload:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return open, (str(marker), "w")

    _build_and_close(settings)
    with sqlite3.connect(settings.state_dir / FILE_NAME) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (f"2-{store._MODEL_SHAPE}",))
        db.execute("UPDATE posts SET good = ?", (pickle.dumps(Payload()),))
    caplog.set_level("WARNING", logger="syndicator.state")
    builder = open_builder(settings, Clock())
    assert builder.records == {}
    assert builder.build().posts_published == 4 and not marker.exists()
    assert "discarded unread" in caplog.text


def test_rows_of_another_shape_are_dropped(settings: Settings, caplog) -> None:
    first = _build_and_close(settings)
    paths = sorted(rel for rel, r in first.records.items() if r.good is not None)
    page = next(rel for rel in paths if first.records[rel].good.page_slug)
    topical = next(rel for rel in paths if first.records[rel].good.topics)
    stored = {rel: split(encode_post(first.records[rel].good)) for rel in paths}
    good = {rel: orjson.loads(light) for rel, (light, _) in stored.items()}

    def blob(rel: str, fields: list[object]) -> bytes:  # the light line (the heavy one is a column of its own)
        return orjson.dumps(fields)

    page_slug, topics, published = (LIGHT_FIELDS.index(f) for f in ("page_slug", "topics", "published"))
    bad = {
        page: ("good", blob(page, good[page][:page_slug] + ["../../../etc/cron.d/x"] + good[page][page_slug + 1:])),
        topical: ("good", blob(topical, good[topical][:topics] + [[["x", "../x"]]] + good[topical][topics + 1:])),
    }
    rest = [rel for rel in paths if rel not in bad]
    bad[rest[0]] = ("good", blob(rest[0], good[rest[0]][:published] + ["2024-03-01T10:00:00"]
                                 + good[rest[0]][published + 1:]))  # no offset
    bad[rest[1]] = ("first_seen", 12)
    bad[rest[2]] = ("good", encode_post(first.records[rest[2]].good))  # both lines: not what this version writes
    with sqlite3.connect(settings.state_dir / FILE_NAME) as db:
        for rel, (column, value) in bad.items():
            db.execute(f"UPDATE posts SET {column} = ? WHERE path = ?", (value, rel))
    caplog.set_level("WARNING", logger="syndicator.state")
    builder = open_builder(settings, Clock())
    assert not set(bad) & set(builder.records)
    assert len(caplog.records) == 1 and f"{len(bad)} entries" in caplog.text
    result = builder.build()
    assert sorted(result.changed_paths) == sorted(bad) and result.posts_published == 4
    assert not (settings.feeds_dir.parent / "etc").exists()
    with sqlite3.connect(settings.state_dir / FILE_NAME) as db:  # read again and stored afresh
        assert db.execute("SELECT count(*) FROM posts").fetchone() == (len(first.records),)


def test_extra_values_round_trip() -> None:
    import math
    from datetime import date, time

    from syndicator.model import Post

    extra = {
        "text": "x", "n": 3, "big": 2**80, "f": 1.5, "nan": math.nan, "inf": -math.inf, "yes": True, "none": None,
        "when": datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=8))), "day": date(2024, 1, 2),
        "naive": datetime(2024, 1, 2, 3, 4), "clock": time(10, 30), "raw": b"\x00\xff", "set": {1, "a"},
        "nested": {"list": [1, {"k": date(2020, 1, 1)}], 7: "int key", "map": {"map": 1}},
    }
    post = Post(id="i", title="t", link="https://example.com/", summary="", body_html=None,
                published=datetime(2024, 1, 1, tzinfo=UTC), updated=datetime(2024, 1, 1, tzinfo=UTC), extra=extra)
    again = dict(decode_post(encode_post(post)).extra)
    assert math.isnan(again.pop("nan")) and math.isnan(extra.pop("nan"))
    assert again == extra
    deep: list[object] = []
    for _ in range(500):
        deep = [deep]
    assert decode_post(encode_post(replace(post, extra={"deep": deep}))).extra["deep"]  # kept, cut short


def test_post_fields_follow_the_model() -> None:
    from dataclasses import fields

    from syndicator.model import Post

    assert POST_FIELDS == tuple(f.name for f in fields(Post))


def test_state_files_are_private(settings: Settings) -> None:
    """Drafts are in the state: its folder is 0700, the database, its -wal/-shm and the lock 0600."""
    import stat

    from syndicator.store.local import LOCK_NAME, lock

    umask = os.umask(0o022)  # the usual one: files readable to all unless made otherwise
    try:
        with lock(settings.state_dir):
            builder = open_builder(settings, Clock())
            builder.build()
            var = settings.state_dir
            assert stat.S_IMODE(var.stat().st_mode) == 0o700
            files = [var / FILE_NAME, var / f"{FILE_NAME}-wal", var / f"{FILE_NAME}-shm", var / LOCK_NAME]
            assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {f.name: 0o600 for f in files}
            builder.state.close()
        # a file an earlier version left readable to all is tightened on open
        os.chmod(var / FILE_NAME, 0o644)
        open_builder(settings, Clock()).state.close()
        assert stat.S_IMODE((var / FILE_NAME).stat().st_mode) == 0o600
    finally:
        os.umask(umask)


def test_a_post_json_cannot_hold_is_read_again_after_a_restart(settings: Settings, caplog) -> None:
    """Pickle stored any string; JSON refuses a lone surrogate. No reader gives one, but if one
    did, the pass must go on: the row is stored without the post, to be read again."""
    builder = open_builder(settings, Clock())
    builder.build()
    rel, record = next((rel, r) for rel, r in builder.records.items() if r.good is not None)
    odd = replace(record, good=replace(record.good, title="half \ud800 a pair"))
    builder.state.save([odd], [])
    builder.state.close()
    assert "not stored" in caplog.text
    again = State(settings.state_dir / FILE_NAME, "k").load()[rel]
    assert again.good is None and again.fingerprint is None  # read again at the next pass
