# SPDX-License-Identifier: GPL-3.0-or-later
"""HTML mail made safe to show: an ``nh3`` allow-list, remote images held back.

Mail reaching a school carries phishing and tracking. The sanitizer keeps only
presentational tags and attributes (no script, no event handler, no form, no
``<style>`` element, no ``<link>``, no frame, no SVG or MathML) and URLs with the
schemes ``http``, ``https``, ``mailto``, plus ``cid:`` and ``data:image/…`` for
images. Links open in a new tab with ``rel="noopener noreferrer"``.

Inline ``style`` attributes are kept, with a fixed list of properties none of
which takes a URL (no ``background``, ``background-image``, ``content``,
``behavior``, ``list-style-image``...): mail layouts need them, and they can only
restyle the message inside its frame. nh3 filters the property names but not
their values, so a declaration whose value holds a function or trick that could
fetch or run something (``url(``, ``expression(``, ``image-set(``, a
``javascript:`` URL, a CSS escape or comment that could hide one) is dropped here
first, whatever its property (the XSS corpus test found ``width: expression()``
kept). The frame is a separate document with its
own Content-Security-Policy (``web.webmail``), so even a sanitizer miss cannot run
script or reach the network.

Remote images (``http``/``https`` ``src``) are tracking beacons as often as
pictures: they are dropped unless the person asked to see them for this message.
``cid:`` images are replaced by ``data:`` URLs of the message's own parts, since
the sandboxed frame's opaque origin sends no session cookie to fetch them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

import nh3

ALLOWED_TAGS: Final = frozenset(
    {
        *("a", "abbr", "b", "bdi", "bdo", "blockquote", "br", "caption", "center", "cite"),
        *("code", "col", "colgroup", "dd", "del", "div", "dl", "dt", "em", "font", "h1"),
        *("h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol"),
        *("p", "pre", "q", "s", "samp", "small", "span", "strike", "strong", "sub", "sup"),
        *("table", "tbody", "td", "tfoot", "th", "thead", "tr", "tt", "u", "ul", "wbr"),
    }
)
#: Tags removed with everything inside them (not just unwrapped).
DROPPED_WITH_CONTENT: Final = frozenset(
    {"script", "style", "title", "head", "noscript", "template", "svg", "math", "object"}
)
_CELL: Final = {"align", "valign", "width", "height", "colspan", "rowspan", "bgcolor"}
ALLOWED_ATTRIBUTES: Final[dict[str, set[str]]] = {
    "*": {"style", "title", "dir", "lang", "align"},
    "a": {"href"},
    "img": {"src", "alt", "width", "height", "border"},
    "font": {"color", "face", "size"},
    "table": {"width", "border", "cellpadding", "cellspacing", "bgcolor"},
    "td": _CELL,
    "th": _CELL,
    "tr": {"valign", "bgcolor"},
    "col": {"width", "span"},
    "colgroup": {"width", "span"},
    "ol": {"start", "type"},
    "blockquote": {"type"},
}
#: CSS properties kept in ``style`` attributes: none of them takes a url().
STYLE_PROPERTIES: Final = frozenset(
    {
        *("color", "background-color", "font", "font-family", "font-size", "font-style"),
        *("font-weight", "text-align", "text-decoration", "text-transform", "line-height"),
        *("letter-spacing", "white-space", "vertical-align", "direction", "width"),
        *("height", "max-width", "min-width", "margin", "margin-top", "margin-right"),
        *("margin-bottom", "margin-left", "padding", "padding-top", "padding-right"),
        *("padding-bottom", "padding-left", "border", "border-top", "border-right"),
        *("border-bottom", "border-left", "border-color", "border-style", "border-width"),
        *("border-collapse", "border-spacing", "border-radius", "display", "list-style-type"),
    }
)
URL_SCHEMES: Final = frozenset({"http", "https", "mailto", "cid", "data"})
IMAGE_DATA_PREFIXES: Final = (
    "data:image/png;",
    "data:image/gif;",
    "data:image/jpeg;",
    "data:image/webp;",
)
REMOTE_PREFIXES: Final = ("http://", "https://")
#: Found in a style declaration's value (lower case, spaces removed): it is dropped.
STYLE_VALUE_TRICKS: Final = (
    *("url(", "expression(", "image-set(", "image(", "element(", "cross-fade(", "attr("),
    *("var(", "env(", "javascript:", "vbscript:", "behavior", "binding", "@import"),
    *("\\", "/*", "<", "&"),
)
#: Our own style for the frame's document (the message's styles come after it).
FRAME_STYLE: Final = (
    "body{font:15px/1.5 system-ui,sans-serif;margin:.5rem;overflow-wrap:anywhere}"
    "img{max-width:100%;height:auto}blockquote{margin-left:.5rem;padding-left:.8rem;"
    "border-left:3px solid #ccd}"
)


@dataclass(slots=True)
class CleanedHtml:
    """The sanitized body and what was held back."""

    html: str
    blocked_images_count: int = 0
    missing_cids: set[str] = field(default_factory=set)


def clean_html(
    html: str,
    *,
    inline_images: Mapping[str, str],
    show_remote_images: bool,
) -> CleanedHtml:
    """Sanitize an HTML body.

    Args:
        html: the decoded text/html part.
        inline_images: Content-ID (without angle brackets) → ``data:`` URL of that part.
        show_remote_images: keep ``http(s)`` image sources (the person asked for them).

    Returns:
        The safe fragment, and how many remote images were dropped.
    """
    result = CleanedHtml(html="")
    result.html = nh3.clean(
        html,
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROPPED_WITH_CONTENT),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=_attribute_filter(result, inline_images, show_remote_images),
        strip_comments=True,
        link_rel="noopener noreferrer",
        set_tag_attribute_values={"a": {"target": "_blank"}},
        url_schemes=set(URL_SCHEMES),
        filter_style_properties=set(STYLE_PROPERTIES),
        url_relative="deny",
    )
    return result


def _attribute_filter(
    result: CleanedHtml, inline_images: Mapping[str, str], show_remote_images: bool
) -> Callable[[str, str, str], str | None]:
    def keep(tag: str, attribute: str, value: str) -> str | None:
        if tag == "img" and attribute == "src":
            return _image_source(value, result, inline_images, show_remote_images)
        if attribute == "style":
            return _safe_style(value)
        if attribute == "href":
            lowered = value.strip().lower()
            # cid: and data: are for images only: never a link target.
            return None if lowered.startswith(("cid:", "data:")) else value
        return value

    return keep


def _safe_style(value: str) -> str | None:
    """The declarations of a style attribute whose values are plain (see the module doc)."""
    kept = []
    for declaration in value.split(";"):
        squeezed = "".join(declaration.split()).lower()
        if squeezed and not any(trick in squeezed for trick in STYLE_VALUE_TRICKS):
            kept.append(declaration.strip())
    return "; ".join(kept) or None


def _image_source(
    value: str, result: CleanedHtml, inline_images: Mapping[str, str], show_remote_images: bool
) -> str | None:
    source = value.strip()
    lowered = source.lower()
    if lowered.startswith("cid:"):
        cid = source[4:].strip().strip("<>")
        found = inline_images.get(cid)
        if found is None:
            result.missing_cids.add(cid)
        return found
    if lowered.startswith(IMAGE_DATA_PREFIXES):
        return source
    if lowered.startswith(REMOTE_PREFIXES):
        if show_remote_images:
            return source
        result.blocked_images_count += 1
    return None


def frame_document(fragment: str, language: str) -> str:
    """The sanitized fragment as the frame's whole document."""
    return (
        f'<!doctype html><html lang="{language}"><head><meta charset="utf-8">'
        '<meta name="referrer" content="no-referrer">'
        f"<style>{FRAME_STYLE}</style></head>"
        f"<body>{fragment}</body></html>"
    )
