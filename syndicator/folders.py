"""Checks of the folders the settings name, before any work: a folder that cannot be made or
written becomes one line naming it (exit 2) instead of a traceback from deep inside a pass
that has already half run, or a service that dies after it started."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from syndicator.errors import FolderError


def writable(path: Path, what: str) -> None:
    """Make `path` (and its parents) if needed and create a file in it; FolderError if either
    fails. `what` names the folder's role ("output", "state")."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise FolderError(f"{what} folder {path} is a file, not a folder") from None
    except OSError as e:
        raise FolderError(f"{what} folder {path} cannot be made: {e.strerror}") from None
    try:  # named like the writer's temp files, so one a kill left behind is swept with them
        fd, probe = tempfile.mkstemp(dir=path, prefix=".write-test-", suffix=".tmp")
    except OSError as e:
        raise FolderError(f"{what} folder {path} is not writable: {e.strerror}") from None
    os.close(fd)
    os.unlink(probe)
