"""`syndicator serve`: build once, then serve feeds/ with waitress until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Any

from waitress.server import create_server

from syndicator.build import Builder
from syndicator.config import Settings
from syndicator.dates import rfc3339
from syndicator.web import create_app

log = logging.getLogger("syndicator")


def _status(builder: Builder) -> dict[str, Any]:
    last = builder.last
    return {
        "status": "ok" if last and not last.errors else "degraded",
        "last_build": rfc3339(last.built_at) if last and last.built_at else None,
        "posts": last.posts_published if last else 0,
        "feeds": len(last.feeds) * 3 if last else 0,
        "errors": [{"path": p.path, "line": p.line, "message": p.message} for p in (last.errors if last else [])],
    }


def run(settings: Settings) -> int:
    logging.basicConfig(level=settings.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    builder = Builder(settings)
    result = builder.build()
    log.info("built %d posts into %d feeds in %.0f ms", result.posts_published, len(result.feeds) * 3,
             result.duration_ms)
    app = create_app(settings, lambda: _status(builder))
    server = create_server(app, host=settings.host, port=settings.port, threads=settings.threads)
    stop = threading.Event()

    def shutdown(signum: int, _frame: Any) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        stop.set()
        server.close()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    log.info("serving %s on http://%s:%d/", settings.feeds_dir, settings.host, server.effective_port)
    try:
        server.run()
    except (OSError, ValueError):
        if not stop.is_set():
            raise
    return 0
