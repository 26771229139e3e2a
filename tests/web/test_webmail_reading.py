"""Reading a message over real HTTP: invitations, the headers page, trusted senders.

One server runs HTTP (with the DAV front), SMTP and IMAP. Mail is delivered over
the inbound SMTP listener (as from the outside world) or sent through the
authenticated submission listener (as a colleague here); what the agenda button
writes is read back with the ``caldav`` library.
"""

from __future__ import annotations

import email
import email.policy
import html
import re
import smtplib
import ssl
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import SMTP

import caldav
import pytest

from groupware.core.directory import Person
from tests.mail.imap_support import PASSWORD, TIMEOUT_SECONDS, deliver, logged_in, new_user
from tests.support.servers import RunningServer, make_config, running_server
from tests.web.portal_client import PortalClient
from tests.web.test_webmail_http import inbox_uids

ORGANIZER = "jean.dupont@outside.example"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    config = make_config(
        tmp_path_factory.mktemp("webmail-reading"),
        accounts={"default_time_zone": "Europe/Paris"},
    )
    with running_server(config, only=frozenset({"http", "smtp", "imap"})) as server:
        yield server


@pytest.fixture
def reader(live: RunningServer) -> Person:
    # English: the French of new text is added to the catalogue when branches merge
    # (tests/web/test_translations.py checks it is all there).
    return new_user(live, language="en")


@pytest.fixture
def portal(live: RunningServer, reader: Person) -> PortalClient:
    client = PortalClient(live.http_url)
    assert client.sign_in(reader.login, PASSWORD).status == 302
    return client


def calendar_text(method: str, event: str) -> str:
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Outside//Mailer//EN",
        f"METHOD:{method}",
        "BEGIN:VEVENT",
        "DTSTAMP:20260301T100000Z",
        f"ORGANIZER;CN=Jean Dupont:mailto:{ORGANIZER}",
        "ATTENDEE;CN=Marie Curie;PARTSTAT=ACCEPTED:mailto:marie@outside.example",
        "ATTENDEE;CN=Paul Roux;PARTSTAT=DECLINED:mailto:paul@outside.example",
        "ATTENDEE;PARTSTAT=TENTATIVE:mailto:zoe@outside.example",
        "ATTENDEE:mailto:luc@outside.example",
        *event.strip().splitlines(),
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "\r\n".join(lines) + "\r\n"


def invitation_mail(subject: str, ics: str, *, as_attachment: bool = False) -> bytes:
    message = EmailMessage()
    message["From"] = f"Jean Dupont <{ORGANIZER}>"
    message["To"] = "someone@example.org"
    message["Subject"] = subject
    message.set_content("Vous êtes invité.\n")
    if as_attachment:
        message.add_attachment(
            ics.encode(), maintype="application", subtype="octet-stream", filename="invite.ics"
        )
    else:
        method = re.search(r"METHOD:(\w+)", ics)
        message.add_alternative(
            ics.encode(),
            maintype="text",
            subtype="calendar",
            params={"method": method.group(1) if method else "REQUEST", "charset": "utf-8"},
        )
    return message.as_bytes(policy=SMTP)


def read(live: RunningServer, portal: PortalClient, reader: Person, mail: bytes) -> tuple[int, str]:
    before = len(inbox_uids_now(live, reader))
    deliver(live, reader.email, mail)
    uid = inbox_uids(live, reader, before + 1)[-1]
    page = portal.get(f"/mail/INBOX/{uid}")
    assert page.status == 200
    return uid, html.unescape(page.body)


def inbox_uids_now(live: RunningServer, reader: Person) -> list[int]:
    with logged_in(live, reader) as client:
        client.select_folder("INBOX", readonly=True)
        return [int(u) for u in client.search("ALL")]


def text_of(page: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</(?:dd|p|pre|ul|h2)>', page, re.S)
    assert found, f"no #{element_id}"
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", found.group(1))).strip()


TIMED = """
UID:timed-1@outside.example
DTSTART:20260310T130000Z
DTEND:20260310T143000Z
SUMMARY:Conseil pédagogique
LOCATION:Salle 12
DESCRIPTION:Ordre du jour :\\n1. Emplois du temps
"""


def test_a_timed_invitation_reads_in_the_persons_zone_with_every_answer(
    live: RunningServer, portal: PortalClient, reader: Person
) -> None:
    _uid, page = read(
        live, portal, reader, invitation_mail("Invitation", calendar_text("REQUEST", TIMED))
    )
    assert text_of(page, "invitation-title") == "Invitation"
    assert text_of(page, "invitation-summary") == "Conseil pédagogique"
    # 13:00 UTC is 14:00 in Paris in March (winter time).
    assert (
        text_of(page, "invitation-when") == "Tuesday, March 10, 2026, 14:00 – 15:30 (Europe/Paris)"
    )
    assert text_of(page, "invitation-location") == "Salle 12"
    assert text_of(page, "invitation-organizer") == "Jean Dupont"
    attendees = text_of(page, "invitation-attendees")
    assert "Marie Curie (accepted)" in attendees
    assert "Paul Roux (declined)" in attendees
    assert "zoe@outside.example (maybe)" in attendees
    assert "luc@outside.example (not answered yet)" in attendees
    assert "Ordre du jour :\n1. Emplois du temps" in page
    assert 'id="add-to-agenda"' in page
    assert "invitation-cancelled" not in page


def test_all_day_recurring_cancelled_and_attached_invitations(
    live: RunningServer, portal: PortalClient, reader: Person
) -> None:
    all_day = (
        "UID:day-1@outside.example\nDTSTART;VALUE=DATE:20260406\n"
        "DTEND;VALUE=DATE:20260409\nSUMMARY:Voyage scolaire"
    )
    _uid, page = read(
        live, portal, reader, invitation_mail("Voyage", calendar_text("REQUEST", all_day))
    )
    assert text_of(page, "invitation-when") == (
        "From Monday, April 6, 2026 to Wednesday, April 8, 2026 (all day) (Europe/Paris)"
    )

    weekly = (
        "UID:weekly-1@outside.example\nDTSTART;TZID=Europe/Paris:20260310T080000\n"
        "DTEND;TZID=Europe/Paris:20260310T090000\n"
        "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TU,TH;COUNT=6\nSUMMARY:Soutien"
    )
    _uid, page = read(
        live, portal, reader, invitation_mail("Soutien", calendar_text("REQUEST", weekly))
    )
    rule = text_of(page, "invitation-rule")
    assert rule.startswith("Every 2 weeks (Tuesday, Thursday), 6 times")
    assert (
        "Tuesday, March 10, 2026 at 08:00; Thursday, March 12, 2026 at 08:00; "
        "Tuesday, March 24, 2026 at 08:00" in rule
    )

    until = (
        "UID:monthly-1@outside.example\nDTSTART:20260901T070000Z\n"
        "RRULE:FREQ=MONTHLY;UNTIL=20270630T000000Z\nSUMMARY:Réunion"
    )
    _uid, page = read(
        live, portal, reader, invitation_mail("Réunion", calendar_text("PUBLISH", until))
    )
    assert text_of(page, "invitation-rule").startswith(
        "Every month, until Wednesday, June 30, 2027"
    )

    _uid, page = read(
        live,
        portal,
        reader,
        invitation_mail("Annulé", calendar_text("CANCEL", TIMED + "STATUS:CANCELLED")),
    )
    assert text_of(page, "invitation-title") == "Cancelled event"
    assert 'id="invitation-cancelled"' in page
    assert 'id="add-to-agenda"' not in page

    _uid, page = read(
        live,
        portal,
        reader,
        invitation_mail("Pièce jointe", calendar_text("REQUEST", TIMED), as_attachment=True),
    )
    assert text_of(page, "invitation-summary") == "Conseil pédagogique"
    assert "invite.ics" in page  # still listed for download


def test_a_malformed_invitation_says_so_and_the_mail_still_reads(
    live: RunningServer, portal: PortalClient, reader: Person
) -> None:
    for broken in (
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART:pas une date\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n",
        "ceci n'est pas de l'iCalendar\r\n",
        "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n",
    ):
        _uid, page = read(live, portal, reader, invitation_mail("Cassé", broken))
        assert 'id="invitation-unreadable"' in page
        assert "Vous êtes invité." in page
        assert 'id="add-to-agenda"' not in page


def own_calendar(live: RunningServer, person: Person) -> Iterator[caldav.Calendar]:
    with caldav.DAVClient(
        url=live.dav_url, username=person.login, password=PASSWORD, timeout=5
    ) as client:
        (found,) = [
            c
            for c in client.principal().calendars()
            if str(c.url).rstrip("/").endswith(f"/{person.login}/calendar")
        ]
        yield found


def test_add_to_agenda_puts_the_event_with_its_uid_once(
    live: RunningServer, portal: PortalClient, reader: Person
) -> None:
    uid, _page = read(
        live, portal, reader, invitation_mail("Invitation", calendar_text("REQUEST", TIMED))
    )
    path = f"/mail/INBOX/{uid}/invitation"
    assert portal.post(path, {}).status == 400  # no CSRF token
    added = portal.submit(path, {}, page=f"/mail/INBOX/{uid}")
    assert added.location == f"/mail/INBOX/{uid}"
    assert "The event was added to your agenda." in html.unescape(
        portal.get(f"/mail/INBOX/{uid}").body
    )
    for calendar in own_calendar(live, reader):
        event = calendar.event_by_uid("timed-1@outside.example")
        text = event.data
    assert "SUMMARY:Conseil pédagogique" in text
    assert "METHOD" not in text
    assert "DTSTART:20260310T130000Z" in text

    again = portal.submit(path, {}, page=f"/mail/INBOX/{uid}")
    assert again.status == 302
    assert "This event is already in your agenda." in html.unescape(
        portal.get(f"/mail/INBOX/{uid}").body
    )

    cancelled_uid, _page = read(
        live, portal, reader, invitation_mail("Annulé", calendar_text("CANCEL", TIMED))
    )
    refused = portal.submit(
        f"/mail/INBOX/{cancelled_uid}/invitation", {}, page=f"/mail/INBOX/{cancelled_uid}"
    )
    assert refused.status == 302
    assert "This message has no invitation to add." in html.unescape(
        portal.get(f"/mail/INBOX/{cancelled_uid}").body
    )


def test_the_headers_page_lists_every_header_decoded_in_order_and_escaped(
    live: RunningServer, portal: PortalClient, reader: Person
) -> None:
    mail = (
        b"From: =?utf-8?q?Fran=C3=A7oise_L=C3=A9ger?= <f@outside.example>\r\n"
        b"To: someone@example.org\r\n"
        b"Subject: =?utf-8?b?UsOpdW5pb24gPHNjcmlwdD4=?=\r\n"
        b"X-Folded: first part\r\n\tsecond part\r\n"
        b"X-Hostile: <img src=x onerror=alert(1)>\r\n"
        b"Date: Mon, 7 Feb 2022 09:30:00 +0100\r\n"
        b"\r\n"
        b"Bonjour.\r\n"
    )
    uid, page = read(live, portal, reader, mail)
    assert f'href="/mail/INBOX/{uid}/headers"' in page
    headers = portal.get(f"/mail/INBOX/{uid}/headers")
    assert headers.status == 200
    assert "<img src=x" not in headers.body
    assert "&lt;img src=x onerror=alert(1)&gt;" in headers.body
    rows = [
        (html.unescape(n), html.unescape(v))
        for n, v in re.findall(
            r'<tr><th scope="row">(.*?)</th><td>(.*?)</td></tr>', headers.body, re.S
        )
    ]
    names = [name for name, _value in rows]
    assert names[:2] == ["Return-Path", "Received"]  # our trace lines first
    assert names[2:] == ["From", "To", "Subject", "X-Folded", "X-Hostile", "Date"]
    values = dict(rows)
    assert values["From"] == "Françoise Léger <f@outside.example>"
    assert values["Subject"] == "Réunion <script>"
    assert values["X-Folded"] == "first part second part"
    assert portal.get(f"/mail/INBOX/{uid + 50}/headers").status == 404


def submit_as(live: RunningServer, sender: Person, recipient: str, mail: bytes) -> None:
    host, port = live.addresses["submission"]
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with smtplib.SMTP(host, port, timeout=TIMEOUT_SECONDS) as client:
        client.starttls(context=context)
        client.login(sender.login, PASSWORD)
        assert client.sendmail(sender.email, [recipient], mail) == {}


def newsletter(sender: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: someone@example.org\r\nSubject: Lettre\r\n"
        "MIME-Version: 1.0\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        '<p>Nouvelles</p><img src="https://images.example/photo.jpg">\r\n'
    ).encode()


def test_images_of_a_trusted_sender_show_only_when_its_mail_is_authenticated(
    live: RunningServer, portal: PortalClient, reader: Person
) -> None:
    colleague = new_user(live)
    before = len(inbox_uids_now(live, reader))
    submit_as(live, colleague, reader.email, newsletter(colleague.email))
    genuine = inbox_uids(live, reader, before + 1)[-1]
    page = html.unescape(portal.get(f"/mail/INBOX/{genuine}").body)
    assert 'id="images-blocked"' in page
    assert f"Always show images from {colleague.email}" in page
    trust = f"/mail/INBOX/{genuine}/trust-sender"
    assert portal.post(trust, {}).status == 400  # no CSRF token
    assert portal.submit(trust, {}, page=f"/mail/INBOX/{genuine}").status == 302
    page = html.unescape(portal.get(f"/mail/INBOX/{genuine}").body)
    assert 'id="images-blocked"' not in page
    assert 'id="images-trusted"' in page
    assert f'src="/mail/INBOX/{genuine}/body?images=1"' in page

    # The same address from outside, unauthenticated: a forgery as far as we know.
    _uid, forged = read(live, portal, reader, newsletter(colleague.email))
    assert 'id="images-blocked"' in forged
    assert 'id="sender-unverified"' in forged
    assert "could not be verified as coming from that address" in forged
    assert 'id="trust-sender"' not in forged
    # Nor with a HELO name that imitates the end of our Received line, nor with a
    # Received line of ours forged inside the message.
    imitation = (
        f"x by {live.config.smtp.hostname or 'mail.example.org'} (groupware) with ESMTPSA id Q"
    )
    forged_trace = (
        b"Received: from laptop (127.0.0.1)\r\n\tby mail.example.org (groupware) with ESMTPSA "
        b"id Q1\r\n\t; Mon, 7 Feb 2022 09:30:00 +0100\r\n"
    ) + newsletter(colleague.email)
    host, port = live.addresses["smtp"]
    before = len(inbox_uids_now(live, reader))
    with smtplib.SMTP(host, port, timeout=TIMEOUT_SECONDS) as smtp:
        smtp.ehlo(imitation)
        smtp.sendmail("x@outside.example", [reader.email], newsletter(colleague.email))
        smtp.sendmail("x@outside.example", [reader.email], forged_trace)
    both = inbox_uids(live, reader, before + 2)[-2:]
    traces = [html.unescape(portal.get(f"/mail/INBOX/{uid}/headers").body) for uid in both]
    assert all(f"from {imitation} (" in trace for trace in traces)  # the HELO got there
    for uid in both:
        page = html.unescape(portal.get(f"/mail/INBOX/{uid}").body)
        assert 'id="images-blocked"' in page, uid
        assert 'id="sender-unverified"' in page
    # An outside sender cannot even be trusted: the button is refused by the server.
    _uid, outside = read(live, portal, reader, newsletter("lettre@outside.example"))
    assert 'id="trust-sender"' not in outside
    assert "This sender cannot be verified." in outside
    assert (
        portal.submit(f"/mail/INBOX/{_uid}/trust-sender", {}, page=f"/mail/INBOX/{_uid}").status
        == 302
    )
    listed = portal.get("/mail/settings/senders")
    assert colleague.email in listed.body
    assert "lettre@outside.example" not in listed.body

    forget = "/mail/settings/senders/forget"
    assert portal.post(forget, {"address": colleague.email}).status == 400
    assert (
        portal.submit(forget, {"address": colleague.email}, page="/mail/settings/senders").status
        == 302
    )
    assert 'id="no-trusted-senders"' in portal.get("/mail/settings/senders").body
    page = html.unescape(portal.get(f"/mail/INBOX/{genuine}").body)
    assert 'id="images-blocked"' in page
    events = [
        r.event for r in live.core.audit.recent(10, event_prefix="mail.sender_", actor=reader.login)
    ]
    assert events == ["mail.sender_forgotten", "mail.sender_trusted"]


def test_accepting_sends_the_organiser_an_itip_reply_through_submission(
    live: RunningServer, portal: PortalClient, reader: Person
) -> None:
    organizer = new_user(live)
    ics = (
        calendar_text("REQUEST", TIMED)
        .replace(f"mailto:{ORGANIZER}", f"mailto:{organizer.email}")
        .replace(
            "ATTENDEE:mailto:luc@outside.example",
            f"ATTENDEE;CN=Moi;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{reader.email}",
        )
    )
    uid, page = read(live, portal, reader, invitation_mail("À vous", ics))
    assert 'id="invitation-answer"' in page
    path = f"/mail/INBOX/{uid}/invitation/answer"
    assert portal.post(path, {"answer": "accepted"}).status == 400  # no CSRF token
    sent = portal.submit(path, {"answer": "accepted"}, page=f"/mail/INBOX/{uid}")
    assert sent.status == 302
    assert f"Your answer was sent to {organizer.email}." in html.unescape(
        portal.get(f"/mail/INBOX/{uid}").body
    )
    (reply_uid,) = inbox_uids(live, organizer, 1)
    with logged_in(live, organizer) as client:
        client.select_folder("INBOX", readonly=True)
        raw = client.fetch([reply_uid], ["BODY.PEEK[]"])[reply_uid][b"BODY[]"]
    reply = email.message_from_bytes(raw, policy=email.policy.default)
    assert reply["Subject"] == "Accepted: Conseil pédagogique"
    part = next(p for p in reply.walk() if p.get_content_type() == "text/calendar")
    assert part.get_param("method") == "REPLY"
    calendar = part.get_content()
    assert "METHOD:REPLY" in calendar
    assert "UID:timed-1@outside.example" in calendar
    assert f"PARTSTAT=ACCEPTED:mailto:{reader.email}" in calendar
    assert "marie@outside.example" not in calendar  # only the one answering
    # The copy in Sent.
    with logged_in(live, reader) as client:
        sent_folder = next(n for f, _d, n in client.list_folders() if b"\\Sent" in f)
        client.select_folder(sent_folder, readonly=True)
        assert len(client.search("ALL")) == 1
    # Someone the invitation does not name cannot answer it.
    outsider_uid, page = read(
        live, portal, reader, invitation_mail("Pas à vous", calendar_text("REQUEST", TIMED))
    )
    assert 'id="invitation-answer"' not in page
    refused = portal.submit(
        f"/mail/INBOX/{outsider_uid}/invitation/answer",
        {"answer": "declined"},
        page=f"/mail/INBOX/{outsider_uid}",
    )
    assert refused.status == 302
    assert len(inbox_uids_now(live, organizer)) == 1
