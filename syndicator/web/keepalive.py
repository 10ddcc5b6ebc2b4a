"""Keeps waitress's HTTP/1.1 connections open after bodyless answers (304, 204), because feed
readers revalidate many feeds over one keep-alive connection and most answers are 304s.

waitress is imported when the hook is installed, so the app (and its tests) need not load it.
"""

from __future__ import annotations

from typing import Any, cast


def keep_alive_without_body(server: Any) -> Any:
    """Make a waitress server keep HTTP/1.1 connections open after 304 (and 204) answers.

    waitress 3.0 closes the connection after any response without Content-Length, bodyless
    ones included (and drops the Content-Length a 304 may carry), so every revalidation by a
    feed reader polling over keep-alive cost a new TCP connection. A 304 has no body, so no
    framing is needed: keep the connection unless the client asked to close it."""
    # waitress ships no type information: its classes are Any to mypy
    from waitress.channel import HTTPChannel  # type: ignore[import-untyped]
    from waitress.server import BaseWSGIServer  # type: ignore[import-untyped]
    from waitress.task import WSGITask  # type: ignore[import-untyped]

    class Task(WSGITask):  # type: ignore[misc]
        _keep = False

        def build_response_header(self) -> bytes:
            self._keep = (not self.has_body and self.version == "1.1" and not self.close_on_finish
                          and self.request.headers.get("CONNECTION", "").lower() != "close")
            try:
                return cast(bytes, super().build_response_header())
            finally:
                self._keep = False

        def set_close_on_finish(self) -> None:
            if not self._keep:
                super().set_close_on_finish()

    class Channel(HTTPChannel):  # type: ignore[misc]
        task_class = Task

    for dispatcher in [server, *getattr(server, "map", {}).values()]:
        if isinstance(dispatcher, BaseWSGIServer):
            dispatcher.channel_class = Channel
    return server
