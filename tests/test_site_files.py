"""The files a site has beside its feeds: /favicon.ico (a real icon: no 404 for the browsers and
readers that ask every site for it), the feeds' icon.png that every feed names, robots.txt that
lets everyone fetch the feeds, and the settings that replace the built-in icons."""

from __future__ import annotations

import struct
import subprocess
import sys
import urllib.robotparser
import zlib
from pathlib import Path

import feedparser
import orjson
import pytest
from flask.testing import FlaskClient

from syndicator import icons
from syndicator.config import Settings, load_settings
from syndicator.errors import ConfigError
from syndicator.pipeline.build import build
from tests.conftest import BASE_URL, TYPES

TEMPLATES = Path(icons.__file__).parent / "templates"


def decode_png(data: bytes) -> tuple[int, int, bytes]:
    """(width, height, RGBA rows with their filter bytes) of an 8-bit RGBA PNG, every chunk's
    CRC checked."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0] == zlib.crc32(kind + body)
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + length
    assert pos == len(data) and b"IEND" in chunks
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 6)
    rows = zlib.decompress(chunks[b"IDAT"])
    assert len(rows) == height * (1 + 4 * width)
    return width, height, rows


def decode_ico(data: bytes) -> list[tuple[int, bytes]]:
    """(size, PNG bytes) of each image of an ICO file."""
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    assert (reserved, kind) == (0, 1) and count > 0
    images = []
    for i in range(count):
        w, h, _, _, planes, bpp, size, offset = struct.unpack("<BBBBHHII", data[6 + 16 * i:22 + 16 * i])
        assert w == h and planes == 1 and bpp == 32
        images.append((w or 256, data[offset:offset + size]))
    return images


def test_shipped_icons_are_what_icons_draws() -> None:
    """The package's icon files are a cache of the drawing: `python -m syndicator.icons`."""
    assert (TEMPLATES / "icon.png").read_bytes() == icons.png()
    assert (TEMPLATES / "favicon.ico").read_bytes() == icons.favicon()


def test_icon_is_the_feed_symbol() -> None:
    width, height, rows = decode_png(icons.png())
    assert (width, height) == (icons.ICON_SIZE, icons.ICON_SIZE)
    stride = 1 + 4 * width

    def pixel(x: int, y: int) -> tuple[int, ...]:
        return tuple(rows[y * stride + 1 + 4 * x:y * stride + 5 + 4 * x])

    assert pixel(0, 0)[3] == 0                                   # a rounded corner: transparent
    assert pixel(width // 2, 8) == (*icons.ORANGE, 255)          # the square
    dot = (int(0.2 * width), int(0.8 * height))
    assert pixel(*dot) == (255, 255, 255, 255)                   # the dot


def test_favicon_is_an_ico_of_pngs() -> None:
    images = decode_ico(icons.favicon())
    assert [size for size, _ in images] == list(icons.FAVICON_SIZES)
    for size, image in images:
        assert decode_png(image)[:2] == (size, size)


def test_served_with_their_types(client: FlaskClient) -> None:
    for path, media in (("/favicon.ico", TYPES[".ico"]), ("/icon.png", TYPES[".png"]), ("/robots.txt", TYPES[".txt"])):
        resp = client.get(path)
        assert resp.status_code == 200 and resp.headers["Content-Type"] == media, path
        assert resp.headers["ETag"] and resp.headers["Cache-Control"].startswith("public")
    assert client.get("/favicon.ico").data == icons.favicon()
    assert client.get("/icon.png").data == icons.png()


def test_robots_txt_lets_everyone_fetch_feeds_and_pages(client: FlaskClient) -> None:
    rules = urllib.robotparser.RobotFileParser()
    rules.parse(client.get("/robots.txt").data.decode().splitlines())
    for agent in ("*", "Googlebot", "Feedly/1.0", "newsboat/2.21"):
        for path in ("/all.rss", "/topics/ai.atom", "/all.json", "/all.html", "/posts/x.html", "/feeds.opml"):
            assert rules.can_fetch(agent, BASE_URL + path[1:]), (agent, path)


def test_every_feed_names_the_icon(client: FlaskClient) -> None:
    icon = BASE_URL + "icon.png"
    atom = feedparser.parse(client.get("/topics/ai.atom").data)
    assert atom.feed.icon == icon
    rss = feedparser.parse(client.get("/all.rss").data)
    assert rss.feed.image.href == icon and rss.feed.image.title == rss.feed.title
    assert rss.feed.image.link == rss.feed.link
    doc = orjson.loads(client.get("/all.json").data)
    assert doc["icon"] == doc["favicon"] == icon
    for page in ("/", "/all.html", "/topics/ai.html"):
        assert f'<link rel="icon" href="{BASE_URL}favicon.ico"'.encode() in client.get(page).data, page


def test_every_item_names_an_author(client: FlaskClient) -> None:
    """RSS has no feed-level author for items to inherit; Atom's and JSON Feed's are not applied
    by newsboat, feedparser or reader (bench/readers.py): every item names one."""
    for path in ("/all.rss", "/all.atom"):
        entries = feedparser.parse(client.get(path).data).entries
        assert entries and all(entry.author == "Syndicator" for entry in entries), path
    items = orjson.loads(client.get("/all.json").data)["items"]
    assert items and all(item["authors"] == [{"name": "Syndicator"}] for item in items)


# -- the operator's icons ------------------------------------------------------------------------------

def test_settings_replace_the_icons(settings: Settings, tmp_path: Path) -> None:
    favicon, icon = tmp_path / "mine.ico", tmp_path / "mine.png"
    favicon.write_bytes(b"\x00\x00\x01\x00" + b"my icon")
    icon.write_bytes(icons.png(64))
    build(settings.with_overrides(favicon=str(favicon), feed_icon=str(icon)))
    assert (settings.feeds_dir / "favicon.ico").read_bytes() == favicon.read_bytes()
    assert (settings.feeds_dir / "icon.png").read_bytes() == icon.read_bytes()
    build(settings)  # back to the built-in ones
    assert (settings.feeds_dir / "favicon.ico").read_bytes() == icons.favicon()


@pytest.mark.parametrize(("name", "content", "message"), [
    ("favicon", None, "cannot read"),
    ("favicon", b"GIF89a", "is not a ICO or PNG image"),
    ("feed_icon", b"\x00\x00\x01\x00", "is not a PNG image"),
    ("feed_icon", b"\x89PNG\r\n\x1a\n" + b"x" * (1024 * 1024), "larger than 1 MB"),
])
def test_a_bad_icon_setting_is_one_line(tmp_path: Path, name: str, content: bytes | None, message: str) -> None:
    path = tmp_path / "icon"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as e:
        load_settings(env={}, overrides={name: str(path)})
    assert name in str(e.value) and "\n" not in str(e.value)
    out = subprocess.run([sys.executable, "-m", "syndicator", "config"], capture_output=True, text=True,
                         env={"SYNDICATOR_" + name.upper(): str(path), "PATH": "/usr/bin:/bin"}, cwd=tmp_path)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and message in out.stderr
