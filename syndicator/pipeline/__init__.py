"""The build pipeline, one stage a module: read → guard → track → collect → plan → render → publish.

`build.Builder` runs the stages; the `build` command and the daemon's every pass call it.
A cold build is the same pass as an incremental one, from an empty memory.
"""

from __future__ import annotations

from syndicator.pipeline.build import Builder, BuildResult, build, pin_ids
from syndicator.pipeline.read import ReadResult, read_one

__all__ = ["BuildResult", "Builder", "ReadResult", "build", "pin_ids", "read_one"]
