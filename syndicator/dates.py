"""Date parsing for every format posts use; results are always UTC-aware."""

from __future__ import annotations

import email.utils
import re
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo

_JEKYLL = re.compile(
    r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?\s*(Z|[+-]\d{2}:?\d{2})?$"
)
_EPOCH = re.compile(r"^-?\d{9,11}(\.\d+)?$")


class DateError(ValueError):
    pass


def parse(value: object, tz: tzinfo) -> datetime:
    """A YAML value → aware UTC datetime. Values without an offset are in `tz`."""
    if isinstance(value, datetime):
        return _utc(value, tz)
    if isinstance(value, date):
        return _utc(datetime.combine(value, time()), tz)
    if isinstance(value, bool):
        raise DateError(f"{value!r} is not a date")
    if isinstance(value, (int, float)):
        return _from_epoch(value)
    if isinstance(value, str):
        return _parse_text(value.strip(), tz)
    raise DateError(f"{type(value).__name__} is not a date")


def _from_epoch(value: float) -> datetime:
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise DateError(f"{value!r} is out of range as epoch seconds") from None


def _parse_text(text: str, tz: tzinfo) -> datetime:
    if not text:
        raise DateError("date is empty")
    if _EPOCH.match(text):
        return _from_epoch(float(text))
    m = _JEKYLL.match(text)
    if m:
        return _from_jekyll(m, tz, text)
    if re.match(r"^[A-Za-z]{3},", text):
        try:
            return _utc(email.utils.parsedate_to_datetime(text), tz)
        except (TypeError, ValueError):
            pass
    if not re.search(r"\d", re.sub(r"[+-]\d{2}:?\d{2}\b", "", text)):  # e.g. "+0800" alone: no date in it
        raise DateError(f"{text!r} has no date in it")
    from dateutil import parser as dateparser  # (on first use: most dates take a path above)

    try:
        return _utc(dateparser.parse(text), tz)
    except (ValueError, OverflowError) as e:
        raise DateError(f"{text!r} is not a date I can read ({e})") from None


def _from_jekyll(m: re.Match[str], tz: tzinfo, text: str) -> datetime:
    year, month, day, hour, minute, second, offset = m.groups()
    try:
        naive = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError as e:
        raise DateError(f"{text!r} is not a real date ({e})") from None
    if offset:
        return _utc(naive.replace(tzinfo=_offset(offset)), tz)
    return _utc(naive, tz)


def _offset(text: str) -> tzinfo:
    """`Z`, `+0800`, `-05:30` as a fixed zone."""
    if text == "Z":
        return UTC
    digits = text[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    if delta >= timedelta(hours=24):
        raise DateError(f"offset {text!r} is out of range")
    return timezone(-delta if text[0] == "-" else delta)


def _utc(value: datetime, tz: tzinfo) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=tz)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise DateError(f"{value!r} is out of range") from None


def rfc3339(value: datetime) -> str:
    # isoformat is several times faster than strftime and always writes the year in 4 digits
    return value.astimezone(UTC).replace(tzinfo=None, microsecond=0).isoformat() + "Z"
