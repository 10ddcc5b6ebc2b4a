"""The command line, run as real subprocesses (python -m syndicator and the console script)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import DATA, SEEDS

BAD = DATA / "sites" / "bad-post" / "seeds"
SCRIPT = Path(sys.executable).with_name("syndicator")


def run(*args: str, env: dict[str, str] | None = None, script: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = [str(SCRIPT)] if script else [sys.executable, "-m", "syndicator"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def test_build_summary_and_exit_0(tmp_path: Path) -> None:
    out = run("build", "--seeds", str(SEEDS), "--out", str(tmp_path / "feeds"))
    assert out.returncode == 0, out.stderr
    assert re.search(r"^5 posts read, 4 published, 1 drafts skipped, 0 errors, 0 warnings; 24 feeds "
                     r"\(38 files written, 0 unchanged\) in \d+ ms → ", out.stdout, re.M)
    again = run("build", "--seeds", str(SEEDS), "--out", str(tmp_path / "feeds"))
    assert "(0 files written, 38 unchanged)" in again.stdout


def test_a_repeat_build_reads_only_what_changed(tmp_path: Path) -> None:
    """The state in state_dir remembers each file by size and mtime: a file whose bytes changed
    behind an unchanged fingerprint is not read again; one saved anew is."""
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    args = ("build", "--seeds", str(seeds), "--out", str(tmp_path / "feeds"), "--state", str(tmp_path / "state"))
    assert run(*args).returncode == 0
    assert (tmp_path / "state" / "state.sqlite3").exists()
    post = next(p for p in sorted(seeds.iterdir()) if "\ntitle: " in p.read_text())
    text = post.read_text()
    title = re.search(r"^title: *(.+)$", text, re.M)
    assert title is not None
    stat = post.stat()
    post.write_text(text.replace(title.group(1), "X" * len(title.group(1)), 1))
    os.utime(post, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    again = run(*args)
    assert "(0 files written, 38 unchanged)" in again.stdout, again.stdout
    os.utime(post, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    edited = run(*args)
    assert edited.returncode == 0 and "0 files written" not in edited.stdout
    assert "X" * len(title.group(1)) in (tmp_path / "feeds" / "all.atom").read_text()
    fresh = run("build", "--seeds", str(seeds), "--out", str(tmp_path / "feeds2"), "--state", str(tmp_path / "s2"))
    assert "X" * len(title.group(1)) in (tmp_path / "feeds2" / "all.atom").read_text(), fresh.stderr


#: what a build with nothing to read or write has no use for: imported on first use instead
#: (together they were ~20 % of an unchanged build of the real site: bench/run.py --real)
NOT_FOR_AN_UNCHANGED_BUILD = ("feedgen", "lxml", "jinja2", "frontmatter", "yaml_rs", "http.client",
                              "multiprocessing", "dateutil")


def test_an_unchanged_build_loads_no_renderer_or_parser(tmp_path: Path) -> None:
    args = ("build", "--seeds", str(SEEDS), "--out", str(tmp_path / "feeds"), "--state", str(tmp_path / "state"))
    first = subprocess.run([sys.executable, "-X", "importtime", "-m", "syndicator", *args],
                           capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    loaded = set(re.findall(r"^import time:.*\|\s*([\w.]+)$", first.stderr, re.M))
    assert {"feedgen", "lxml", "jinja2", "frontmatter"} <= loaded  # what a build with work uses
    again = subprocess.run([sys.executable, "-X", "importtime", "-m", "syndicator", *args],
                           capture_output=True, text=True, timeout=60)
    assert "(0 files written, 38 unchanged)" in again.stdout, again.stdout
    loaded = set(re.findall(r"^import time:.*\|\s*([\w.]+)$", again.stderr, re.M))
    assert loaded, again.stderr  # (the pattern still finds what -X importtime prints)
    assert not loaded & set(NOT_FOR_AN_UNCHANGED_BUILD)


def test_build_refuses_folders_another_process_holds(tmp_path: Path) -> None:
    from syndicator.store.local import lock

    with lock(tmp_path / "state"):
        out = run("build", "--seeds", str(SEEDS), "--out", str(tmp_path / "feeds"), "--state", str(tmp_path / "state"))
    assert out.returncode == 2
    assert re.fullmatch(rf"syndicator: another syndicator \(pid {os.getpid()}\) is already running and holds "
                        rf".+state \(lock .+\); stop it first\n", out.stderr), out.stderr


@pytest.mark.skipif(not SCRIPT.exists(), reason="console script not installed next to this python")
def test_console_script_same_as_module(tmp_path: Path) -> None:
    out = run("build", "--seeds", str(SEEDS), "--out", str(tmp_path / "feeds"), script=True)
    assert out.returncode == 0 and "5 posts read" in out.stdout


def test_bad_post_reported_with_path_and_line(tmp_path: Path) -> None:
    out = run("build", "--seeds", str(BAD), "--out", str(tmp_path / "feeds"))
    assert out.returncode == 0
    assert re.fullmatch(r"bad\.md:\d+: error: invalid YAML: .+\n", out.stderr)
    assert "2 posts read" not in out.stdout and "1 errors" in out.stdout
    strict = run("build", "--strict", "--seeds", str(BAD), "--out", str(tmp_path / "feeds2"))
    assert strict.returncode == 1
    assert json.loads((tmp_path / "feeds2" / "all.json").read_text())["items"][0]["title"] == "Good"


def test_check_exit_codes() -> None:
    bad = run("check", "--seeds", str(BAD))
    assert bad.returncode == 1 and "bad.md:" in bad.stderr
    assert "2 files checked: 1 posts, 1 errors" in bad.stdout
    good = run("check", "--seeds", str(SEEDS))
    assert good.returncode == 0 and "5 files checked: 5 posts, 0 errors, 0 warnings" in good.stdout


def test_unknown_setting_exits_2_with_suggestion(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("items_per_fed: 3\n")
    out = run("build", "--config", str(tmp_path / "bad.yaml"), "--seeds", str(SEEDS), "--out", str(tmp_path / "f"))
    assert out.returncode == 2
    assert "'items_per_fed'" in out.stderr and "did you mean 'items_per_feed'" in out.stderr
    env = run("build", "--seeds", str(SEEDS), "--out", str(tmp_path / "f"), env={"SYNDICATOR_SITE_TITEL": "x"})
    assert env.returncode == 2 and "did you mean 'site_title'" in env.stderr
    assert not (tmp_path / "f").exists()


def test_bad_value_exits_2(tmp_path: Path) -> None:
    out = run("build", "--seeds", str(SEEDS), "--out", str(tmp_path / "f"), env={"SYNDICATOR_ITEMS_PER_FEED": "lots"})
    assert out.returncode == 2 and "items_per_feed" in out.stderr


def test_env_and_flags_override_the_file(tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    (tmp_path / "c.yaml").write_text(f"site_title: From File\nseeds_dir: {tmp_path / 'nowhere'}\n"
                                     f"feeds_dir: {tmp_path / 'file-feeds'}\nitems_per_feed: 3\n")
    out = run("build", "--config", str(tmp_path / "c.yaml"), "--seeds", str(tmp_path / "seeds"),
              env={"SYNDICATOR_SITE_TITLE": "From Env", "SYNDICATOR_FEEDS_DIR": str(tmp_path / "env-feeds")})
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "env-feeds" / "all.json").read_text())
    assert doc["title"] == "From Env · All posts" and len(doc["items"]) == 3
    flag = run("build", "--config", str(tmp_path / "c.yaml"), "--seeds", str(tmp_path / "seeds"),
               "--out", str(tmp_path / "flag-feeds"), env={"SYNDICATOR_FEEDS_DIR": str(tmp_path / "env2")})
    assert flag.returncode == 0, flag.stderr
    assert (tmp_path / "flag-feeds" / "all.json").exists() and not (tmp_path / "env2").exists()


def test_normalize_prints_one_json_object_per_file() -> None:
    files = sorted(SEEDS.glob("*.txt"))
    out = run("normalize", *map(str, files))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == len(files)
    keys = ["id", "title", "link", "summary", "content_html", "published", "updated", "topics", "source",
            "authors", "language", "images", "related", "related_more", "draft", "quality", "heat", "path", "extra"]
    for line in lines:
        assert list(json.loads(line)) == keys
    assert "secured" not in out.stdout


def test_normalize_bad_file_exits_1() -> None:
    out = run("normalize", str(BAD / "bad.md"))
    assert out.returncode == 1 and re.match(r"bad\.md:\d+: error: ", out.stderr)


def test_config_command_prints_every_setting() -> None:
    from syndicator.config import SETTINGS

    out = run("config")
    assert out.returncode == 0
    for setting in SETTINGS:
        assert re.search(rf"^{setting.name}: ", out.stdout, re.M)


def test_large_build_leaves_fast_with_everything_written(tmp_path: Path) -> None:
    """A build of 800+ posts skips the interpreter's teardown: its output, messages, exit codes
    and files must be exactly what a normal exit gives."""
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    template = (SEEDS / next(p.name for p in sorted(SEEDS.iterdir()) if "excerpt:" in p.read_text())).read_text()
    for i in range(820):  # news items: copies of a seed with their own URL and date
        text = re.sub(r"(?m)^webUrl: .*$", f"webUrl: https://news.example/{i}", template)
        text = re.sub(r"(?m)^publishedDateTime: .*$", f"publishedDateTime: 2022-01-01T00:{i // 60:02d}:{i % 60:02d}Z",
                      text)
        (seeds / f"n{i:04d}.md").write_text(text.replace("published: false", "published: true"))
    (seeds / "broken.md").write_text("---\ntitle: [unclosed\n---\nbody\n")
    buffered = {"PYTHONUNBUFFERED": ""}  # what is still in a buffer at exit must come out too
    out = run("build", "--strict", "--seeds", str(seeds), "--out", str(tmp_path / "feeds"), env=buffered)
    assert out.returncode == 1  # --strict with one bad post, after a complete build
    assert re.fullmatch(r"broken\.md:\d+: error: invalid YAML: .+\n", out.stderr)
    assert re.search(r"^820 posts read, 820 published, 0 drafts skipped, 1 errors", out.stdout, re.M)
    manifest = json.loads((tmp_path / "feeds" / ".manifest.json").read_text())["files"]
    assert manifest and all((tmp_path / "feeds" / rel).is_file() for rel in manifest)
    assert len(json.loads((tmp_path / "feeds" / "all.json").read_text())["items"]) == 50
    assert not list((tmp_path / "feeds").rglob(".*.tmp"))
    ok = run("build", "--seeds", str(seeds), "--out", str(tmp_path / "feeds2"), env=buffered)
    assert ok.returncode == 0 and "820 posts read" in ok.stdout
