"""Mailboxes over IMAP: special-use folders in the user's language, LIST and its
extensions, CREATE/DELETE/RENAME/SUBSCRIBE, STATUS, NAMESPACE and non-ASCII names
(RFC 3501 §6.3, RFC 6154, RFC 5258, RFC 5819, RFC 2342, RFC 6855)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from imapclient.exceptions import IMAPClientError

from tests.mail.imap_support import RawImap, imap_server, logged_in, new_user, simple_message
from tests.support.servers import RunningServer


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with imap_server(tmp_path_factory, "imap-mailboxes") as server:
        yield server


def _special(live: RunningServer, language: str) -> dict[str, str]:
    person = new_user(live, language=language)
    with logged_in(live, person) as client:
        folders = client.list_folders()
    return {
        flag.decode(): name
        for flags, _delim, name in folders
        for flag in flags
        if flag not in (b"\\HasChildren", b"\\HasNoChildren")
    }


def test_french_account_gets_french_special_folders(live: RunningServer) -> None:
    assert _special(live, "fr") == {
        "\\Drafts": "Brouillons",
        "\\Sent": "Envoyés",
        "\\Junk": "Indésirables",
        "\\Trash": "Corbeille",
        "\\Archive": "Archives",
    }


def test_english_account_gets_english_special_folders(live: RunningServer) -> None:
    assert _special(live, "en") == {
        "\\Drafts": "Drafts",
        "\\Sent": "Sent",
        "\\Junk": "Junk",
        "\\Trash": "Trash",
        "\\Archive": "Archive",
    }


def test_special_folder_names_go_over_the_wire_in_modified_utf7(live: RunningServer) -> None:
    person = new_user(live)
    with RawImap(live) as raw:
        raw.login(person)
        untagged, _tagged = raw.command(b'LIST "" "*"')
    assert b'* LIST (\\HasNoChildren \\Sent) "/" Envoy&AOk-s\r\n' in untagged
    assert b'* LIST (\\HasNoChildren \\Junk) "/" Ind&AOk-sirables\r\n' in untagged
    assert untagged[0] == b'* LIST (\\HasNoChildren) "/" INBOX\r\n'


def test_list_special_use_selection_and_return_options(live: RunningServer) -> None:
    person = new_user(live, language="en")
    with RawImap(live) as raw:
        raw.login(person)
        untagged, tagged = raw.command(b'LIST (SPECIAL-USE) "" "*"')
        assert tagged.startswith(b"t2 OK")
        names = sorted(line.rsplit(b" ", 1)[1].strip() for line in untagged)
        assert names == [b"Archive", b"Drafts", b"Junk", b"Sent", b"Trash"]
        untagged, _tagged = raw.command(b'LIST "" "Sent" RETURN (SPECIAL-USE CHILDREN)')
        assert untagged == [b'* LIST (\\HasNoChildren \\Sent) "/" Sent\r\n']


def test_find_special_folder_by_attribute(live: RunningServer) -> None:
    person = new_user(live)
    with logged_in(live, person) as client:
        assert client.find_special_folder(b"\\Trash") == "Corbeille"
        assert client.find_special_folder(b"\\Sent") == "Envoyés"


def test_create_nested_folder_lists_children_and_parents(live: RunningServer) -> None:
    person = new_user(live)
    with logged_in(live, person) as client:
        client.create_folder("Projets/2024/Budget")
        folders = {name: set(flags) for flags, _d, name in client.list_folders("", "Projets*")}
        assert folders == {
            "Projets": {b"\\HasChildren"},
            "Projets/2024": {b"\\HasChildren"},
            "Projets/2024/Budget": {b"\\HasNoChildren"},
        }
        # % does not cross the hierarchy delimiter.
        assert [name for _f, _d, name in client.list_folders("", "Projets/%")] == ["Projets/2024"]
        assert [name for _f, _d, name in client.list_folders("Projets/", "%")] == ["Projets/2024"]
        with pytest.raises(IMAPClientError, match="ALREADYEXISTS"):
            client.create_folder("Projets")


def test_second_login_after_creating_folders_keeps_them(live: RunningServer) -> None:
    person = new_user(live)
    with logged_in(live, person) as client:
        client.create_folder("Perso")
        client.create_folder("Classes")
    with logged_in(live, person) as client:
        names = [name for _f, _d, name in client.list_folders()]
    assert names.count("INBOX") == 1
    assert {"Perso", "Classes", "Corbeille"} <= set(names)


def test_list_with_empty_pattern_gives_the_delimiter(live: RunningServer) -> None:
    person = new_user(live)
    with RawImap(live) as raw:
        raw.login(person)
        untagged, _tagged = raw.command(b'LIST "" ""')
    assert untagged == [b'* LIST (\\Noselect) "/" ""\r\n']


def test_inbox_is_case_insensitive(live: RunningServer) -> None:
    person = new_user(live)
    with logged_in(live, person) as client:
        client.append("inbox", simple_message("minuscules"))
        assert client.select_folder("InBoX")[b"EXISTS"] == 1
        assert client.folder_status("iNbOx", ["MESSAGES"])[b"MESSAGES"] == 1
        with pytest.raises(IMAPClientError, match="ALREADYEXISTS"):
            client.create_folder("inbox")


def test_rename_moves_children_and_keeps_messages(live: RunningServer) -> None:
    person = new_user(live)
    with logged_in(live, person) as client:
        client.create_folder("Ancien/Sous")
        client.append("Ancien/Sous", simple_message("à garder"))
        client.rename_folder("Ancien", "Nouveau")
        names = {name for _f, _d, name in client.list_folders()}
        assert {"Nouveau", "Nouveau/Sous"} <= names
        assert not {"Ancien", "Ancien/Sous"} & names
        assert client.folder_status("Nouveau/Sous", ["MESSAGES"])[b"MESSAGES"] == 1
        with pytest.raises(IMAPClientError, match="NONEXISTENT"):
            client.rename_folder("Ancien", "Autre")


def test_rename_inbox_moves_its_messages_and_leaves_it_empty(live: RunningServer) -> None:
    person = new_user(live)
    with logged_in(live, person) as client:
        client.append("INBOX", simple_message("vieux courrier"))
        client.rename_folder("INBOX", "Archives/2023")
        assert client.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"] == 0
        assert client.folder_status("Archives/2023", ["MESSAGES"])[b"MESSAGES"] == 1


def test_delete_removes_folder_and_inbox_cannot_be_deleted(live: RunningServer) -> None:
    person = new_user(live)
    with logged_in(live, person) as client:
        client.create_folder("Temporaire")
        client.append("Temporaire", simple_message("jetable"))
        client.delete_folder("Temporaire")
        assert not client.folder_exists("Temporaire")
        with pytest.raises(IMAPClientError):
            client.delete_folder("INBOX")
        with pytest.raises(IMAPClientError, match="NONEXISTENT"):
            client.delete_folder("Temporaire")
        with pytest.raises(IMAPClientError, match="NONEXISTENT"):
            client.select_folder("Temporaire")


def test_subscribe_unsubscribe_lsub_and_list_subscribed(live: RunningServer) -> None:
    person = new_user(live)
    with logged_in(live, person) as client:
        client.create_folder("Lettres")
        client.unsubscribe_folder("Lettres")
        assert "Lettres" not in {n for _f, _d, n in client.list_sub_folders()}
        client.subscribe_folder("Lettres")
        assert "Lettres" in {n for _f, _d, n in client.list_sub_folders()}
        with pytest.raises(IMAPClientError, match="NONEXISTENT"):
            client.subscribe_folder("Absent")
    with RawImap(live) as raw:
        raw.login(person)
        untagged, _tagged = raw.command(b'LIST (SUBSCRIBED) "" "Lettres"')
        assert untagged == [b'* LIST (\\HasNoChildren \\Subscribed) "/" Lettres\r\n']
        untagged, _tagged = raw.command(b'LIST "" "Lettres" RETURN (SUBSCRIBED)')
        assert untagged == [b'* LIST (\\HasNoChildren \\Subscribed) "/" Lettres\r\n']


def test_list_status_returns_status_for_each_mailbox(live: RunningServer) -> None:
    person = new_user(live)
    with logged_in(live, person) as client:
        client.create_folder("Compté")
        client.append("Compté", simple_message("un"), flags=[b"\\Seen"])
        client.append("Compté", simple_message("deux"))
    with RawImap(live) as raw:
        raw.login(person)
        untagged, tagged = raw.command(
            b'LIST "" "Compt&AOk-" RETURN (STATUS (MESSAGES UNSEEN UIDNEXT))'
        )
    assert tagged.startswith(b"t2 OK")
    assert untagged == [
        b'* LIST (\\HasNoChildren) "/" Compt&AOk-\r\n',
        b"* STATUS Compt&AOk- (MESSAGES 2 UNSEEN 1 UIDNEXT 3)\r\n",
    ]


def test_status_counts(live: RunningServer) -> None:
    person = new_user(live)
    with logged_in(live, person) as client:
        client.append("INBOX", simple_message("lu"), flags=[b"\\Seen"])
        client.append("INBOX", simple_message("effacé"), flags=[b"\\Deleted"])
        client.append("INBOX", simple_message("neuf"))
        status = client.folder_status(
            "INBOX",
            ["MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "HIGHESTMODSEQ"],
        )
    assert status[b"MESSAGES"] == 3
    assert status[b"RECENT"] == 3
    assert status[b"UNSEEN"] == 2
    assert status[b"UIDNEXT"] == 4
    assert status[b"UIDVALIDITY"] > 0
    assert status[b"HIGHESTMODSEQ"] >= 4


def test_status_stays_exact_through_every_kind_of_change(live: RunningServer) -> None:
    """Counts are reused while the mailbox state is unchanged: every change shows."""
    person = new_user(live)
    items = ["MESSAGES", "UNSEEN", "DELETED"]
    with logged_in(live, person) as client, logged_in(live, person) as other:

        def status() -> tuple[int, int, int]:
            found = client.folder_status("INBOX", items)
            return (found[b"MESSAGES"], found[b"UNSEEN"], found[b"DELETED"])

        assert status() == (0, 0, 0)
        other.append("INBOX", simple_message("un"))
        other.append("INBOX", simple_message("deux"))
        assert status() == (2, 2, 0)
        assert status() == (2, 2, 0)  # asked again, nothing changed
        other.select_folder("INBOX")
        uids = other.search("ALL")
        other.add_flags(uids[:1], [b"\\Seen"])
        assert status() == (2, 1, 0)
        other.add_flags(uids[1:], [b"\\Deleted"])
        assert status() == (2, 1, 1)
        other.expunge()
        assert status() == (1, 0, 0)
        other.remove_flags(uids[:1], [b"\\Seen"])
        assert status() == (1, 1, 0)
        # RECENT changes without a new mod-sequence: it is always counted.
        other.unselect_folder()
        other.append("INBOX", simple_message("trois"))
        assert client.folder_status("INBOX", ["RECENT"])[b"RECENT"] == 1
        other.select_folder("INBOX")  # takes \\Recent
        assert client.folder_status("INBOX", ["RECENT", "MESSAGES"])[b"RECENT"] == 0


def test_namespace_is_personal_only_with_slash(live: RunningServer) -> None:
    person = new_user(live)
    with logged_in(live, person) as client:
        namespace = client.namespace()
    assert namespace.personal == (("", "/"),)
    assert namespace.other is None
    assert namespace.shared is None


def test_non_ascii_folder_in_modified_utf7_and_in_utf8(live: RunningServer) -> None:
    person = new_user(live)
    with logged_in(live, person) as client:
        client.create_folder("Réunions/Équipe")  # imapclient sends modified UTF-7
        assert "Réunions/Équipe" in {n for _f, _d, n in client.list_folders()}
        client.append("Réunions/Équipe", simple_message("ordre du jour"))
    with RawImap(live) as raw:
        raw.login(person)
        untagged, _tagged = raw.command(b'LIST "" "R&AOk-unions/*"')
        assert untagged == [b'* LIST (\\HasNoChildren) "/" R&AOk-unions/&AMk-quipe\r\n']
        untagged, _tagged = raw.command(b"ENABLE UTF8=ACCEPT")
        assert untagged == [b"* ENABLED UTF8=ACCEPT\r\n"]
        untagged, _tagged = raw.command('LIST "" "Réunions/*"'.encode())
        assert untagged == ['* LIST (\\HasNoChildren) "/" "Réunions/Équipe"\r\n'.encode()]
        untagged, tagged = raw.command('SELECT "Réunions/Équipe"'.encode())
        assert b"* 1 EXISTS\r\n" in untagged
        assert b" OK [READ-WRITE]" in tagged


def test_invalid_mailbox_names_are_refused(live: RunningServer) -> None:
    person = new_user(live)
    with RawImap(live) as raw:
        raw.login(person)
        for name in (b'"a//b"', b'"/racine"', b'"x*y"', b'"pour%cent"'):
            _untagged, tagged = raw.command(b"CREATE " + name)
            assert b" NO " in tagged or b" BAD " in tagged, (name, tagged)
        _untagged, tagged = raw.command(b"CREATE dossier/")
        assert b" OK " in tagged
        untagged, _tagged = raw.command(b'LIST "" dossier')
        assert untagged == [b'* LIST (\\HasNoChildren) "/" dossier\r\n']


def test_create_with_special_use(live: RunningServer) -> None:
    person = new_user(live)
    with RawImap(live) as raw:
        raw.login(person)
        _untagged, tagged = raw.command(b"CREATE Poubelle2 (USE (\\Trash))")
        assert b" OK " in tagged
        untagged, _tagged = raw.command(b'LIST "" Poubelle2')
        assert untagged == [b'* LIST (\\HasNoChildren \\Trash) "/" Poubelle2\r\n']
        _untagged, tagged = raw.command(b"CREATE Bizarre (USE (\\Nonsense))")
        assert b"NO [USEATTR]" in tagged


def test_examine_is_read_only(live: RunningServer) -> None:
    person = new_user(live)
    with logged_in(live, person) as client:
        client.append("INBOX", simple_message("en lecture"))
        info = client.select_folder("INBOX", readonly=True)
        assert info[b"READ-ONLY"] == [b""]
        with pytest.raises(IMAPClientError, match="READ-ONLY"):
            client.add_flags([1], [b"\\Flagged"])
        client.fetch([1], ["BODY[]"])  # not PEEK, but read-only: \Seen stays unset
        assert client.get_flags([1]) == {1: (b"\\Recent",)}


def test_list_pattern_inbox_is_case_insensitive(live: RunningServer) -> None:
    person = new_user(live)
    with RawImap(live) as raw:
        raw.login(person)
        untagged, _tagged = raw.command(b'LIST "" "inbox"')
        assert untagged == [b'* LIST (\\HasNoChildren) "/" INBOX\r\n']
        untagged, _tagged = raw.command(b'LSUB "" "Inbox"')
        assert untagged == [b'* LSUB (\\HasNoChildren) "/" INBOX\r\n']


def test_list_subscribed_recursivematch_gives_childinfo(live: RunningServer) -> None:
    person = new_user(live)
    with RawImap(live) as raw:
        raw.login(person)
        raw.command(b"CREATE Parent/Enfant")
        raw.command(b"UNSUBSCRIBE Parent")
        untagged, _tagged = raw.command(b'LIST (SUBSCRIBED RECURSIVEMATCH) "" "P%"')
        assert untagged == [b'* LIST (\\HasChildren) "/" Parent ("CHILDINFO" ("SUBSCRIBED"))\r\n']
        untagged, _tagged = raw.command(b'LIST (SUBSCRIBED) "" "P%"')
        assert untagged == []
        untagged, _tagged = raw.command(b'LIST (SUBSCRIBED) "" "P*"')
        assert untagged == [b'* LIST (\\HasNoChildren \\Subscribed) "/" Parent/Enfant\r\n']
        _untagged, tagged = raw.command(b'LIST (RECURSIVEMATCH) "" "%"')
        assert b" BAD " in tagged
        untagged, _tagged = raw.command(b'LIST "" ("INBOX" "Parent/*")')
        assert [line.rsplit(b" ", 1)[1] for line in untagged] == [
            b"INBOX\r\n",
            b"Parent/Enfant\r\n",
        ]


def test_append_utf8_literal_after_enable_utf8_accept(live: RunningServer) -> None:
    person = new_user(live)
    message = "Subject: été\r\n\r\ncorps\r\n".encode()
    with RawImap(live) as raw:
        raw.login(person)
        raw.command(b"ENABLE UTF8=ACCEPT")
        _untagged, tagged = raw.command(
            b"APPEND INBOX UTF8 (~{%d+}\r\n" % len(message) + message + b")"
        )
        assert b" OK [APPENDUID " in tagged
        raw.command(b"EXAMINE INBOX")
        untagged, _tagged = raw.command(b"FETCH 1 (BODY.PEEK[] ENVELOPE)")
    assert untagged == [
        b"* 1 FETCH (BODY[] {%d}\r\n" % len(message)
        + message
        + ' ENVELOPE (NIL "été" NIL NIL NIL NIL NIL NIL NIL NIL))\r\n'.encode()
    ]
