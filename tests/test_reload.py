"""SIGHUP reads the settings again: the real `syndicator serve` process, its real settings file
rewritten, real signals."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import feedparser
import yaml

from tests.serverproc import ServerProcess
from tests.test_daemon import get_json, wait_for
from tests.test_firstpass import get, write_posts

CONFIG = {"scan_interval": 0.3, "site_title": "One"}
BASE = {"SYNDICATOR_BASE_URL": "http://feeds.example/"}


def rewrite(srv: ServerProcess, config: dict[str, Any]) -> None:
    (srv.workdir / "syndicator.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")


def hangup(srv: ServerProcess) -> None:
    assert srv.proc is not None
    srv.proc.send_signal(signal.SIGHUP)


def title(srv: ServerProcess) -> str:
    return str(get_json(srv, "/all.json")["title"])


def test_sighup_reloads_the_settings_and_keeps_them_when_they_do_not_load(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, config=CONFIG, env=BASE) as srv:
        assert title(srv).startswith("One") and "errors" in srv.health()
        rewrite(srv, {**CONFIG, "site_title": "Two", "status_networks": ["192.0.2.0/24"]})
        hangup(srv)
        wait_for(lambda: title(srv).startswith("Two"), 10, "the feeds made with the new title")
        assert srv.health() == {"status": "ok"}  # the web app's settings too: no details for us now
        assert "reload: changed site_title, status_networks" in srv.log()

        rewrite(srv, {**CONFIG, "site_titel": "Three"})  # misspelt: it does not load
        hangup(srv)
        wait_for(lambda: "keeping the running settings" in srv.log(), 10, "the reload refused")
        line = next(x for x in srv.log().splitlines() if "keeping the running settings" in x)
        assert "unknown setting 'site_titel'" in line and "did you mean 'site_title'" in line
        assert srv.proc is not None and srv.proc.poll() is None
        assert title(srv).startswith("Two") and srv.health() == {"status": "ok"}

        rewrite(srv, {**CONFIG, "site_title": "Two", "threads": 3, "status_networks": ["127.0.0.1"]})
        hangup(srv)
        wait_for(lambda: "threads changed; that takes a restart" in srv.log(), 10, "threads kept")
        wait_for(lambda: "errors" in srv.health(), 10, "the details back")  # still on the port it had
        assert "Traceback" not in srv.log()
    assert srv.proc.returncode == 0  # SIGTERM as ever; SIGHUP never ended it (exit 129 before)


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(the process's own user + system CPU, its reaped children's), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def test_a_reload_that_reads_every_post_again_makes_that_pass_in_a_child(tmp_path: Path) -> None:
    """A setting that changes what posts are read into (items_per_feed here) makes the next pass
    read every post again. A child process makes it, as a restart's first pass: its CPU is a
    child's, not the service's (whose memory it would otherwise keep), the service answers
    from the files it has meanwhile, and then it only catches up."""
    write_posts(tmp_path / "seeds", 1500)
    config = {"scan_interval": 0.3, "items_per_feed": 10}
    with ServerProcess(tmp_path, seeds=None, config=config, env=BASE, startup_timeout=120) as srv:
        assert srv.proc is not None
        wait_for(lambda: "catch-up: 0 files changed" in srv.log(), 60, "the first pass and its catch-up")
        own, children = cpu_seconds(srv.proc.pid)
        rewrite(srv, {**config, "items_per_feed": 7})
        hangup(srv)
        answers = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and srv.log().count("catch-up: 0 files changed") < 2:
            answers.append(get(srv.url("/topics/t3.atom"))[0])
            time.sleep(0.05)
        feed = feedparser.parse(get(srv.url("/topics/t3.atom"))[2])
        assert not feed.bozo and len(feed.entries) == 7
        own_after, children_after = cpu_seconds(srv.proc.pid)
        log = srv.log()
    assert "reload: 1500 files changed" in log and "catch-up: 1500" not in log, log
    assert log.count("catch-up: 0 files changed") == 2, log
    assert answers and set(answers) == {200}, answers  # served throughout
    # reading 1,500 posts costs over a second of CPU; the catch-up that loads the state, far less
    assert children_after - children > own_after - own, (own_after - own, children_after - children)
    assert "Traceback" not in log
