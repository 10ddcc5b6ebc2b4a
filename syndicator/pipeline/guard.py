"""Guarding stage: a pass that would take posts off the site because the posts folder is
missing, unreadable or empty, or because many of its posts vanished at once, is held (not
published) until the folder is back or an operator confirms the removal.

To a scan, an unmounted network share, a half-finished sync or a mistyped `--seeds` look
exactly like an author deleting every post, and every subscriber's reader would take the
emptied feeds as "all deleted". So such a pass publishes nothing: the last good feeds stay
served, and the log, /healthz and the exit code say why. The guard runs before tracking, so a
held pass changes nothing remembered either: when the folder comes back, nothing happened.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from syndicator.config import Settings

#: Kinds of hold: the folder cannot be read (which cannot be confirmed: only its return ends
#: the hold), every published post would go, or more than the settings allow.
UNAVAILABLE, EMPTY, REMOVALS = "unavailable", "empty", "removals"
#: Files in the state folder: the hold a service keeps, and an operator's confirmation of it.
HELD_FILE = "held.json"
CONFIRMED_FILE = "confirmed.json"


@dataclass(frozen=True, slots=True)
class Hold:
    """Why a pass publishes nothing; one line that names the folder."""

    kind: str
    reason: str
    #: posts published now, and how many of them the pass would take off the site
    published: int
    removing: int

    @property
    def confirmable(self) -> bool:
        return self.kind != UNAVAILABLE


def folder_problem(seeds_dir: Path) -> str | None:
    """What keeps the posts folder from being read, or None."""
    try:
        with os.scandir(seeds_dir):
            return None
    except FileNotFoundError:
        return f"seeds folder {seeds_dir} does not exist"
    except NotADirectoryError:
        return f"seeds folder {seeds_dir} is not a folder"
    except OSError as e:
        return f"seeds folder {seeds_dir} cannot be read: {e.strerror}"


def gone(published: Collection[str] | int, posts: Collection[str], touched: Collection[str] | None) -> int:
    """How many published posts a scan no longer finds. `published`: their paths, or only how
    many there are (a process's first pass without state: then every post file counts as one
    of them). `touched`: the scan covered only these paths."""
    if isinstance(published, int):
        return max(0, published - len(posts)) if touched is None else 0
    looked_at = published if touched is None else [rel for rel in touched if rel in published]
    return sum(1 for rel in looked_at if rel not in posts)


def assess(settings: Settings, published: int, removing: int, found: int | None) -> Hold | None:
    """The hold a pass needs, if any. `found`: post files in a full scan (None: a partial one)."""
    seeds = settings.seeds_dir
    problem = folder_problem(seeds)
    if problem is not None:
        return Hold(UNAVAILABLE, problem, published, published)
    if published and removing >= published:  # what an unmounted share looks like
        reason = (f"seeds folder {seeds} is empty but {published} posts are published" if found == 0
                  else f"all {published} published posts are gone from seeds folder {seeds}")
        return Hold(EMPTY, reason, published, published)
    share, least = settings.hold_removals_share, settings.hold_removals_min
    if removing > least and removing > share * published:
        return Hold(REMOVALS, f"{removing} of the {published} published posts are gone from seeds folder {seeds} "
                              f"(more than {share:.0%} and more than {least} at once)", published, removing)
    return None


def advice(hold: Hold, confirm: str) -> str:
    """What an operator can do about a hold; `confirm`: the command that confirms it."""
    if not hold.confirmable:
        return "bring the folder back (or point seeds_dir at it); the last good feeds stay published"
    return f"nothing published; if those posts are meant to go, confirm with `{confirm}`"


class Confirmations:
    """Whether an operator confirmed a hold. The `confirm_removals` setting confirms the first
    pass of a process (`build --confirm-removals`). With a state folder (the service), every
    pass also looks for the file `syndicator confirm` leaves there, so a confirmation reaches a
    running service, and the service leaves the hold it keeps there for that command."""

    def __init__(self, settings: Settings, state_dir: Path | None = None) -> None:
        self._first_pass = settings.confirm_removals
        self._dir = state_dir

    def accepts(self, hold: Hold) -> bool:
        if not hold.confirmable:
            return False
        if self._first_pass:
            return True
        confirmed = _load(self._dir / CONFIRMED_FILE) if self._dir is not None else None
        # a confirmation covers what it was shown: if more posts vanished since, hold again
        return confirmed is not None and hold.removing <= confirmed.get("removing", -1)

    def passed(self, hold: Hold | None) -> None:
        """After a pass: the hold it kept (or None: it published, which uses a confirmation up)."""
        self._first_pass = False
        if self._dir is None:
            return
        if hold is None:
            for name in (HELD_FILE, CONFIRMED_FILE):
                (self._dir / name).unlink(missing_ok=True)
        elif _load(self._dir / HELD_FILE) != asdict(hold):
            _save(self._dir / HELD_FILE, asdict(hold))


def confirm(state_dir: Path) -> Hold | None:
    """`syndicator confirm`: confirm the hold the service keeps with this state folder; the hold,
    or None when there is none."""
    held = _load(state_dir / HELD_FILE)
    if held is None:
        return None
    hold = Hold(**held)
    if hold.confirmable:
        _save(state_dir / CONFIRMED_FILE, held)
    return hold


def _load(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    fields = {"kind", "reason", "published", "removing"}
    return data if isinstance(data, dict) and set(data) == fields else None


def _save(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
