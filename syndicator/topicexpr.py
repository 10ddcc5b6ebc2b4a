"""Topic expressions: the feeds of topic combinations at `topics/<expression>.<format>`.

    expression := group ("," group)*     a post in either group
    group      := term ("+" term)*       a post with every term
    term       := slug | "-" slug        the topic, or not the topic

Slugs are spelled as the topic feeds spell them (`[a-z0-9-]`, never starting with `-`).
A group made of exclusions only applies to the whole feed: `ai,-azure` is "AI, except
Azure", and `-azure` alone is every post except Azure's.

Every expression has one canonical spelling, and the others answer 301 to it, so caches and
readers share one URL: slugs in lower case and through the redirect table (an alias's slug
becomes its topic's); exclusions folded into every group; repeats, contradictory groups
(`ai+-ai`) and groups another one covers (`ai,ai+azure` is `ai`) dropped; terms and groups
sorted; exclusions common to every group written once at the end (`ai+-azure` is
`ai,-azure`). A single slug is the topic's own feed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

#: Bounds of what a URL may ask for.
MAX_LENGTH = 512
MAX_TERMS = 16

AND, OR, NOT = "+", ",", "-"
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*\Z")


class ExpressionError(ValueError):
    """The expression is malformed or too large (the message says how)."""


@dataclass(frozen=True, slots=True)
class Group:
    """Posts with every topic of `all_of` and none of `none_of` (`all_of` empty: every post)."""

    all_of: frozenset[str]
    none_of: frozenset[str]

    def covers(self, other: Group) -> bool:
        """Every post `other` selects is selected by this group too."""
        return self.all_of <= other.all_of and self.none_of <= other.none_of


@dataclass(frozen=True, slots=True)
class Expression:
    """Groups in canonical order; a post is in the feed when one of them selects it."""

    groups: tuple[Group, ...]

    @property
    def slugs(self) -> frozenset[str]:
        return frozenset().union(*(g.all_of | g.none_of for g in self.groups))

    @property
    def single(self) -> str | None:
        """The slug when this is one topic's own feed."""
        if len(self.groups) == 1 and len(self.groups[0].all_of) == 1 and not self.groups[0].none_of:
            return next(iter(self.groups[0].all_of))
        return None

    def text(self) -> str:
        """The canonical spelling."""
        common = frozenset.intersection(*(g.none_of for g in self.groups))
        parts = sorted(AND.join([*sorted(g.all_of), *(NOT + s for s in sorted(g.none_of - common))])
                       for g in self.groups if g.all_of)
        return OR.join([*parts, *(NOT + s for s in sorted(common))])

    def label(self, name: Callable[[str], str]) -> str:
        """For people: `AI + Azure or Cloud, except Hardware` with the topics' display names."""
        common = frozenset.intersection(*(g.none_of for g in self.groups))
        parts = []
        for group in sorted(self.groups, key=lambda g: sorted(g.all_of)):
            if group.all_of:
                own = sorted(group.none_of - common)
                words = " + ".join(name(s) for s in sorted(group.all_of))
                parts.append(words + (" without " + ", ".join(name(s) for s in own) if own else ""))
        text = " or ".join(parts) or "All posts"
        return text + (", except " + ", ".join(name(s) for s in sorted(common)) if common else "")


def parse(text: str, resolve: Callable[[str], str] = lambda s: s) -> Expression:
    """The expression `text` spells, in canonical form; `resolve` maps a slug to the one it
    redirects to. Raises ExpressionError."""
    if not text or len(text) > MAX_LENGTH:
        raise ExpressionError(f"a topic expression has 1 to {MAX_LENGTH} characters")
    groups: list[tuple[set[str], set[str]]] = []
    excluded: set[str] = set()
    terms = 0
    for spelled in text.split(OR):
        all_of: set[str] = set()
        none_of: set[str] = set()
        for term in spelled.split(AND):
            terms += 1
            negated = term.startswith(NOT)
            slug = term[1:] if negated else term
            if not _SLUG.match(slug.lower()):
                raise ExpressionError(f"not a topic slug: {term!r} (topics joined by '+' for all of them, "
                                      f"',' for either, '-' before a topic to leave it out)")
            (none_of if negated else all_of).add(resolve(slug.lower()))
        if all_of:
            groups.append((all_of, none_of))
        else:
            excluded |= none_of
    if terms > MAX_TERMS:
        raise ExpressionError(f"a topic expression has at most {MAX_TERMS} topics")
    made = ({Group(frozenset(a), frozenset(n | excluded)) for a, n in groups}
            or {Group(frozenset(), frozenset(excluded))})
    kept = [g for g in made if not g.all_of & g.none_of]
    if not kept:
        raise ExpressionError("the expression excludes every topic it asks for")
    kept = [g for g in kept if not any(o is not g and o.covers(g) for o in kept)]
    expression = Expression(tuple(sorted(kept, key=lambda g: (sorted(g.all_of), sorted(g.none_of)))))
    return expression
