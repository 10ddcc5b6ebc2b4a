"""Serves feeds/ over HTTP with the URL layout it has on disk (the one package that imports
Flask), so `syndicator serve` answers as nginx does in front of the same tree.

- `app`: the Flask app factory and its blueprint: files, 301s for old feed URLs, 404, 405,
  /healthz;
- `files`: the published files with their ETags and gzip bytes, cached by stat (bounded);
- `conditional`: encoding choice, 304s (If-None-Match, If-Modified-Since) and If-Range;
- `ranges`: byte ranges (206, multipart, 416) as nginx answers them.

The HTTP server in front of it is `syndicator/server.py`.
"""

from syndicator.web.app import create_app, files_cached, reconfigure

__all__ = ["create_app", "files_cached", "reconfigure"]
