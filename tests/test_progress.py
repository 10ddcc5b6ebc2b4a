"""Progress of a long build: a line rewritten in place on a terminal (a real pseudo-terminal
here), nothing of it in a pipe, and nothing at all with -q."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def many(tmp_path_factory: pytest.TempPathFactory) -> Path:
    seeds = tmp_path_factory.mktemp("many") / "seeds"
    seeds.mkdir()
    body = "Words to read and render. " * 150
    for i in range(2500):
        (seeds / f"p{i:05}.md").write_text(f"---\ntitle: Post {i}\ndate: 2024-02-01 10:00\ntags: [t{i % 30}]\n---\n\n"
                                           f"{body}\n", encoding="utf-8")
    return seeds


def build(seeds: Path, out: Path, *flags: str, tty: bool, after: tuple[str, ...] = ()) -> str:
    cmd = [sys.executable, "-m", "syndicator", *flags, "build", *after, "--seeds", str(seeds), "--out", str(out / "feeds"),
           "--state", str(out / "var")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNDICATOR_")}
    if not tty:
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=out, timeout=120, check=True)
        return done.stdout + done.stderr
    primary, secondary = os.openpty()
    proc = subprocess.Popen(cmd, stdin=secondary, stdout=secondary, stderr=secondary, env=env, cwd=out)
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(primary)
    assert proc.wait(120) == 0
    return b"".join(chunks).decode(errors="replace")


def test_a_terminal_sees_a_counter_rewritten_in_place(many: Path, tmp_path: Path) -> None:
    text = build(many, tmp_path, tty=True)
    updates = [part for part in text.split("\r") if " of " in part]
    assert updates, text
    assert any(u.startswith(("reading posts: ", "writing files: ")) for u in updates)
    assert "\x1b[K" in text  # each update clears what the longer one before left
    assert text.rstrip().splitlines()[-1].lstrip("\r\x1b[K").startswith("2500 posts read")


def test_a_pipe_gets_the_summary_alone_and_q_not_even_that(many: Path, tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    piped = build(many, tmp_path / "a", tty=False)
    assert "\r" not in piped and piped.strip().startswith("2500 posts read")
    (tmp_path / "b").mkdir()
    assert build(many, tmp_path / "b", "-q", tty=True).strip() == ""
    (tmp_path / "c").mkdir()
    assert build(many, tmp_path / "c", tty=True, after=("-q",)).strip() == ""  # after the command too
