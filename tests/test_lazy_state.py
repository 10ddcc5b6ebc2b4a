"""A start over the state loads each post without its heavy fields (body, images, related
coverage, extra) and, when the outputs were made from the stored records, renders only what
changed since: what it publishes must be, byte for byte, what a cold build of the same folder
publishes, whether the heavy fields it renders come from the files or from the state."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from syndicator import model
from syndicator.config import Settings, load_settings
from syndicator.model import LazyPost
from syndicator.pipeline import Builder
from syndicator.pipeline.plan import OutputPlanner
from syndicator.store.sqlite import FILE_NAME, SQLiteStore

ROOT = Path(__file__).resolve().parent.parent
#: older than every post: `updated` is each post's own date, as a cold build has it
CLOCK = datetime(2015, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60 posts of the benchmark's generator: news items with images and related coverage,
    Jekyll posts with HTML bodies, a quarter in Chinese, 1-4 topics each."""
    out = tmp_path_factory.mktemp("corpus") / "seeds"
    subprocess.run([sys.executable, str(ROOT / "bench" / "gen_corpus.py"), "-n", "60", "-o", str(out),
                    "--manifest", str(out.parent / "manifest.json")], check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def larger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 posts: with two items a feed, most are in no feed."""
    out = tmp_path_factory.mktemp("larger") / "seeds"
    subprocess.run([sys.executable, str(ROOT / "bench" / "gen_corpus.py"), "-n", "300", "-o", str(out),
                    "--manifest", str(out.parent / "manifest.json")], check=True, capture_output=True)
    return out


def _settings(seeds: Path, root: Path, items: int = 5) -> Settings:
    return load_settings(env={}, overrides={
        "seeds_dir": seeds, "feeds_dir": root / "feeds", "state_dir": root / "var", "items_per_feed": items,
        "archive_page_size": 3, "base_url": "https://feeds.example.org/"})


def _builder(settings: Settings, long_lived: bool = False) -> Builder:
    return Builder(settings, clock=lambda: CLOCK, state=SQLiteStore(settings.state_dir / FILE_NAME, "test"),
                   long_lived=long_lived)


def _published(feeds: Path) -> dict[str, bytes]:
    return {p.relative_to(feeds).as_posix(): p.read_bytes() for p in sorted(feeds.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def _cold(settings: Settings, root: Path) -> dict[str, bytes]:
    """A cold build of the same folder, without state, from the same archive page bounds (the
    site record: a cold build elsewhere would close the pages where the history closed them)."""
    other = root / "cold"
    shutil.rmtree(other, ignore_errors=True)
    other.mkdir()
    shutil.copy(settings.feeds_dir / ".site.json", other / ".site.json")
    cold = load_settings(env={}, overrides={
        "seeds_dir": settings.seeds_dir, "feeds_dir": other, "state_dir": root / "cold-var",
        "items_per_feed": settings.items_per_feed, "archive_page_size": settings.archive_page_size,
        "base_url": settings.base_url})
    Builder(cold, clock=lambda: CLOCK).build()
    return _published(other)


def _retitle(path: Path, prefix: str) -> None:
    text = path.read_text(encoding="utf-8")
    new, n = re.subn(r'^(title: *"?)', lambda m: m.group(1) + prefix, text, count=1, flags=re.M)
    assert n == 1
    path.write_text(new, encoding="utf-8")


def _diff(got: dict[str, bytes], want: dict[str, bytes]) -> list[str]:
    return sorted(rel for rel in set(got) | set(want) if got.get(rel) != want.get(rel))


def test_a_start_over_the_state_publishes_what_a_cold_build_does(corpus: Path, tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    shutil.copytree(corpus, seeds)
    settings = _settings(seeds, tmp_path)
    first = _builder(settings)
    first.build()
    newest_first = [path for _, path in first.planner.entries("all")]
    first.state.close()
    assert _diff(_published(settings.feeds_dir), _cold(settings, tmp_path)) == []

    # while down: the newest post retitled, one in the oldest archive page retitled, one that
    # a feed shows deleted (an older post, never rendered since the start, takes its place)
    _retitle(seeds / newest_first[0], "Newest, edited ")
    _retitle(seeds / newest_first[-1], "Archived, edited ")
    (seeds / newest_first[2]).unlink()

    builder = _builder(settings)
    posts = [r.good for r in builder.records.values() if r.good is not None]
    assert posts and all(isinstance(p, LazyPost) and not p.loaded() for p in posts)
    result = builder.build()
    assert sorted(result.changed_paths) == sorted([newest_first[0], newest_first[-1], newest_first[2]])
    assert any("/archive/" in rel for rel in result.written)
    # what no pass rendered stayed in the state
    untouched = [r.good for rel, r in builder.records.items() if rel not in result.changed_paths and r.good]
    assert any(isinstance(p, LazyPost) and not p.loaded() for p in untouched)
    assert any(isinstance(p, LazyPost) and p.loaded() for p in untouched)  # rendered from the state
    published = _published(settings.feeds_dir)
    assert b"Archived, edited " in b"".join(published[rel] for rel in published if "/archive/" in rel)
    assert _diff(published, _cold(settings, tmp_path)) == []

    # and the running service's next pass, over posts loaded from the state
    _retitle(seeds / newest_first[-2], "Archived again ")
    assert builder.rebuild_paths([str(seeds / newest_first[-2])]) is not None
    builder.state.close()
    assert _diff(_published(settings.feeds_dir), _cold(settings, tmp_path)) == []


def test_a_start_with_an_unchanged_folder_plans_nothing_and_repairs_a_page_gone(corpus: Path,
                                                                              tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    shutil.copytree(corpus, seeds)
    settings = _settings(seeds, tmp_path)
    first = _builder(settings)
    first.build()
    first.state.close()
    before = _published(settings.feeds_dir)
    planned: list[str] = []
    real = OutputPlanner._plan_feed

    def spy(self: OutputPlanner, plan: object, stem: str, *args: object) -> None:
        planned.append(stem)
        real(self, plan, stem, *args)  # type: ignore[arg-type]

    OutputPlanner._plan_feed = spy  # type: ignore[method-assign]
    try:
        builder = _builder(settings)
        result = builder.build()
        builder.state.close()
        assert not result.written and planned == ["all"]  # no full plan: only what every pass looks at
        assert _published(settings.feeds_dir) == before

        page = next(rel for rel in before if "/archive/" in rel and rel.endswith(".atom"))
        (settings.feeds_dir / page).unlink()
        builder = _builder(settings)
        result = builder.build()
        builder.state.close()
        assert result.written == [page]
        assert _published(settings.feeds_dir) == before
    finally:
        OutputPlanner._plan_feed = real  # type: ignore[method-assign]


def test_records_saved_since_the_outputs_were_made_mean_a_full_pass(corpus: Path, tmp_path: Path) -> None:
    """A pass that saved its records and died before publishing leaves the outputs behind
    them: the next start plans everything (and so publishes the change)."""
    seeds = tmp_path / "seeds"
    shutil.copytree(corpus, seeds)
    settings = _settings(seeds, tmp_path)
    first = _builder(settings)
    first.build()
    newest = first.planner.entries("all")[0][1]
    first.state.close()

    _retitle(seeds / newest, "Saved, never published ")
    builder = _builder(settings)
    builder.publisher.publish = _dies  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        builder.build()
    builder.state.close()

    builder = _builder(settings)
    assert not builder.state.outputs_current()
    result = builder.build()
    builder.state.close()
    assert not result.changed_paths  # read before the crash
    assert any(rel.startswith("topics/") for rel in result.written)
    assert _diff(_published(settings.feeds_dir), _cold(settings, tmp_path)) == []


def _dies(*_args: object, **_kwargs: object) -> None:
    raise RuntimeError("killed while publishing")


@pytest.mark.parametrize("scanned", [True, False], ids=["whole-table", "by-path"])
def test_summaries_stay_in_the_state_and_are_read_many_at_once(corpus: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch, scanned: bool) -> None:
    """A loaded post holds no summary: asked for one, it reads it and keeps none; `summaries`
    reads those of many posts in one go (the whole table, or by path in batches), in order,
    and a post deleted since it was loaded has an empty one."""
    from syndicator import model
    from syndicator.store import sqlite

    seeds = tmp_path / "seeds"
    shutil.copytree(corpus, seeds)
    settings = _settings(seeds, tmp_path)
    first = _builder(settings)
    first.build()
    want = {path: r.good.summary for path, r in first.records.items() if r.good is not None}
    first.state.close()
    assert sum(1 for text in want.values() if text) > 40

    monkeypatch.setattr(sqlite, "SUMMARIES_SCANNED", 1 if scanned else 10**6)
    monkeypatch.setattr(sqlite, "LOOKUPS_AT_ONCE", 7)  # several batches of 60
    state = SQLiteStore(settings.state_dir / FILE_NAME, "test")
    try:
        posts = [r.good for r in state.load().values() if r.good is not None]
        assert len(posts) == len(want) and all(isinstance(p, LazyPost) and not p.loaded() for p in posts)
        posts.reverse()  # an order other than the table's
        assert model.summaries(posts) == [want[p.path] for p in posts]
        one = posts[0]
        assert one.summary == want[one.path]
        with pytest.raises(AttributeError):
            object.__getattribute__(one, "summary")  # read, not kept
        assert not one.loaded()
        # rendered: the heavy fields, summary with them, are in memory and asked of no table
        assert one.content_html and one.loaded() and object.__getattribute__(one, "summary") == want[one.path]
        assert model.summaries(posts[:2]) == [want[p.path] for p in posts[:2]]
        # a post deleted since it was loaded (a catalog of the pass before still has it)
        state.save([], [posts[1].path])
        assert model.summaries(posts[1:3]) == ["", want[posts[2].path]]
        rows = dict(state.db.execute("SELECT path, summary FROM summaries"))
        assert rows == {path: text for path, text in want.items() if path != posts[1].path}
    finally:
        state.close()


def test_a_manifest_deleted_by_hand_is_listed_again_by_the_next_start(corpus: Path, tmp_path: Path) -> None:
    """Without its manifest, a start cannot take the outputs as published from the state
    alone: it makes a full pass, which lists every output again (one it did not need to write
    included), so what a later pass no longer produces is still taken down."""
    import json
    seeds = tmp_path / "seeds"
    shutil.copytree(corpus, seeds)
    settings = _settings(seeds, tmp_path)
    manifest = settings.feeds_dir / ".manifest.json"
    first = _builder(settings)
    first.build()
    newest_first = [path for _, path in first.planner.entries("all")]
    first.state.close()
    listed = json.loads(manifest.read_text())["files"]
    manifest.unlink()

    builder = _builder(settings)
    assert builder.build().written == []  # nothing changed: nothing to write, and yet
    assert json.loads(manifest.read_text())["files"] == listed
    (seeds / newest_first[0]).unlink()
    (seeds / newest_first[3]).unlink()
    assert builder.rebuild_paths([str(seeds / newest_first[0]), str(seeds / newest_first[3])]) is not None
    builder.state.close()
    assert _diff(_published(settings.feeds_dir), _cold(settings, tmp_path)) == []


def test_a_load_shares_equal_strings_and_times(corpus: Path, tmp_path: Path) -> None:
    """What 100,000 records say alike is one object in memory, not one each: a news item's id,
    link and its record's id, the path, and equal first-seen and last-change times."""
    settings = _settings(corpus, tmp_path)
    first = _builder(settings)
    first.build()
    first.state.close()
    state = SQLiteStore(settings.state_dir / FILE_NAME, "test")
    try:
        records = list(state.load().values())
    finally:
        state.close()
    news = [r for r in records if r.good is not None and r.good.link == r.good.id]
    assert len(news) > 20
    assert all(r.good.link is r.good.id is r.id and r.good.path is r.path for r in news)
    assert len({id(r.first_seen) for r in records}) == len({r.first_seen for r in records})


def _loaded(builder: Builder) -> dict[int, LazyPost]:
    return {id(r.good): r.good for r in builder.records.values()
            if isinstance(r.good, LazyPost) and r.good.loaded()}


def test_a_service_keeps_what_its_feeds_show_and_lets_the_rest_go(larger: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Edits of archived posts render their archive pages from the state, post after post; of
    what they read only the last few stay in memory, while what the feeds show stays."""
    monkeypatch.setattr(model, "SPARE_LOADED", 4)
    seeds = tmp_path / "seeds"
    shutil.copytree(larger, seeds)
    settings = _settings(seeds, tmp_path, items=2)
    first = _builder(settings)
    first.build()
    newest_first = [path for _, path in first.planner.entries("all")]
    first.state.close()

    builder = _builder(settings, long_lived=True)  # (a service's)
    builder.build()
    _retitle(seeds / newest_first[0], "Newest, edited ")  # the feeds are rendered from the state
    assert builder.rebuild_paths([str(seeds / newest_first[0])]) is not None
    shown = {id(post): post for feed in builder.planner.feeds() for post in feed.posts}
    all_feed = [post for post in builder.planner.feeds()[0].posts if isinstance(post, LazyPost)]
    assert all_feed and all(post.loaded() for post in all_feed)

    ever: set[int] = set()
    for n, rel in enumerate(newest_first[-1:-31:-1]):  # archived posts, oldest first
        _retitle(seeds / rel, f"Archived {n} ")
        assert builder.rebuild_paths([str(seeds / rel)]) is not None
        loaded = _loaded(builder)
        ever |= loaded.keys()
        shown = {id(post): post for feed in builder.planner.feeds() for post in feed.posts}
        assert len(loaded.keys() - shown.keys()) <= 4, n
    assert len(ever - shown.keys()) > 20  # archive pages did read many posts from the state
    assert all(post.loaded() for post in all_feed)  # the feed `all` still shows them, kept
    # the posts read from their files since (the 31 edited) are held as the state's are
    assert all(type(r.good) is LazyPost for r in builder.records.values() if r.good is not None)
    builder.state.close()
    assert _diff(_published(settings.feeds_dir), _cold(settings, tmp_path)) == []


def test_posts_let_go_in_one_thread_read_right_in_others(corpus: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model, "SPARE_LOADED", 1)
    seeds = tmp_path / "seeds"
    shutil.copytree(corpus, seeds)
    settings = _settings(seeds, tmp_path)
    first = _builder(settings)
    first.build()
    want = {r.path: (r.good.title, r.good.content_html, r.good.images, r.good.related)
            for r in first.records.values() if r.good is not None}
    first.state.close()
    store = SQLiteStore(settings.state_dir / FILE_NAME, "test")
    posts = [r.good for r in store.load().values() if r.good is not None]
    assert posts and all(isinstance(p, LazyPost) and not p.loaded() for p in posts)
    wrong: list[str] = []

    def read(seed: int) -> None:
        for i in range(600):
            post = posts[(seed * 7 + i * 13) % len(posts)]
            if (post.title, post.content_html, post.images, post.related) != want[post.path]:
                wrong.append(post.path)

    threads = [threading.Thread(target=read, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    assert wrong == []
    assert sum(1 for p in posts if isinstance(p, LazyPost) and p.loaded()) <= 4  # (one per thread at most)
