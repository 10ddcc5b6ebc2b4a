#!/usr/bin/env python3
"""What real feed readers show of our feeds: the measurement behind the format feeds.opml
lists (`opml_format`) and Atom entries without a `<summary>` beside `<content>`.

    python bench/readers.py [--python PY]

Builds seeds/ and serves it with the real `syndicator serve` on 127.0.0.1, adds one document
that is not ours, `all.atom` with a 300-character `<summary>` put back beside each entry's
`<content>` (as Atom entries had before), then has each reader fetch all.rss, all.atom, that
variant and all.json over HTTP and reports, per reader and document: items read, the median
length of the text it shows for an item (characters, tags stripped), whether it shows an
author, and whether the Chinese topic's name (智通财经网新闻) reaches it or only its slug.

Readers: feedparser (what most Python readers and services parse with), reader (lemon24/reader:
the entry text its web app shows, content before summary), rss2email (the mail it sends, through
a sendmail stand-in that keeps the mails) and newsboat (its cache after `-x reload`). `--python`
names an interpreter that has reader and rss2email (pip install reader rss2email); those two
are skipped when it has not. Loopback only; everything it starts is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import feedparser
from lxml import etree
from lxml import html as lxml_html

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.serverproc import ServerProcess  # noqa: E402

ATOM = "{http://www.w3.org/2005/Atom}"
DOCS = ["all.rss", "all.atom", "zz-summary.atom", "all.json"]
CJK_TOPIC = "智通财经网新闻"

#: Run by --python: prints {"items": [[text, author, [tags]], ...]} for reader or rss2email.
HELPER = r'''
import json, os, re, subprocess, sys, tempfile, email
from email import policy
kind, url = sys.argv[1], sys.argv[2]
items = []
if kind == "reader":
    from reader import make_reader
    r = make_reader(":memory:")
    r.add_feed(url)
    r.update_feeds()
    for e in r.get_entries():
        html = [c.value for c in e.content if c.type in ("text/html", "html", "text/plain")]
        items.append([(html[0] if html else e.summary) or "", e.author or "", []])
else:
    work = tempfile.mkdtemp()
    mails = os.path.join(work, "mails")
    os.mkdir(mails)
    send = os.path.join(work, "sendmail")
    with open(send, "w") as f:
        f.write("#!/bin/sh\ncat > $(mktemp -p %s)\n" % mails)
    os.chmod(send, 0o755)
    cfg, data = os.path.join(work, "r2e.cfg"), os.path.join(work, "r2e.json")
    r2e = [os.path.join(os.path.dirname(sys.executable), "r2e"), "-c", cfg, "-d", data]
    subprocess.run(r2e + ["new", "me@example.org"], check=True, capture_output=True)
    with open(cfg) as f:
        text = f.read()
    for key, value in (("email-protocol", "sendmail"), ("sendmail", send), ("html-mail", "False")):
        text = re.sub(r"(?m)^%s = .*$" % key, "%s = %s" % (key, value), text)
    with open(cfg, "w") as f:
        f.write(text)
    subprocess.run(r2e + ["add", "f", url], check=True, capture_output=True)
    subprocess.run(r2e + ["run"], check=True, capture_output=True)
    for name in sorted(os.listdir(mails)):
        with open(os.path.join(mails, name), "rb") as f:
            msg = email.message_from_bytes(f.read(), policy=policy.default)
        body = msg.get_body(("plain", "html"))
        items.append([body.get_content() if body else "", str(msg.get("From", "")), []])
print(json.dumps({"items": items}, ensure_ascii=False))
'''


def text_of(markup: str) -> str:
    markup = markup.strip()
    if not markup:
        return ""
    try:
        return " ".join(lxml_html.fromstring(markup).text_content().split())
    except (etree.ParserError, ValueError):
        return " ".join(markup.split())


def with_summaries(atom: bytes) -> bytes:
    """all.atom with a 300-character text <summary> beside each entry's <content>."""
    root = etree.fromstring(atom)
    for entry in root.iter(f"{ATOM}entry"):
        content = entry.find(f"{ATOM}content")
        if content is None or entry.find(f"{ATOM}summary") is not None:
            continue
        summary = etree.Element(f"{ATOM}summary", type="text")
        summary.text = text_of(content.text or "")[:300]
        content.addprevious(summary)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def by_feedparser(url: str) -> list[tuple[str, str, list[str]]]:
    d = feedparser.parse(url)
    out = []
    for e in d.entries:
        shown = e.content[0].value if e.get("content") else e.get("summary", "")
        out.append((shown, e.get("author", ""), [t.get("label") or t.get("term") for t in e.get("tags", [])]))
    return out


def by_newsboat(url: str, work: Path) -> list[tuple[str, str, list[str]]]:
    folder = Path(tempfile.mkdtemp(dir=work))
    (folder / "urls").write_text(url + "\n")
    (folder / "config").write_text("")
    subprocess.run(["newsboat", "-u", str(folder / "urls"), "-c", str(folder / "cache.db"), "-C",
                    str(folder / "config"), "-x", "reload"], capture_output=True, timeout=60,
                   env={**os.environ, "HOME": str(folder)})
    with sqlite3.connect(folder / "cache.db") as db:
        return [(content, author, []) for content, author in db.execute("SELECT content, author FROM rss_item")]


def by_helper(python: str, kind: str, url: str, work: Path) -> list[tuple[str, str, list[str]]] | None:
    script = work / "helper.py"
    script.write_text(HELPER)
    run = subprocess.run([python, str(script), kind, url], capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        return None
    return [tuple(item) for item in json.loads(run.stdout)["items"]]  # type: ignore[misc]


def summarise(items: list[tuple[str, str, list[str]]] | None) -> str:
    if items is None:
        return "n/a"
    if not items:
        return "0 items"
    lengths = [len(text_of(text)) for text, _, _ in items]
    authors = sum(1 for _, author, _ in items if author)
    tags = [tag for _, _, item_tags in items for tag in item_tags]
    cjk = "n/a" if not tags else "yes" if CJK_TOPIC in tags else "no"
    return (f"{len(items)} items, median {statistics.median(lengths):.0f} chars "
            f"(min {min(lengths)}), author {authors}/{len(items)}, CJK topic name {cjk}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", default=sys.executable, help="a Python with reader and rss2email installed")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="readers-"))
    try:
        with ServerProcess(work / "site") as srv:
            atom = (srv.feeds_dir / "all.atom").read_bytes()
            (srv.feeds_dir / "zz-summary.atom").write_bytes(with_summaries(atom))
            have_newsboat = shutil.which("newsboat") is not None
            print(f"{'reader':10} {'document':16} shows")
            for doc in DOCS:
                url = srv.url("/" + doc)
                rows = {"feedparser": by_feedparser(url),
                        "reader": by_helper(args.python, "reader", url, work),
                        "rss2email": by_helper(args.python, "rss2email", url, work),
                        "newsboat": by_newsboat(url, work) if have_newsboat and doc != "all.json" else None}
                for name, items in rows.items():
                    print(f"{name:10} {doc:16} {summarise(items)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
