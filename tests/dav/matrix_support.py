"""People, storage access and request bodies for the matrix (``test_permission_matrix``).

People come from an HR file, as real accounts do, in two schools. The live server's
DAV storage is also opened in the test process (the same folder and the same file
locks as the server's), so that seeds and after-the-fact checks never go through
the ACL under test.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from radicale import item as radicale_item
from radicale import storage as radicale_storage

from groupware.core.directory_log import DirectoryLog
from groupware.core.hr_import import HrImport
from groupware.core.services import Core
from groupware.dav import radicale_config
from groupware.dav.auth import TicketBook
from groupware.dav.collections import Collections
from groupware.dav.directory_books import DirectoryBooks
from groupware.dav.scope import ScopeSource
from tests.dav.accounts import CSV_HEADER, Account
from tests.dav.webdav import CALDAV, CARDDAV, DAV, NS, Reply
from tests.support.servers import next_numen

#: RFC 4791 §7.10: the busy time of January 2030 (the seeds' events are on the 2nd).
FREE_BUSY_BODY: Final = (
    '<?xml version="1.0" encoding="utf-8"?>'
    f'<c:free-busy-query xmlns:c="{CALDAV}">'
    '<c:time-range start="20300101T000000Z" end="20300201T000000Z"/></c:free-busy-query>'
)
#: RFC 5689 extended MKCOL of an address book (RFC 6352 §6.3.1).
MKCOL_BOOK_BODY: Final = (
    '<?xml version="1.0" encoding="utf-8"?>'
    f'<d:mkcol xmlns:d="{DAV}" xmlns:cr="{CARDDAV}"><d:set><d:prop>'
    "<d:resourcetype><d:collection/><cr:addressbook/></d:resourcetype>"
    "<d:displayname>Matrix</d:displayname></d:prop></d:set></d:mkcol>"
)


def multiget_body(is_calendar: bool, href: str) -> str:
    """A calendar-multiget or addressbook-multiget of one ``href``, with the item data."""
    report, data = (
        ("c:calendar-multiget", "c:calendar-data")
        if is_calendar
        else ("cr:addressbook-multiget", "cr:address-data")
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><{report} xmlns:d="{DAV}" '
        f'xmlns:c="{CALDAV}" xmlns:cr="{CARDDAV}">'
        f"<d:prop><d:getetag/><{data}/></d:prop><d:href>{href}</d:href></{report}>"
    )


def privileges_of(reply: Reply, path: str) -> set[str]:
    """The local names in ``path``'s current-user-privilege-set (RFC 3744 §5.4)."""
    prop = reply.multistatus()[path][f"{{{DAV}}}current-user-privilege-set"]
    return {
        child.tag.rsplit("}", 1)[-1]
        for privilege in prop.findall("d:privilege", NS)
        for child in privilege
    }


def import_people(core: Core, rows: Sequence[tuple[str, str, str, str]]) -> list[Account]:
    """Import ``(first name, last name, school, discipline)`` people; passwords set."""
    numens = [next_numen() for _ in rows]
    lines = [CSV_HEADER]
    lines += [
        f"{numen};{last};{first};17/05/1980;Enseignant;{school};{discipline}"
        for numen, (first, last, school, discipline) in zip(numens, rows, strict=True)
    ]
    report = HrImport(core.directory).run(("\n".join(lines) + "\n").encode(), actor="test")
    assert not report.rejected, report.rejected
    assert len(report.created) == len(rows), report
    accounts = []
    for login, numen in zip(report.created, numens, strict=True):
        person = core.directory.get(login)
        password = "matrix-pw-" + login
        core.directory.set_password(login, password, actor="test", enforce_policy=False)
        accounts.append(Account(login=login, email=person.email, password=password, numen=numen))
    return accounts


class ServerStorage:
    """The server's DAV storage, read and written without any ACL.

    Paths are storage paths without slashes around them: ``alice.x/calendar`` for a
    collection, ``alice.x/calendar/x.ics`` for an item, ``~directory/all`` for a book.
    """

    def __init__(self, core: Core) -> None:
        config = core.config
        books = DirectoryBooks(
            core.directory,
            DirectoryLog(core.engine),
            institution=config.server.institution_name,
            language=config.accounts.default_language,
        )
        scopes = ScopeSource(core.sharing, core.directory, books)
        _configuration, self.storage = radicale_config.build(
            config,
            TicketBook(),
            engine=core.engine,
            scopes=scopes,
            sharing=core.sharing,
            books=books,
        )
        self.collections = Collections(
            self.storage,
            core.directory,
            core.sharing,
            language=config.accounts.default_language,
            department_agendas=config.dav.department_agendas,
        )

    def put(self, path: str, text: str) -> None:
        """Store ``text`` (one iCalendar or vCard object) as the item at ``path``."""
        collection_path, href = path.rsplit("/", 1)
        with self.storage.acquire_lock("w", "test"):
            collection = next(iter(self.storage.inner.discover(f"/{collection_path}/")), None)
            assert isinstance(collection, radicale_storage.BaseCollection), collection_path
            (component,) = radicale_item.read_components(text)
            item = radicale_item.Item(collection_path=collection_path, vobject_item=component)
            item.prepare()
            collection.upload(href, item)

    def text(self, path: str) -> str | None:
        """The stored text of the item at ``path``, or ``None``."""
        collection_path, href = path.rsplit("/", 1)
        with self.storage.acquire_lock("r", "test"):
            collection = next(iter(self.storage.discover(f"/{collection_path}/")), None)
            if not isinstance(collection, radicale_storage.BaseCollection):
                return None
            ((_href, item),) = list(collection.get_multi([href]))
            return None if item is None else item.serialize()

    def meta(self, path: str) -> dict[str, str] | None:
        """The properties of the collection at ``path``, or ``None`` when it is absent."""
        with self.storage.acquire_lock("r", "test"):
            found = next(iter(self.storage.discover(f"/{path}/")), None)
            if not isinstance(found, radicale_storage.BaseCollection):
                return None
            return dict(found.get_meta())
