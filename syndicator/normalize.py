"""One step from a reader's RawPost to the common model.

ALIASES is the one table of field names; each field has one fallback chain below,
with a comment on each decision.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from syndicator import dates, kramdown, links, liquid, markup, plaintext, slugs, urls
from syndicator.config import Settings
from syndicator.errors import PostError
from syndicator.links import clean_url
from syndicator.model import EMPTY, Image, Post, Problem, RawPost, Related, Source, Topic
from syndicator.sources import jekyll

#: Field → front-matter names, first present wins. Older and foreign spellings included.
ALIASES: dict[str, tuple[str, ...]] = {
    "id": ("id", "guid", "uuid"),
    "title": ("title", "headline", "name"),
    "summary": ("excerpt", "abstract", "summary", "description", "subtitle"),
    "published": ("publishedDateTime", "date", "pubDate", "published_at", "publishDate", "created"),
    "updated": ("updatedDateTime", "updated", "last_modified_at", "lastmod", "modified"),
    "url": ("webUrl", "originalUrl", "sourceUrl", "url", "link", "canonical_url"),
    "news_topics": ("topics", "tags", "keywords"),
    "categories": ("categories", "category"),
    "tags": ("tags",),
    "images": ("images", "image", "thumbnail", "cover"),
    "related": ("related",),
    "provider": ("provider", "source"),
    "authors": ("authors", "author"),
    "language": ("lang", "language", "locale"),
    "draft": ("published", "draft"),
    "permalink": ("permalink",),
    "slug": ("slug",),
}
#: Keys read by no field but understood: layout and bookkeeping from the scrapers.
_KNOWN = {"layout", "type", "quality", "heat", "ampWebUrl", "cdnAmpWebUrl", "isCached"}
#: Never emitted anywhere, never kept.
_SECRET = {"secured"}
#: Keys whose presence (with no body) marks a news item.
_NEWS_MARKERS = ("publishedDateTime", "webUrl", "originalUrl", "sourceUrl", "excerpt", "abstract", "provider")
_PAGE_LAYOUTS = {"page", "home", "default", "archive", "category", "tag"}
SUMMARY_LIMIT = 300
MAX_TOPICS = 50
MAX_TOPIC_NAME = 100


class NotAPost(Exception):
    """A file with front matter that is a site page, not a post (Jekyll `layout: page`)."""


@dataclass
class Context:
    """What one normalize call needs besides the raw post."""

    settings: Settings
    raw: RawPost
    tz: tzinfo
    base: str  # absolute URL relative links resolve against
    problems: list[Problem] = field(default_factory=list)
    used: set[str] = field(default_factory=set)
    #: the Jekyll collection the file is a document of (`posts` for `_posts/`), and its settings
    collection: tuple[str, Mapping[str, Any]] | None = None

    def get(self, name: str) -> Any:
        """First non-empty value among the aliases of `name`; marks it as used."""
        found = None
        for key in ALIASES[name]:
            if key in self.raw.meta:
                self.used.add(key)  # every spelling is consumed, not only the winner
                value = self.raw.meta[key]
                if found is None and value is not None and value != "":
                    found = value
        return found

    def key_of(self, name: str) -> str | None:
        return next((k for k in ALIASES[name] if k in self.raw.meta), None)

    def line(self, name: str) -> int | None:
        key = self.key_of(name) if name in ALIASES else name
        return self.raw.lines.get(key) if key else None

    def fail(self, name: str, message: str) -> PostError:
        return PostError(self.raw.path, message, self.line(name))

    def warn(self, name: str, message: str) -> None:
        self.problems.append(Problem(self.raw.path, message, self.line(name), "warning"))


def normalize(raw: RawPost, settings: Settings) -> tuple[Post, list[Problem]]:
    """RawPost → Post, plus the warnings about what was repaired. Raises PostError or NotAPost."""
    ctx = _context(raw, settings)
    ctx.problems.extend(Problem(raw.path, m, line, "warning") for m, line in raw.warnings)
    shape = detect_shape(raw)
    post = SHAPES[shape](ctx)
    return post, ctx.problems


def detect_shape(raw: RawPost) -> str:
    if str(raw.meta.get("layout", "")).lower() in _PAGE_LAYOUTS:  # a Jekyll page, even without a body
        return "post"
    if raw.body is None and any(k in raw.meta for k in _NEWS_MARKERS):
        return "news"
    return "post"


def _context(raw: RawPost, settings: Settings) -> Context:
    site_tz = raw.site.get("timezone")
    tz: tzinfo = settings.tz
    if site_tz:
        try:
            tz = ZoneInfo(str(site_tz))
        except (ZoneInfoNotFoundError, ValueError):
            pass
    base = settings.base_url
    if raw.site.get("url"):
        base = _site_root(raw.site)
    collection = jekyll.collection_of(raw.path, raw.site.get("collections"))
    return Context(settings, raw, tz, base, collection=collection)


def _site_root(site: Mapping[str, Any]) -> str:
    root = str(site.get("url", "")).rstrip("/")
    baseurl = str(site.get("baseurl") or "").strip("/")
    return f"{root}/{baseurl}/" if baseurl else f"{root}/"


# ---- shapes -------------------------------------------------------------------------------


def _news(ctx: Context) -> Post:
    meta = ctx.raw.meta
    title = _title(ctx)
    url = _url(ctx, ctx.get("url"), "url")
    summary = plaintext.truncate(plaintext.clean_line(ctx.get("summary") or ""), SUMMARY_LIMIT)
    source = _provider(ctx)
    images = _images(ctx)
    related, related_more = _related(ctx)
    published = _published(ctx)
    return _finish(
        ctx, title=title, link=url, summary=summary, body_html=None, published=published,
        topics=_topics(ctx, _topic_names(ctx), split_words=False), source=source,
        images=images, related=related, related_more=related_more,
        quality=_int(meta.get("quality")), heat=_int(meta.get("heat")),
    )


def _post(ctx: Context) -> Post:
    raw = ctx.raw
    # Jekyll: whatever is in a collection (`_posts/` included) is a document, whatever its layout;
    # only a file outside them with a page layout and no date is one of the site's pages.
    layout = str(raw.meta.get("layout", "")).lower()
    if ctx.collection is None and ctx.get("published") is None and layout in _PAGE_LAYOUTS:
        raise NotAPost(f"skipped: a site page (layout: {raw.meta['layout']}), not a post; "
                       "give it a date or put it under _posts/ to publish it")
    published = _published(ctx)
    body = _liquid(ctx, raw.body or "")
    rendered = body if _is_html_file(raw.path) else markup.markdown_to_html(kramdown.prepass(plaintext.repair(body)))
    url = _url(ctx, ctx.get("url"), "url") if ctx.key_of("url") not in (None, "url", "link") else None
    if url is None and ctx.raw.meta.get("link"):
        url = _url(ctx, ctx.get("url"), "url")
    categories = [plaintext.clean_line(c) for c in jekyll.words(ctx.get("categories"))]
    if url is None and raw.site.get("url") and _has_output(ctx):
        url = _permalink_url(ctx, published, categories)
    html_body = markup.sanitize(plaintext.strip_illegal(rendered), url or ctx.base)
    title = _given_title(ctx)
    summary_src = ctx.get("summary")
    if summary_src:
        summary = plaintext.clean_line(summary_src)
    elif title:  # only the first SUMMARY_LIMIT characters of the text are kept
        summary = markup.summary_text(html_body, SUMMARY_LIMIT)
    else:  # the title falls back to the text's first words, which may lie beyond them
        summary = markup.to_text(html_body)
    title = title or _untitled(ctx, summary)
    site = raw.site
    source = Source(name=plaintext.clean_line(site.get("title", "")), url=ctx.base) if site.get("url") else None
    return _finish(
        ctx, title=title, link=url, summary=plaintext.truncate(summary, SUMMARY_LIMIT),
        body_html=html_body, published=published,
        topics=_topics(ctx, _topic_names(ctx), split_words=False), source=source, images=_images(ctx),
    )


SHAPES: dict[str, Callable[[Context], Post]] = {"news": _news, "post": _post}


def _liquid(ctx: Context, body: str) -> str:
    """The body with its Liquid rendered as Jekyll would (liquid.py), saying what was removed."""
    done = liquid.render(body, ctx.raw.site)
    for message, line in done.warnings:
        ctx.problems.append(Problem(ctx.raw.path, f"{message} (line {line} of the body)", None, "warning"))
    return done.text


def _finish(ctx: Context, *, link: str | None, **fields: Any) -> Post:
    raw = ctx.raw
    page_slug = None
    if not link:  # no URL of its own: the service writes a page for it
        page_slug = page_slug_for(raw.path)
        link = page_link(ctx.settings, page_slug)
    explicit = ctx.get("id")
    own_url = page_slug is None and not _moves_with_site(ctx)
    post_id = _clean_id(explicit) if explicit is not None else (link if own_url else None)
    post_id = post_id or tag_uri(ctx.settings, raw.path)
    published = fields.pop("published")
    if published > datetime.now(UTC) + timedelta(days=1):  # accepted, but likely a typo
        ctx.warn("published", f"date {published:%Y-%m-%d} is in the future")
    updated = _updated(ctx, published)
    language = _language(ctx, fields["title"] + " " + fields["summary"])
    authors = _authors(ctx)
    ctx.get("draft")
    draft = _is_draft(raw.meta)
    extra = {k: v for k, v in raw.meta.items() if k not in ctx.used and k not in _KNOWN and k not in _SECRET}
    return Post(
        id=post_id, link=link, published=published, updated=updated, language=language,
        authors=authors, draft=draft, path=raw.path, page_slug=page_slug, extra=extra, **fields,
    )


# ---- fields -------------------------------------------------------------------------------


def _title(ctx: Context) -> str:
    return _given_title(ctx) or _untitled(ctx)


def _given_title(ctx: Context) -> str:
    """The post's own title, or "" when it has none."""
    value = ctx.get("title")
    if isinstance(value, (list, tuple)):
        value = " ".join(str(v) for v in value if v is not None)
    elif isinstance(value, dict):
        value = None
    title = plaintext.clean_line(value) if value is not None else ""
    return plaintext.truncate(title, 500) if title else ""


def _untitled(ctx: Context, fallback: str = "") -> str:
    """A title for a post without one, with a warning."""
    # Fall back to the excerpt's first words, then the file name, and say so.
    fallback = fallback or plaintext.clean_line(ctx.get("summary") or "")
    title = plaintext.first_words(fallback) if fallback else _name_from_path(ctx.raw.path)
    ctx.warn("title", f"missing or empty title; using {title!r}")
    return title


def _name_from_path(path: str) -> str:
    stem = jekyll.filename_slug(os.path.splitext(os.path.basename(path))[0])
    return re.sub(r"[-_]+", " ", stem).strip() or stem


def _published(ctx: Context) -> datetime:
    value = ctx.get("published")
    stem = os.path.splitext(os.path.basename(ctx.raw.path))[0]
    if value is not None and not isinstance(value, bool):
        try:
            return dates.parse(value, ctx.tz)
        except dates.DateError as e:
            from_name = jekyll.filename_date(stem) or jekyll.compact_date(stem)
            if from_name is None or "no date" not in str(e):
                hint = "; name the file YYYY-MM-DD-title or give a full date" if "no date" in str(e) else ""
                raise ctx.fail("published", f"bad date: {e}{hint}") from None
            ctx.warn("published", f"date {value!r} has no date in it; using the file name's {from_name}")
            return dates.parse(from_name, _offset_only(value) or ctx.tz)
    from_name = jekyll.filename_date(stem)
    if from_name is None and ctx.collection is not None and ctx.collection[0] != "posts" \
            and ctx.raw.mtime is not None:
        # Jekyll dates an undated collection document by the time of the build; the file's own
        # time is that without changing from one build to the next.
        when = datetime.fromtimestamp(ctx.raw.mtime, UTC).replace(microsecond=0)
        ctx.warn("published", f"no date in a document of the {ctx.collection[0]!r} collection; "
                              f"using the file's modification time {dates.rfc3339(when)}")
        return when
    if from_name is None:
        raise ctx.fail("published", "no date: set 'date' (or 'publishedDateTime'), "
                                    "or name the file YYYY-MM-DD-title")
    return dates.parse(from_name, ctx.tz)


def _offset_only(value: Any) -> tzinfo | None:
    """`+0800`, what a template writes when its date variable is empty: the offset still says
    which day the file name's date is in."""
    m = re.fullmatch(r"\s*([+-])(\d{2}):?(\d{2})\s*", value) if isinstance(value, str) else None
    if m is None:
        return None
    minutes = int(m.group(2)) * 60 + int(m.group(3))
    if minutes >= 24 * 60:
        return None
    return timezone(timedelta(minutes=-minutes if m.group(1) == "-" else minutes))


def _updated(ctx: Context, published: datetime) -> datetime:
    value = ctx.get("updated")
    if value is None:
        return published
    try:
        return max(dates.parse(value, ctx.tz), published)
    except dates.DateError as e:
        ctx.warn("updated", f"ignoring bad update date: {e}")
        return published


def _url(ctx: Context, value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        ctx.warn(name, f"ignoring URL that is a {type(value).__name__}, not text")
        return None
    url = clean_url(value, ctx.base)
    if url is None:
        ctx.warn(name, f"ignoring URL {plaintext.truncate(value.strip(), 80)!r}: not an http(s) URL")
    return url


def _clean_id(value: Any) -> str:
    return quote(plaintext.strip_illegal(str(value)).strip(), safe=":/?#[]@!$&'()*+,;=%~")


def _moves_with_site(ctx: Context) -> bool:
    """Whether the post's URL was written relative to base_url, so it changes when the site
    moves: then it is no id (ids never move)."""
    value = ctx.get("url")
    relative = isinstance(value, str) and not value.strip().lower().startswith(("http://", "https://"))
    return relative and not ctx.raw.site.get("url")


def tag_uri(settings: Settings, path: str) -> str:
    """RFC 4151 id from the site's fixed authority and date and the post's path: never from the
    title or date, which authors edit, nor from base_url, which moves with the site."""
    return f"tag:{tag_authority(settings)},{settings.tag_date}:{quote(path, safe='/-._~')}"


def tag_authority(settings: Settings) -> str:
    """The `tag_authority` setting; when unset, base_url's host (which the first build records
    with the published site, so later builds keep it: see pipeline.build.pin_ids)."""
    return settings.tag_authority or _host(settings.base_url)


def minted_alike(a: str | None, b: str | None, path: str) -> bool:
    """Whether both ids are tag: URIs minted for `path`, under whatever authority and date."""
    tail = ":" + quote(path, safe="/-._~")
    return all(i is not None and i.startswith("tag:") and i.endswith(tail) for i in (a, b))


@lru_cache(maxsize=16)
def _host(base_url: str) -> str:
    return urlsplit(base_url).hostname or "localhost"


def page_slug_for(path: str) -> str:
    # a page's URL is the link readers hold: it keeps the spelling it was first published under
    return slugs.legacy_slug(os.path.splitext(path)[0].replace("/", " "))


def page_link(settings: Settings, slug: str) -> str:
    """URL of the page the service writes for a post."""
    return urls.page_url(settings.base_url, slug)


def _has_output(ctx: Context) -> bool:
    """Whether Jekyll writes a page for the document (`output: false` collections have none:
    their documents get the service's own page)."""
    if ctx.collection is None or ctx.collection[0] == "posts":
        return True
    return ctx.collection[1].get("output") is True


def _permalink_url(ctx: Context, published: datetime, categories: list[str]) -> str:
    raw = ctx.raw
    stem = os.path.splitext(os.path.basename(raw.path))[0]
    own = ctx.get("permalink")
    slug = str(ctx.get("slug") or jekyll.filename_slug(stem))
    local = published.astimezone(ctx.tz)
    name, options = ctx.collection or ("posts", EMPTY)
    pattern = options.get("permalink")
    if not pattern:  # posts follow the site's permalink; other collections their own default
        pattern = raw.site.get("permalink") if name == "posts" else jekyll.COLLECTION_PERMALINK
    inside = raw.path.split(f"_{name}/", 1)[-1]
    path = jekyll.permalink(str(own or pattern or ""), local, categories, slug, name, os.path.splitext(inside)[0])
    url = ctx.base.rstrip("/") + path
    return links.clean_url(url, ctx.base) or ctx.base  # the site's URL is checked: only its path may need encoding


def _is_html_file(path: str) -> bool:
    return path.lower().endswith((".html", ".htm"))


def _is_draft(meta: Mapping[str, Any]) -> bool:
    published = meta.get("published")
    if published is False or (isinstance(published, str) and published.strip().lower() in ("false", "no")):
        return True
    draft = meta.get("draft")
    return draft is True or (isinstance(draft, str) and draft.strip().lower() in ("true", "yes"))


def _topics(ctx: Context, names: Any, split_words: bool) -> tuple[Topic, ...]:
    raw_names = jekyll.words(names) if split_words or not isinstance(names, str) else [names]
    aliases = {k.casefold(): v for k, v in ctx.settings.topic_aliases.items()}
    seen: dict[str, Topic] = {}
    for name in raw_names:
        clean = plaintext.truncate(plaintext.clean_line(name), MAX_TOPIC_NAME)
        if not clean:
            continue
        clean = aliases.get(clean.casefold(), clean)
        topic = _topic(clean)
        seen.setdefault(topic.slug, topic)
    if len(seen) > MAX_TOPICS:
        ctx.warn("news_topics", f"{len(seen)} topics; keeping the first {MAX_TOPICS}")
    return tuple(list(seen.values())[:MAX_TOPICS])


# The same few topics and providers recur in thousands of posts: one shared object each keeps
# the service's memory down (the model is frozen, so sharing is safe).
@lru_cache(maxsize=8192)
def _topic(name: str) -> Topic:
    return Topic(name, slugs.slug(name))


@lru_cache(maxsize=8192)
def _source(name: str, domain: str = "", url: str = "") -> Source:
    return Source(name, domain, url)


def _topic_names(ctx: Context) -> list[str]:
    """The first of `topics`, `tags`, `keywords`, after Jekyll's `categories` in a Jekyll post.
    The keys depend on what the front matter is, never on whether a body follows it: a
    newsletter (news fields, then HTML) counts its `topics` as a news item does, and a scraper's
    `category: news` on every item is no topic."""
    news = any(k in ctx.raw.meta for k in _NEWS_MARKERS)
    names = [] if news else jekyll.words(ctx.get("categories"))
    value = ctx.get("news_topics")
    key = next((k for k in ALIASES["news_topics"] if ctx.raw.meta.get(k) is value), None)
    if key == "tags" or isinstance(value, (list, tuple)):  # Jekyll splits a string of tags on spaces
        names += jekyll.words(value)
    elif value is not None:
        names.append(str(value))
    return names


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return int(value)


def _provider(ctx: Context) -> Source | None:
    value = ctx.get("provider")
    if isinstance(value, str):
        return _source(plaintext.clean_line(value))
    if not isinstance(value, Mapping):
        return None
    domain = plaintext.clean_line(value.get("domain") or "")
    url = value.get("url")
    url = clean_url(url, ctx.base) if isinstance(url, str) else None
    if url is None and domain and re.match(r"^[A-Za-z0-9.-]+\.[A-Za-z]{2,}$", domain):
        url = f"https://{domain}/"
    return _source(plaintext.clean_line(value.get("name") or domain), domain, url or "")


def _images(ctx: Context) -> tuple[Image, ...]:
    value = ctx.get("images")
    items = value if isinstance(value, list) else [value] if value is not None else []
    images = []
    for item in items:
        if isinstance(item, str):
            item = {"url": item}
        if not isinstance(item, Mapping):
            continue
        url = item.get("url") or item.get("path") or item.get("src")
        url = clean_url(url, ctx.base) if isinstance(url, str) else None
        if url:
            images.append(Image(url, _dimension(item.get("width")), _dimension(item.get("height")),
                                plaintext.clean_line(item.get("title") or "")))
    return tuple(images)


def _dimension(value: Any) -> int | None:
    number = _int(value)
    return number if number is not None and 0 < number < 100_000 else None


def _related(ctx: Context) -> tuple[tuple[Related, ...], int]:
    """The first `related_shown` related items with a URL and a title, and how many more there
    are. Those are only counted, never built: a scraped news item lists dozens (a real site's
    drafts hold ~30 each), and only the first few are ever shown."""
    value = ctx.get("related")
    if not isinstance(value, list):
        return (), 0
    shown = ctx.settings.related_shown
    base = ctx.base
    out: list[Related] = []
    more = 0
    for item in value:
        if type(item) is not dict and not isinstance(item, Mapping):
            continue
        get = item.get
        url = get("webUrl") or get("originalUrl") or get("url")
        url = clean_url(url, base) if isinstance(url, str) else None
        if not url:
            continue
        if len(out) == shown:
            title = get("title") or ""
            # whether clean_line(title) is not empty; plain ASCII with no entity at once
            if type(title) is not str:
                more += plaintext.clean_line(title) != ""
            elif title.isascii() and title.isprintable() and "&" not in title:
                more += title != "" and not title.isspace()
            else:
                more += _related_title(title) != ""
            continue
        title = get("title") or ""
        title = _related_title(title) if type(title) is str else plaintext.clean_line(title)
        if not title:
            continue
        try:
            when = dates.parse(item["publishedDateTime"], ctx.tz) if get("publishedDateTime") else None
        except dates.DateError:
            when = None
        provider = get("provider")
        source = None
        if isinstance(provider, Mapping):
            name, domain = provider.get("name") or "", provider.get("domain") or ""
            if type(name) is str and type(domain) is str:
                source = _related_source(name, domain)
            else:
                source = _source(plaintext.clean_line(name), plaintext.clean_line(domain))
        out.append(Related(title, url, when, source))
    return tuple(out), more


#: A related story's title, cleaned once: the same stories are related to many items.
_related_title = lru_cache(maxsize=4096)(plaintext.clean_line)


@lru_cache(maxsize=4096)
def _related_source(name: str, domain: str) -> Source:
    return _source(plaintext.clean_line(name), plaintext.clean_line(domain))


def _authors(ctx: Context) -> tuple[str, ...]:
    value = ctx.get("authors")
    if value is None:
        value = ctx.raw.site.get("author")
    items = value if isinstance(value, list) else [value] if value is not None else []
    names = []
    for item in items:
        if isinstance(item, Mapping):
            item = item.get("name")
        name = plaintext.clean_line(item) if isinstance(item, (str, int)) else ""
        if name:
            names.append(plaintext.truncate(name, 200))
    return tuple(dict.fromkeys(names))


def _language(ctx: Context, sample: str) -> str:
    value = ctx.get("language") or ctx.raw.site.get("lang")
    if isinstance(value, str) and re.match(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$", value.strip()):
        return value.strip().replace("_", "-")
    return plaintext.guess_language(sample, ctx.settings.language)
