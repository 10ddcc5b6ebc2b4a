#!/usr/bin/env python3
"""validate_feeds.py FEEDS_DIR BASE_URL: the W3C Feed Validation Service over every RSS and Atom
document under FEEDS_DIR (feeds and archive pages), each checked as if fetched from BASE_URL +
its path, at the online validator's level ("AA"). `validate_feeds.py --pairs LIST`: each line of
LIST is a file and the URL it was fetched from (feeds made on request, such as custom feeds). Prints each problem and a summary line
`N feeds checked, M with problems: E errors, W warnings`; exit 0 on 0 errors and 0 warnings.

The validator is not on PyPI: FEEDVALIDATOR_SRC names the `src` folder of a checkout of
github.com/w3c/feedvalidator, run by a Python that has its requirements (lxml, html5lib,
rdflib). For the suite: SYNDICATOR_FEEDVALIDATOR names a script that runs this one.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.environ.get("FEEDVALIDATOR_SRC", "feedvalidator/src"))
import feedvalidator  # type: ignore[import-not-found]  # noqa: E402
from feedvalidator import compatibility  # type: ignore[import-not-found]  # noqa: E402
from feedvalidator.formatter.text_plain import Formatter  # type: ignore[import-not-found]  # noqa: E402


def main(root: str, base: str) -> int:
    found = [os.path.relpath(os.path.join(dirpath, name), root)
             for dirpath, _, names in sorted(os.walk(root)) for name in sorted(names) if name.endswith((".rss", ".atom"))]
    return check([(os.path.join(root, rel), base + rel) for rel in found])


def check(documents: list[tuple[str, str]]) -> int:
    """Each (file, URL it was fetched from) validated; 0 when all pass with nothing to say."""
    bad = errors = warnings = 0
    for path, url in documents:
        with open(path, "rb") as f:
            data = f.read()
        try:
            events = feedvalidator.validateString(data, firstOccurrenceOnly=1, base=url)["loggedEvents"]
        except feedvalidator.logging.ValidationFailure as failure:
            events = [failure.event]
        events = compatibility.AA(events)
        errors += sum(isinstance(e, feedvalidator.logging.Error) for e in events)
        warnings += sum(isinstance(e, feedvalidator.logging.Warning) for e in events)
        if events:
            bad += 1
            print(url, *Formatter(events), sep="\n")
    print(f"{len(documents)} feeds checked, {bad} with problems: {errors} errors, {warnings} warnings")
    return 0 if errors == warnings == 0 and documents else 1


if __name__ == "__main__":
    if sys.argv[1] == "--pairs":
        with open(sys.argv[2], encoding="utf-8") as listing:
            sys.exit(check([(path, url) for path, url in (line.split(" ", 1) for line in listing.read().splitlines())]))
    sys.exit(main(sys.argv[1], sys.argv[2]))
