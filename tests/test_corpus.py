"""Every real post in the shared research corpus (../shared/corpus beside the repository):
zero crashes; each file normalizes, is a site page, or gets a `path:line: message` error; the
feeds made from all of them parse. Skipped when the corpus folder is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from lxml import etree

from syndicator import sources
from syndicator.config import load_settings
from syndicator.pipeline import feeds as feedplan
from syndicator.pipeline import read_one
from syndicator.render import RENDERERS
from tests.conftest import ROOT

CORPUS = ROOT.parent / "shared" / "corpus"
#: Files of the corpus that document it rather than being posts.
NOT_POSTS = {"SOURCES.md"}
#: Corpus files with a real defect, and what the error must say. Jekyll itself skips this one:
#: `date:  +0800` holds no date and the file name has no YYYY-MM-DD- prefix to fall back on.
KNOWN_DEFECTS = {
    "zning1994__finews/-202205262391921712.md": ":4: error: bad date: '+0800' has no date in it",
}

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no corpus at {CORPUS}")


def _files() -> list[str]:
    if not CORPUS.is_dir():
        return []
    return [rel for rel, _ in sources.scan_sorted(CORPUS) if rel not in NOT_POSTS]


def test_every_corpus_post_normalizes_or_gets_an_error(tmp_path: Path) -> None:
    settings = load_settings(env={}, overrides={"seeds_dir": CORPUS, "feeds_dir": tmp_path / "feeds",
                                                "state_dir": tmp_path / "var"})
    sites = sources.SiteConfigs(CORPUS)
    files = _files()
    assert files
    posts, errors, pages = [], [], []
    for rel in files:
        read = read_one(CORPUS, rel, (0, 0), settings, sites)  # never raises: that is the test
        problems = [p for p in read.problems if p.severity == "error"]
        if read.post is not None:
            assert not problems, problems
            posts.append(read.post)
        elif read.not_a_post:
            pages.append(rel)
        else:
            assert len(problems) == 1 and problems[0].path == rel and problems[0].message, read.problems
            errors.append(str(problems[0]))
            assert rel in KNOWN_DEFECTS and KNOWN_DEFECTS[rel] in str(problems[0]), str(problems[0])
    report = "\n".join(errors)
    print(f"\ncorpus: {len(files)} files, {len(posts)} posts, {len(pages)} pages, {len(errors)} errors\n{report}")
    assert not sites.errors, sites.errors
    assert len(posts) + len(pages) + len(errors) == len(files)
    unique = {}
    for post in posts:
        unique.setdefault(post.id, post)
    for feed in feedplan.plan(unique.values(), settings):
        for fmt, renderer in RENDERERS.items():
            data = renderer.render(feed, feedplan.feed_url(settings, feed.stem, fmt))
            if fmt == "json":
                json.loads(data)
            else:
                etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
