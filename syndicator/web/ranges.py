"""Byte ranges of a published file's identity bytes (RFC 9110 section 14), answered as nginx
answers them, so a client sees the same thing with or without nginx in front.

- one satisfiable range: 206 with Content-Range; several: 206 multipart/byteranges, parts in
  the order asked; unsatisfiable ranges among satisfiable ones are dropped;
- none satisfiable, or a syntax error: 416 with `Content-Range: bytes */<length>`;
- another unit (`items=`), or ranges adding up to more than the file (overlaps asked to
  amplify the answer): the whole file, 200;
- a suffix longer than the file is the whole file (RFC 9110 section 14.1.3).

Werkzeug's `parse_range_header` and `Response.make_conditional(accept_ranges=True)` are not
used: the parser refuses ranges not in ascending order and overlapping ones (valid requests
nginx answers with 206), `Range.range_for_length` answers only one range and 416s a suffix
longer than the file, and `make_conditional` 416s a unit it does not know, where RFC 9110
section 14.2 says to ignore it, and answers a Range before If-None-Match (section 13.2.2 puts
the 304 first).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import Response

from syndicator.web.files import Entry

#: nginx answers 416 for offsets past its off_t.
MAX_OFFSET = 2**63 - 1
_DIGITS = r"0*([0-9]{1,19})"
#: One range-spec with nginx's tolerance: spaces (not tabs) around the numbers and the dash,
#: none between the dash of a suffix and its length.
_SPEC = re.compile(rf" *(?:{_DIGITS} *- *(?:{_DIGITS})?|-{_DIGITS}) *")


@dataclass(frozen=True, slots=True)
class Span:
    """Bytes [start, end) of a file."""

    start: int
    end: int

    def content_range(self, length: int) -> str:
        return f"bytes {self.start}-{self.end - 1}/{length}"


def requested(header: str, length: int) -> list[Span] | None:
    """The spans a Range header asks of `length` bytes, in the order asked.

    None: answer with the whole file (not a `bytes=` range, ranges adding up to more than the
    file, or an empty file); []: nothing can be satisfied (416)."""
    if len(header) < 7 or header[:6].lower() != "bytes=":
        return None
    spans: list[Span] = []
    for item in header[6:].split(","):
        m = _SPEC.fullmatch(item)
        bounds = _bounds(m, length) if m is not None else None
        if bounds is None:
            return []
        start, end = bounds
        if start < end:
            spans.append(Span(start, end))
        elif start == 0:  # an empty file: nginx sends it whole
            return None
    if spans and sum(s.end - s.start for s in spans) > length:
        return None
    return spans


def _bounds(m: re.Match[str], length: int) -> tuple[int, int] | None:
    """[start, end) of one range-spec clipped to the file; None past nginx's largest offset."""
    first, last, suffix = m.groups()
    if max(int(g) for g in m.groups() if g is not None) > MAX_OFFSET:
        return None
    if suffix is not None:
        return max(length - int(suffix), 0), length
    return int(first), length if last is None else min(int(last) + 1, length)


def unsatisfiable(length: int) -> str:
    """The Content-Range of a 416."""
    return f"bytes */{length}"


def partial(entry: Entry, spans: list[Span], headers: dict[str, str]) -> Response:
    """The 206 for satisfiable `spans` of the identity bytes, with the validators in `headers`."""
    length = len(entry.data)
    if len(spans) == 1:
        span = spans[0]
        resp = Response(entry.data[span.start:span.end], status=206, headers=headers,
                        content_type=entry.content_type)
        resp.headers["Content-Range"] = span.content_range(length)
        return resp
    # The hash of the bytes cannot occur in them, and keeps the answer byte-identical per file.
    boundary = entry.etag.strip('"')
    return Response(multipart(entry.data, spans, entry.content_type, boundary), status=206, headers=headers,
                    content_type=f"multipart/byteranges; boundary={boundary}")


def multipart(data: bytes, spans: list[Span], content_type: str, boundary: str) -> bytes:
    """A multipart/byteranges body laid out as nginx lays it out (RFC 9110 section 14.6)."""
    length = len(data)
    parts = [
        f"\r\n--{boundary}\r\nContent-Type: {content_type}\r\n"
        f"Content-Range: {span.content_range(length)}\r\n\r\n".encode("latin-1") + data[span.start:span.end]
        for span in spans
    ]
    return b"".join(parts) + f"\r\n--{boundary}--\r\n".encode("latin-1")
