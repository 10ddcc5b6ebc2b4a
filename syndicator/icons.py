"""The built-in icons: the feed symbol (a dot and two arcs, white on an orange rounded square)
drawn here as PNG, and `favicon.ico` made of PNGs of the sizes browsers ask for, with no image
library. Drawing takes half a second, so the package ships the results beside the templates
(`templates/icon.png`, `templates/favicon.ico`) and a build copies those;
`tests/test_site_files.py` holds them equal to what this module draws, and
`python -m syndicator.icons` writes them again.

Each pixel's colour comes from its distance to the shapes' edges (half a pixel either side is
the anti-aliased border), so small sizes stay crisp without supersampling.
"""

from __future__ import annotations

import math
import struct
import zlib
from functools import lru_cache
from pathlib import Path

#: The feed icon's orange (the colour the symbol is known by) and white.
ORANGE = (0xEE, 0x80, 0x2F)
WHITE = (0xFF, 0xFF, 0xFF)
#: Sizes of the PNGs inside favicon.ico: browser tabs, high-density tabs, desktop shortcuts.
FAVICON_SIZES = (16, 32, 48, 64)
#: Side of `icon.png`, the feeds' icon (Atom <icon>, RSS <image>, JSON Feed icon): the
#: largest width RSS 2.0 allows an image to be shown at.
ICON_SIZE = 144

_CORNER = 0.18        # corner radius of the square, as a share of its side
_ORIGIN = (0.2, 0.8)  # centre of the dot and of both arcs
_DOT = 0.095
_ARCS = ((0.40, 0.065), (0.62, 0.065))  # (radius of the arc's middle, half its width)


def _square(x: float, y: float) -> float:
    """Signed distance to the rounded square (negative inside)."""
    qx, qy = abs(x - 0.5) - (0.5 - _CORNER), abs(y - 0.5) - (0.5 - _CORNER)
    return math.hypot(max(qx, 0.0), max(qy, 0.0)) + min(max(qx, qy), 0.0) - _CORNER


def _symbol(x: float, y: float) -> float:
    """Signed distance to the dot and the two quarter arcs."""
    r = math.hypot(x - _ORIGIN[0], y - _ORIGIN[1])
    quadrant = max(_ORIGIN[0] - x, y - _ORIGIN[1])  # the arcs end square at the dot's axes
    d = r - _DOT
    for middle, half in _ARCS:
        d = min(d, max(abs(r - middle) - half, quadrant))
    return d


def _cover(distance: float, size: int) -> float:
    return min(max(0.5 - distance * size, 0.0), 1.0)


def pixels(size: int) -> bytes:
    """RGBA rows of the icon at `size` x `size`, each row led by PNG's filter byte 0."""
    rows = bytearray()
    for j in range(size):
        rows.append(0)
        y = (j + 0.5) / size
        for i in range(size):
            x = (i + 0.5) / size
            alpha = _cover(_square(x, y), size)
            white = _cover(_symbol(x, y), size) if alpha else 0.0
            rows += bytes(round(o + (w - o) * white) for o, w in zip(ORANGE, WHITE, strict=True))
            rows.append(round(alpha * 255))
    return bytes(rows)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@lru_cache(maxsize=8)
def png(size: int = ICON_SIZE) -> bytes:
    """The icon as a PNG of `size` x `size` (8-bit RGBA)."""
    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(pixels(size), 9)) + _chunk(b"IEND", b""))


@lru_cache(maxsize=1)
def favicon() -> bytes:
    """favicon.ico: an ICO directory of PNG images (read by every browser since 2007)."""
    images = [png(size) for size in FAVICON_SIZES]
    offset = 6 + 16 * len(images)
    out = bytearray(struct.pack("<HHH", 0, 1, len(images)))
    for size, image in zip(FAVICON_SIZES, images, strict=True):
        out += struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(image), offset)
        offset += len(image)
    return bytes(out) + b"".join(images)


#: Where the package keeps the drawn icons, by published name.
SHIPPED = {"icon.png": png, "favicon.ico": favicon}


def write(folder: Path) -> None:
    for name, draw in SHIPPED.items():
        (folder / name).write_bytes(draw())


if __name__ == "__main__":
    write(Path(__file__).parent / "templates")
