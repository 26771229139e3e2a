# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks on a DAV request body before Radicale sees it.

Radicale embedded as a WSGI app trusts its server for some checks and mishandles
a few bodies, so the front screens each authenticated request:

- size: ``dav.max_resource_bytes`` for a PUT of one item, twice that for any
  other body (Radicale's ``max_content_length`` is only enforced by its own
  server); answered ``413`` (RFC 9110 §15.5.14);
- chunked bodies: read here (bounded) and handed over with a ``Content-Length``,
  since Radicale reads exactly ``CONTENT_LENGTH`` bytes and would see none; one
  over the limit is still read up to four times the limit before the ``413``, so
  that a client still sending reads the answer instead of a broken pipe;
- XML bodies (RFC 4918 §8.2): a document type declaration is refused with
  ``400`` (no DAV body needs one; Radicale's defusedxml refusal became a 500);
  a PROPPATCH of ``DAV:resourcetype`` is refused with ``403`` and
  ``DAV:cannot-modify-protected-property`` (RFC 4918 §15.9, §16): Radicale
  would turn a calendar into a plain collection or an address book, which the
  owner can then no longer open; a ``calendar-multiget``/``addressbook-multiget``
  with an empty ``DAV:href`` is refused with ``400`` (Radicale fails with 500).

XML is scanned with expat directly, with document type declarations refused
before any entity can be declared (the defusedxml approach), in whatever
encoding the body declares.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from xml.parsers import expat

#: How much of a refused chunked body is still read (times the limit), and in what blocks.
DRAINED_TIMES_LIMIT: Final = 4
DRAIN_BLOCK_BYTES: Final = 64 * 1024
XML_METHODS: Final = frozenset({"PROPFIND", "PROPPATCH", "REPORT", "MKCOL", "MKCALENDAR"})
_DAV: Final = "DAV:"
_SEP: Final = " "
_PROPERTY_UPDATES: Final = frozenset({f"{_DAV} set", f"{_DAV} remove"})
_MULTIGETS: Final = frozenset(
    {
        "urn:ietf:params:xml:ns:caldav calendar-multiget",
        "urn:ietf:params:xml:ns:carddav addressbook-multiget",
    }
)
_PROTECTED_ERROR: Final = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<D:error xmlns:D="DAV:"><D:cannot-modify-protected-property/></D:error>\n'
)


@dataclass(frozen=True, slots=True)
class Refusal:
    """The answer to a request that must not reach Radicale."""

    status: str
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


def screen(environ: dict[str, Any], max_resource_bytes: int) -> Refusal | None:
    """Check (and, for chunked or XML bodies, buffer) the request body.

    Returns:
        ``None`` when Radicale may serve the request; ``environ["wsgi.input"]``
        then still holds the whole body.
    """
    limit = body_limit(environ, max_resource_bytes)
    length_text = environ.get("CONTENT_LENGTH") or ""
    is_chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if length_text.isdigit() and int(length_text) > limit:
        return _too_large(limit)
    method = environ.get("REQUEST_METHOD", "")
    if not is_chunked and (method not in XML_METHODS or not length_text.isdigit()):
        return None
    body = environ["wsgi.input"].read(limit + 1 if is_chunked else int(length_text))
    if len(body) > limit:
        _drain(environ["wsgi.input"], DRAINED_TIMES_LIMIT * limit)
        return _too_large(limit)
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    if method in XML_METHODS and body:
        return _xml_refusal(method, body)
    return None


def _drain(stream: Any, most: int) -> None:
    """Read and drop up to ``most`` more bytes of a refused chunked body.

    A client sends the whole body before it reads the answer; were the server to
    close with the body still coming, the client would fail on a broken pipe
    instead of reading the ``413``. Bounded, so a client cannot keep us reading.
    """
    while most > 0:
        block = stream.read(min(most, DRAIN_BLOCK_BYTES))
        if not block:
            return
        most -= len(block)


def body_limit(environ: Mapping[str, Any], max_resource_bytes: int) -> int:
    """Bytes accepted in this request's body.

    A PUT of one item (``/<login>/<collection>/<item>``) carries one resource;
    anything else (a whole-collection PUT, a REPORT) may carry twice that.
    """
    segments = [part for part in str(environ.get("PATH_INFO", "")).split("/") if part]
    if environ.get("REQUEST_METHOD") == "PUT" and len(segments) >= 3:
        return max_resource_bytes
    return 2 * max_resource_bytes


def _too_large(limit: int) -> Refusal:
    return Refusal(
        "413 Content Too Large", f"The request body is larger than {limit} bytes.\n".encode()
    )


class _DoctypeError(Exception):
    """A document type declaration: refused before it can declare entities."""


def _xml_refusal(method: str, body: bytes) -> Refusal | None:
    parser = expat.ParserCreate(namespace_separator=_SEP)
    stack: list[str] = []
    empty_href = False
    protected = False
    text: list[str] = []

    def refuse_doctype(*_args: object) -> None:
        raise _DoctypeError

    def start(name: str, _attributes: dict[str, str]) -> None:
        nonlocal protected
        stack.append(name)
        text.clear()
        if (
            method == "PROPPATCH"
            and name == f"{_DAV} resourcetype"
            and len(stack) == 4
            and stack[1] in _PROPERTY_UPDATES
            and stack[2] == f"{_DAV} prop"
        ):
            protected = True

    def end(name: str) -> None:
        nonlocal empty_href
        if name == f"{_DAV} href" and len(stack) == 2 and stack[0] in _MULTIGETS:
            empty_href = empty_href or not "".join(text).strip()
        stack.pop()

    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.EntityDeclHandler = refuse_doctype
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text.append
    try:
        parser.Parse(body, True)
    except _DoctypeError:
        return Refusal("400 Bad Request", b"Document type declarations are not accepted.\n")
    except expat.ExpatError:
        return None  # Radicale answers malformed XML with 400 itself.
    if protected:
        return Refusal("403 Forbidden", _PROTECTED_ERROR, "application/xml; charset=utf-8")
    if empty_href:
        return Refusal("400 Bad Request", b"An empty DAV:href names no resource.\n")
    return None
