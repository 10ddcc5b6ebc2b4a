"""What custom feeds are made of: every feed's posts as the last pass left them.

A Catalog is immutable: a pass makes the next one from the last, re-listing only the feeds
whose posts changed (`Planner.update` names them), so the web app's threads read one
consistent snapshot while the builder works on the next, without a lock. It remembers which
feeds the last few passes changed, so a cache of custom feeds drops only the answers made from
those (see `changed_since`).
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import islice
from types import MappingProxyType

from syndicator import urls
from syndicator.filters import Filters, Haystack
from syndicator.model import Post, Related
from syndicator.pipeline.feeds import Entry, Planner, sort_key
from syndicator.stories import Stories, grouped
from syndicator.topicexpr import Expression, Group

#: Passes whose changed feeds are remembered; a cache further behind starts afresh.
HISTORY = 64
#: Lists at least this long are searched through a Haystack, at most this many kept.
HAYSTACK_MIN = 2000
HAYSTACKS = 4
#: A pass that changed at most this many posts patches the lists it changed.
PATCH_MAX = 64


@dataclass(frozen=True, slots=True)
class Catalog:
    generation: int = 0
    #: feed stem (`all`, `topics/<slug>`) -> every post of the feed, newest first
    lists: Mapping[str, tuple[Post, ...]] = field(default_factory=lambda: MappingProxyType({}))
    #: topic slug -> display name
    names: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: (generation, stems that pass changed) for the last HISTORY passes
    changes: tuple[tuple[int, frozenset[str]], ...] = ()
    #: feed stem -> the planner's sort entries of `lists`, position by position
    entries: Mapping[str, tuple[Entry, ...]] = field(default_factory=lambda: MappingProxyType({}))
    #: every published post's story (kept by the builder; None: not kept)
    stories: Stories | None = None
    #: makes and keeps the stories when a grouped feed first asks for them (None: never kept)
    want_stories: Callable[[], Stories] | None = field(default=None, compare=False)
    #: the haystacks of long lists, made on first use (this catalog's posts only)
    _haystacks: dict[str, Haystack] = field(default_factory=dict, compare=False)
    #: stem -> (its list a pass or more ago, that list's haystack): what a changed list's
    #: haystack is patched from on first use (Haystack.patched)
    _bases: dict[str, tuple[Sequence[Post], Haystack]] = field(default_factory=dict, compare=False)

    def advance(self, planner: Planner, changed: Iterable[str], full: bool = False,
                removed: Sequence[Post] = (), added: Sequence[Post] = (), stories: Stories | None = None) -> Catalog:
        """The catalog after a pass: `changed` stems re-listed from the planner (every one when
        `full`, the planner having started afresh). A list that a few posts (`removed`,
        `added`) changed is patched rather than looked up again post by post: `all` is in
        every change, and listing its 100,000 posts afresh costs more than the rest of a pass."""
        stems = set(planner.stems()) if full else set(changed)
        if not stems and not full:
            return self if stories is self.stories else self.with_stories(stories)
        lists = {} if full else dict(self.lists)
        entries = {} if full else dict(self.entries)
        names = {} if full else dict(self.names)
        patch = not full and len(removed) + len(added) <= PATCH_MAX
        for stem in stems:
            now = planner.entries(stem)
            slug = urls.topic_of_stem(stem)
            if not now and stem != urls.ALL_STEM:
                lists.pop(stem, None)
                entries.pop(stem, None)
                if slug is not None:
                    names.pop(slug, None)
                continue
            made = _patched(self, stem, now, removed, added) if patch and stem in self.lists else None
            lists[stem], entries[stem] = made or (planner.posts(stem) or (), tuple(now))
            if slug is not None:
                topic = planner.topic(slug)
                if topic is not None:
                    names[slug] = topic.name
        generation = self.generation + 1
        mark = frozenset(["*"]) if full else frozenset(stems)
        haystacks, bases = self._carried(stems, lists) if not full else ({}, {})
        return Catalog(generation, MappingProxyType(lists), MappingProxyType(names),
                       (*self.changes[-(HISTORY - 1):], (generation, mark)), MappingProxyType(entries), stories,
                       self.want_stories, haystacks, bases)

    def with_stories(self, stories: Stories | None) -> Catalog:
        """This catalog with other stories (its haystacks, copied, still hold)."""
        return replace(self, stories=stories, _haystacks=dict(self._haystacks), _bases=dict(self._bases))

    def _carried(self, changed: set[str], lists: Mapping[str, tuple[Post, ...]]
                 ) -> tuple[dict[str, Haystack], dict[str, tuple[Sequence[Post], Haystack]]]:
        """What the next catalog keeps of this one's haystacks: as they are for the lists it
        did not change, as bases to patch for those it did (an older base when this catalog
        made none)."""
        haystacks = {stem: made for stem, made in self._haystacks.items()
                     if stem not in changed and lists.get(stem) is self.lists.get(stem)}
        bases: dict[str, tuple[Sequence[Post], Haystack]] = {
            stem: (self.lists[stem], made) for stem, made in self._haystacks.items()
            if stem in changed and stem in lists}
        for stem, base in self._bases.items():
            if stem in lists and stem not in haystacks:
                bases.setdefault(stem, base)
        return haystacks, bases

    def changed_since(self, generation: int) -> frozenset[str] | None:
        """The stems changed after `generation`; None when unknown (too long ago, or a pass
        that started afresh): then anything may have changed."""
        if generation == self.generation:
            return frozenset()
        later = [stems for g, stems in self.changes if g > generation]
        if len(later) != self.generation - generation or any("*" in s for s in later):
            return None
        return frozenset().union(*later)

    def unknown(self, expression: Expression) -> list[str]:
        """The slugs of `expression` that name no topic."""
        return sorted(s for s in expression.slugs if s not in self.names)

    @staticmethod
    def depends_on(expression: Expression | None, grouped: bool = False) -> frozenset[str]:
        """The stems whose change can change the feed of `expression` (None: every post);
        grouped by story, any post's (a story gathers posts of every topic)."""
        if expression is None or grouped:
            return frozenset([urls.ALL_STEM])
        stems = {urls.topic_stem(s) for s in expression.slugs}
        if any(not g.all_of for g in expression.groups):
            stems.add(urls.ALL_STEM)
        return frozenset(stems)

    def haystack(self, stem: str) -> Haystack | None:
        """The titles and summaries of a long list as one text each (filters.Haystack); None for
        a list short enough to search post by post."""
        posts = self.lists.get(stem, ())
        if len(posts) < HAYSTACK_MIN:
            return None
        made = self._haystacks.get(stem)
        if made is None:
            base = self._bases.pop(stem, None)
            made = Haystack(posts) if base is None else Haystack.patched(*base, posts)
            if len(self._haystacks) >= HAYSTACKS:
                self._haystacks.pop(next(iter(self._haystacks)), None)
            self._haystacks[stem] = made
        return made

    def select(self, expression: Expression | None, accept: Callable[[Post], bool] | None,
               limit: int, wanted: Filters | None = None) -> list[Post]:
        """The newest `limit` posts of `expression` (None: every post) that `accept` keeps;
        `wanted`'s patterns narrow a long list down first (Filters.candidates)."""
        return list(islice(self._stream(expression, accept, wanted), limit))

    def select_stories(self, expression: Expression | None, accept: Callable[[Post], bool] | None,
                       limit: int, wanted: Filters | None = None) -> tuple[list[Post], dict[str, tuple[Related, ...]]]:
        """As `select`, one item per story (see stories.grouped); each post alone when no
        stories are kept."""
        stream = self._stream(expression, accept, wanted)
        stories = self.stories
        if stories is None and self.want_stories is not None:
            stories = self.want_stories()
        if stories is None:
            return list(islice(stream, limit)), {}

        def admits(post: Post) -> bool:
            slugs = {t.slug for t in post.topics}
            return ((expression is None or any(g.all_of <= slugs and not g.none_of & slugs for g in expression.groups))
                    and (accept is None or accept(post)))

        return grouped(stream, stories, admits, limit)

    def _stream(self, expression: Expression | None, accept: Callable[[Post], bool] | None,
                wanted: Filters | None) -> Iterator[Post]:
        single = urls.ALL_STEM if expression is None else expression.single
        stem = single if expression is None or single is None else urls.topic_stem(single)
        haystack = self.haystack(stem) if wanted is not None and stem is not None else None
        lines = wanted.candidates(haystack) if wanted is not None and haystack is not None else None
        if lines is not None and stem is not None:
            posts = self.lists[stem]
            stream: Iterator[Post] = (posts[i] for i in lines)
        elif expression is None:
            stream = iter(self.lists.get(urls.ALL_STEM, ()))
        elif len(expression.groups) == 1:
            stream = self._group(expression.groups[0])
        else:
            stream = _distinct(heapq.merge(*(self._group(g) for g in expression.groups), key=sort_key))
        if accept is not None:
            stream = filter(accept, stream)
        return stream

    def _group(self, group: Group) -> Iterator[Post]:
        if group.all_of:
            # walk the shortest list of the topics it needs; check the rest on each post
            base = min((self.lists.get(urls.topic_stem(s), ()) for s in group.all_of), key=len)
        else:
            base = self.lists.get(urls.ALL_STEM, ())
        need, avoid = group.all_of, group.none_of
        if len(need) <= 1 and not avoid:
            return iter(base)

        def keep(post: Post) -> bool:
            slugs = {t.slug for t in post.topics}
            return need <= slugs and not avoid & slugs

        return filter(keep, base)


def _patched(catalog: Catalog, stem: str, now: list[Entry], removed: Sequence[Post],
             added: Sequence[Post]) -> tuple[tuple[Post, ...], tuple[Entry, ...]] | None:
    """The list at `stem` with `removed` taken out and `added` put in, checked against the
    planner's entries `now`; None when they differ (then the list is made afresh)."""
    keys, posts = list(catalog.entries.get(stem, ())), list(catalog.lists[stem])
    if len(keys) != len(posts):
        return None
    for post in removed:
        key = (sort_key(post), post.path)
        i = bisect.bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            del keys[i], posts[i]
    for post in added:
        if stem == urls.ALL_STEM or any(urls.topic_stem(t.slug) == stem for t in post.topics):
            key = (sort_key(post), post.path)
            i = bisect.bisect_left(keys, key)
            keys.insert(i, key)
            posts.insert(i, post)
    if keys != now:
        return None
    return tuple(posts), tuple(keys)


def _distinct(posts: Iterator[Post]) -> Iterator[Post]:
    """Merged group streams give a post in two groups twice, one after the other."""
    last = None
    for post in posts:
        if post is not last:
            yield post
        last = post
