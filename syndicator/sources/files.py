"""A post's bytes and their text: bounded reads, then BOMs, UTF-8 or GB18030, binary refused.

seeds/ is written by anyone: a read never goes past max_post_bytes, even for a file that grows
meanwhile, and never waits on a named pipe. A file that is not text is refused with the offset
and line of the first bad byte, so its author can find it.
"""

from __future__ import annotations

import codecs
import os
import re
import stat
from pathlib import Path

from syndicator.errors import PostError

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"),
)
_CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def read_bytes(root: Path, rel: str, max_bytes: int) -> bytes:
    try:
        # os-level calls: a cold build reads thousands of small files, and open() adds a
        # buffer and three system calls to each. O_NONBLOCK: a named pipe put where a post
        # was must not hang the reader (it changes nothing for a regular file).
        fd = os.open(os.path.join(root, rel), os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise IsADirectoryError
            if not stat.S_ISREG(st.st_mode):
                raise PostError(rel, "not a regular file (a pipe, socket or device), not a post")
            size = st.st_size
            if size > max_bytes:
                raise PostError(rel, f"file is {size:,} bytes, over the {max_bytes:,}-byte limit (max_post_bytes)")
            data = _read_up_to(fd, size, max_bytes + 1)
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise PostError(rel, "file disappeared before it could be read") from None
    except IsADirectoryError:
        raise PostError(rel, "is a directory, not a post") from None
    except PermissionError:
        raise PostError(rel, "permission denied") from None
    except OSError as e:
        raise PostError(rel, f"cannot read: {e.strerror or e}") from None
    if len(data) > max_bytes:
        raise PostError(rel, f"file grew past the {max_bytes:,}-byte limit (max_post_bytes) while being read")
    return data


def _read_up_to(fd: int, size: int, limit: int) -> bytes:
    """Up to `limit` bytes: one read for a file of `size`, more when it grows meanwhile."""
    chunks = [os.read(fd, min(size + 1, limit))]
    total = len(chunks[0])
    while chunks[-1] and total < limit:
        chunks.append(os.read(fd, min(1 << 20, limit - total)))
        total += len(chunks[-1])
    return b"".join(chunks) if len(chunks) > 1 else chunks[0]


def decode(data: bytes, rel: str) -> str:
    """Bytes to text: BOMs honoured, UTF-8 expected, GB18030 recognised, binary rejected."""
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return _newlines(data.decode(codec))
            except UnicodeDecodeError as e:
                raise PostError(rel, f"not valid {codec.upper()} despite its byte-order mark: {e.reason}") from None
    nul = data.find(b"\0")
    if nul >= 0:
        raise PostError(rel, f"binary data, not text (NUL byte at offset {nul})", _line_at(data, nul))
    try:
        return _newlines(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        bad = e.start
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        text = ""
    # Chinese sites often still save GBK/GB18030; accept it only when it reads as Chinese.
    non_ascii = sum(1 for ch in text if ord(ch) > 127)
    if text and non_ascii and len(_CJK.findall(text)) >= 0.6 * non_ascii:
        return _newlines(text)
    raise PostError(
        rel, f"not UTF-8 text (invalid byte 0x{data[bad]:02x} at offset {bad}); save it as UTF-8",
        _line_at(data, bad),
    )


def _line_at(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def _newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text
