"""durable_writes: a real `syndicator build` under strace, which records every fsync, syncfs
and rename it makes; each file it publishes is synced before its rename (by an fsync of its
temp file, or a syncfs of the file system after the temp file was made), and each folder after
the last rename into it, before the command reports the pass."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, SEEDS
from tests.serverproc import free_port

pytestmark = pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")

CALL = re.compile(r'^\d+\s+(fsync|syncfs|openat|rename|renameat2?)\((?:-?\d+<([^>]*)>|(?:AT_FDCWD(?:<[^>]*>)?, )?"([^"]*)")'
                  r'(?:, (?:AT_FDCWD(?:<[^>]*>)?, )?"([^"]*)")?')


STRACE = ["strace", "-f", "-y", "-qq", "-e", "trace=fsync,syncfs,openat,rename,renameat,renameat2"]


def _env(durable: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATOR_")}
    env["SYNDICATOR_DURABLE_WRITES"] = "true" if durable else "false"
    return env


def traced_build(tmp_path: Path, durable: bool) -> tuple[Path, list[tuple[str, str, str]]]:
    seeds, out, trace = tmp_path / "seeds", tmp_path / "feeds", tmp_path / "trace.txt"
    shutil.copytree(SEEDS, seeds)
    subprocess.run([*STRACE, "-o", str(trace), sys.executable, "-m", "syndicator", "build", "--seeds", str(seeds),
                    "--out", str(out), "--state", str(tmp_path / "var")],
                   check=True, cwd=tmp_path, env=_env(durable), capture_output=True)
    return out, _calls(trace)


#: strace's second half of a call another process's call interrupted in the trace
RESUMED = re.compile(r"\s*<\.\.\. \w+ resumed>(.*)")


def _calls(trace: Path) -> list[tuple[str, str, str]]:
    """The calls in the order they returned (a call split by another process's is joined)."""
    calls, unfinished = [], {}
    for line in trace.read_text().splitlines():
        pid, _, rest = line.partition(" ")
        if line.endswith("<unfinished ...>"):
            unfinished[pid] = line[: -len("<unfinished ...>")]
            continue
        resumed = RESUMED.match(rest)
        if resumed and pid in unfinished:
            line = unfinished.pop(pid) + resumed.group(1)
        m = CALL.match(line)
        if m and ("= 0" in line or m.group(1) == "openat" and "O_CREAT" in line and " = -1" not in line):
            calls.append((m.group(1), m.group(2) or m.group(3), m.group(4) or ""))
    return calls


def test_each_file_is_synced_before_its_rename_and_each_folder_before_the_end(tmp_path: Path) -> None:
    out, calls = traced_build(tmp_path, durable=True)
    assert_synced(tmp_path, out, calls)


def test_a_cold_build_of_hundreds_of_files_syncs_them_in_a_process_of_their_own(tmp_path: Path) -> None:
    """Hundreds of outputs (a cold build of a real-sized folder): the writers hand their temp
    files to a process that syncs and renames them (publishers.directory.Committer), so they
    do not wait for the disk; each file is still synced before its rename, and each folder
    after the last rename into it."""
    seeds, out, trace = tmp_path / "seeds", tmp_path / "feeds", tmp_path / "trace.txt"
    subprocess.run([sys.executable, str(ROOT / "bench" / "gen_corpus.py"), "-n", "700", "-o", str(seeds)],
                   check=True, capture_output=True)
    subprocess.run([*STRACE, "-o", str(trace), sys.executable, "-m", "syndicator", "build", "--seeds", str(seeds),
                    "--out", str(out), "--state", str(tmp_path / "var")],
                   check=True, cwd=tmp_path, env=_env(True), capture_output=True)
    calls = _calls(trace)
    assert sum(1 for call, _, _ in calls if call.startswith("rename")) > 400
    assert_synced(tmp_path, out, calls)
    # the published files (not the dotfiles: manifest, site record) are renamed into place by
    # another process than the two that wrote them
    made_by, renamed_by = set(), set()
    for line in trace.read_text().splitlines():
        pid, _, rest = line.partition(" ")
        rest = rest.lstrip()  # (strace pads the pid to five places)
        output_tmp = re.search(r'/\.[^./][^/"]*\.tmp"', rest)  # .<name>.<pid>.tmp of a name not a dotfile
        if output_tmp and rest.startswith("openat(") and "O_CREAT" in rest and " = -1" not in rest:
            made_by.add(pid)
        elif output_tmp and rest.startswith("rename"):
            renamed_by.add(pid)
    assert len(made_by) == 2 and len(renamed_by) == 1 and not made_by & renamed_by


def test_a_service_first_pass_is_as_durable(tmp_path: Path) -> None:
    """`serve` on a fresh folder makes its first pass in a child process: its files too are on
    the disk before /healthz says the service is up (and the service's first save then does
    not wait for the file system to flush them: 0.9 s instead of 0.2 s at 10,000 posts)."""
    seeds, out, trace = tmp_path / "seeds", tmp_path / "feeds", tmp_path / "trace.txt"
    shutil.copytree(SEEDS, seeds)
    port = free_port()
    tracer = subprocess.Popen([*STRACE, "-o", str(trace), sys.executable, "-m", "syndicator", "serve",
                               "--seeds", str(seeds), "--out", str(out), "--state", str(tmp_path / "var"),
                               "--host", "127.0.0.1", "--port", str(port)],
                              cwd=tmp_path, env=_env(True), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not _up(port):
            assert time.monotonic() < deadline and tracer.poll() is None, "the service did not come up"
            time.sleep(0.1)
    finally:
        service = Path(f"/proc/{tracer.pid}/task/{tracer.pid}/children").read_text().split()
        for pid in service:
            os.kill(int(pid), signal.SIGTERM)
        tracer.wait(30)
    assert_synced(tmp_path, out, _calls(trace))


def _up(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def assert_synced(tmp_path: Path, out: Path, calls: list[tuple[str, str, str]]) -> None:
    root = str(out.resolve())
    published = [p for p in out.rglob("*") if p.is_file() and not p.name.endswith(".lock")]
    assert len(published) > 30
    synced_at = {path: i for i, (call, path, _) in enumerate(calls) if call == "fsync"}
    whole_syncs = [i for i, (call, path, _) in enumerate(calls) if call == "syncfs" and path.startswith(root)]
    made_at = {os.path.abspath(os.path.join(tmp_path, path)): i for i, (call, path, _) in enumerate(calls)
               if call == "openat"}
    renamed_at = {os.path.abspath(os.path.join(tmp_path, dest)): (i, os.path.abspath(os.path.join(tmp_path, src)))
                  for i, (call, src, dest) in enumerate(calls) if call.startswith("rename")}
    for path in published:
        i, tmp = renamed_at[str(path.resolve())]
        made = made_at[tmp]
        assert made < synced_at.get(tmp, -1) < i or any(made < j < i for j in whole_syncs), \
            f"{path} renamed before its bytes were synced"
        folder = str(path.parent.resolve())
        assert synced_at.get(folder, -1) > i, f"{folder} not synced after {path.name} was renamed into it"
    assert root in synced_at


def test_without_durable_writes_nothing_is_synced(tmp_path: Path) -> None:
    out, calls = traced_build(tmp_path, durable=False)
    root = str(out.resolve())
    assert any(call.startswith("rename") for call, _, _ in calls)  # (the trace works)
    assert not [path for call, path, _ in calls if call == "fsync" and path.startswith(root)]
