"""Stories: posts from several sources that report the same news, grouped as one.

A post's **names** are what it is about that two scripts can share: words of its title and
summary (Latin script, lower case, stop words out, a plural's `s` off), tickers (`MSFT.US`,
`(NASDAQ: MSFT)`) and the companies of a small table of names in Chinese, each read as the
English name (`微软` and `MSFT` are `microsoft`; `Facebook` and `FB` are `meta`). A name counts
by how rare it is among the posts: `log((N + 1) / (posts with it + 1))`.

Two posts are the same story when they were published within WINDOW of each other, share
at least MIN_SHARED names, and the rarity of the names they share adds up to THRESHOLD or
more. A story is anchored on its first post (the first seen; a cold build sees posts in the
order they were published): a later post joins the story whose anchor it matches best, and
only the anchor is compared with, so no chain of near matches can merge two stories. The
thresholds are set on the labelled pairs in tests/data/stories/ (precision first: a false
merge hides news).

`Stories` is kept current post by post, as the planner is: a pass adds and removes what
changed, at a cost that follows the change.
"""

from __future__ import annotations

import html
import math
import re
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from urllib.parse import urlsplit

from syndicator.model import Post, Related, Source, summaries

WINDOW = timedelta(days=4)
THRESHOLD = 13.0
MIN_SHARED = 3
MIN_IN_TITLES = 3
#: A name weighs at least this when at most ~1 in 100 posts (past PRIOR) have it.
RARE = 4.5
#: Two posts of one source are one story only when their titles share this much.
SAME_SOURCE_OVERLAP = 0.8
#: Posts assumed beside those of the site, none with the name: on a small site a name shared by
#: a few posts is still rare.
PRIOR = 1000
#: Names in more than this share of the posts are too common to find candidates by.
COMMON = 0.02
#: Anchors compared with at most, per post.
CANDIDATES = 64

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:\.[A-Za-z0-9]+)*")
_TICKER = re.compile(r"\b([A-Z]{1,5})\.(?:US|HK|O|N)\b|\((?:NASDAQ|NYSE|Nasdaq|NYSE American)\s*:\s*([A-Z]{1,5})\)")
_STOP = frozenset("""
a about above after again against all also am an and any are as at be because been before being below between
both but by can could did do does doing down during each few for from further had has have having he her here
hers him his how i if in into is it its itself just let me more most my new no nor not now of off on once only
or other our ours out over own same she should so some such than that the their them then there these they
this those through to too under until up very was we were what when where which while who whom why will with
would you your yours via per say says said one two three first last next year years day days week today
now how get gets use used using make makes made way well like many much may might must need needs news
according announced announce announces including include includes inc ltd co corp company companies
""".split())
#: Names in Chinese (and tickers) read as their English name; `facebook` is `meta`.
ALIASES: dict[str, str] = {
    "微软": "microsoft", "msft": "microsoft", "脸书": "meta", "fb": "meta", "facebook": "meta",
    "英伟达": "nvidia", "nvda": "nvidia", "谷歌": "google", "googl": "google", "goog": "google",
    "亚马逊": "amazon", "amzn": "amazon", "苹果": "apple", "aapl": "apple", "特斯拉": "tesla", "tsla": "tesla",
    "阿里巴巴": "alibaba", "阿里": "alibaba", "baba": "alibaba", "腾讯": "tencent", "百度": "baidu",
    "bidu": "baidu", "华为": "huawei", "英特尔": "intel", "intc": "intel", "甲骨文": "oracle", "orcl": "oracle",
    "高通": "qualcomm", "qcom": "qualcomm", "三星": "samsung", "台积电": "tsmc", "tsm": "tsmc",
    "字节跳动": "bytedance", "推特": "twitter", "twtr": "twitter", "奈飞": "netflix", "nflx": "netflix",
    "超威": "amd", "国际商业机器": "ibm", "思科": "cisco", "csco": "cisco", "赛富时": "salesforce",
    "crm": "salesforce", "京东": "jd", "拼多多": "pinduoduo", "小米": "xiaomi", "联想": "lenovo",
    "alphabet": "google", "meta": "meta", "microsoft": "microsoft", "nvidia": "nvidia", "google": "google",
    "amazon": "amazon", "apple": "apple", "intel": "intel", "amd": "amd", "ibm": "ibm", "oracle": "oracle",
    "qualcomm": "qualcomm", "samsung": "samsung", "tesla": "tesla", "openai": "openai", "salesforce": "salesforce",
}
_CJK_NAMES = re.compile("|".join(sorted((k for k in ALIASES if not k.isascii()), key=len, reverse=True)))


#: Each word of a text as a name (None: not one), and the words that name a thing. Words repeat
#: across posts (a vocabulary of tens of thousands), so each is worked out once.
_WORDS: dict[str, str | None] = {}
_THINGS: set[str] = set()
#: Words remembered at most; past that the table starts afresh (a long-running service).
WORDS_KEPT = 500_000


def _word(word: str) -> str | None:
    """`word` as a name (lower case, a plural's `s` off, through ALIASES), None when it is not
    one; remembered, with whether it names a thing, in _WORDS and _THINGS."""
    low = word.lower().rstrip(".")
    if low.endswith("'s"):
        low = low[:-2]
    if len(low) > 4 and low.endswith("s") and not low.endswith("ss"):
        low = low[:-1]
    name = None
    if not (len(low) < 2 or low in _STOP or low.isdigit()):
        name = sys.intern(ALIASES.get(low, low))
        if low in ALIASES or any(c.isupper() for c in word[1:]) or "." in low or any(c.isdigit() for c in word):
            _THINGS.add(word)
    if len(_WORDS) >= WORDS_KEPT:
        _WORDS.clear()
        _THINGS.clear()
    _WORDS[word] = name
    return name


def _read(text: str, entities: set[str] | None = None) -> set[str]:
    """The names in `text`; those that look like names of things (a capital after the first
    letter, a digit, a ticker, a company of the table: `MySQL`, `A100`, `HSM`, `MSFT.US`,
    `微软`) go into `entities` too."""
    tickers = _TICKER.findall(text) if ("." in text or "(" in text) else ()
    if tickers:
        text = _TICKER.sub(" ", text)
    words = _WORD.findall(text)
    known = _WORDS
    found = {known[w] if w in known else _word(w) for w in words}
    found.discard(None)
    if entities is not None:
        entities.update(n for w in words if w in _THINGS and (n := known.get(w)) is not None)
    if tickers or not text.isascii():
        more = {ALIASES.get(t.lower(), t.lower()) for pair in tickers for t in pair if t}
        more.update(ALIASES[m] for m in _CJK_NAMES.findall(text))
        found |= more
        if entities is not None:
            entities |= more
    return found  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class Names:
    """What a post is about: the names of its title and summary, those of its title alone, and
    the title's names of things. Kept for every post, so as tuples of interned strings (a
    tenth of the memory of sets of fresh ones) and made sets when two posts are compared."""

    all: tuple[str, ...]
    title: tuple[str, ...]
    entities: tuple[str, ...]
    #: the post's link without what varies between copies of one page
    address: str = ""


def names(post: Post, summary: str | None = None) -> Names:
    """`summary`: the post's, when read already (model.summaries reads many at once)."""
    text = post.summary if summary is None else summary
    entities: set[str] = set()
    title = _read(post.title, entities)
    in_summary = _read(text)
    # a word written with a capital inside a sentence of the summary names a thing (`Wipro`,
    # `Elastic`), even in a title that capitalises every word
    proper = {ALIASES.get(w.lower(), w.lower()) for w in _inner_capitals(text)}
    intern = sys.intern
    return Names(tuple(map(intern, title | in_summary)), tuple(map(intern, title)),
                 tuple(map(intern, entities | (title & proper))), _address(post.link))


#: A capitalised word.
_CAPITAL = re.compile(r"[A-Z][A-Za-z0-9]+")
#: What comes before the space before a capitalised word inside a sentence, and what comes
#: right before one in Chinese text.
_IN_SENTENCE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789,;:)")
_IN_CHINESE = frozenset("，、：（(")


def _inner_capitals(text: str) -> list[str]:
    """The capitalised words of `text` that do not start a sentence: after a word or a comma
    and a space, or right after a Chinese character (a capital inside a word is not one)."""
    found = []
    for m in _CAPITAL.finditer(text):
        i = m.start()
        if i >= 2 and text[i - 1] == " " and text[i - 2] in _IN_SENTENCE:
            found.append(m.group())
        elif i >= 1 and ((before := text[i - 1]) in _IN_CHINESE or "\u3400" <= before <= "\u9fff"):
            found.append(m.group())
    return found


def _address(link: str) -> str:
    """A link without what varies between copies of one page: scheme, `www.`, AMP, `/`."""
    address = link.split("#", 1)[0]
    for scheme in ("https://", "http://"):
        if address.startswith(scheme):
            address = address[len(scheme):].removeprefix("www.")
            break
    return address.rstrip("/").removesuffix("?amp").removesuffix("/amp")


def _source(post: Post) -> str:
    source = post.source
    return (source.domain or source.name).lower() if source is not None else ""


@dataclass
class Story:
    #: the path of the post the story is anchored on (its first)
    anchor: str
    #: paths of every post in it, in the order they joined
    members: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Match:
    """Why two posts are (or are not) one story: the names they share and what they weigh."""

    shared: tuple[str, ...]
    #: the names both titles have
    in_titles: tuple[str, ...]
    #: names of things in each title that the other post never mentions (both: two stories)
    conflict: tuple[tuple[str, ...], tuple[str, ...]]
    weight: float
    hours_apart: float
    #: both link the same address (a story reported twice); both come from one source
    same_link: bool = False
    same_source: bool = False
    #: the share of the longer title's names that both titles have
    title_overlap: float = 0.0

    @property
    def same(self) -> bool:
        if self.same_link:
            return True
        # one source tells one story once: two of its posts are one only when retitled
        return ((not self.same_source or self.title_overlap >= SAME_SOURCE_OVERLAP)
                and self.hours_apart <= WINDOW.total_seconds() / 3600 and len(self.shared) >= MIN_SHARED
                and len(self.in_titles) >= MIN_IN_TITLES and self.weight >= THRESHOLD
                and not (self.conflict[0] and self.conflict[1]))


class Stories:
    """Every published post's story, kept current one post at a time (`update`).

    Only anchors that can be the same story are compared with (blocking): anchors are indexed
    by each name of their title and the WINDOW-wide stretch of time they were published in, and
    by their link's address. A post looks up its title's names in its stretch and the two
    beside it (names in more than COMMON of the posts skipped), counts how many of its title's
    names each anchor found has, and compares only those that have MIN_IN_TITLES of them (names
    skipped as common counted as shared) or its link, at most CANDIDATES of them, most shared
    first. So a post costs what its neighbours in time are, not the size of the site, and the
    outcome is the one comparing every anchor would give (but for the cap, which a real site
    does not reach)."""

    def __init__(self, exhaustive: bool = False) -> None:
        #: compare every post with every anchor (no blocking): what the blocking must agree with
        self.exhaustive = exhaustive
        self.posts: dict[str, Post] = {}
        self._names: dict[str, Names] = {}
        self._df: Counter[str] = Counter()
        self.story_of: dict[str, Story] = {}
        #: (name, stretch of time) or "\0" + link address -> the path of the anchor with it, or
        #: the set of them when several have it (most keys have one: a set each cost 200 bytes)
        self._anchors: dict[str | tuple[str, int], str | set[str]] = {}
        #: anchor path -> what its keys are made of (see _keys_of): kept, not the keys, so an
        #: anchor costs one tuple here
        self._indexed: dict[str, tuple[tuple[str, ...], int, str]] = {}
        #: readers (the web app) take it while they look; `update` holds it while it changes
        self.lock = threading.Lock()
        #: pairs of posts compared (for benchmarks)
        self.compared = 0

    def update(self, removed: Iterable[Post], added: Iterable[Post]) -> None:
        """Apply a pass: `added` in the order they were published, so a cold build anchors each
        story on its earliest post. A post edited in place keeps its story."""
        added = sorted(added, key=lambda p: (p.published, p.id))
        kept = {p.path for p in added} & {p.path for p in removed}
        with self.lock:
            for post in removed:
                self._forget(post, keep_story=post.path in kept)
            for post, summary in zip(added, summaries(added), strict=True):
                self._learn(post, summary)
            for post in added:
                if post.path in kept and post.path in self.story_of:
                    story = self.story_of[post.path]
                    if story.anchor == post.path:  # its title or date may have changed
                        self._unindex(post.path)
                        self._index(post)
                    continue
                self._assign(post)

    def weight(self, name: str) -> float:
        return math.log((len(self.posts) + PRIOR) / (self._df[name] + 1))

    def match(self, a: Post, b: Post) -> Match:
        """How `a` and `b` compare (see the module docstring)."""
        na = self._names.get(a.path) or names(a)
        nb = self._names.get(b.path) or names(b)
        all_a, all_b, title_a, title_b = set(na.all), set(nb.all), set(na.title), set(nb.title)
        shared = all_a & all_b
        hours = abs((a.published - b.published).total_seconds()) / 3600
        return Match(tuple(sorted(shared)), tuple(sorted(title_a & title_b)),
                     (self._rare(set(na.entities) - all_b), self._rare(set(nb.entities) - all_a)),
                     sum(self.weight(n) for n in shared), hours, na.address == nb.address,
                     _source(a) != "" and _source(a) == _source(b),
                     len(title_a & title_b) / max(1, len(title_a), len(title_b)))

    def _rare(self, found: Iterable[str]) -> tuple[str, ...]:
        """The names that few posts have (`AI` in a title says little about which story)."""
        return tuple(sorted(n for n in found if self.weight(n) >= RARE))

    def members(self, post: Post) -> list[Post]:
        """The posts of `post`'s story, first the anchor (just `post` when it is alone)."""
        story = self.story_of.get(post.path)
        if story is None:
            return [post]
        return [self.posts[p] for p in story.members if p in self.posts]

    def _learn(self, post: Post, summary: str) -> None:
        found = names(post, summary)
        self.posts[post.path] = post
        self._names[post.path] = found
        self._df.update(found.all)

    def _keys(self, post: Post) -> tuple[tuple[str, ...], int, str]:
        """What an anchor is found by: each name of its title in its stretch of time (a story
        needs MIN_IN_TITLES of them in common, within WINDOW), and its link's address."""
        known = self._names.get(post.path)
        return (known.title if known is not None else (), _stretch(post),
                "\0" + (known.address if known is not None else _address(post.link)))

    @staticmethod
    def _keys_of(made: tuple[tuple[str, ...], int, str]) -> list[str | tuple[str, int]]:
        title, stretch, address = made
        return [*((n, stretch) for n in title), address]

    def _index(self, post: Post) -> None:
        made = self._keys(post)
        path, anchors = post.path, self._anchors
        for key in self._keys_of(made):
            found = anchors.get(key)
            if found is None:
                anchors[key] = path
            elif type(found) is str:
                if found != path:
                    anchors[key] = {found, path}
            else:
                found.add(path)  # type: ignore[union-attr]
        self._indexed[path] = made

    def _unindex(self, path: str) -> None:
        made = self._indexed.pop(path, None)
        if made is None:
            return
        anchors = self._anchors
        for key in self._keys_of(made):
            found = anchors.get(key)
            if found is None:
                continue
            if type(found) is str:
                if found == path:
                    del anchors[key]
                continue
            found.discard(path)  # type: ignore[union-attr]
            if len(found) == 1:
                anchors[key] = next(iter(found))
            elif not found:
                del anchors[key]

    def _anchored(self, key: str | tuple[str, int]) -> tuple[str, ...] | set[str]:
        """The paths of the anchors indexed under `key`."""
        found = self._anchors.get(key, ())
        return (found,) if type(found) is str else found  # type: ignore[return-value]

    def candidates(self, post: Post) -> list[str]:
        """The anchors `post` may be the same story as (see the class docstring), most title
        names in common first."""
        if self.exhaustive:
            return sorted({path for key in self._anchors for path in self._anchored(key)} - {post.path})
        known = self._names.get(post.path) or names(post)
        title = known.title
        common = max(50, COMMON * len(self.posts))
        stretch = _stretch(post)
        hits: Counter[str] = Counter()
        skipped = 0
        for name in title:
            if self._df[name] > common:
                skipped += 1
                continue
            for near in (stretch - 1, stretch, stretch + 1):
                found = self._anchors.get((name, near))
                if found:
                    hits.update((found,) if type(found) is str else found)
        need = MIN_IN_TITLES - skipped
        picked = [path for path, n in hits.items() if n >= need and path != post.path]
        linked = self._anchored("\0" + known.address)
        picked.extend(path for path in linked if path != post.path and hits[path] < need)
        picked.sort(key=lambda path: (-hits[path], path))
        return picked[:CANDIDATES]

    def _assign(self, post: Post) -> None:
        best: tuple[int, float, str] | None = None
        for path in self.candidates(post):
            other = self.posts.get(path)
            if other is None:
                continue
            self.compared += 1
            m = self.match(post, other)
            # the story whose anchor's title is most like this one's, then the weightiest
            if m.same and (best is None or (len(m.in_titles), m.weight, path) > best):
                best = (len(m.in_titles), m.weight, path)
        if best is None:
            story = Story(post.path, [post.path])
            self._index(post)
        else:
            story = self.story_of[best[2]]
            story.members.append(post.path)
        self.story_of[post.path] = story

    def _forget(self, post: Post, keep_story: bool) -> None:
        known = self._names.pop(post.path, None)
        self._df.subtract(known.all if known is not None else ())
        self.posts.pop(post.path, None)
        if keep_story:
            return
        story = self.story_of.pop(post.path, None)
        if story is None:
            return
        story.members.remove(post.path)
        if story.anchor == post.path:
            self._unindex(post.path)
            if story.members:  # the next post that joined anchors it now
                story.anchor = story.members[0]
                self._index(self.posts[story.anchor])


def _stretch(post: Post) -> int:
    """The WINDOW-wide stretch of time `post` was published in: a post within WINDOW of it is
    in the same stretch or one beside it."""
    return int(post.published.timestamp() // WINDOW.total_seconds())


def grouped(stream: Iterable[Post], index: Stories, admits: Callable[[Post], bool],
            limit: int) -> tuple[list[Post], dict[str, tuple[Related, ...]]]:
    """A grouped feed's items, one per story, from `stream` (the feed's posts, newest first),
    and each item's other coverage by its id. An item is its story's anchor when the feed has
    it (`admits`), else the first post of the story the feed has: coverage that arrives later
    never changes an item's id. It shows the other posts of the story (those of other feeds too)
    under "Also covered by", and its `updated` is the story's latest."""
    items: list[Post] = []
    coverage: dict[str, tuple[Related, ...]] = {}
    seen: set[str] = set()
    with index.lock:
        for post in stream:
            story = index.story_of.get(post.path)
            key = story.anchor if story is not None else post.path
            if key in seen:
                continue
            seen.add(key)
            members = index.members(post) if story is not None else [post]
            lead = next((m for m in members if admits(m)), post)
            others = [m for m in members if m is not lead]
            if others:
                also = tuple(Related(m.title, m.link, m.published, m.source or Source(_host(m.link))) for m in others)
                coverage[lead.id] = also
                lead = replace(lead, body_html=lead.content_html + _also_covered(also),
                               updated=max(m.updated for m in members))
            items.append(lead)
            if len(items) >= limit:
                break
    return items, coverage


def _host(link: str) -> str:
    return urlsplit(link).hostname or link


def _also_covered(also: tuple[Related, ...]) -> str:
    esc = html.escape
    rows = []
    for r in also:
        bits = [b for b in (r.source.name if r.source else "", r.published.strftime("%Y-%m-%d") if r.published else "")
                if b]
        rows.append(f'<li><a href="{esc(r.url)}">{esc(r.title)}</a>{" — " + esc(", ".join(bits)) if bits else ""}</li>')
    return f"<h3>Also covered by</h3><ul>{''.join(rows)}</ul>"
