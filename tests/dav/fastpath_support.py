"""Comparing a DAV fast path's answer with Radicale's own, for the fast-path tests.

Each request is run twice on one ``DavService``: once with its fast paths, once
without (Radicale answers); the answers are compared as sets of facts
``(href, status, property, value)``, so that order and whitespace do not count.
"""

from __future__ import annotations

import gzip
import xml.etree.ElementTree as ET

from groupware.core.directory import Person
from groupware.dav.service import DavAnswer, DavService

Fact = tuple[str, str, str, str]


def answer_facts(answer: DavAnswer) -> set[Fact]:
    """A multistatus answer as facts; a response's own status is a fact with no property."""
    body = answer.body
    if answer.headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    root = ET.fromstring(body)  # noqa: S314 - our own answer
    facts: set[Fact] = set()
    for response in root.findall("{DAV:}response"):
        href = response.findtext("{DAV:}href", "")
        own_status = response.findtext("{DAV:}status")
        if own_status is not None:
            facts.add((href, own_status, "", ""))
        for propstat in response.findall("{DAV:}propstat"):
            status = propstat.findtext("{DAV:}status", "")
            for prop in propstat.find("{DAV:}prop") or []:
                value = ET.tostring(prop, encoding="unicode")
                facts.add((href, status, prop.tag, value))
    return facts


def both_ways(
    dav: DavService, person: Person, method: str, path: str, body: bytes, **headers: str
) -> tuple[DavAnswer, DavAnswer]:
    """(fast path's answer, Radicale's answer) to one Depth-1 request."""
    asked = {"Depth": "1", "Content-Type": "application/xml", **headers}
    dav.use_fast_paths = True
    fast = dav.request_as(person, method, path, body, asked)
    dav.use_fast_paths = False
    try:
        slow = dav.request_as(person, method, path, body, asked)
    finally:
        dav.use_fast_paths = True
    return fast, slow
