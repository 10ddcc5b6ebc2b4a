"""The daemon heals without a restart, and /healthz says how it is: real `syndicator serve`
processes, a disk that fills up (a file-size limit on the process, lifted while it runs), a
second process holding the state database, a damaged database, kill -9 during a cold build."""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from syndicator import heal
from syndicator.web import clients
from tests.serverproc import ServerProcess, free_port
from tests.test_daemon import get_json, wait_for

CONFIG = {"scan_interval": 0.3}
BASE = {"SYNDICATOR_BASE_URL": "http://feeds.example/"}
BROKEN = "---\ntitle: [unclosed\ndate: 2024-03-01 10:00\n---\n\nBody.\n"
BIG = "---\ntitle: A long read\ndate: 2024-03-02 10:00\ntags: [heal]\n---\n\n{body}\n"


# -- /healthz: codes and who sees the details ---------------------------------------------------

def test_healthz_is_503_until_ok_and_shows_details_to_status_networks_only(tmp_path: Path) -> None:
    srv = ServerProcess(tmp_path, config=CONFIG, env=BASE)
    (srv.seeds_dir / "zz_broken.md").write_text(BROKEN, encoding="utf-8")
    with srv:
        doc = srv.health()  # checks 503 + Retry-After for anything but ok
        assert doc["status"] == "degraded" and any(e["path"] == "zz_broken.md" for e in doc["errors"])
        # through a proxy on this machine (trusted by default): the client named in X-Forwarded-For
        # is not in status_networks, so it gets the status alone
        status, h, body = srv.request("GET", "/healthz", {"X-Forwarded-For": "127.0.0.1, 203.0.113.9"})
        assert status == 503 and h["Retry-After"].isdigit()
        assert body.strip() == b'{\n "status": "degraded"\n}'
        assert b"zz_broken" not in body
        (srv.seeds_dir / "zz_broken.md").unlink()
        wait_for(lambda: srv.health()["status"] == "ok", 10, "ok again")
        status, h, body = srv.request("GET", "/healthz")
        assert status == 200 and "Retry-After" not in h


def test_status_networks_and_trusted_proxies_are_settings(tmp_path: Path) -> None:
    config = {**CONFIG, "status_networks": ["192.0.2.0/24"], "trusted_proxies": ["10.0.0.0/8"]}
    with ServerProcess(tmp_path, config=config, env=BASE) as srv:
        assert srv.health() == {"status": "ok"}  # 127.0.0.1 is not in status_networks
        # loopback is no trusted proxy here: what it says in X-Forwarded-For is ignored
        assert srv.health({"X-Forwarded-For": "192.0.2.7"}) == {"status": "ok"}


def test_client_address_takes_forwarded_for_only_from_trusted_proxies() -> None:
    trusted = clients.networks(["127.0.0.0/8", "::1"])
    assert clients.client("127.0.0.1", "198.51.100.1", trusted) == "198.51.100.1"
    # a client's own X-Forwarded-For comes first; the proxy appends the address it saw
    assert clients.client("127.0.0.1", "127.0.0.1, 198.51.100.1", trusted) == "198.51.100.1"
    assert clients.client("198.51.100.1", "127.0.0.1", trusted) == "198.51.100.1"
    assert clients.client("::ffff:127.0.0.1", "2001:db8::1", trusted) == "2001:db8::1"
    assert clients.client("127.0.0.1", None, trusted) == "127.0.0.1"
    assert not clients.within(clients.parse("not an address"), trusted)


def test_backoff_doubles_to_a_minute_and_resets() -> None:
    now = [0.0]
    backoff = heal.Backoff(clock=lambda: now[0])
    assert [backoff.failed() for _ in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert not backoff.due()
    now[0] = 60.0
    assert backoff.due()
    backoff.succeeded()
    assert backoff.failed() == 1


# -- a full disk during a restart ----------------------------------------------------------------

class Limited(ServerProcess):
    """`serve` under a soft file-size limit (writes past it fail with EFBIG, as on a full disk),
    which the test lifts while it runs."""

    fsize = 64 * 1024

    def command(self) -> list[str]:
        return ["prlimit", f"--fsize={self.fsize}:unlimited", "--", *super().command()]

    def lift(self) -> None:
        assert self.proc is not None
        resource.prlimit(self.proc.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


def test_a_full_disk_during_a_restart_is_retried_and_heals(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, config=CONFIG, env=BASE) as srv:
        assert srv.health()["posts"] == 4
    # while it was down a long post came: the catch-up pass cannot write it (nor its state)
    (srv.seeds_dir / "long.md").write_text(BIG.format(body="A long paragraph. " * 8000), encoding="utf-8")
    again = Limited(tmp_path, seeds=None, config=CONFIG, env=BASE)
    with again:
        doc = wait_for(lambda: (d := again.health())["status"] == "degraded" and d, 20, "the failing pass")
        assert "File too large" in doc["reason"] or "disk" in doc["reason"], doc
        assert len(get_json(again, "/all.json")["items"]) == 4  # the last good feeds, still served
        time.sleep(3)  # a few retries (1 s, 2 s): one log line for them all, and the process lives
        assert again.proc is not None and again.proc.poll() is None
        assert again.log().count("rebuild failed") == 1, again.log()
        again.lift()  # space is back
        wait_for(lambda: again.health()["status"] == "ok", 20, "the service healed")
        assert "A long read" in [i["title"] for i in get_json(again, "/all.json")["items"]]
        assert "rebuild works again" in again.log()
        assert "Traceback" not in again.log()


# -- the state database: locked is waited for, damaged is set aside --------------------------------

HOLD = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("COMMIT")
"""


def test_a_locked_state_database_is_waited_for_not_set_aside(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, config=CONFIG, env=BASE) as srv:
        first = {i["id"]: i["date_modified"] for i in get_json(srv, "/all.json")["items"]}
    db = srv.state_dir / "state.sqlite3"
    # a backup or a second tool holds the database for 12 s: well past SQLite's busy timeout (5 s)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db), "12"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        again = ServerProcess(tmp_path, seeds=None, config=CONFIG, env=BASE, startup_timeout=40)
        with again:
            assert again.health()["status"] == "ok"
            assert {i["id"]: i["date_modified"] for i in get_json(again, "/all.json")["items"]} == first
    finally:
        holder.wait(20)
    assert not (srv.state_dir / "state.sqlite3.corrupt").exists()
    lines = [line for line in again.log().splitlines() if "database is locked" in line]
    assert len(lines) == 1 and "another process holds it" in lines[0], again.log()


def test_a_damaged_state_database_is_set_aside_with_one_line(tmp_path: Path) -> None:
    with ServerProcess(tmp_path, config=CONFIG, env=BASE):
        pass
    db = tmp_path / "var" / "state.sqlite3"
    db.write_bytes(b"this is not a database, it was overwritten by mistake\n" * 100)
    with ServerProcess(tmp_path, seeds=None, config=CONFIG, env=BASE) as again:
        assert again.health()["status"] == "ok" and again.health()["posts"] == 4
    assert (tmp_path / "var" / "state.sqlite3.corrupt").read_bytes().startswith(b"this is not a database")
    assert sqlite3.connect(db).execute("SELECT count(*) FROM posts").fetchone()[0] == 5
    damaged = [line for line in again.log().splitlines() if "is damaged" in line]
    assert len(damaged) == 1 and "Traceback" not in again.log()


# -- kill -9 during a cold build ----------------------------------------------------------------

def _children(pid: int) -> list[int]:
    """Every thread's children: the first pass is started from the service's start-up thread."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the cold build forks a helper only with 2 cores")
def test_kill_9_during_a_cold_build_leaves_no_child_holding_the_lock(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    body = "Some words to read. " * 200
    for i in range(6000):
        (seeds / f"p{i:05}.md").write_text(
            f"---\ntitle: Post {i}\ndate: 2024-01-01 10:00\ntags: [t{i % 40}]\n---\n\n{body}\n", encoding="utf-8")
    srv = ServerProcess(tmp_path, seeds=None, config=CONFIG, env=BASE, startup_timeout=120)
    srv.port = free_port()
    log = open(srv.log_path, "ab")
    srv.proc = subprocess.Popen(srv.command(), cwd=srv.workdir, env=srv.environment(), stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    try:
        child = wait_for(lambda: next(iter(_children(srv.proc.pid)), None), 60, "the forked helper of the cold build")
    finally:
        os.kill(srv.proc.pid, signal.SIGKILL)  # also when no helper was seen: no service left behind
        srv.proc.wait(5)
    wait_for(lambda: not _alive(child), 2, "the helper to end with its parent")
    with ServerProcess(tmp_path, seeds=None, config=CONFIG, env=BASE, startup_timeout=120) as again:
        assert again.health()["posts"] == 6000
