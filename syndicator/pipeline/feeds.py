"""Planning stage, feeds: `all` plus one per topic, newest first, kept current change by change."""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime

from syndicator import urls
from syndicator.config import Settings
from syndicator.model import Feed, Post, Related, Topic

#: A post's sort key (see sort_key).
Key = tuple[float, str]
#: (sort_key, path): a post's place in a feed's sorted list.
Entry = tuple[Key, str]


def sort_key(post: Post) -> Key:
    """Newest first; ties broken by id so the order never depends on the file system, nor on
    edits (`updated`): a post edited among others of the same date keeps its place, in the feed
    and in its archive page."""
    return (-post.published.timestamp(), post.id)


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
    feeds = [_feed(settings, "all", "All posts", urls.ALL_STEM, tuple(ordered), None)]
    for slug, topic in sorted(topics.items()):
        feeds.append(_feed(settings, slug, topic.name, urls.topic_stem(slug), tuple(by_topic.get(slug, ())), topic))
    return feeds


def _feed(settings: Settings, key: str, name: str, stem: str, posts: tuple[Post, ...], topic: Topic | None) -> Feed:
    shown = posts[: settings.items_per_feed]
    return Feed(
        key=key,
        title=f"{settings.site_title} · {name}",
        description=settings.site_description if topic is None else f"{settings.site_description}: {name}",
        stem=stem,
        home_url=urls.feed_page_url(settings.base_url, stem),
        language=_language(shown, settings.language),
        author=settings.author,
        posts=shown,
        updated=_updated(shown, settings),
        topic=topic,
        icon_url=settings.base_url + urls.ICON,
    )


def custom(settings: Settings, stem: str, label: str, posts: tuple[Post, ...], home_url: str) -> Feed:
    """A feed people shape on the URL (a topic combination, filters): `label` says what it holds."""
    feed = _feed(settings, stem, label, stem, posts, None)
    return replace(feed, description=f"{settings.site_description}: {label}", home_url=home_url)


def grouped_stems(settings: Settings) -> frozenset[str]:
    """The stems of the feeds written one item per story (the `group_stories` setting)."""
    return frozenset(urls.ALL_STEM if key == "all" else urls.topic_stem(key) for key in settings.group_stories)


def grouped(feed: Feed, items: Iterable[Post], coverage: Mapping[str, tuple[Related, ...]],
            settings: Settings) -> Feed:
    """`feed` with one item per story (`items`, see stories.grouped) and their other coverage."""
    shown = tuple(items)
    return replace(feed, posts=shown, coverage=coverage, language=_language(shown, settings.language),
                   updated=_updated(shown, settings))


def archive_page(feed: Feed, posts: tuple[Post, ...], settings: Settings) -> Feed:
    """An archive page of `feed` holding `posts`: the feed's title and description, the
    language and update of its own items."""
    return replace(feed, posts=posts, language=_language(posts, settings.language),
                   updated=_updated(posts, settings))


def feed_url(settings: Settings, stem: str, fmt: str) -> str:
    return urls.feed_url(settings.base_url, stem, fmt)


class Planner:
    """`plan()` kept up to date one post at a time: every feed's posts in one sorted list (keyed
    by `sort_key`, then path, which is exactly the order `plan()` gives for posts that come in path
    order), so a change touches only the feeds of the posts it adds or removes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        #: feed stem ("all", "topics/<slug>") -> sorted (sort_key, path) of its posts
        self._lists: dict[str, list[Entry]] = {urls.ALL_STEM: []}
        self._posts: dict[Entry, Post] = {}
        #: topic slug -> how often each spelling is used
        self._names: dict[str, Counter[str]] = {}
        self._feeds: dict[str, Feed] = {}

    def update(self, removed: Iterable[Post], added: Iterable[Post]) -> set[str]:
        """Apply a change; returns the stems of the feeds it may have changed (some may be gone).
        Into an empty planner (a cold build's 10,000s) posts are appended and each list sorted
        once at the end."""
        touched = {urls.ALL_STEM}
        for post in removed:
            touched |= self._remove(post)
        if self._posts:
            for post in added:
                touched |= self._add(post)
        else:
            for post in added:
                touched |= self._add(post, list.append)
            for entries in self._lists.values():
                entries.sort()
        for stem in touched:
            self._feeds.pop(stem, None)
        return touched

    def _add(self, post: Post, put: Callable[[list[Entry], Entry], None] = bisect.insort) -> set[str]:
        """`put`: how an entry goes into a list (in order, or appended for a later sort)."""
        entry = (sort_key(post), post.path)
        self._posts[entry] = post
        lists, names = self._lists, self._names
        stems = {urls.ALL_STEM}
        put(lists.setdefault(urls.ALL_STEM, []), entry)
        for topic in post.topics:
            stem = urls.topic_stem(topic.slug)
            stems.add(stem)
            if stem in lists:
                put(lists[stem], entry)
            else:
                lists[stem] = [entry]
            counts = names.get(topic.slug)
            if counts is None:  # (setdefault would build a Counter on every call)
                counts = names[topic.slug] = Counter()
            counts[topic.name] += 1
        return stems

    def _remove(self, post: Post) -> set[str]:
        entry = (sort_key(post), post.path)
        del self._posts[entry]
        stems = {urls.ALL_STEM}
        for stem in [urls.ALL_STEM, *(urls.topic_stem(t.slug) for t in post.topics)]:
            lst = self._lists[stem]
            i = bisect.bisect_left(lst, entry)
            if i < len(lst) and lst[i] == entry:
                del lst[i]
            stems.add(stem)
        for topic in post.topics:
            names = self._names[topic.slug]
            names[topic.name] -= 1
            if names[topic.name] <= 0:
                del names[topic.name]
            if not names:
                del self._names[topic.slug]
                self._lists.pop(urls.topic_stem(topic.slug), None)
        return stems

    def entries(self, stem: str) -> list[Entry]:
        """The sorted entries of the feed at `stem` (all its posts, not only those it shows)."""
        return self._lists.get(stem, [])

    def stream(self, stem: str) -> Iterator[Post]:
        """The posts of the feed at `stem`, newest first, one at a time."""
        return map(self._posts.__getitem__, self._lists.get(stem, []))

    def posts_of(self, entries: Iterable[Entry]) -> tuple[Post, ...]:
        return tuple(self._posts[e] for e in entries)

    def by_entry(self) -> Mapping[Entry, Post]:
        """Every post by its entry (the same in every feed it is in)."""
        return self._posts

    def has_topic(self, slug: str) -> bool:
        return slug in self._names

    def stems(self) -> list[str]:
        """The stems of every feed now."""
        return list(self._lists)

    def posts(self, stem: str) -> tuple[Post, ...] | None:
        """Every post of the feed at `stem`, newest first; None when there is no such feed."""
        entries = self._lists.get(stem)
        if entries is None or (stem != urls.ALL_STEM and not entries):
            return None
        return tuple(map(self._posts.__getitem__, entries))

    def topic(self, slug: str) -> Topic | None:
        """A topic by its slug, with its most used spelling."""
        names = self._names.get(slug)
        if not names:
            return None
        return Topic(min(names, key=lambda name: (-names[name], name)), slug)

    def feed(self, stem: str) -> Feed | None:
        """The feed at `stem` now, or None when there is none."""
        cached = self._feeds.get(stem)
        if cached is not None:
            return cached
        n = self.settings.items_per_feed
        slug = urls.topic_of_stem(stem)
        if slug is None:
            shown = tuple(self._posts[e] for e in self._lists.get(urls.ALL_STEM, [])[:n])
            feed = _feed(self.settings, "all", "All posts", urls.ALL_STEM, shown, None)
        else:
            names = self._names.get(slug)
            if not names:
                return None
            topic = Topic(min(names, key=lambda name: (-names[name], name)), slug)
            shown = tuple(self._posts[e] for e in self._lists[stem][:n])
            feed = _feed(self.settings, slug, topic.name, stem, shown, topic)
        self._feeds[stem] = feed
        return feed

    def feeds(self) -> list[Feed]:
        """What `plan()` would give for the current posts."""
        stems = [urls.ALL_STEM, *(urls.topic_stem(slug) for slug in sorted(self._names))]
        return [f for f in (self.feed(s) for s in stems) if f is not None]
