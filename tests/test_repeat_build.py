"""A `build` over a folder that is as the last pass left it (the outputs made from the stored
records, every file at the fingerprint it was read at, every output still published) repeats
that pass's report without loading a record; anything else that a pass would act on makes it a
pass again."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from syndicator.config import Settings, load_settings
from syndicator.pipeline import Builder, BuildResult
from syndicator.publishers.directory import DirectoryPublisher
from syndicator.store.sqlite import FILE_NAME, SQLiteStore

from .conftest import DATA, SEEDS

BAD = DATA / "sites" / "bad-post" / "seeds"


def _settings(tmp_path: Path, seeds: Path) -> Settings:
    return load_settings(env={}, overrides={"seeds_dir": seeds, "feeds_dir": tmp_path / "feeds",
                                            "state_dir": tmp_path / "var"})


def _build(settings: Settings) -> tuple[BuildResult, bool]:
    """One `build` command's pass, in process (a Builder over the state file, once), and
    whether it loaded the records."""
    store = SQLiteStore(settings.state_dir / FILE_NAME, "test")
    try:
        builder = Builder(settings, state=store, publisher=DirectoryPublisher(settings.feeds_dir))
        result = builder.build(once=True)
        loaded = builder.tracker.loaded
        assert result.posts is not None  # listed while the store is open (a repeat's loads the records)
        return result, loaded
    finally:
        store.close()


def _report(result: BuildResult) -> tuple[object, ...]:
    return (result.posts_read, result.posts_published, result.drafts_skipped, result.pages_skipped,
            result.problems, result.feed_count, len(result.written) + result.unchanged,
            [post.path for post in result.posts])


def _copy(src: Path, tmp_path: Path) -> Path:
    seeds = tmp_path / "seeds"
    shutil.copytree(src, seeds)
    return seeds


def test_a_repeat_reports_the_last_pass_and_loads_no_record(tmp_path: Path) -> None:
    seeds = _copy(BAD, tmp_path)
    shutil.copytree(SEEDS, seeds / "more")
    settings = _settings(tmp_path, seeds)
    first, loaded = _build(settings)
    assert loaded and first.written and first.errors
    again, loaded = _build(settings)
    assert not loaded
    assert again.written == [] and again.removed == []
    assert _report(again) == _report(first)
    # a file saved again with the same bytes is looked at (its fingerprint changed), then
    # the folder is as that pass left it
    post = next(seeds.glob("more/*"))
    os.utime(post, ns=(post.stat().st_atime_ns, post.stat().st_mtime_ns + 10**9))
    touched, loaded = _build(settings)
    assert loaded and touched.written == [] and _report(touched) == _report(first)
    third, loaded = _build(settings)
    assert not loaded and _report(third) == _report(first)


@pytest.mark.parametrize("change", ["edit", "delete", "add", "output gone", "folder gone", "manifest gone",
                                    "site record gone", "site config"])
def test_a_repeat_sees_what_a_pass_would_act_on(tmp_path: Path, change: str) -> None:
    seeds = _copy(SEEDS, tmp_path)
    settings = _settings(tmp_path, seeds)
    first, _ = _build(settings)
    post = sorted(seeds.glob("*.txt"))[0]
    feeds = settings.feeds_dir
    if change == "edit":
        post.write_text(post.read_text(encoding="utf-8").replace("title: \"", "title: \"Edited ", 1), encoding="utf-8")
    elif change == "delete":
        post.unlink()
    elif change == "add":
        shutil.copy(post, seeds / "copy-of-a-post.txt")
    elif change == "output gone":
        (feeds / "all.rss").unlink()
    elif change == "folder gone":
        (feeds / "topics").rename(tmp_path / "topics-aside")
    elif change in ("manifest gone", "site record gone"):
        (feeds / (".manifest.json" if change == "manifest gone" else ".site.json")).unlink()
    else:
        (seeds / "_config.yml").write_text("timezone: Asia/Shanghai\n", encoding="utf-8")
    again, loaded = _build(settings)
    assert loaded
    assert again.written or again.removed or again.problems != first.problems \
        or change in ("site config", "manifest gone", "site record gone")
    assert all((feeds / name).exists() for name in ("all.rss", "topics", ".site.json"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "syndicator", *args], capture_output=True, text=True, timeout=60)


def _summary(stdout: str) -> str:
    return re.sub(r"\(\d+ files written, \d+ unchanged\) in \d+ ms", "(…)", stdout)


def test_the_command_repeats_its_report_problems_and_exit_status(tmp_path: Path) -> None:
    seeds = _copy(BAD, tmp_path)
    args = ("build", "--strict", "--seeds", str(seeds), "--out", str(tmp_path / "feeds"),
            "--state", str(tmp_path / "var"))
    first, again = run(*args), run(*args)
    assert first.returncode == again.returncode == 1, (first.stderr, again.stderr)
    assert again.stderr == first.stderr and re.search(r"bad\.md:\d+: error: ", again.stderr)
    assert _summary(again.stdout) == _summary(first.stdout)
    written = int(re.search(r"\((\d+) files written, 0 unchanged\)", first.stdout)[1])
    assert f"(0 files written, {written} unchanged)" in again.stdout
    # a name that is not UTF-8 is a problem a pass reports: the folder is no longer as it was
    (seeds / os.fsdecode(b"caf\xe9.md")).write_bytes(b"---\ntitle: x\n---\n")
    named = run(*args)
    assert "caf\\xe9.md: error: file name is not UTF-8" in named.stderr, named.stderr
    assert named.stderr.count("\n") == first.stderr.count("\n") + 1
    # other settings for the same folders: a pass (base_url is in every feed)
    moved = run(*args, "--base-url", "https://elsewhere.example/")
    assert not re.search(r"\(0 files written", moved.stdout), moved.stdout
    assert "https://elsewhere.example/" in json.loads((tmp_path / "feeds" / "all.json").read_text())["feed_url"]
