"""The guard of the published site, end to end: a missing, unreadable or suddenly empty posts
folder, or a pass that takes most posts off at once, publishes nothing until the folder is back
or an operator confirms. Real `syndicator serve` and `syndicator build|check|confirm` processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import SEEDS
from tests.serverproc import ServerProcess
from tests.test_daemon import feed_files, get_json, wait_for

CONFIG = {"scan_interval": 0.3}
#: the same links whatever port each ServerProcess picks
BASE = {"SYNDICATOR_BASE_URL": "http://feeds.example/"}
POST = "---\ntitle: Post {i}\ndate: 2024-03-{day:02d} 10:00\ntags: [guard]\n---\n\nBody {i}.\n"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATOR_")}
    return subprocess.run([sys.executable, "-m", "syndicator", *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd, env=env)


def healthz(srv: ServerProcess) -> dict[str, object]:
    return srv.health()


def held(srv: ServerProcess, words: str) -> dict[str, object] | None:
    doc = healthz(srv)
    return doc if doc["status"] == "degraded" and words in str(doc.get("reason")) else None


def test_serve_keeps_the_last_good_feeds_while_the_folder_is_missing(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path, config=CONFIG, env=BASE)
    with srv:
        assert healthz(srv)["posts"] == 4
    before = feed_files(srv.feeds_dir)
    srv.seeds_dir.rename(tmp_path / "seeds.away")  # e.g. a share not mounted yet at boot

    again = ServerProcess(tmp_path, seeds=None, config=CONFIG, env=BASE)
    again.seeds_dir.rmdir()  # (made by ServerProcess)
    with again:
        doc = healthz(again)
        assert doc["status"] == "degraded" and doc["posts"] == 4 and doc["feeds"] == 24
        assert f"seeds folder {again.seeds_dir} does not exist" in str(doc["reason"])
        assert len(get_json(again, "/all.json")["items"]) == 4
        assert feed_files(again.feeds_dir) == before  # not a byte, not an mtime

        (tmp_path / "seeds.away").rename(again.seeds_dir)  # mounted
        wait_for(lambda: healthz(again)["status"] == "ok", 10, "the folder back")
        assert feed_files(again.feeds_dir) == before


def test_serve_holds_an_emptied_folder_and_mass_removals_until_confirmed(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    # each removal below is one rename of a folder, so the watcher sees it whole: files renamed one
    # by one could be seen a few at a time, each pass under the hold's threshold
    batches = {"few": range(2), "most": range(2, 9), "rest": range(9, 12)}
    for batch, numbers in batches.items():
        (seeds / batch).mkdir()
        for i in numbers:
            (seeds / batch / f"p{i:02d}.md").write_text(POST.format(i=i, day=i + 1), encoding="utf-8")
    aside = tmp_path / "aside"
    aside.mkdir()

    def remove(batch: str) -> None:
        (seeds / batch).rename(aside / batch)

    srv = ServerProcess(tmp_path, seeds=None, config=CONFIG, env=BASE)
    with srv:
        assert healthz(srv)["posts"] == 12
        remove("few")  # a few: published at once
        wait_for(lambda: healthz(srv)["posts"] == 10, 10, "two posts gone")
        before = feed_files(srv.feeds_dir)

        remove("most")  # 7 of 10: more than half and more than 5
        doc = wait_for(lambda: held(srv, "7 of the 10 published posts are gone"), 10, "the hold")
        assert str(seeds) in str(doc["reason"]) and doc["posts"] == 10
        assert len(get_json(srv, "/all.json")["items"]) == 10
    assert "held" in srv.log() and "syndicator confirm" in srv.log()
    assert feed_files(srv.feeds_dir) == before

    with ServerProcess(tmp_path, seeds=None, config=CONFIG, env=BASE) as again:  # a restart holds it still
        assert held(again, "7 of the 10 published posts are gone")
        assert feed_files(again.feeds_dir) == before
        ok = cli("confirm", "--state", str(again.state_dir), cwd=tmp_path)
        assert ok.returncode == 0 and ok.stdout.startswith("confirmed: 7 of the 10"), ok
        wait_for(lambda: healthz(again)["status"] == "ok", 10, "the confirmed pass")
        assert healthz(again)["posts"] == 3 and len(get_json(again, "/all.json")["items"]) == 3
        assert cli("confirm", "--state", str(again.state_dir), cwd=tmp_path).returncode == 1  # used up

        published = feed_files(again.feeds_dir)
        remove("rest")  # an unmounted share: an empty folder
        doc = wait_for(lambda: held(again, str(seeds)), 10, "the hold")
        reason = str(doc["reason"])
        assert "is empty but 3 posts are published" in reason or "all 3 published posts are gone" in reason
        (aside / "rest").rename(seeds / "rest")  # mounted again
        wait_for(lambda: healthz(again)["status"] == "ok", 10, "the folder back")
        assert feed_files(again.feeds_dir) == published


def test_build_and_check_stop_with_one_line_naming_the_folder(tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    missing = cli("check", "--seeds", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr == f"syndicator: seeds folder {tmp_path / 'nowhere'} does not exist\n"
    built = cli("build", "--seeds", "seeds", "--out", "feeds", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    before = feed_files(tmp_path / "feeds")

    gone = cli("build", "--seeds", "nowhere", "--out", "feeds", cwd=tmp_path)
    assert gone.returncode == 2 and len(gone.stderr.splitlines()) == 1
    assert gone.stderr.startswith("syndicator: seeds folder nowhere does not exist")
    (tmp_path / "empty").mkdir()
    for command in ("build", "check"):
        out = ["--out", "feeds"] if command == "build" else []
        empty = cli(command, "--seeds", "empty", *out, cwd=tmp_path)
        assert empty.returncode == 2, empty
        assert empty.stderr.startswith("syndicator: seeds folder empty is empty but 4 posts are published")
        assert len(empty.stderr.splitlines()) == 1
    assert feed_files(tmp_path / "feeds") == before

    confirmed = cli("build", "--seeds", "empty", "--out", "feeds", "--confirm-removals", cwd=tmp_path)
    assert confirmed.returncode == 0 and "0 posts read" in confirmed.stdout
    again = cli("build", "--seeds", "empty", "--out", "feeds", cwd=tmp_path)  # an empty site stays empty
    assert again.returncode == 0, again.stderr
