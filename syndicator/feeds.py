"""Group posts into the feeds to write: `all` plus one per topic, newest first."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime

from syndicator.config import Settings
from syndicator.model import Feed, Post, Topic


def sort_key(post: Post) -> tuple[float, float, str]:
    """Newest first; ties broken by id so the order never depends on the file system."""
    return (-post.published.timestamp(), -post.updated.timestamp(), post.id)


def topic_names(posts: Iterable[Post]) -> dict[str, Topic]:
    """One display name per slug: the most used spelling, then the alphabetically first."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for post in posts:
        for topic in post.topics:
            counts[topic.slug][topic.name] += 1
    return {
        slug: Topic(min(names, key=lambda n: (-names[n], n)), slug) for slug, names in sorted(counts.items())
    }


def _language(posts: tuple[Post, ...], default: str) -> str:
    if not posts:
        return default
    counts = Counter(p.language for p in posts)
    return min(counts, key=lambda lang: (-counts[lang], lang))


def _updated(posts: tuple[Post, ...], settings: Settings) -> datetime:
    """Newest item update; an empty feed carries the site's fixed tag_date, which is
    plausible to validators (not 1970) and never changes between builds."""
    newest = max((p.updated for p in posts), default=None)
    return newest or datetime.fromisoformat(settings.tag_date).replace(tzinfo=UTC)


def plan(posts: Iterable[Post], settings: Settings, keep_topics: Iterable[Topic] = ()) -> list[Feed]:
    """The feeds for these (already filtered) posts. `keep_topics` are topics that must get a
    feed even when they have no items left, so subscribers see it empty rather than gone."""
    ordered = sorted(posts, key=sort_key)
    topics = topic_names(ordered)
    for topic in keep_topics:
        topics.setdefault(topic.slug, topic)
    by_topic: dict[str, list[Post]] = defaultdict(list)
    for post in ordered:
        for topic in post.topics:
            by_topic[topic.slug].append(post)
    feeds = [_feed(settings, "all", "All posts", "all", tuple(ordered), None)]
    for slug, topic in sorted(topics.items()):
        feeds.append(_feed(settings, slug, topic.name, f"topics/{slug}", tuple(by_topic.get(slug, ())), topic))
    return feeds


def _feed(settings: Settings, key: str, name: str, stem: str, posts: tuple[Post, ...], topic: Topic | None) -> Feed:
    shown = posts[: settings.items_per_feed]
    return Feed(
        key=key,
        title=f"{settings.site_title} · {name}",
        description=settings.site_description if topic is None else f"{settings.site_description}: {name}",
        stem=stem,
        home_url=settings.base_url,
        language=_language(shown, settings.language),
        author=settings.author,
        posts=shown,
        updated=_updated(shown, settings),
        topic=topic,
    )


def feed_url(settings: Settings, stem: str, fmt: str) -> str:
    return f"{settings.base_url}{stem}.{fmt}"
