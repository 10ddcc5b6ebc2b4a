"""What kramdown, Jekyll's Markdown, reads differently from CommonMark: a small pre-pass before
cmark-gfm (markup.py), so Jekyll posts keep their HTML and lose their kramdown-only markup.

- Attribute lists (`{: .class}`, `{:#id}`, `{:toc}`) and extensions (`{::options … /}`,
  `{::comment}…{:/comment}`) are not text: they go. `* TOC` before `{:toc}` goes with it (the
  table of contents kramdown would put there needs the theme's styles; the headings stay).
- `{::nomarkdown}…{:/nomarkdown}` keeps its inside as it is.
- An HTML block runs to its closing tag in kramdown, blank lines and indented lines included
  (CommonMark ends it at the first blank line and reads a line indented by 4 spaces after it as
  code): blank lines inside such a block are dropped so cmark sees one block.
- `markdown="1"` on a block: its inside is Markdown; blank lines around the inside make cmark
  read it so, and the attribute goes.
"""

from __future__ import annotations

import re

from syndicator.liquid import sub_closed

#: A line that is only an attribute list or extension: `{: .lead}`, `{:toc}`, `{::options … /}`.
_IAL_LINE = re.compile(r"^[ \t]{0,3}\{:(?!/)[^}\n]*\}[ \t]*$\n?", re.M)
#: An attribute list at the end of a line (a span IAL: `**bold**{: .x}`, `# Title {#id}` is kept).
#: No `{` inside either: a scan for the `}` from every `{:` of a line that has none took time
#: quadratic in the line (60 KB of `{:.` took 5 s).
_IAL_TAIL = re.compile(r"\{:[ \t]*[.#][^{}\n]*\}")
_TOC = re.compile(r"^[ \t]{0,3}[*+-] [^\n]*\n[ \t]{0,3}\{:toc\}[ \t]*$\n?", re.M)
_EXT_COMMENT = re.compile(r"\{::comment\}.*?\{:/comment\}|\{::comment\}.*\Z", re.S)
_NOMARKDOWN = re.compile(r"\{::nomarkdown\}(.*?)\{:/nomarkdown\}", re.S)
_OPTIONS = re.compile(r"\{::options[^{}]*/\}")
#: Block-level tags whose blocks kramdown runs to the closing tag (type 6 in CommonMark; `pre`,
#: `script`, `style`, `textarea` already run to theirs there).
_BLOCK_TAGS = ("div|table|section|article|aside|figure|blockquote|details|dl|ol|ul|form|fieldset|"
               "header|footer|nav|center|tbody|thead|tr|td|th")
_BLOCK_OPEN = re.compile(rf"^[ \t]{{0,3}}<({_BLOCK_TAGS})(?=[\s>/])([^>]*)>", re.I)
_MARKDOWN_ATTR = re.compile(r"""\s+markdown\s*=\s*(["']?)(?:1|block|span)\1""", re.I)
#: Longest block whose blank lines are joined: a stray unclosed <div> must not swallow a post.
MAX_BLOCK_LINES = 400


def prepass(text: str) -> str:
    """The Markdown text, cmark-ready as kramdown would read it."""
    if "{:" in text:
        text = _EXT_COMMENT.sub("", text)
        text = sub_closed(_NOMARKDOWN, lambda m: m.group(1), text, "{:/nomarkdown}")
        text = _OPTIONS.sub("", text)
        text = _TOC.sub("", text)
        text = _IAL_LINE.sub("", text)
        text = _IAL_TAIL.sub("", text)
    if "<" in text:
        text = _html_blocks(text)
    return text


def _html_blocks(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    fence = False
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
        m = None if fence else _BLOCK_OPEN.match(line)
        if m is None:
            out.append(line)
            i += 1
            continue
        end = _closing_line(lines, i, m.group(1).lower())
        if _MARKDOWN_ATTR.search(m.group(2)):
            out.extend(_markdown_inside(lines[i:end + 1]))
        else:
            out.extend(x for x in lines[i:end + 1] if x.strip())
        i = end + 1
    return "\n".join(out)


def _closing_line(lines: list[str], start: int, tag: str) -> int:
    """The line where the element opened on `start` closes (counting nested ones of the same
    name); `start` itself when it does not close within MAX_BLOCK_LINES."""
    opening = re.compile(rf"<{tag}(?=[\s>/])", re.I)
    closing = re.compile(rf"</{tag}\s*>", re.I)
    depth = 0
    for j in range(start, min(len(lines), start + MAX_BLOCK_LINES)):
        depth += len(opening.findall(lines[j])) - len(closing.findall(lines[j]))
        if depth <= 0:
            return j
    return start


def _markdown_inside(block: list[str]) -> list[str]:
    """`<div markdown="1">` … `</div>`: the tags on lines of their own, the inside between blank
    lines (Markdown for cmark), the attribute gone."""
    first = _MARKDOWN_ATTR.sub("", block[0])
    if len(block) == 1:
        return [first]
    inside = [line[4:] if line.startswith("    ") else line for line in block[1:-1]]
    return [first, "", *inside, "", block[-1]]
