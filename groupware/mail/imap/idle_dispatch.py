# SPDX-License-Identifier: GPL-3.0-or-later
"""IDLE (RFC 2177) change dispatch: one read of a mailbox's changes for all its idlers.

Split out of ``imap.server``, which re-exports :class:`ChangeDispatcher`; the
connections it writes to are ``imap.server.Connection`` objects.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Final

from groupware.core.events import EventBus, MailboxChanged
from groupware.mail.imap.refresh import RefreshFrom
from groupware.mail.store import Changes, MailStore

if TYPE_CHECKING:
    from groupware.mail.imap.server import Connection

log = logging.getLogger(__name__)

WRITES_PER_TURN: Final = 500  # IDLE connections written to before the loop gets a turn


class ChangeDispatcher:
    """Brings the connections in IDLE on a mailbox up to date when it changes.

    One delivery to a mailbox that 10,000 sessions watch must not make 10,000 reads
    through a handful of worker threads (the last session would hear of it seconds
    later, and the loop would be busy with them all along). So the dispatcher reads
    once for all the waiting sessions that stand at the same point of the mailbox
    (:meth:`RefreshFrom.key <groupware.mail.imap.session.RefreshFrom.key>`, nearly
    always one group), folds the result into each and writes their responses itself,
    yielding to the loop every :data:`WRITES_PER_TURN` connections. One refresh per
    mailbox runs at a time; changes during it make one more. A connection that is busy
    (its task running) or not at a shared point gets :meth:`Connection.wake` and reads
    for itself.

    \\Recent (RFC 3501 §2.3.2) goes to one session: the shared read takes it, and the
    first session the result is given to keeps it.
    """

    def __init__(self, events: EventBus, loop: asyncio.AbstractEventLoop, store: MailStore) -> None:
        """Subscribe to ``MailboxChanged`` on ``events``."""
        self._loop = loop
        self._store = store
        self._idlers: dict[int, set[Connection]] = {}
        # Mailboxes being refreshed -> whether another change came meanwhile.
        self._refreshing: dict[int, bool] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._unsubscribe = events.subscribe(MailboxChanged, self._on_change)

    def _on_change(self, event: object) -> None:
        assert isinstance(event, MailboxChanged)
        # Publishers run in worker threads: hop onto the loop.
        self._loop.call_soon_threadsafe(self._changed, event.mailbox_id)

    def _changed(self, mailbox_id: int) -> None:
        if mailbox_id not in self._idlers:
            return
        if mailbox_id in self._refreshing:
            self._refreshing[mailbox_id] = True
            return
        self._refreshing[mailbox_id] = False
        task = self._loop.create_task(self._refresh(mailbox_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refresh(self, mailbox_id: int) -> None:
        try:
            while True:
                await self._refresh_once(mailbox_id)
                if not self._refreshing[mailbox_id]:
                    return
                self._refreshing[mailbox_id] = False
        except Exception:  # noqa: BLE001 - boundary: the sessions refresh alone instead
            log.exception("imap.idle.refresh_failed mailbox=%s", mailbox_id)
            for connection in list(self._idlers.get(mailbox_id, ())):
                connection.wake()
        finally:
            del self._refreshing[mailbox_id]

    async def _refresh_once(self, mailbox_id: int) -> None:
        groups: dict[tuple[int, int, int, bool], tuple[RefreshFrom, list[Connection]]] = {}
        for connection in list(self._idlers.get(mailbox_id, ())):
            point = connection.shared_refresh_point()
            if point is None:
                connection.wake()
            else:
                groups.setdefault(point.key, (point, []))[1].append(connection)
        for point, connections in groups.values():
            changes = await self._loop.run_in_executor(None, point.read, self._store)
            for number, connection in enumerate(connections, 1):
                if connection.take_refresh(point, changes) and changes.recent:
                    changes = Changes(
                        changes.messages, changes.expunged, changes.highest_modseq, []
                    )
                if number % WRITES_PER_TURN == 0:
                    await asyncio.sleep(0)

    def register(self, mailbox_id: int, connection: Connection) -> None:
        """Keep ``connection`` up to date with ``mailbox_id``."""
        self._idlers.setdefault(mailbox_id, set()).add(connection)

    def unregister(self, mailbox_id: int, connection: Connection) -> None:
        """Undo :meth:`register`."""
        idlers = self._idlers.get(mailbox_id)
        if idlers is not None:
            idlers.discard(connection)
            if not idlers:
                del self._idlers[mailbox_id]

    async def close(self) -> None:
        """Stop listening to the bus; end the refreshes under way."""
        self._unsubscribe()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
