"""The Flask app that serves feeds/ with the same URL layout as on disk."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Flask, abort, jsonify, send_from_directory

from syndicator.config import Settings


def create_app(settings: Settings, status: Callable[[], dict[str, Any]] | None = None) -> Flask:
    """`status` returns the /healthz document (the daemon passes its own)."""
    app = Flask("syndicator")
    root = Path(settings.feeds_dir).resolve()

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(status() if status else {"status": "ok"})

    @app.get("/")
    def index() -> Any:
        return send_from_directory(root, "index.html")

    @app.get("/<path:rel>")
    def files(rel: str) -> Any:
        if rel.startswith(".") or rel.endswith(".gz"):
            abort(404)
        return send_from_directory(root, rel)

    return app
