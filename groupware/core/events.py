# SPDX-License-Identifier: GPL-3.0-or-later
"""In-process events between services (a message was delivered, a mailbox changed).

Services never import each other; they publish and subscribe here. Publishers may
run on any thread (storage work runs off the event loop); subscribers that live on
an event loop hop back onto it themselves (``loop.call_soon_threadsafe``). A
subscriber's failure is logged and never reaches the publisher.

Scaled out, the same interface is served by PostgreSQL LISTEN/NOTIFY or Redis.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MailboxChanged:
    """Messages were added, flagged or removed in a mailbox."""

    person_id: int
    mailbox_id: int
    highest_modseq: int


Subscriber = Callable[[object], None]


class EventBus:
    """Thread-safe publish/subscribe by event type."""

    def __init__(self) -> None:
        self._subscribers: dict[type, list[Subscriber]] = {}
        self._lock = threading.Lock()

    def subscribe(self, event_type: type, subscriber: Subscriber) -> Callable[[], None]:
        """Call ``subscriber`` for every event of ``event_type``; returns the unsubscribe."""
        with self._lock:
            self._subscribers.setdefault(event_type, []).append(subscriber)

        def unsubscribe() -> None:
            with self._lock:
                subscribers = self._subscribers.get(event_type, [])
                if subscriber in subscribers:
                    subscribers.remove(subscriber)

        return unsubscribe

    def publish(self, event: object) -> None:
        """Deliver ``event`` to its subscribers, synchronously, in the caller's thread."""
        with self._lock:
            subscribers = list(self._subscribers.get(type(event), ()))
        for subscriber in subscribers:
            try:
                subscriber(event)
            except Exception:  # noqa: BLE001 - boundary: one subscriber must not break others
                log.exception("events.subscriber_failed event=%s", type(event).__name__)
