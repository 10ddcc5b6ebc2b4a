"""Headless Chromium for the tests that look at pages as a person's browser shows them: the
DOM it built (`dump_dom`) and what it painted (`screenshot`). `chromium()` is None when no
Chromium is installed (`.ci/run` installs Debian's)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _command(profile: Path, *args: str) -> list[str]:
    binary = chromium()
    assert binary is not None, "chromium is not installed"
    return [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", f"--user-data-dir={profile}", *args]


def _run(cmd: list[str]) -> bytes:
    out = subprocess.run(cmd, capture_output=True, timeout=90, check=False)
    assert out.returncode == 0, out.stderr.decode(errors="replace")[-2000:]
    return out.stdout


def dump_dom(url: str, profile: Path, *args: str) -> str:
    """The DOM Chromium built for `url` (a navigation, as typing the address), serialised."""
    return _run(_command(profile, *args, "--dump-dom", url)).decode("utf-8")


def screenshot(url: str, profile: Path, png: Path, width: int, height: int, *args: str) -> Path:
    """A PNG of `url` in a `width` x `height` viewport."""
    _run(_command(profile, *args, "--hide-scrollbars", f"--window-size={width},{height}",
                  f"--screenshot={png}", url))
    assert png.stat().st_size > 0
    return png
