"""SIGHUP reads the settings again: the real `syndicator serve` process, its real settings file
rewritten, real signals."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import yaml

from tests.serverproc import ServerProcess
from tests.test_daemon import get_json, wait_for

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
