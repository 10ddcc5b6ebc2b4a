"""Serves feeds/ over HTTP with the URL layout it has on disk (the one package that imports
Flask), so `syndicator serve` answers as nginx does in front of the same tree.

- `app`: the Flask app factory and its blueprint: files, 301s for old feed URLs, 404, 405,
  /healthz;
- `files`: the published files with their ETags and gzip bytes, cached by stat;
- `conditional`: encoding choice, 304s (If-None-Match, If-Modified-Since) and If-Range;
- `ranges`: byte ranges (206, multipart, 416) as nginx answers them;
- `keepalive`: waitress keeps connections open after 304s.
"""

from syndicator.web.app import create_app
from syndicator.web.keepalive import keep_alive_without_body

__all__ = ["create_app", "keep_alive_without_body"]
