"""Liquid in post bodies, as Jekyll renders it before the Markdown, so far as it can be without
the site's theme.

Jekyll runs every file with front matter through Liquid first, so a copied post is full of
`{% highlight %}`, `{% raw %}`, `{% include %}` and `{{ site.baseurl }}`. What the theme alone
can answer (`include`, loops over `site.posts`) cannot be rendered here: it is removed, never
shown raw, and what is neither known nor harmless is reported.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from syndicator.sources import jekyll

#: `{% raw %}…{% endraw %}`: Liquid inside is text (matched first, so nothing in it is a tag).
_RAW = re.compile(r"\{%-?\s*raw\s*-?%\}(.*?)\{%-?\s*endraw\s*-?%\}", re.S)
_COMMENT = re.compile(r"\{%-?\s*comment\s*-?%\}.*?\{%-?\s*endcomment\s*-?%\}", re.S)
_HIGHLIGHT = re.compile(r"\{%-?\s*highlight\s+([\w+#.-]++)?[^%]*?-?%\}\n?(.*?)\n?\{%-?\s*endhighlight\s*-?%\}", re.S)
_TAG = re.compile(r"\{%-?\s*(\w++)(.*?)-?%\}", re.S)
_OUTPUT = re.compile(r"\{\{-?\s*(.*?)-?\}\}", re.S)
#: What ends a match of each pattern above. A lazy `.*?` with no end left after its opening
#: scans to the end of the text, from every opening: a body of 8,000 `{` took a second, 1 MiB
#: of them hours. So each pattern is applied up to the end of its last closing only.
_CLOSINGS: dict[re.Pattern[str], re.Pattern[str] | str] = {
    _RAW: re.compile(r"\{%-?\s*endraw\s*-?%\}"), _COMMENT: re.compile(r"\{%-?\s*endcomment\s*-?%\}"),
    _HIGHLIGHT: re.compile(r"\{%-?\s*endhighlight\s*-?%\}"), _TAG: "%}", _OUTPUT: "}}",
}
#: Block and flow tags whose markup goes while what they enclose stays (no values to test).
_FLOW = frozenset("if elsif else endif unless endunless case when endcase for endfor capture endcapture "
                  "assign increment decrement tablerow endtablerow break continue cycle".split())
#: Tags that only the theme or plugins can answer: removed without a word (a post's owner
#: expects them to vanish from a feed, as a sidebar does).
_THEME = frozenset("include include_relative seo feed_meta gist twitter youtube".split())
_PLACEHOLDER = "\x00liquid{}\x00"


@dataclass
class Rendered:
    text: str
    #: (message, 1-based line within the body) for what was removed and is not understood
    warnings: list[tuple[str, int]] = field(default_factory=list)


def render(text: str, site: Mapping[str, Any]) -> Rendered:
    """The body with Liquid rendered or removed; a body without `{` is returned as it is."""
    if "{%" not in text and "{{" not in text:
        return Rendered(text)
    kept: list[str] = []

    def keep(value: str) -> str:
        kept.append(value)
        return _PLACEHOLDER.format(len(kept) - 1)

    out = Rendered(text)
    original = text
    text = sub_closed(_RAW, lambda m: keep(m.group(1)), text)
    text = sub_closed(_COMMENT, "", text)
    text = sub_closed(_HIGHLIGHT, lambda m: keep(_code_block(m.group(1), m.group(2))), text)
    text = sub_closed(_TAG, _tags(site, out, original), text)
    text = sub_closed(_OUTPUT, _outputs(site, out, original), text)
    for i, value in enumerate(kept):
        text = text.replace(_PLACEHOLDER.format(i), value, 1)
    out.text = text
    return out


def sub_closed(pattern: re.Pattern[str], repl: str | Callable[[re.Match[str]], str], text: str,
               closing: re.Pattern[str] | str | None = None) -> str:
    """`pattern.sub(repl, text)` in time linear in the text: applied only up to the end of the
    last match of `closing` (a string or pattern; by default _CLOSINGS[pattern]), what a match
    of `pattern` ends with. No match can end past it; a lazy scan for an end that never comes
    would start again from every opening."""
    end_with = _CLOSINGS[pattern] if closing is None else closing
    if isinstance(end_with, str):
        at = text.rfind(end_with)
        end = at + len(end_with) if at >= 0 else 0
    else:
        end = 0
        for m in end_with.finditer(text):
            end = m.end()
    if end == 0:
        return text
    return pattern.sub(repl, text[:end]) + text[end:] if end < len(text) else pattern.sub(repl, text)


def _code_block(lang: str | None, code: str) -> str:
    """A highlight block as Jekyll's Rouge writes it, less the colours: the code escaped, kept
    verbatim (an HTML <pre> block: Markdown leaves its inside alone, blank lines and all)."""
    css = f' class="language-{html.escape(lang)}"' if lang else ""
    return f"<pre><code{css}>{html.escape(code.strip(chr(10)))}</code></pre>"


def _line(text: str, m: re.Match[str]) -> int:
    """The line of the body (`text`, as written) the tag is on: found again there, since the
    blocks rendered before have moved it."""
    at = text.find(m.group(0))
    return text.count("\n", 0, at) + 1 if at >= 0 else 1


def _tags(site: Mapping[str, Any], out: Rendered, text: str) -> Callable[[re.Match[str]], str]:
    def tag(m: re.Match[str]) -> str:
        name, args = m.group(1), m.group(2).strip()
        if name == "post_url":
            return _post_url(args, site)
        if name == "link":
            return _link(args, site)
        if name in _THEME or name.startswith("end") and name[3:] in _THEME:
            return ""
        if name not in _FLOW:
            out.warnings.append((f"Liquid tag {{% {name} %}} removed: it needs the site's theme or plugins",
                                 _line(text, m)))
        return ""

    return tag


def _outputs(site: Mapping[str, Any], out: Rendered, text: str) -> Callable[[re.Match[str]], str]:
    def output(m: re.Match[str]) -> str:
        expression = m.group(1).split("|", 1)[0].strip()
        if expression in ("site.url", "site.baseurl"):
            return str(site.get(expression[5:]) or "").rstrip("/")
        if expression.startswith(("'", '"')) and expression[-1:] == expression[:1]:
            return expression[1:-1]  # a quoted string: `{{ "{%" }}`, how Liquid is written in posts
        out.warnings.append((f"Liquid output {{{{ {expression} }}}} removed: its value is unknown here",
                             _line(text, m)))
        return ""

    return output


def _post_url(args: str, site: Mapping[str, Any]) -> str:
    """`{% post_url 2010-07-21-name %}`: the post's URL under the site's permalink (without
    the baseurl, as Jekyll gives it)."""
    name = os.path.basename(args.split()[0]) if args else ""
    day = jekyll.filename_date(name)
    if day is None:
        return ""
    local = datetime.combine(date(day.year, day.month, day.day), time())
    return jekyll.permalink(site.get("permalink"), local, [], jekyll.filename_slug(name))


def _link(args: str, site: Mapping[str, Any]) -> str:
    """`{% link _posts/2016-07-26-name.md %}`, `{% link about.md %}`: the page's URL. Posts
    follow their permalink; other files their path, as Jekyll writes it (`.md` → `.html`)."""
    path = args.split()[0] if args else ""
    if "_posts/" in path:
        return _post_url(os.path.splitext(path.rsplit("/", 1)[1])[0], site)
    stem, ext = os.path.splitext(path)
    return "/" + (stem + ".html" if ext.lower() in (".md", ".markdown") else path).lstrip("/")
