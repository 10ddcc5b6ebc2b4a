"""The small exception tree every layer raises; each error carries where it happened."""

from __future__ import annotations


class SyndicatorError(Exception):
    """Base of every error Syndicator raises on purpose."""


class ConfigError(SyndicatorError):
    """The settings cannot be used (unknown key, wrong type, bad value)."""


class PostError(SyndicatorError, ValueError):
    """One post cannot be turned into an item; names the file and, where known, the line."""

    def __init__(self, path: str, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.line = line

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


class AlreadyRunning(SyndicatorError):
    """Another service already holds the lock on the same feeds and state."""


class FolderError(SyndicatorError):
    """A folder the settings name cannot be made, written or read."""


class CannotListen(SyndicatorError):
    """`serve` cannot listen on its host and port (in use, or no such address)."""


class StateUnavailable(SyndicatorError):
    """The state database cannot be opened now (locked by another process, read-only, full);
    the file itself is sound, so it is waited for, never set aside."""
