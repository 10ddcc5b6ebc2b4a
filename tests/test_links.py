"""Every URL that reaches an output is absolute http(s), has a real host and is a valid URI
(syndicator/links.py): from posts, from Jekyll `_config.yml` (`url`, `baseurl`) and from the
settings (`base_url`, `websub_hubs`). A script URL is refused with an error naming its file.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from lxml import etree
from lxml import html as lxml_html

from syndicator.config import load_settings
from syndicator.errors import ConfigError
from syndicator.links import BadURL, clean_url, site_path, web_url
from syndicator.pipeline.build import build
from tests.conftest import SEEDS
from tests.feedcheck import check_tree

#: RFC 3986 as the W3C feed validator holds a URL to it: only unreserved and reserved
#: characters, `%` only as the start of an escape.
URI = re.compile(r"https?://[A-Za-z0-9.\-\[\]:]+(/|\?|#|$)(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*")
SCRIPT_SCHEMES = ("javascript:", "data:", "vbscript:")
POST = "---\ntitle: Hello\ndate: 2024-01-02\ntags: [links]\n---\nHi, see [there](/rel/page) and ![i](img.png).\n"


# ---- web_url, clean_url, site_path -----------------------------------------------------------


@pytest.mark.parametrize("value", [
    "javascript:alert(1)//", "JavaScript:alert(1)", " javascript:alert(1)", "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)", "file:///etc/passwd", "ftp://x.org/",
    "mailto:a@b.org", "https://", "http:///path", "https://exa mple.org/", "https://x.org:99999/",
    "https://x.org:port/", "https://<x>.org/", "//", "relative/path",
])
def test_web_url_refuses(value: str) -> None:
    with pytest.raises(BadURL) as caught:
        web_url(value)
    assert str(caught.value) and "\n" not in str(caught.value)


def test_script_schemes_are_named() -> None:
    for value in ("javascript:alert(1)//", "data:text/html,x", "vbscript:x"):
        with pytest.raises(BadURL, match=f"is a {value.split(':')[0]}: URL; only http:// and https://"):
            web_url(value)


@pytest.mark.parametrize(("value", "expected"), [
    ("https://example.org/a b", "https://example.org/a%20b"),
    ('https://example.org/"q"<t>', "https://example.org/%22q%22%3Ct%3E"),
    ("https://example.org/?q=a b&x=\"<>\"#f g", "https://example.org/?q=a%20b&x=%22%3C%3E%22#f%20g"),
    ("https://example.org/100%", "https://example.org/100%25"),
    ("https://example.org/%E4%B8%AD", "https://example.org/%E4%B8%AD"),
    ("https://example.org/中文", "https://example.org/%E4%B8%AD%E6%96%87"),
    ("https://例子.测试/", "https://xn--fsqu00a.xn--0zwm56d/"),
    ("HTTPS://Example.ORG/A", "https://Example.ORG/A"),  # a published link keeps its spelling
    ("https://[::1]:8080/a", "https://[::1]:8080/a"),
    ("https://example.org", "https://example.org"),
])
def test_web_url_encodes_what_a_uri_cannot_hold(value: str, expected: str) -> None:
    assert web_url(value) == expected
    assert URI.fullmatch(expected)


def test_clean_url_resolves_against_the_site_and_drops_the_rest() -> None:
    base = "https://site.org/blog/"
    assert clean_url("/a", base) == "https://site.org/a"
    assert clean_url("b c", base) == "https://site.org/blog/b%20c"
    assert clean_url("//cdn.org/x", base) == "https://cdn.org/x"
    assert clean_url("javascript:alert(1)", base) is None
    assert clean_url("#top", base) is None


def test_baseurl_is_a_path() -> None:
    assert site_path('/a b<c>"d/') == "a%20b%3Cc%3E%22d"
    for value in ("javascript:alert(1)", "//evil.org", "https://evil.org/"):
        with pytest.raises(BadURL, match="must be a path"):
            site_path(value)


# ---- Jekyll site configs -----------------------------------------------------------------------


def _site(tmp_path: Path, config: str) -> tuple[object, Path]:
    seeds = tmp_path / "seeds"
    shutil.copytree(SEEDS, seeds)
    (seeds / "site" / "_posts").mkdir(parents=True)
    (seeds / "site" / "_config.yml").write_text(config, encoding="utf-8")
    (seeds / "site" / "_posts" / "2024-01-02-hello.md").write_text(POST, encoding="utf-8")
    settings = load_settings(env={}, overrides={"seeds_dir": seeds, "feeds_dir": tmp_path / "feeds",
                                                "state_dir": tmp_path / "var",
                                                "base_url": "https://feeds.example.org/"})
    return build(settings), tmp_path / "feeds"


def _output_urls(feeds: Path) -> list[str]:
    """Every URL in every feed, page and OPML file: attributes, RSS/Atom link/id/guid text and
    JSON Feed url/id/external_url/home_page_url/feed_url."""
    found: list[str] = []
    for path in sorted(feeds.rglob("*")):
        if not path.is_file() or path.name.startswith(".") or path.suffix == ".gz":
            continue
        data = path.read_bytes()
        if path.suffix == ".json":
            _json_urls(json.loads(data), found)
        elif path.suffix in (".rss", ".atom", ".opml"):
            root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True))
            for el in root.iter():
                found += [v for k, v in el.attrib.items() if k in ("href", "src", "url", "xmlUrl", "htmlUrl")]
                if etree.QName(el).localname in ("link", "guid", "id", "url", "comments") and el.text:
                    found.append(el.text.strip())
        elif path.suffix == ".html":
            doc = lxml_html.document_fromstring(data)
            found += [v for el in doc.iter() if isinstance(el.tag, str)
                      for k, v in el.attrib.items() if k in ("href", "src")]
    return found


def _json_urls(value: object, found: list[str]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, str) and k in ("url", "id", "external_url", "home_page_url", "feed_url",
                                             "next_url", "image", "icon", "favicon", "banner_image"):
                found.append(v)
            else:
                _json_urls(v, found)
    elif isinstance(value, list):
        for v in value:
            _json_urls(v, found)


@pytest.mark.parametrize("url", ["javascript:alert(1)//", "data:text/html,<b>x</b>", "vbscript:msgbox(1)",
                                 "https://exa mple.org", "//evil.org"])
def test_a_site_config_with_a_bad_url_is_refused_naming_the_file(tmp_path: Path, url: str) -> None:
    result, feeds = _site(tmp_path, f"url: {json.dumps(url)}\ntitle: Site\n")
    errors = [str(e) for e in result.errors]
    assert len(errors) == 1 and errors[0].startswith("site/_config.yml: error: site config not used: "), errors
    check_tree(feeds, "https://feeds.example.org/")
    blob = b"".join(p.read_bytes() for p in feeds.rglob("*") if p.is_file() and p.suffix != ".gz").lower()
    for scheme in SCRIPT_SCHEMES:
        assert scheme.encode() not in blob
    titles = [item["title"] for item in json.loads((feeds / "all.json").read_bytes())["items"]]
    assert "Hello" in titles  # the post itself is published, under the service's own page


def test_a_site_config_with_a_script_baseurl_is_refused(tmp_path: Path) -> None:
    result, feeds = _site(tmp_path, 'url: "https://site.example.org"\nbaseurl: "javascript:alert(1)"\n')
    assert [str(e) for e in result.errors] == [
        "site/_config.yml: error: site config not used: baseurl 'javascript:alert(1)' must be a path like /blog, not a URL"]
    assert b"javascript:" not in (feeds / "all.rss").read_bytes()


def test_quotes_spaces_and_angle_brackets_in_a_site_url_are_encoded(tmp_path: Path) -> None:
    result, feeds = _site(tmp_path, 'url: "https://site.example.org/x y"\nbaseurl: "/a b<c>\\"d"\n')
    assert not result.errors
    check_tree(feeds, "https://feeds.example.org/")
    found = _output_urls(feeds)
    assert "https://site.example.org/x%20y/a%20b%3Cc%3E%22d/2024/01/02/hello.html" in found
    bad = [u for u in found if not u.startswith(("tag:", "feed:")) and not URI.fullmatch(u)]
    assert not bad, bad[:5]


def test_every_url_of_the_seeds_is_a_valid_uri(tmp_path: Path) -> None:
    result, feeds = _site(tmp_path, 'url: "https://site.example.org"\nbaseurl: "/blog"\n')
    assert not result.errors
    found = _output_urls(feeds)
    assert len(found) > 50
    bad = [u for u in found if not u.startswith(("tag:", "feed:")) and not URI.fullmatch(u)]
    assert not bad, bad[:5]


# ---- settings ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["javascript:alert(1)//https://x.org/", "https://exa mple.org/",
                                   "https://x.org:99999/", "https://<x>/"])
def test_base_url_setting_must_be_a_valid_url(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(env={"SYNDICATOR_BASE_URL": value}, overrides={"state_dir": tmp_path})
    assert "base_url" in str(caught.value) and "\n" not in str(caught.value)


def test_base_url_setting_is_encoded(tmp_path: Path) -> None:
    settings = load_settings(env={}, overrides={"base_url": 'https://feeds.example.org/a b"><script>',
                                                "state_dir": tmp_path})
    assert settings.base_url == "https://feeds.example.org/a%20b%22%3E%3Cscript%3E/"


def test_hub_urls_must_be_valid(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="websub_hubs"):
        load_settings(env={}, overrides={"websub_hubs": ["https://hub.example.org:99999/"], "state_dir": tmp_path})
    settings = load_settings(env={}, overrides={"websub_hubs": ["self", "https://hub.example.org/a b"],
                                                "state_dir": tmp_path})
    assert settings.websub_hubs == ("self", "https://hub.example.org/a%20b")
