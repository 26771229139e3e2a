# SPDX-License-Identifier: GPL-3.0-or-later
"""HTML written in the webmail's editor: sanitized before it leaves, and its text version.

The editor posts HTML, which anyone can forge: before it is sent or saved it goes
through ``nh3`` with a short allow-list (the tags the editor makes, plus those of
a quoted original: paragraphs, emphasis, lists, links, quotes, tables), no
``style`` attribute, no ``class`` but the signature block's, no event handler,
no image (a remote one is a tracker; the editor inserts none) and links to
``http``, ``https`` and ``mailto`` only. The same cleaner prepares a quoted
original for a reply. The text/plain alternative is made from the cleaned HTML
here. No Flask here.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser
from typing import Final

import nh3

from groupware.core.mail_preferences import SIGNATURE_SEPARATOR
from groupware.web.mail_html import ALLOWED_TAGS as READING_TAGS

COMPOSE_TAGS: Final = frozenset(READING_TAGS - {"img", "font", "center"})
COMPOSE_ATTRIBUTES: Final[dict[str, set[str]]] = {
    "*": {"dir", "lang", "title"},
    "a": {"href"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan"},
    "ol": {"start"},
    "blockquote": {"type"},
}
#: The one class kept: the signature block the page's script swaps (``web.mail_signatures``).
COMPOSE_CLASSES: Final[dict[str, set[str]]] = {"div": {"signature"}}
COMPOSE_SCHEMES: Final = frozenset({"http", "https", "mailto"})
DROPPED_WITH_CONTENT: Final = frozenset(
    {"script", "style", "title", "head", "noscript", "template", "svg", "math", "object"}
)
BLOCKS: Final = frozenset(
    {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "hr", "table"}
    | {"ul", "ol", "blockquote", "dl", "dt", "dd"}
)
QUOTE_PREFIX: Final = "> "
_BLANK_LINES: Final = re.compile(r"\n{3,}")


def clean_compose_html(fragment: str) -> str:
    """The editor's HTML with only what the allow-list keeps."""
    return nh3.clean(
        fragment,
        tags=set(COMPOSE_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in COMPOSE_ATTRIBUTES.items()},
        allowed_classes={tag: set(names) for tag, names in COMPOSE_CLASSES.items()},
        strip_comments=True,
        link_rel="noopener noreferrer",
        url_schemes=set(COMPOSE_SCHEMES),
        url_relative="deny",
    )


def text_to_html(text: str) -> str:
    """Plain text as editor HTML: escaped, one paragraph per blank-line block."""
    blocks = re.split(r"\n\s*\n", text.replace("\r\n", "\n").strip("\n"))
    return "".join(
        "<p>" + html.escape(block).replace("\n", "<br>") + "</p>" for block in blocks if block
    )


class _TextMaker(HTMLParser):
    """Walks cleaned HTML and writes what a plain-text reader should see."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = [""]
        self.depth = 0  # blockquote nesting
        self.lists: list[list[int]] = []  # per open list: [is_numbered, counter]
        self.links: list[str] = []

    def _newline(self) -> None:
        self.lines.append("")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "hr"):
            self._newline()
            return
        if tag in BLOCKS and self.lines[-1].strip():
            self._newline()
        if tag == "blockquote":
            self.depth += 1
        elif tag in ("ul", "ol"):
            self.lists.append([int(tag == "ol"), 0])
        elif tag == "li":
            self._bullet()
        elif tag == "a":
            self.links.append(dict(attrs).get("href") or "")

    def _bullet(self) -> None:
        indent = "  " * max(len(self.lists) - 1, 0)
        if self.lists and self.lists[-1][0]:
            self.lists[-1][1] += 1
            self.lines[-1] += f"{indent}{self.lists[-1][1]}. "
        else:
            self.lines[-1] += f"{indent}- "

    def handle_endtag(self, tag: str) -> None:
        if tag == "blockquote":
            self._newline()
            self.depth = max(self.depth - 1, 0)
        elif tag in ("ul", "ol") and self.lists:
            self.lists.pop()
        elif tag == "a" and self.links:
            href = self.links.pop()
            if href and not href.startswith("mailto:") and href not in self.lines[-1]:
                self.lines[-1] += f" <{href}>"
        if tag in BLOCKS and tag not in ("br", "hr"):
            self._newline()

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "hr"):
            self._newline()

    def handle_data(self, data: str) -> None:
        text = re.sub(r"\s+", " ", data)
        if not self.lines[-1]:
            text = text.lstrip()
        if text:
            if not self.lines[-1] and self.depth:
                self.lines[-1] = QUOTE_PREFIX * self.depth
            self.lines[-1] += text


def html_to_text(fragment: str) -> str:
    """The text/plain alternative of cleaned HTML (lists, quotes and link targets kept)."""
    maker = _TextMaker()
    maker.feed(fragment)
    maker.close()
    # The signature separator keeps its space (RFC 3676 §4.3); other lines lose theirs.
    text = "\n".join(line if line == SIGNATURE_SEPARATOR else line.rstrip() for line in maker.lines)
    return _BLANK_LINES.sub("\n\n", text).strip("\n") + "\n"


def quoted_html(original_html: str, attribution: str) -> str:
    """A reply's start: an empty line, the attribution, the original cleaned in a blockquote."""
    return (
        f"<p><br></p><p>{html.escape(attribution)}</p>"
        f'<blockquote type="cite">{clean_compose_html(original_html)}</blockquote>'
    )
