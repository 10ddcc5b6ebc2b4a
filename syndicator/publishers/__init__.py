"""The Publisher seam: where outputs go once rendered.

The pipeline hands a Publisher what to write (`Output`s, some rendered only when the
publisher asks for their bytes) and what is no longer produced; the publisher makes it
visible to readers as a whole. `directory.DirectoryPublisher` writes a folder (atomic renames,
`.gz` twins, a manifest) that `serve` and nginx read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Output:
    """One output's bytes. Its time (Last-Modified) is the publisher's: when the bytes last
    changed, not a date they show, which may be old, future or unchanged by an edit."""

    data: bytes


@dataclass
class PublishReport:
    #: outputs whose bytes changed, and outputs taken down
    written: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


class Outputs(dict[str, "Output | Callable[[], bytes]"]):
    """Outputs by path, some rendered only when looked up (each time: a publisher looks once),
    so a cold build never holds thousands of rendered pages at once."""

    def later(self, rel: str, render: Callable[[], bytes]) -> None:
        self[rel] = render

    def output(self, rel: str) -> Output:
        value = self[rel]
        return value if isinstance(value, Output) else Output(value())


class Publisher(Protocol):
    """Where outputs go."""

    def exists(self, rel: str) -> bool:
        """Whether `rel` is published now (an output whose digest is unchanged is skipped
        only when it is)."""
        ...

    def listing(self, folder: str) -> set[str]:
        """The names of the files published in `folder` (a path ending in `/`)."""
        ...

    def has_manifest(self) -> bool:
        """Whether an earlier run published here (and finished at least one pass)."""
        ...

    def publish(self, outputs: Outputs, remove: Iterable[str],
                produced: AbstractSet[str] | None = None) -> PublishReport:
        """Write `outputs` (skipping bytes already published) and take down `remove`.
        `produced`: when given, every output this pass produces (written now or already
        current), so anything else published earlier goes too."""
        ...

    def redirects(self) -> dict[str, str]:
        """The persisted map of old feed stems to new ones."""
        ...

    def save_redirects(self, table: Mapping[str, str]) -> None: ...

    def site_record(self) -> dict[str, Any]:
        """What the last pass recorded about the published site (how many posts it publishes,
        the authority its ids are minted with): the memory of a `build`, which has no state."""
        ...

    def save_site_record(self, record: Mapping[str, Any]) -> None: ...
