"""How the pages look in a real browser: headless Chromium loads every page of a site (the
seeds plus a post made to be hard to fit: an unbreakable title and topic, a long link, a wide
table, a long code line, a 2,000 px image) from the real server, in frames 390 px (a phone)
and 1280 px (a desktop) wide, and measures that nothing is wider than the frame; light and
dark follow the system's scheme; pages read with JavaScript off; nothing outside the page is
needed to show it; every page parses as strict HTML5."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import html5lib
import pytest
from lxml import html as lxml_html

from tests.chromium import chromium, dump_dom
from tests.serverproc import ServerProcess

pytestmark = pytest.mark.skipif(chromium() is None, reason="chromium is not installed (apt-get install chromium)")

WIDE_POST = """---
layout: post
title: Averyveryveryverylongwordwithoutanybreakopportunityatallthatgoesonandonandonforeverandeverwithoutend
date: 2022-05-01 10:00:00 +0000
categories: [Layout Tests]
tags: [Averyveryveryverylongtopicnamewithoutanybreakopportunityatallthatgoesonandon]
---
A long link: <https://example.org/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa>

| column one | column two | column three | column four | column five | column six | column seven |
|---|---|---|---|---|---|---|
| longcellcontentlongcellcontent | longcellcontentlongcellcontent | longcell | longcell | longcell | x | y |

```
a very long line of code ..........................................................................................
```

<img src="https://example.org/wide.png" width="2000" height="100" alt="">

中文段落很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长。
"""

#: A page of ours that loads each page in a same-origin frame of a given width, with scripts
#: off in the frames (sandbox), and writes {page: [scrollWidth, clientWidth, body background,
#: body font-family, titles of items shown]} once all have loaded.
PROBE = """<!doctype html><html><head><title>probe</title></head><body><script>
const pages = %s, width = %d, out = {};
let left = pages.length;
for (const url of pages) {
  const f = document.createElement("iframe");
  f.style.width = width + "px"; f.style.height = "900px"; f.style.border = "0";
  f.sandbox = "allow-same-origin";
  f.onload = () => {
    const d = f.contentDocument, style = f.contentWindow.getComputedStyle(d.body);
    const titles = Array.from(d.querySelectorAll("ol.items > li h2 a"), a => a.innerText);
    out[url] = [d.documentElement.scrollWidth, d.documentElement.clientWidth, style.backgroundColor, style.fontFamily,
                titles];
    if (--left === 0) {
      const p = document.createElement("pre"); p.id = "result"; p.textContent = JSON.stringify(out);
      document.body.append(p);
    }
  };
  f.src = url;
  document.body.append(f);
}
</script></body></html>
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("looks"))
    (server.seeds_dir / "_posts").mkdir()
    (server.seeds_dir / "_posts" / "2022-05-01-wide.md").write_text(WIDE_POST, encoding="utf-8")
    with server:
        yield server


def pages(srv: ServerProcess) -> list[str]:
    files = json.loads((srv.feeds_dir / ".manifest.json").read_text())["files"]
    found = ["/" + f for f in files if f.endswith(".html")]
    assert "/index.html" in found and "/all.html" in found and any(p.startswith("/posts/") for p in found)
    return sorted(found)


def probe(srv: ServerProcess, width: int, profile: Path, *args: str) -> dict[str, list[object]]:
    name = f"zz-probe-{width}.html"  # served beside the pages (same origin: frames can be measured)
    (srv.feeds_dir / name).write_text(PROBE % (json.dumps(pages(srv)), width), encoding="utf-8")
    dom = dump_dom(srv.url(name), profile, "--hide-scrollbars", "--virtual-time-budget=20000", *args)
    found = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    result: dict[str, list[object]] = json.loads(lxml_html.fromstring(found.group(0)).text_content())
    assert sorted(result) == pages(srv)
    return result


@pytest.mark.parametrize("width", [390, 1280])
def test_nothing_is_wider_than_a_phone_or_a_desktop(srv: ServerProcess, tmp_path: Path, width: int) -> None:
    measured = probe(srv, width, tmp_path / "profile")
    wide = {page: m[:2] for page, m in measured.items() if int(str(m[0])) > int(str(m[1]))}
    assert not wide, f"wider than {width} px: {wide}"
    assert all(m[1] == width for m in measured.values())


def test_light_and_dark_follow_the_system(srv: ServerProcess, tmp_path: Path) -> None:
    light = probe(srv, 390, tmp_path / "light", "--blink-settings=preferredColorScheme=1")
    dark = probe(srv, 390, tmp_path / "dark", "--blink-settings=preferredColorScheme=0")
    for page in light:
        assert light[page][2] == "rgb(255, 255, 255)", page
        assert dark[page][2] == "rgb(22, 22, 22)", page


def test_cjk_text_has_cjk_fonts_first_among_fallbacks(srv: ServerProcess, tmp_path: Path) -> None:
    families = str(probe(srv, 390, tmp_path / "profile")["/topics/zhi-tong-cai-jing-wang-xin-wen.html"][3])
    assert "Noto Sans CJK SC" in families and "PingFang SC" in families


def test_pages_read_with_javascript_off(srv: ServerProcess, tmp_path: Path) -> None:
    """The frames run no script: every feed's page still shows each of its items' titles."""
    measured = probe(srv, 390, tmp_path / "profile")
    for page, m in measured.items():
        if page.startswith("/posts/") or page == "/index.html":
            continue
        feed = json.loads((srv.feeds_dir / page[1:].replace(".html", ".json")).read_bytes())
        assert m[4] == [item["title"] for item in feed["items"]], page


def test_pages_need_nothing_from_elsewhere_and_are_strict_html5(srv: ServerProcess) -> None:
    parser = html5lib.HTMLParser(strict=True)
    for page in pages(srv):
        data = (srv.feeds_dir / page[1:]).read_bytes()
        parser.parse(data)  # raises on the first parse error
        doc = lxml_html.fromstring(data)
        assert not doc.xpath("//link[@rel='stylesheet'] | //script[@src] | //link[@rel='preload']"), page
        styles = " ".join(doc.xpath("//style/text()"))
        assert "@import" not in styles and not re.search(r"url\((?!data:)", styles), page
        assert not doc.xpath("//@style[contains(., 'url(')]"), page
