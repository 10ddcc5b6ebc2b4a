"""Shared fixtures. No test reads the developer's own config or environment."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from flask import Flask
from flask.testing import FlaskClient

from syndicator.config import Settings, load_settings
from syndicator.web import create_app
from tests.serverproc import ServerProcess, nginx_binary, nginx_in_front

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
DATA = Path(__file__).resolve().parent / "data"


#: Content-Type of each published file type, written out here rather than read from
#: syndicator.formats, so a change to the table shows up as a failing test.
TYPES = {
    ".rss": "application/rss+xml; charset=utf-8",
    ".atom": "application/atom+xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".ico": "image/x-icon",
    ".png": "image/png",
}
#: Vary of feed answers: a browser's navigation gets the feed's page (Sec-Fetch-Dest: document).
FEED_VARY = "Accept-Encoding, Sec-Fetch-Dest"
#: Vary of each published file type's answers.
VARY = {ext: FEED_VARY if ext in (".rss", ".atom", ".json") else "Accept-Encoding" for ext in TYPES}
SECRET = b"SECRET-OUTSIDE-FEEDS"


@pytest.fixture(autouse=True)
def _isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in list(os.environ):
        if key.startswith("SYNDICATOR_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no config/syndicator.yaml here


@pytest.fixture
def seeds_dir(tmp_path: Path) -> Path:
    target = tmp_path / "seeds"
    shutil.copytree(SEEDS, target)
    return target


@pytest.fixture
def settings(tmp_path: Path, seeds_dir: Path) -> Settings:
    return load_settings(
        env={},
        overrides={"seeds_dir": seeds_dir, "feeds_dir": tmp_path / "feeds", "state_dir": tmp_path / "var"},
    )


# -- the web app in-process (Flask's test client), on a feeds/ tree built once ----------------------

#: What the web tests publish: seeds/ plus one post that does not parse, with two topic aliases.
BAD_POST = "---\ntitle: [unclosed\npublishedDateTime: 2022-05-25T22:19:00Z\n---\n"
ALIASES = {"MSFT AI": "Microsoft AI", "Azure Cloud": "Azure"}
BASE_URL = "http://localhost/"  # the test client's host, so Locations and feed URLs point back at it


def site_settings(site: Path) -> Settings:
    """Settings for `site`/feeds; an empty config file there, so that no config/syndicator.yaml
    is read (a session fixture runs before `_isolate` has left the working directory)."""
    config = site / "syndicator.yaml"
    if not config.exists():
        config.write_text("{}\n", encoding="utf-8")
    return load_settings(config, env={}, overrides={
        "seeds_dir": site / "seeds", "feeds_dir": site / "feeds", "state_dir": site / "var",
        "base_url": BASE_URL, "topic_aliases": ALIASES, "cache_max_age": 123,
    })


@pytest.fixture(scope="session")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with seeds/ and the feeds/ one build made of it (built once; tests get copies)."""
    from syndicator.pipeline.build import build

    site = tmp_path_factory.mktemp("site")
    shutil.copytree(SEEDS, site / "seeds")
    (site / "seeds" / "zz_bad.txt").write_text(BAD_POST, encoding="utf-8")
    build(site_settings(site))
    return site


@pytest.fixture
def app(tmp_path: Path, built_site: Path) -> Flask:
    """The app over this test's own feeds/ folder: hard links to the built files (same bytes and
    times, a fifth of the time of a copy), so a test may add or remove files but must replace,
    not rewrite, an existing one."""
    site = tmp_path / "site"
    shutil.copytree(built_site / "feeds", site / "feeds", copy_function=os.link)
    app = create_app(site_settings(site))
    app.config.update(TESTING=True)
    return app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# -- the real server and nginx in front of it, for end-to-end modules ---------------------------------

@pytest.fixture(scope="module")
def ngx(srv: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """nginx with contrib/nginx.conf in front of the module's `srv`, as an HTTP client."""
    if nginx_binary() is None:
        pytest.skip("nginx is not installed")
    with nginx_in_front(srv, tmp_path_factory.mktemp("nginx")) as client:
        yield client


@pytest.fixture(params=["serve", "nginx"])
def server(request: pytest.FixtureRequest, srv: ServerProcess) -> ServerProcess:
    """The module's `srv`, then nginx in front of it: a test runs against each."""
    return srv if request.param == "serve" else cast(ServerProcess, request.getfixturevalue("ngx"))
