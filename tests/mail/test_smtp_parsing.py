"""The SMTP listener's fast paths say exactly what the slower code they replace says."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest
from aiosmtpd.smtp import SMTP
from hypothesis import given
from hypothesis import strategies as st

from groupware.mail import mime
from groupware.mail.smtp import _BARE_CR_OR_LF, GroupwareSMTP
from groupware.mail.store_write import has_bare_cr_or_lf, to_crlf

ARGUMENTS = [
    "",
    "<>",
    "<marie.dupont@example.org>",
    "<marie.dupont@example.org> SIZE=2400 BODY=8BITMIME",
    "marie.dupont@example.org",
    "  <marie.dupont@example.org>",
    "<@relay.example:marie@example.org>",
    '<"quoted local"@example.org>',
    "<élève@exemple.fr> SMTPUTF8",
    "<no-domain>",
    "<unterminated@example.org",
    "<a@b@c>",
    "<" + "x" * 80 + "@example.org>",
    "not an address at all",
    "<marie.dupont@[192.0.2.1]>",
    "<a..b@example.org>",
    "<.a@example.org>",
    "<a@example.org.>",
    "<a@-example.org>",
    "<a(comment)@example.org>",
    "<a@example.org>SIZE=1",
    "<a@example.org> ",
    "<A!#$%&'*+/=?^_`{|}~-Z@Example.ORG>",
    "<a@example.org>  (comment) SIZE=1",
    "<a@example.org>\tSIZE=1",
    "<",
]


class _Handler:
    pass


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A loop for the listeners to hold (never run); without one, aiosmtpd's ``SMTP``
    asks ``asyncio.get_event_loop()``, which makes a loop nobody closes."""
    made = asyncio.new_event_loop()
    yield made
    made.close()


def _outcome(parse: Callable[[str], object], argument: str) -> object:
    """What a parse returns, or the type of what it raises (aiosmtpd's can raise)."""
    try:
        return parse(argument)
    except Exception as error:  # noqa: BLE001 - compared, not handled
        return type(error)


@pytest.mark.parametrize("argument", ARGUMENTS)
@pytest.mark.parametrize("local_part_limit", [0, 64])
def test_address_parse_is_aiosmtpds(
    argument: str, local_part_limit: int, loop: asyncio.AbstractEventLoop
) -> None:
    ours = GroupwareSMTP(_Handler(), loop=loop)
    theirs = SMTP(_Handler(), loop=loop)
    ours.local_part_limit = theirs.local_part_limit = local_part_limit
    assert _outcome(ours._getaddr, argument) == _outcome(theirs._getaddr, argument)


_LINE_ENDS = st.lists(st.sampled_from([b"\r", b"\n", b"\r\n", b"a"])).map(b"".join)


@given(argument=st.text(alphabet="<>@.a-\"' =()[]\\é:,;", max_size=24))
def test_address_parse_is_aiosmtpds_for_any_argument(
    argument: str, loop: asyncio.AbstractEventLoop
) -> None:
    ours, theirs = GroupwareSMTP(_Handler(), loop=loop), SMTP(_Handler(), loop=loop)
    assert _outcome(ours._getaddr, argument) == _outcome(theirs._getaddr, argument)


@given(st.binary(max_size=64) | _LINE_ENDS)
def test_bare_cr_or_lf_test_agrees_with_the_pattern(data: bytes) -> None:
    assert has_bare_cr_or_lf(data) == bool(_BARE_CR_OR_LF.search(data))
    assert to_crlf(data) == mime.to_crlf(data)
