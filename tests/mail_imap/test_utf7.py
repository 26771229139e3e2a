"""Modified UTF-7 mailbox names (RFC 3501 §5.1.3)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from groupware.mail.imap import utf7


def test_rfc3501_example_decodes_and_encodes() -> None:
    assert utf7.decode("~peter/mail/&U,BTFw-/&ZeVnLIqe-") == "~peter/mail/台北/日本語"
    assert utf7.encode("~peter/mail/台北/日本語") == "~peter/mail/&U,BTFw-/&ZeVnLIqe-"


@pytest.mark.parametrize(
    ("text", "encoded"),
    [
        ("INBOX", "INBOX"),
        ("&", "&-"),
        ("Tom & Jerry", "Tom &- Jerry"),
        ("Entwürfe", "Entw&APw-rfe"),
        ("Éléments envoyés", "&AMk-l&AOk-ments envoy&AOk-s"),
        ("😀", "&2D3eAA-"),
        ("a\tb", "a&AAk-b"),
        ("", ""),
    ],
)
def test_known_encodings(text: str, encoded: str) -> None:
    assert utf7.encode(text) == encoded
    assert utf7.decode(encoded) == text


@pytest.mark.parametrize(
    "bad",
    [
        "&",  # shift never closed
        "abc&U,BT",  # shift never closed
        "&U,B!-",  # not base64
        "&AGE-",  # "a" must stand for itself
        "&ACA-",  # so must a space
        "&AG-",  # odd number of UTF-16 bytes
        "&A-",  # truncated base64
        "&U,BTFx-",  # leftover bits set
        "&2D0-",  # lone high surrogate
        "&3gA-",  # lone low surrogate
        "caf\u00e9",  # 8-bit characters must be encoded
        "tab\there",  # so must controls
    ],
)
def test_malformed_names_are_refused(bad: str) -> None:
    with pytest.raises(utf7.Utf7Error):
        utf7.decode(bad)
    assert issubclass(utf7.Utf7Error, ValueError)


def test_lone_surrogate_cannot_be_encoded() -> None:
    with pytest.raises(utf7.Utf7Error):
        utf7.encode("\ud800")


@given(st.text())
def test_any_text_round_trips_through_printable_ascii(text: str) -> None:
    encoded = utf7.encode(text)
    assert all(" " <= char <= "~" for char in encoded)
    assert utf7.decode(encoded) == text


@given(st.text(alphabet=st.characters(max_codepoint=0x7F)))
def test_decode_never_fails_with_anything_but_utf7error(text: str) -> None:
    with contextlib.suppress(utf7.Utf7Error):
        utf7.decode(text)
