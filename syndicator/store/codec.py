"""Posts as JSON and back, checked field by field: how the state database stores them.

Whoever can write the state file decides what the service reads on its next start. JSON read
into the model by hand can only give a post of the right shape or a refusal (`SchemaError`),
never run code, and every string that becomes part of a file name (topic and page slugs) is
checked to be one safe path segment. A post is an array in the model's field order; so are
its topics, source, images and related items.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import orjson

from syndicator.model import EMPTY, HEAVY_FIELDS, Image, LazyPost, Loader, Post, Related, Source, Topic, lazy_post

#: The model's fields (tests/test_state.py keeps it in step with model.Post).
POST_FIELDS = ("id", "title", "link", "summary", "body_html", "published", "updated", "topics", "source",
               "authors", "language", "images", "related", "related_more", "draft", "quality", "heat", "path",
               "page_slug", "extra")
#: A stored post is two JSON arrays on two lines: these fields, which every pass uses (ids,
#: order, topics, titles), then model.HEAVY_FIELDS, which only rendering reads. A load reads the
#: first line; the second is read when a post is rendered.
LIGHT_FIELDS = ("id", "title", "link", "published", "updated", "topics", "source", "authors",
                "language", "related_more", "draft", "quality", "heat", "path", "page_slug")
assert sorted((*LIGHT_FIELDS, *HEAVY_FIELDS)) == sorted(POST_FIELDS)
#: What slugify makes: one path segment, no dots.
_SLUG = re.compile(r"[a-z0-9-]{1,200}\Z")
_ZERO = timedelta(0)
#: `extra` values nested deeper than this are kept as a placeholder (orjson stops at 255).
_MAX_DEPTH = 64
_TOO_DEEP = "[nested too deeply]"


class SchemaError(ValueError):
    """A stored value that is not what this code writes."""


# -- encoding ----------------------------------------------------------------------------------


def encode_post(post: Post) -> bytes:
    """The light line, a newline, the heavy line (orjson writes no newline inside a document)."""
    body_html = post.body_html  # first: a LazyPost then reads its heavy fields once, summary and all
    return encode_light(post) + b"\n" + orjson.dumps([
        post.summary, body_html, [[i.url, i.width, i.height, i.title] for i in post.images],
        [[r.title, r.url, r.published, _source(r.source)] for r in post.related],
        _plain(post.extra, 0) if post.extra else None,
    ])


def encode_light(post: Post) -> bytes:
    return orjson.dumps([
        post.id, post.title, post.link, post.published, post.updated,
        [[t.name, t.slug] for t in post.topics], _source(post.source), post.authors, post.language,
        post.related_more, post.draft, post.quality, post.heat, post.path, post.page_slug,
    ])


def split(blob: bytes) -> tuple[bytes, bytes]:
    """(light line, heavy line) of a stored post; SchemaError when it is not two lines."""
    light, newline, heavy = bytes(blob).partition(b"\n")
    if not newline:
        raise SchemaError("not a post (one line)")
    return light, heavy


def _source(source: Source | None) -> list[str] | None:
    return None if source is None else [source.name, source.domain, source.url]


def _plain(value: Any, depth: int) -> Any:
    """A front-matter value as JSON. Strings, booleans, null, lists and the numbers JSON holds
    stand for themselves; everything else (mappings included) is an object with one key naming
    its type, so no object is ever read as anything but a tag."""
    kind = type(value)
    if value is None or kind is str or kind is bool:
        return value
    if depth > _MAX_DEPTH:
        return _TOO_DEEP
    if kind is int:
        return value if -(2**63) <= value < 2**63 else {"int": str(value)}
    if kind is float:
        return value if math.isfinite(value) else {"float": repr(value)}
    if kind is list or kind is tuple:
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, Mapping):
        return {"map": [[_plain(k, depth + 1), _plain(v, depth + 1)] for k, v in value.items()]}
    if kind is datetime:
        return {"datetime": value.isoformat()}
    if kind is date:
        return {"date": value.isoformat()}
    if kind is time:
        return {"time": value.isoformat()}
    if kind is bytes:
        return {"bytes": base64.b64encode(value).decode("ascii")}
    if kind is set or kind is frozenset:
        return {"set": [_plain(v, depth + 1) for v in value]}
    return str(value)  # no reader gives other types; keep what it says


# -- decoding ----------------------------------------------------------------------------------


class Decoder:
    """Reads posts back. One decoder per load shares equal topics and sources between posts, as
    the normalizer does (thousands of posts name the same few)."""

    def __init__(self) -> None:
        self._topics: dict[str, Topic] = {}
        self._sources: dict[tuple[str, str, str], Source] = {}
        self._languages: dict[str, str] = {}

    def post(self, blob: bytes | str) -> Post:
        """The post `blob` encodes; SchemaError for anything else."""
        light, heavy = split(blob.encode() if isinstance(blob, str) else blob)
        values = self.heavy(heavy)
        post = self.light(light, Loader(lambda _post: values, lambda posts: [values[0]] * len(posts)))
        return post.full()

    def light(self, line: bytes, load: Loader) -> LazyPost:
        """The post whose light line is `line`; `load` gives its heavy fields (see `heavy`)."""
        try:
            fields = orjson.loads(line)
            if type(fields) is not list or len(fields) != len(LIGHT_FIELDS):
                raise SchemaError("not a post")
            return self._light(load, *fields)
        except SchemaError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError) as e:
            raise SchemaError(f"not a post ({type(e).__name__}: {e})") from None

    def heavy(self, line: bytes) -> tuple[Any, ...]:
        """The values of model.HEAVY_FIELDS a heavy line holds; SchemaError for anything else."""
        try:
            fields = orjson.loads(line)
            if type(fields) is not list or len(fields) != len(HEAVY_FIELDS):
                raise SchemaError("not a post's heavy fields")
            summary, body_html, images, related, extra = fields
            if type(summary) is not str:
                raise SchemaError("summary is not text")
            if body_html is not None and type(body_html) is not str:
                raise SchemaError("body_html is not text")
            return (summary, body_html, _images(images), self._related(related),
                    EMPTY if extra is None else _mapping(extra))
        except SchemaError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, OverflowError, RecursionError) as e:
            raise SchemaError(f"not a post ({type(e).__name__}: {e})") from None

    def _light(self, load: Loader, id: Any, title: Any, link: Any, published: Any, updated: Any, topics: Any,
               source: Any, authors: Any, language: Any, related_more: Any, draft: Any, quality: Any, heat: Any,
               path: Any, page_slug: Any) -> LazyPost:
        if (type(id), type(title), type(link), type(language), type(path)) != _FIVE_STR:
            raise SchemaError("a text field is not text")
        if type(draft) is not bool or not _opt_int(quality) or not _opt_int(heat):
            raise SchemaError("draft, quality or heat of the wrong type")
        if type(related_more) is not int or related_more < 0:
            raise SchemaError("related_more is not a count")
        if page_slug is not None and (type(page_slug) is not str or not _SLUG.match(page_slug)):
            raise SchemaError(f"page slug {page_slug!r} is not a slug")
        if type(authors) is not list or any(type(a) is not str for a in authors):
            raise SchemaError("authors is not a list of text")
        when = _utc(published)
        if link == id:  # a news item's id is its URL: one string for both (80,000 of 100,000 posts)
            link = id
        return lazy_post(load, id, title, link, when, when if updated == published else _utc(updated),
                         self._topic_list(topics), self._source(source), tuple(authors) if authors else (),
                         self._languages.setdefault(language, language), related_more, draft, quality, heat, path,
                         page_slug)

    def _topic_list(self, value: Any) -> tuple[Topic, ...]:
        if type(value) is not list:
            raise SchemaError("topics is not a list")
        return tuple(self._topic(item) for item in value)

    def _topic(self, item: Any) -> Topic:
        if type(item) is not list:
            raise SchemaError("topic is not a list")
        name, slug = item
        topic = self._topics.get(name)
        if topic is not None and topic.slug == slug:
            return topic
        if type(name) is not str or type(slug) is not str or not _SLUG.match(slug):
            raise SchemaError(f"topic {item!r} has no valid slug")
        topic = self._topics[name] = Topic(name, slug)
        return topic

    def _source(self, value: Any) -> Source | None:
        if value is None:
            return None
        if type(value) is not list:
            raise SchemaError("source is not a list")
        name, domain, url = value
        key = (name, domain, url)
        source = self._sources.get(key)
        if source is None:
            if (type(name), type(domain), type(url)) != _THREE_STR:
                raise SchemaError("source is not three texts")
            source = self._sources[key] = Source(name, domain, url)
        return source

    def _related(self, value: Any) -> tuple[Related, ...]:
        if type(value) is not list:
            raise SchemaError("related is not a list")
        items = []
        for item in value:
            if type(item) is not list:
                raise SchemaError("related item is not a list")
            title, url, published, source = item
            if type(title) is not str or type(url) is not str:
                raise SchemaError("related item without title or URL")
            items.append(Related(title, url, None if published is None else _utc(published), self._source(source)))
        return tuple(items)


_FIVE_STR = (str,) * 5
_THREE_STR = (str,) * 3


def decode_post(blob: bytes | str) -> Post:
    return Decoder().post(blob)


def _opt_int(value: Any) -> bool:
    return value is None or type(value) is int


def _utc(value: Any) -> datetime:
    """A stored time: text in ISO 8601 with a zero offset (every time in the model is UTC)."""
    if type(value) is not str:
        raise SchemaError("a time is not text")
    when = datetime.fromisoformat(value)
    if when.tzinfo is UTC:  # what "+00:00" gives
        return when
    if when.utcoffset() != _ZERO:
        raise SchemaError(f"time {value!r} is not UTC")
    return when.replace(tzinfo=UTC)


def _images(value: Any) -> tuple[Image, ...]:
    if type(value) is not list:
        raise SchemaError("images is not a list")
    images = []
    for item in value:
        if type(item) is not list:
            raise SchemaError("image is not a list")
        url, width, height, title = item
        if type(url) is not str or type(title) is not str or not _opt_int(width) or not _opt_int(height):
            raise SchemaError("image of the wrong shape")
        images.append(Image(url, width, height, title))
    return tuple(images)


def _mapping(value: Any) -> dict[Any, Any]:
    decoded = _value(value)
    if not isinstance(decoded, dict):
        raise SchemaError("extra is not a mapping")
    return decoded


def _value(value: Any) -> Any:
    """The inverse of `_plain`."""
    kind = type(value)
    if kind is list:
        return [_value(v) for v in value]
    if kind is not dict:
        return value  # str, int, float, bool or None: orjson gives nothing else
    if len(value) != 1:
        raise SchemaError("an object in extra is not a tag")
    (tag, payload), = value.items()
    if tag == "map":  # nearly always text to text: no call for those
        return {k if type(k) is str else _value(k): v if type(v) is str else _value(v) for k, v in payload}
    if tag == "set":
        return {_value(v) for v in payload}
    parse = _SCALARS.get(tag)
    if parse is None or type(payload) is not str:
        raise SchemaError(f"unknown tag {tag!r} or payload of the wrong type in extra")
    return parse(payload)


#: Tags of the values `_plain` writes as text.
_SCALARS: dict[str, Callable[[str], Any]] = {
    "datetime": datetime.fromisoformat,
    "date": date.fromisoformat,
    "time": time.fromisoformat,
    "bytes": lambda text: base64.b64decode(text, validate=True),
    "int": int,
    "float": float,
}
