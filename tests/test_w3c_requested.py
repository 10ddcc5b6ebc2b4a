"""Feeds made on request (custom feeds: topic combinations, filters, one item per story) through
the W3C Feed Validation Service, each checked as fetched from its own URL, query included.
Needs SYNDICATOR_FEEDVALIDATOR (see tests/validate_feeds.py): the validator is not on PyPI."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.feedcheck import feedparse
from tests.serverproc import ServerProcess

VALIDATOR = os.environ.get("SYNDICATOR_FEEDVALIDATOR")

REQUESTED = [
    "topics/ai+microsoft-ai.rss", "topics/ai,azure.atom", "topics/ai,-azure.atom", "topics/-azure.rss",
    "all.atom?group=story", "all.rss?group=story", "topics/ai.atom?group=story",
    "topics/ai.atom?filter_title=Meta&limit=2", "all.rss?filterout=Intel&group=story",
]


@pytest.mark.skipif(not VALIDATOR, reason="set SYNDICATOR_FEEDVALIDATOR to the W3C feedvalidator runner "
                                          "(validate_feeds.py) to run it; it is not on PyPI")
def test_w3c_validator_on_custom_and_grouped_feeds(tmp_path: Path) -> None:
    listing = []
    with ServerProcess(tmp_path / "site") as srv:
        for i, path in enumerate(REQUESTED):
            status, headers, body = srv.request("GET", "/" + path)
            if status == 301:  # another spelling: the canonical one is what readers keep
                path = headers["Location"][len(srv.base_url):]
                status, headers, body = srv.request("GET", "/" + path)
            assert status == 200 and feedparse(body).entries, (path, status)
            saved = tmp_path / f"requested-{i}.{path.split('?')[0].rpartition('.')[2]}"
            saved.write_bytes(body)
            listing.append(f"{saved} {srv.base_url}{path}")
    (tmp_path / "pairs.txt").write_text("\n".join(listing) + "\n", encoding="utf-8")
    run = subprocess.run([str(VALIDATOR), "--pairs", str(tmp_path / "pairs.txt")], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"{len(REQUESTED)} feeds checked, 0 with problems: 0 errors, 0 warnings" in run.stdout
