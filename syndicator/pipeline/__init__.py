"""The build pipeline, one stage a module: read → guard → track → collect → plan → render → publish.

`build.Builder` runs the stages; the `build` command and the daemon's every pass call it
(`build.build`: one pass from scratch).
A cold build is the same pass as an incremental one, from an empty memory.

The names below are loaded on first use: the web app needs `pipeline.catalog` alone, and a
service starting on a fresh folder should be listening before the whole pipeline is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from syndicator.pipeline.build import Builder, BuildResult, pin_ids, preload
    from syndicator.pipeline.read import ReadResult, read_one

_HOMES = {"Builder": "build", "BuildResult": "build", "pin_ids": "build", "preload": "build",
          "ReadResult": "read", "read_one": "read"}

__all__ = ["BuildResult", "Builder", "ReadResult", "pin_ids", "preload", "read_one"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
