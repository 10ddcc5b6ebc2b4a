"""Jekyll's rules for posts: file-name dates and slugs, list-or-string fields, permalinks.

Posts copied from Jekyll sites keep their dates, topics and URLs only when read as Jekyll reads
them, so these follow its code (jekyll/lib/jekyll), not a guess.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from urllib.parse import quote

#: Jekyll's DATE_FILENAME_MATCHER: one- or two-digit month and day (`2019-6-27-title.md`).
_FILENAME = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})-(.*)$")
#: A scraper's compact date at the start of the name (`-202205262391921712.md`: 2022-05-26 and
#: an article number), used only when the front matter has a date field without a date in it.
_COMPACT = re.compile(r"^[^0-9A-Za-z]*(\d{4})(\d{2})(\d{2})(?=\d|[^0-9]|$)")
#: A collection's documents are served under this unless the collection sets its own.
COLLECTION_PERMALINK = "/:collection/:path:output_ext"

#: Jekyll's built-in permalink styles (jekyll/lib/jekyll/utils.rb + document.rb).
STYLES = {
    "date": "/:categories/:year/:month/:day/:title:output_ext",
    "pretty": "/:categories/:year/:month/:day/:title/",
    "ordinal": "/:categories/:year/:y_day/:title:output_ext",
    "weekdate": "/:categories/:year/W:week/:short_day/:title:output_ext",
    "none": "/:categories/:title:output_ext",
}


def filename_date(stem: str) -> date | None:
    m = _FILENAME.match(stem)
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def compact_date(stem: str) -> date | None:
    """`20220526…` at the start of a file name, as scrapers name articles."""
    m = _COMPACT.match(stem)
    if not m:
        return None
    try:
        found = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None
    return found if 1990 <= found.year <= 2100 else None


def filename_slug(stem: str) -> str:
    m = _FILENAME.match(stem)
    return m.group(4) if m else stem


def words(value: object) -> list[str]:
    """`categories`/`tags`: a YAML list, or a space-separated string (Jekyll splits on spaces)."""
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value if v is not None and not isinstance(v, (dict, list))]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [str(value)]
    return []


def collection_of(rel: str, collections: object) -> tuple[str, dict[str, object]] | None:
    """The Jekyll collection a file is a document of: a `_<name>/` folder on its path whose name
    `_config.yml` declares under `collections:` (a mapping of name to its settings, or a list of
    names), with that collection's settings. `_posts/` is the `posts` collection, declared or not."""
    declared: dict[str, dict[str, object]] = {}
    if isinstance(collections, dict):
        declared = {str(k): dict(v) if isinstance(v, dict) else {} for k, v in collections.items()}
    elif isinstance(collections, list):
        declared = {str(k): {} for k in collections if isinstance(k, str)}
    folders = rel.split("/")[:-1]
    for folder in reversed(folders):
        name = folder[1:]
        if folder.startswith("_") and (name in declared or name == "posts"):
            return name, declared.get(name, {})
    return None


def permalink(pattern: str | None, local: datetime, categories: list[str], slug: str,
              collection: str = "posts", path: str = "") -> str:
    """Expand a Jekyll permalink pattern (a style name or a template) for one post or document;
    `path` is the document's path inside its collection folder, without the extension."""
    template = STYLES.get(pattern or "date", pattern or STYLES["date"])
    if not template.startswith("/"):
        template = "/" + template
    iso = local.isocalendar()
    values = {
        "year": f"{local.year:04d}", "month": f"{local.month:02d}", "i_month": str(local.month),
        "day": f"{local.day:02d}", "i_day": str(local.day), "short_year": f"{local.year % 100:02d}",
        "y_day": f"{local.timetuple().tm_yday:03d}", "hour": f"{local.hour:02d}",
        "minute": f"{local.minute:02d}", "second": f"{local.second:02d}",
        "week": f"{iso.week:02d}", "short_day": local.strftime("%a"), "long_day": local.strftime("%A"),
        "title": quote(slug), "slug": quote(slug), "output_ext": ".html", "collection": quote(collection),
        "path": quote(path), "name": quote(path.rsplit("/", 1)[-1]),
        "categories": "/".join(quote(c.lower()) for c in dict.fromkeys(categories)),
    }
    keys = sorted(values, key=len, reverse=True)
    expanded = re.sub(":(" + "|".join(keys) + ")", lambda m: values[m.group(1)], template)
    return re.sub(r"/{2,}", "/", expanded)
