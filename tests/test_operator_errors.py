"""One clear line per operator error: a folder that cannot be made, written or read, a bad
setting, a port in use. The real CLI in a subprocess (without root's power to ignore file
permissions, when the tests run as root): exit 2, exactly one line on stderr naming what and
where, no traceback unless asked for with -v or log_level debug."""

from __future__ import annotations

import ctypes
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import SEEDS

#: prctl(PR_CAPBSET_DROP, cap): CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH let root ignore modes
_CAPBSET_DROP, _DAC_CAPS = 24, (1, 2)


def _without_dac_override() -> None:
    """(In the child, before exec.) Root without these capabilities obeys file modes."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in _DAC_CAPS:
        if libc.prctl(_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run(*args: str, cwd: Path, unprivileged: bool = False,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATOR_")}
    drop = _without_dac_override if unprivileged and os.geteuid() == 0 else None
    return subprocess.run([sys.executable, "-m", "syndicator", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=60, env={**clean, **(env or {})}, preexec_fn=drop)


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    yield tmp_path
    for p in tmp_path.rglob("*"):  # what a case locked, for the clean-up
        if p.is_dir() and not p.is_symlink():
            p.chmod(0o755)


def locked(path: Path, mode: int) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    return path


def busy_port() -> tuple[socket.socket, int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    return s, s.getsockname()[1]


def config_file(text: str) -> Callable[[Path], list[str]]:
    def setup(work: Path) -> list[str]:
        (work / "c.yaml").write_text(text, encoding="utf-8")
        return ["--config", str(work / "c.yaml"), "build"]
    return setup


#: (name, setup(work) -> arguments, what the one line says, run unprivileged)
CASES: list[tuple[str, Callable[[Path], list[str]], str, bool]] = [
    ("unwritable output folder", lambda w: ["build", "--seeds", "seeds", "--out", str(locked(w / "feeds", 0o555))],
     "output folder {w}/feeds is not writable: Permission denied", True),
    ("output folder in a read-only folder",
     lambda w: ["build", "--seeds", "seeds", "--out", str(locked(w / "ro", 0o555) / "feeds")],
     "output folder {w}/ro/feeds cannot be made: Permission denied", True),
    ("output folder is a file", lambda w: ["build", "--seeds", "seeds", "--out", "seeds/000_7e8a7cf94ba4d3cc.txt"],
     "output folder seeds/000_7e8a7cf94ba4d3cc.txt is a file, not a folder", False),
    ("read-only folder inside the output",  # found only while writing: the generic one line
     lambda w: ["build", "--seeds", "seeds", "--out", str(locked(locked(w / "feeds", 0o777) / "topics", 0o555).parent)],
     "{w}/feeds/topics/", True),
    ("read-only state folder", lambda w: ["serve", "--seeds", "seeds", "--out", str(locked(w / "feeds", 0o777)),
                                          "--state", str(locked(w / "var", 0o555))],
     "state folder {w}/var is not writable: Permission denied", True),
    ("missing seeds folder", lambda w: ["build", "--seeds", "nowhere", "--out", "feeds"],
     "seeds folder nowhere does not exist", False),
    ("unreadable seeds folder", lambda w: ["check", "--seeds", str(locked(w / "seeds", 0o000))],
     "seeds folder {w}/seeds cannot be read: Permission denied", True),
    ("config file is a folder", lambda w: ["--config", "seeds", "build"], "config error: seeds: cannot read config",
     False),
    ("config file with a YAML error", config_file("site_title: [x\n"), "config error: {w}/c.yaml:2: invalid YAML",
     False),
    ("misspelt setting", config_file("items_per_fed: 3\n"),
     "unknown setting 'items_per_fed' (did you mean 'items_per_feed'?)", False),
]


@pytest.mark.parametrize("name, setup, says, unprivileged", CASES, ids=[c[0] for c in CASES])
def test_one_line_and_exit_2(work: Path, name: str, setup: Callable[[Path], list[str]], says: str,
                             unprivileged: bool) -> None:
    proc = run(*setup(work), cwd=work, unprivileged=unprivileged)
    assert proc.returncode == 2, proc
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith("syndicator: ") and says.format(w=work) in proc.stderr, proc.stderr


def test_bad_environment_value_is_one_line(work: Path) -> None:
    proc = run("serve", cwd=work, env={"SYNDICATOR_PORT": "eighty"})
    assert proc.returncode == 2
    assert proc.stderr == "syndicator: config error: environment: setting 'port' must be a number, not 'eighty'\n"


def test_port_in_use_is_one_line_before_any_build(work: Path) -> None:
    listener, port = busy_port()
    with listener:
        proc = run("serve", "--seeds", "seeds", "--out", "feeds", "--state", "var", "--port", str(port), cwd=work)
    assert proc.returncode == 2, proc
    assert proc.stderr == f"syndicator: cannot listen on 127.0.0.1:{port}: Address already in use\n"
    assert not (work / "feeds" / "all.rss").exists()  # checked before the first build, not after


@pytest.mark.parametrize("how", [["-v"], ["--log-level", "debug"]], ids=["-v", "log-level debug"])
def test_traceback_only_when_asked(work: Path, how: list[str]) -> None:
    listener, port = busy_port()
    argv = ["serve", "--seeds", "seeds", "--out", "feeds", "--state", "var", "--port", str(port)]
    with listener:
        quiet = run(*argv, cwd=work)
        loud = run(*how, *argv, cwd=work) if how == ["-v"] else run(*argv, *how, cwd=work)
    assert "Traceback" not in quiet.stderr
    assert loud.returncode == 2 and "Traceback" in loud.stderr
    assert loud.stderr.splitlines()[-1] == quiet.stderr.strip()
