# SPDX-License-Identifier: GPL-3.0-or-later
"""Webmail pages that change folders: manage (create, rename, move, delete) and empty.

``/mail/folders`` lists the folders with a form for each change; deleting asks first
(``?delete=<name>``) and says what goes with the folder. Emptying Trash or Junk is a
POST to ``/mail/<folder>/empty`` after the list shows its own confirmation
(``?empty=1``). Every change is a CSRF-protected POST (Flask-WTF checks the token
before the view runs), is audited, and redirects back with a message. The IMAP work
is in ``web.mail_folder_admin``.
"""

from __future__ import annotations

from typing import Any, Final

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from imapclient import IMAPClient  # type: ignore[import-untyped]
from werkzeug.wrappers import Response

from groupware.web.context import services
from groupware.web.mail_folder_admin import (
    EMPTIABLE,
    MAX_LEAF_LENGTH,
    WILDCARDS,
    FolderChangeError,
    FolderNameError,
    NameProblem,
    create_folder,
    delete_folder,
    descendants,
    empty_folder,
    is_protected,
    relocate_folder,
    rename_folder,
)
from groupware.web.mail_folders import Folder, FolderNotFoundError, folder_tree
from groupware.web.webmail import bp, folder_label, imap

#: The "top level" choice of the parent selects.
TOP: Final = ""
OPERATIONS: Final = ("create", "rename", "move", "delete")


def _audit(event: str, detail: str) -> None:
    person = current_user.person.login
    services().core.audit.record(
        event, actor=person, subject=person, protocol="web",
        client=request.remote_addr or "", detail=detail,
    )  # fmt: skip


def name_error_text(error: FolderNameError) -> str:
    """Why a name is refused, as a person reads it."""
    texts = {
        NameProblem.EMPTY: _("Give the folder a name."),
        NameProblem.DELIMITER: _(
            "A folder name cannot contain “%(delimiter)s”: choose a parent folder instead.",
            delimiter=error.delimiter or "/",
        ),
        NameProblem.WILDCARD: _(
            "A folder name cannot contain %(characters)s.", characters=" ".join(sorted(WILDCARDS))
        ),
        NameProblem.CONTROL: _("A folder name cannot contain invisible control characters."),
        NameProblem.TOO_LONG: _(
            "A folder name has at most %(count)s characters.", count=MAX_LEAF_LENGTH
        ),
        NameProblem.DUPLICATE: _("A folder “%(name)s” exists there already.", name=error.name),
        NameProblem.RESERVED: _("“%(name)s” is reserved for the inbox.", name=error.name),
    }
    return texts[error.problem]


def change_error_text(error: FolderChangeError) -> str:
    """Why a folder cannot be changed that way."""
    texts = {
        "protected": _("The inbox and special folders cannot be renamed, moved or deleted."),
        "into-itself": _("A folder cannot be moved into itself or one of its subfolders."),
        "not-emptiable": _("Only Trash and Junk can be emptied."),
    }
    return texts[error.reason]


def _parent(tree: list[Folder], name: str) -> Folder | None:
    if name == TOP:
        return None
    found = next((f for f in tree if f.name == name), None)
    if found is None:
        raise FolderNotFoundError(name)
    return found


def _named(tree: list[Folder], name: str) -> Folder:
    found = next((f for f in tree if f.name == name), None)
    if found is None:
        raise FolderNotFoundError(name)
    return found


@bp.route("/folders")
@login_required
def folders() -> Any:
    """Every folder, with the forms that change them."""
    tree = imap(folder_tree)
    doomed = None
    if "delete" in request.args:
        try:
            doomed = _named(tree, request.args["delete"])
        except FolderNotFoundError:
            abort(404)
        if is_protected(doomed) or any(is_protected(f) for f in descendants(tree, doomed)):
            flash(change_error_text(FolderChangeError("protected", doomed.name)), "error")
            return _page(tree, status=400)
    return _page(tree, doomed)


def _page(tree: list[Folder], doomed: Folder | None = None, status: int = 200) -> Any:
    gone = descendants(tree, doomed) if doomed else []
    return (
        render_template(
            "mail/folders.html",
            tree=tree,
            current=None,
            folder_label=folder_label,
            is_protected=is_protected,
            descendants=lambda f: descendants(tree, f),
            doomed=doomed,
            doomed_under=gone,
            doomed_messages=sum(f.total for f in [*gone, doomed] if f),
            top=TOP,
        ),
        status,
    )


@bp.route("/folders", methods=["POST"])
@login_required
def change_folders() -> Any:
    """Create, rename, move or delete one folder, then back to the folder page."""
    operation = request.form.get("operation", "")
    if operation not in OPERATIONS:
        abort(400)
    form = request.form

    def change(client: IMAPClient) -> str:
        tree = folder_tree(client)
        if operation == "create":
            parent = _parent(tree, form.get("parent", TOP))
            return create_folder(client, tree, parent, form.get("name", ""))
        folder = _named(tree, form.get("folder", ""))
        if operation == "rename":
            return rename_folder(client, tree, folder, form.get("name", ""))
        if operation == "move":
            parent = _parent(tree, form.get("parent", TOP))
            return relocate_folder(client, tree, folder, parent, folder.leaf)
        delete_folder(client, tree, folder)
        return folder.name

    try:
        name = imap(change)
    except FolderNotFoundError:
        abort(404)
    except FolderNameError as error:
        flash(name_error_text(error), "error")
        return _page(imap(folder_tree), status=400)
    except FolderChangeError as error:
        flash(change_error_text(error), "error")
        return _page(imap(folder_tree), status=400)
    _audit(f"mail.folder.{operation}", f"{form.get('folder', '')} -> {name}")
    flash(_done_text(operation, name), "success")
    return redirect(url_for("mail.folders"))


def _done_text(operation: str, name: str) -> str:
    texts = {
        "create": _("Folder “%(name)s” created.", name=name),
        "rename": _("Folder renamed to “%(name)s”.", name=name),
        "move": _("Folder moved to “%(name)s”.", name=name),
        "delete": _("Folder “%(name)s” deleted, with its messages.", name=name),
    }
    return texts[operation]


@bp.route("/<path:folder>/empty", methods=["POST"])
@login_required
def empty(folder: str) -> Response:
    """Delete for good every message of Trash or Junk."""

    def run(client: IMAPClient) -> tuple[Folder, int]:
        tree = folder_tree(client)
        current = _named(tree, folder)
        if current.special not in EMPTIABLE:
            raise FolderChangeError("not-emptiable", folder)
        return current, empty_folder(client, current)

    try:
        current, count = imap(run)
    except FolderNotFoundError:
        abort(404)
    except FolderChangeError:
        abort(400)
    _audit("mail.folder.empty", f"{current.name} count={count}")
    text = _(
        "%(folder)s emptied: %(count)s messages deleted for good.",
        folder=folder_label(current),
        count=count,
    )
    flash(text, "success")
    return redirect(url_for("mail.folder", folder=current.name))
