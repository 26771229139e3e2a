"""The front's single-use tickets do not outlive their request.

Radicale answers some requests itself, before asking our auth plugin to redeem
the ticket (unknown method, ``.well-known``, invalid path); the front must
forget those tickets too. The ticket book is only visible from inside, so this
module serves our real ``DavService`` (with a ticket book it can count) on a
real cheroot HTTP server, as ``app.HttpService`` does.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cheroot import wsgi
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.wrappers import Response

from groupware.core.services import Core
from groupware.dav.auth import TicketBook
from groupware.dav.service import DavService
from tests.dav.accounts import Account, import_accounts
from tests.dav.webdav import DavHttp, event_ics, propfind_body, xml_headers
from tests.support.servers import make_config


@dataclass
class Front:
    dav: DavHttp
    tickets: TicketBook
    account: Account


@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Front]:
    config = make_config(tmp_path_factory.mktemp("dav-tickets"), dav={"max_resource_bytes": 2048})
    core = Core.open(config)
    tickets = TicketBook()
    service = DavService(core, tickets=tickets)
    app = DispatcherMiddleware(Response("portal", status=404), {"/dav": service})
    server = wsgi.Server(("127.0.0.1", 0), app, numthreads=2, server_name="tickets-test")
    server.prepare()
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        (account,) = import_accounts(core, ("Ada", "Lovelace"))
        host, port = server.bind_addr[:2]
        yield Front(DavHttp(f"http://{host}:{port}", account.credentials), tickets, account)
    finally:
        server.stop()
        thread.join(timeout=10)
        core.close()


REQUESTS = {
    "PROPFIND (redeemed by the plugin)": (
        "PROPFIND",
        "/dav/{login}/",
        propfind_body(["d:displayname"]),
    ),
    "PUT (redeemed by the plugin)": ("PUT", "/dav/{login}/calendar/t.ics", event_ics("t", "T")),
    "unknown method": ("BREW", "/dav/{login}/calendar/", ""),
    "well-known redirect": ("PROPFIND", "/dav/.well-known/caldav", ""),
    "other well-known path": ("GET", "/dav/.well-known/other", ""),
    "invalid path": ("GET", "/dav/{login}/calendar/%00", ""),
    "refused by the guard": ("PUT", "/dav/{login}/calendar/big.ics", "x" * 3000),
}


@pytest.mark.parametrize("name", list(REQUESTS))
def test_no_ticket_is_left_behind(name: str, front: Front) -> None:
    method, path, body = REQUESTS[name]
    headers = xml_headers(Depth="0") if method == "PROPFIND" else {"Content-Type": "text/calendar"}

    reply = front.dav.request(method, path.format(login=front.account.login), body or None, headers)

    assert reply.status < 500, reply.text
    assert len(front.tickets) == 0
