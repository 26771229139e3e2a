# SPDX-License-Identifier: GPL-3.0-or-later
"""The THREAD algorithms of RFC 5256 §2.2: ORDEREDSUBJECT and REFERENCES.

Pure functions over :class:`ThreadItem` values (no store, no I/O), so that the
algorithms can be read against the RFC and tested on their own; ``read_commands``
builds the items from the index and renders the answer with :func:`render`.

REFERENCES is Jamie Zawinski's algorithm as RFC 5256 fixes it: link by
References (or In-Reply-To), prune the empty containers, gather threads by base
subject, then order every set of siblings by sent date, ties by sequence number.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final

_MESSAGE_ID: Final = re.compile(r"<[^<>\s]+>")
# A reply or forward marker (RFC 5256 §5 subj-refwd, or the "(fwd)" trailer).
_REPLY: Final = re.compile(r"^\s*(\[[^\]]*\]\s*)*(re|fwd?)\s*(\[[^\]]*\])?\s*:", re.I)


class ThreadAlgorithm(StrEnum):
    """The algorithms we answer (advertised as THREAD=...)."""

    ORDEREDSUBJECT = "ORDEREDSUBJECT"
    REFERENCES = "REFERENCES"


@dataclass(frozen=True, slots=True)
class ThreadItem:
    """One message as threading sees it.

    Attributes:
        number: what the answer names it by (UID or sequence number).
        seq: its sequence number (breaks ties between equal dates).
        date: the sent date (Date:, else INTERNALDATE), UTC.
        base_subject: the RFC 5256 §2.1 base subject, case-folded.
        is_reply: its subject is marked as a reply or forward.
        message_id: its Message-ID, or "".
        references: the References ids, oldest first, else the In-Reply-To id.
    """

    number: int
    seq: int
    date: datetime
    base_subject: str
    is_reply: bool = False
    message_id: str = ""
    references: tuple[str, ...] = ()


@dataclass(eq=False, slots=True)
class Node:
    """A container of the thread tree; ``item`` is None for a dummy."""

    item: ThreadItem | None = None
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)

    def adopt(self, child: Node) -> None:
        """Make ``child`` a child of this node, unlinking it from its parent."""
        if child.parent is not None:
            child.parent.children.remove(child)
        child.parent = self
        self.children.append(child)

    def has_ancestor(self, other: Node) -> bool:
        """``other`` is this node or above it (a link to it would make a loop)."""
        node: Node | None = self
        while node is not None:
            if node is other:
                return True
            node = node.parent
        return False


def message_ids(value: str | None) -> tuple[str, ...]:
    """The ``<id>`` tokens of a References or In-Reply-To value, in order."""
    return tuple(_MESSAGE_ID.findall(value or ""))


def references_field(block: bytes) -> str | None:
    """The References value of a raw header block (CRLF lines, folds kept), or None.

    Found with ``bytes.find``, not the email parser nor a regular expression:
    threading a large folder reads this field of every message. Message ids are
    ASCII (RFC 5322 §3.6.4), so Latin-1 decoding loses nothing that matters.
    """
    lowered = block.lower()
    start = 0
    while (at := lowered.find(b"references", start)) >= 0:
        start = at + len(b"references")
        if at > 0 and lowered[at - 1 : at] != b"\n":
            continue  # inside another field's name or value
        colon = start
        while lowered[colon : colon + 1] in (b" ", b"\t"):
            colon += 1
        if lowered[colon : colon + 1] != b":":
            continue
        end = colon + 1
        while (line_end := block.find(b"\r\n", end)) >= 0 and block[
            line_end + 2 : line_end + 3
        ] in (b" ", b"\t"):
            end = line_end + 2  # a folded continuation line
        value_end = line_end if line_end >= 0 else len(block)
        return block[colon + 1 : value_end].decode("latin-1")
    return None


def parent_ids(references: str | None, in_reply_to: str | None) -> tuple[str, ...]:
    """The ids a message hangs under: its References, else its first In-Reply-To id."""
    return message_ids(references) or message_ids(in_reply_to)[:1]


def is_reply_subject(subject: str) -> bool:
    """The subject says Re:/Fwd: (or ends in "(fwd)")."""
    return bool(_REPLY.match(subject)) or subject.strip().lower().endswith("(fwd)")


def thread(algorithm: ThreadAlgorithm, items: Sequence[ThreadItem]) -> list[Node]:
    """The threads of ``items``, each a root node, in the RFC's order."""
    if algorithm is ThreadAlgorithm.ORDEREDSUBJECT:
        return ordered_subject(items)
    return references(items)


def _date_key(node: Node) -> tuple[datetime, int]:
    first = node
    while first.item is None:  # a dummy sorts as its first child
        first = first.children[0]
    assert first.item is not None
    return first.item.date, first.item.seq


def ordered_subject(items: Sequence[ThreadItem]) -> list[Node]:
    """RFC 5256 §2.2 ORDEREDSUBJECT: one thread per base subject, replies flat under the first."""
    ordered = sorted(items, key=lambda i: (i.base_subject, i.date, i.seq))
    roots: list[Node] = []
    by_subject: dict[str, Node] = {}
    for item in ordered:
        node = Node(item)
        root = by_subject.get(item.base_subject)
        if root is None:
            by_subject[item.base_subject] = node
            roots.append(node)
        else:
            root.adopt(node)
    roots.sort(key=_date_key)
    return roots


def references(items: Sequence[ThreadItem]) -> list[Node]:
    """RFC 5256 §2.2 REFERENCES (steps 1 to 6)."""
    roots = _gather_roots(_link(items))
    roots = _prune(roots, at_root=True)
    roots.sort(key=_date_key)
    roots = _merge_by_subject(roots)
    _sort_siblings(roots)
    roots.sort(key=_date_key)
    return roots


def _link(items: Sequence[ThreadItem]) -> list[Node]:
    """Step 1: a container per Message-ID, linked parent to child by References."""
    table: dict[str, Node] = {}
    containers: list[Node] = []
    for item in sorted(items, key=lambda i: i.seq):
        node = table.get(item.message_id) if item.message_id else None
        if node is None or node.item is not None:
            # No id, or a duplicate: a container of its own, not in the table.
            node = Node(item)
            containers.append(node)
            if item.message_id and item.message_id not in table:
                table[item.message_id] = node
        else:
            node.item = item
        previous: Node | None = None
        for reference in item.references:
            current = table.get(reference)
            if current is None:
                current = table[reference] = Node()
                containers.append(current)
            # 1A: existing links stand; none that would make a loop.
            if (
                previous is not None
                and current.parent is None
                and not previous.has_ancestor(current)
            ):
                previous.adopt(current)
            previous = current
        # 1B: the parent is the last reference, replacing an earlier link (none: no parent).
        if previous is None:
            if node.parent is not None:
                node.parent.children.remove(node)
                node.parent = None
        elif node.parent is not previous and not previous.has_ancestor(node):
            previous.adopt(node)
    return containers


def _gather_roots(containers: list[Node]) -> list[Node]:
    """Step 2: the containers without a parent (each once)."""
    seen: set[int] = set()
    roots = []
    for node in containers:
        top = node
        while top.parent is not None:
            top = top.parent
        if id(top) not in seen:
            seen.add(id(top))
            roots.append(top)
    return roots


def _prune(nodes: list[Node], *, at_root: bool) -> list[Node]:
    """Step 3: drop empty dummies, splice a dummy's children in its place.

    At the top, a dummy's children are promoted only when it has just one.
    """
    kept: list[Node] = []
    for node in nodes:
        node.children = _prune(node.children, at_root=False)
        for child in node.children:
            child.parent = node
        if node.item is not None:
            kept.append(node)
        elif not node.children:
            continue
        elif not at_root or len(node.children) == 1:
            for child in node.children:
                child.parent = None
            kept.extend(node.children)
        else:
            kept.append(node)
    return kept


def _thread_subject(node: Node) -> tuple[str, bool]:
    """The base subject of a thread and whether its message is a reply."""
    first = node if node.item is not None else node.children[0]
    assert first.item is not None
    return first.item.base_subject, first.item.is_reply


def _replaces(old: Node, node: Node, is_reply: bool) -> bool:
    """Step 5C: a dummy, or an original over a reply, takes a message's place in the table."""
    return old.item is not None and (
        node.item is None or (_thread_subject(old)[1] and not is_reply)
    )


def _merge_by_subject(roots: list[Node]) -> list[Node]:
    """Step 5: threads whose roots share a base subject are put together."""
    table: dict[str, Node] = {}
    for node in roots:
        subject, is_reply = _thread_subject(node)
        if not subject:
            continue
        old = table.get(subject)
        if old is None or _replaces(old, node, is_reply):
            table[subject] = node
    merged = list(roots)
    for node in roots:
        if node not in merged:
            continue  # already wrapped under a new dummy
        subject, is_reply = _thread_subject(node)
        target = table.get(subject) if subject else None
        if target is None or target is node:
            continue
        merged.remove(node)
        if target.item is None and node.item is None:
            for child in list(node.children):
                target.adopt(child)
        elif target.item is None or (is_reply and not _thread_subject(target)[1]):
            target.adopt(node)
        else:
            dummy = Node()
            merged[merged.index(target)] = dummy
            dummy.adopt(target)
            dummy.adopt(node)
            table[subject] = dummy
    return merged


def _sort_siblings(nodes: list[Node]) -> None:
    """Step 6: every set of siblings by sent date, the deepest first."""
    for node in nodes:
        _sort_siblings(node.children)
        node.children.sort(key=_date_key)


def render(roots: Sequence[Node]) -> bytes:
    """The ``thread-list``s of a THREAD response (RFC 5256 §4), one per root."""
    return b"".join(b"(" + _members(node) + b")" for node in roots)


def _members(node: Node) -> bytes:
    if node.item is None:
        return b"".join(b"(" + _members(child) + b")" for child in node.children)
    head = b"%d" % node.item.number
    if not node.children:
        return head
    if len(node.children) == 1:
        return head + b" " + _members(node.children[0])
    return head + b" " + b"".join(b"(" + _members(child) + b")" for child in node.children)
