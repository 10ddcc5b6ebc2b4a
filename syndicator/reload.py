"""SIGHUP: the settings read again, as at start (file, environment, the command line's flags),
and taken on by the running service, or kept as they were when they do not load."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import fields, replace

from syndicator.config import Settings, listening_url
from syndicator.errors import ConfigError

log = logging.getLogger("syndicator")

#: Settings a running service cannot take on: its socket and threads, its locked folders and
#: database, the hub, custom-feed and answer-replay machinery made at start, and the one-run
#: confirmation.
AT_RESTART = (
    "host", "port", "threads", "seeds_dir", "feeds_dir", "state_dir", "state_url", "role", "confirm_removals",
    "websub_hubs", "websub_lease_seconds", "websub_max_subscribers", "websub_max_per_host", "websub_allow_networks",
    "custom_feeds", "custom_cache_entries", "custom_cache_mb", "file_cache_mb",
)


def reread(load: Callable[[], Settings], running: Settings,
           check: Callable[[Settings], None] | None = None) -> Settings | None:
    """The settings to run with from now on; None (and one error line) when they do not load or
    `check` refuses them. Those in AT_RESTART keep their running values, with one warning."""
    try:
        fresh = load()
        if check is not None:
            check(fresh)
    except ConfigError as e:
        log.error("reload: %s; keeping the running settings", e, extra={"fields": {"event": "reload-failed"}})
        return None
    kept = {name: getattr(running, name) for name in AT_RESTART if getattr(fresh, name) != getattr(running, name)}
    if kept:
        log.warning("reload: %s changed; that takes a restart, running with the old value until then",
                    ", ".join(kept), extra={"fields": {"event": "reload", "at_restart": list(kept)}})
        if fresh.base_url == listening_url(fresh.host, fresh.port):  # derived from where it listens
            kept["base_url"] = listening_url(running.host, running.port)
        fresh = replace(fresh, **kept)
    changed = [f.name for f in fields(fresh) if getattr(fresh, f.name) != getattr(running, f.name)]
    log.info("reload: %s; rescanning", f"changed {', '.join(changed)}" if changed else "no setting changed",
             extra={"fields": {"event": "reload", "changed": changed}})
    return fresh

