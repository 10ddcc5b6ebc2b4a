"""Collecting stage: records → the published posts (unique ids and page slugs, drafts held back).

One `apply(changed paths)` serves both passes: a cold build applies every path to an empty
collection; an incremental one applies the paths that changed. A change that touches an id or
a page slug shared with another file cannot be applied locally (which file owns it depends on
all of them), so the collection starts again from empty and applies every path.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from syndicator import urls
from syndicator.config import Settings
from syndicator.model import Post, Problem
from syndicator.store import Record


@dataclass
class Delta:
    """The published posts that went and came."""

    removed: list[Post] = field(default_factory=list)
    added: list[Post] = field(default_factory=list)
    #: applied from empty: every path was applied
    full: bool = False


class _Shared(Exception):
    """The change touches an id or a page slug another file shares."""


class Collection:
    """The published posts by path, and what it takes to keep them unique."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.reset()

    def reset(self) -> None:
        #: path -> the post as published (page slug made unique)
        self.published: dict[str, Post] = {}
        #: path -> the id its good post claims; id -> how many good posts claim it
        self._claim: dict[str, str] = {}
        self._claims: Counter[str] = Counter()
        self.not_posts: set[str] = set()
        #: page slugs the published posts asked for / got; paths whose slug got a suffix
        self._natural_slugs: Counter[str] = Counter()
        self._final_slugs: Counter[str] = Counter()
        self._suffixed: set[str] = set()
        #: path -> its problems (the record's, then a duplicate id)
        self.problems: dict[str, tuple[Problem, ...]] = {}
        self.drafts = 0

    @property
    def posts_read(self) -> int:
        return len(self._claim)

    def apply(self, records: Mapping[str, Record], changed: Iterable[str]) -> Delta:
        """Bring the collection up to date with the records of `changed` paths."""
        try:
            removed = self._withdraw(changed)
            fresh = not self._claim
            return Delta(removed, self._admit(records, sorted(changed), fresh), full=False)
        except _Shared:
            self.reset()
            return Delta([], self._admit(records, sorted(records), True), full=True)

    def _withdraw(self, changed: Iterable[str]) -> list[Post]:
        """Take out what `changed` paths contributed; raises _Shared when that is not local."""
        removed: list[Post] = []
        for rel in changed:
            self.problems.pop(rel, None)
            self.not_posts.discard(rel)
            post_id = self._claim.pop(rel, None)
            if post_id is None:
                continue
            if self._claims[post_id] != 1:
                raise _Shared
            del self._claims[post_id]
            old = self.published.pop(rel, None)
            if old is None:
                self.drafts -= 1
                continue
            removed.append(old)
            self._release_slug(rel, old.page_slug)
        return removed

    def _release_slug(self, rel: str, slug: str | None) -> None:
        if slug is None:
            return
        if rel in self._suffixed or self._natural_slugs[slug] != 1 or self._final_slugs[slug] != 1:
            raise _Shared
        del self._natural_slugs[slug], self._final_slugs[slug]

    def _admit(self, records: Mapping[str, Record], paths: list[str], fresh: bool) -> list[Post]:
        """Add the records of `paths` (sorted). `fresh`: nothing else claims an id or a slug
        yet, so the best of the files sharing an id owns it (see `owners`) and the others are
        duplicates; otherwise a shared one raises _Shared."""
        added: list[Post] = []
        owners = _owners(records, paths) if fresh else {}
        for rel in paths:
            record = records.get(rel)
            if record is None:
                continue
            problems = list(record.problems)
            post = self._admit_one(rel, record, fresh, owners, problems)
            if post is not None:
                added.append(post)
            if problems:
                self.problems[rel] = tuple(problems)
        return added

    def _admit_one(self, rel: str, record: Record, fresh: bool, owners: dict[str, tuple[str, Post]],
                   problems: list[Problem]) -> Post | None:
        if record.not_a_post:
            self.not_posts.add(rel)
            return None
        post = record.good  # while the file is broken: its last good version
        if post is None:
            return None
        if self._claims.get(post.id) and not fresh:
            raise _Shared
        self._claim[rel] = post.id
        self._claims[post.id] += 1
        owner, kept = owners.get(post.id, (rel, post))
        if owner != rel:
            problems.append(_duplicate(rel, post, owner, kept))
            return None
        if post.draft and not self.settings.include_drafts:
            self.drafts += 1
            return None
        post = self._unique_page(rel, post, fresh)
        self.published[rel] = post
        return post

    def _unique_page(self, rel: str, post: Post, fresh: bool) -> Post:
        """Two paths that slugify alike: the later one gets a stable suffix."""
        natural = post.page_slug
        if natural is None:
            return post
        if self._final_slugs.get(natural) or (self._natural_slugs.get(natural) and not fresh):
            if not fresh:
                raise _Shared
            slug = f"{natural}-{hashlib.sha1(post.path.encode()).hexdigest()[:6]}"
            post = replace(post, page_slug=slug, link=urls.page_url(self.settings.base_url, slug))
            self._suffixed.add(rel)
        self._natural_slugs[natural] += 1
        self._final_slugs[post.page_slug or ""] += 1
        return post


def _preference(rel: str, post: Post) -> tuple[bool, float, float, str]:
    """Of the files sharing an id, the smallest wins: published before draft (a crawled copy
    held back as a draft must not hide the story), then the newer, then the first by path."""
    return post.draft, -post.published.timestamp(), -post.updated.timestamp(), rel


def _owners(records: Mapping[str, Record], paths: Iterable[str]) -> dict[str, tuple[str, Post]]:
    """id -> the path that owns it and its post, among the good posts of `paths`, for the ids
    more than one of them claims (each other id is owned by the one post that has it)."""
    posts = []
    for rel in paths:
        record = records.get(rel)
        post = record.good if record is not None and not record.not_a_post else None
        if post is not None:
            posts.append((rel, post))
    claims = Counter(post.id for _, post in posts)
    best: dict[str, tuple[tuple[bool, float, float, str], str, Post]] = {}
    for rel, post in posts:
        if claims[post.id] == 1:
            continue
        rank = _preference(rel, post)
        if post.id not in best or rank < best[post.id][0]:
            best[post.id] = (rank, rel, post)
    return {post_id: (rel, post) for post_id, (_, rel, post) in best.items()}


def _duplicate(rel: str, post: Post, owner: str, kept: Post) -> Problem:
    """The same story twice (the same URL: a page crawled twice) is a warning, since every real
    news folder has some; two different posts claiming one id is an error."""
    if kept.link == post.link:
        why = "published" if kept.draft is not post.draft else "newer" if kept.published != post.published else "first"
        return Problem(rel, f"same story as {owner} (id {post.id!r}); the {why} copy is kept, this one skipped",
                       severity="warning")
    return Problem(rel, f"duplicate id {post.id!r}: already used by {owner}; skipped")
