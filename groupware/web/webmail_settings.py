# SPDX-License-Identifier: GPL-3.0-or-later
"""Webmail settings (``/mail/settings``) and labels in the message list.

The page has one form per concern, each a CSRF-protected POST that redirects back
on success and shows the page again with the refusal beside its field (400) on
failure: identities (display name and signature of each address the person may
send as, and the default one), display (messages per page, reading pane), language
(the account's, as the header's menu sets it) and labels (create, rename,
recolour, delete; optionally taken off every message). The preferences are kept
by ``core.mail_preferences``.

In the list, labels are chips read from the FLAGS the page's FETCH returned
(:func:`label_chips`), and the ticked messages get or lose one through
``/mail/<folder>/labels`` (``web.mail_labels``). The reading pane is a class on
the mail layout; with a pane, ``static/mail-settings.js`` opens messages beside or
below the list, so the folder page may frame message bodies as the reading page does.
These routes belong to the ``mail`` blueprint of ``web.webmail``.
"""

from __future__ import annotations

from typing import Any, Final

from flask import abort, flash, g, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from imapclient import IMAPClient  # type: ignore[import-untyped]
from werkzeug.wrappers import Response
from wtforms import HiddenField

from groupware.core.mail_preferences import (
    STANDARD_LABELS,
    Identity,
    Label,
    MailPreferences,
    PreferenceError,
    ReadingPane,
)
from groupware.errors import NotFoundError
from groupware.web import CONTENT_SECURITY_POLICY
from groupware.web.context import services
from groupware.web.mail_folders import FolderNotFoundError, Summary, find_folder, folder_tree
from groupware.web.mail_labels import remove_keyword_everywhere, store_keyword
from groupware.web.webmail import MAX_SELECTED_COUNT, bp, display_settings, imap
from groupware.web.webmail_settings_forms import (
    DefaultIdentityForm,
    DeleteLabelForm,
    DisplayForm,
    IdentityForm,
    LabelForm,
    LanguageSettingForm,
    colour_labels,
    refusal_text,
    standard_label_names,
)

SETTINGS_ENDPOINT: Final = "mail.settings"
#: The folder page frames message bodies when a reading pane is on (webmail_reading).
PANE_POLICY: Final = CONTENT_SECURITY_POLICY + "; frame-src 'self'"
LANGUAGES: Final = ("fr", "en")


def preferences() -> MailPreferences:
    """The store of webmail preferences."""
    return services().core.mail_preferences


# --- what the list's templates read ---------------------------------------------


def _person_labels() -> dict[str, Label]:
    """The signed-in person's labels by keyword, read once per request."""
    if "mail_labels" not in g:
        found = preferences().labels(current_user.person)
        g.mail_labels = {label.keyword: label for label in found}
    labels: dict[str, Label] = g.mail_labels
    return labels


def label_chips(summary: Summary) -> list[Label]:
    """The labels to show on a list row: the person's, then other clients' standard ones."""
    own = _person_labels()
    names = standard_label_names()
    shown: list[Label] = []
    standard: dict[str, Label] = {}
    for keyword in summary.keywords:
        lowered = keyword.lower()
        if lowered in own:
            shown.append(own[lowered])
        elif lowered in STANDARD_LABELS:
            key, colour = STANDARD_LABELS[lowered]
            # $Important and $label1 both say "Important": one chip.
            standard.setdefault(key, Label(keyword, str(names[key]), colour))
    return shown + list(standard.values())


def person_labels() -> list[Label]:
    """The person's labels, by name (the list's "apply label" menu)."""
    return sorted(_person_labels().values(), key=lambda label: label.name.casefold())


def reading_pane_class() -> str:
    """The mail layout's class for the person's reading pane."""
    return f"pane-{_reading_pane().value}"


def _reading_pane() -> ReadingPane:
    return display_settings().reading_pane


@bp.context_processor
def _list_helpers() -> dict[str, Any]:
    return {
        "label_chips": label_chips,
        "person_labels": person_labels,
        "reading_pane_class": reading_pane_class,
    }


@bp.after_request
def _frame_bodies_in_the_pane(response: Response) -> Response:
    if (
        request.endpoint == "mail.folder"
        and response.mimetype == "text/html"
        and current_user.is_authenticated
        and _reading_pane() is not ReadingPane.LIST
    ):
        response.headers["Content-Security-Policy"] = PANE_POLICY
    return response


# --- the settings page ------------------------------------------------------------


def _identity_forms() -> list[tuple[Identity, IdentityForm]]:
    forms = []
    for number, identity in enumerate(preferences().identities_for(current_user.person)):
        data = {
            "address": identity.address,
            "display_name": identity.display_name,
            "signature": identity.signature,
        }
        forms.append(
            (identity, IdentityForm(formdata=None, prefix=f"identity-{number}", data=data))
        )
    return forms


def _label_forms() -> list[tuple[Label, LabelForm, DeleteLabelForm]]:
    forms = []
    for number, label in enumerate(preferences().labels(current_user.person)):
        data = {"keyword": label.keyword, "name": label.name, "colour": label.colour}
        edit = LabelForm(formdata=None, prefix=f"label-{number}", data=data)
        remove = DeleteLabelForm(
            formdata=None, prefix=f"delete-{number}", data={"keyword": label.keyword}
        )
        forms.append((label, edit, remove))
    return forms


def _replace(forms: list[Any], submitted: tuple[int, FlaskForm] | None, index: int) -> None:
    """Put a refused form (with its errors) in place of its blank one."""
    if submitted is not None and submitted[0] < len(forms):
        number, form = submitted
        row = list(forms[number])
        row[index] = form
        forms[number] = tuple(row)


def _page(status: int = 200, **submitted: Any) -> tuple[str, int]:
    """The settings page; ``submitted`` replaces the blank form of a refused POST."""
    person = current_user.person
    display = preferences().display(person)
    identity_forms = _identity_forms()
    _replace(identity_forms, submitted.get("identity"), 1)
    label_forms = _label_forms()
    _replace(label_forms, submitted.get("label"), 1)
    default_form = submitted.get("default") or DefaultIdentityForm(formdata=None, prefix="default")
    default_form.address.choices = [(i.address, i.address) for i, _form in identity_forms]
    if "default" not in submitted:
        default_form.address.data = next(
            (i.address for i, _f in identity_forms if i.is_default), None
        )
    display_form = submitted.get("display") or DisplayForm(
        formdata=None,
        prefix="display",
        data={
            "messages_per_page": display.messages_per_page,
            "reading_pane": display.reading_pane.value,
        },
    )
    language_form = submitted.get("language") or LanguageSettingForm(
        formdata=None, prefix="language", data={"language": _current_language()}
    )
    new_label_form = submitted.get("new_label") or LabelForm(formdata=None, prefix="new-label")
    page = render_template(
        "mail/settings.html",
        identity_forms=identity_forms,
        default_form=default_form,
        display_form=display_form,
        mail_language_form=language_form,
        new_label_form=new_label_form,
        label_forms=label_forms,
        colour_labels=colour_labels(),
    )
    return page, status


def _current_language() -> str:
    chosen = session.get("language")
    if chosen in LANGUAGES:
        return str(chosen)
    return str(current_user.person.language)


def _refused(form: FlaskForm, error: PreferenceError, **submitted: Any) -> tuple[str, int]:
    """The page again, with ``error`` on the field it is about (else on the whole form)."""
    field = getattr(form, error.field, None)
    if field is None or isinstance(field, HiddenField):
        form.form_errors.append(refusal_text(error))
    else:
        field.errors = [*field.errors, refusal_text(error)]
    return _page(400, **submitted)


def _saved(text: str) -> Response:
    flash(text, "success")
    return redirect(url_for(SETTINGS_ENDPOINT))


@bp.route("/settings")
@login_required
def settings() -> tuple[str, int]:
    """The webmail settings page."""
    return _page()


@bp.route("/settings/display", methods=["POST"])
@login_required
def save_display() -> Any:
    """Messages per page and reading pane."""
    form = DisplayForm(prefix="display")
    if not form.validate_on_submit():
        return _page(400, display=form)
    try:
        pane = ReadingPane(form.reading_pane.data)
        preferences().set_display(
            current_user.person, messages_per_page=form.messages_per_page.data, reading_pane=pane
        )
    except ValueError:
        abort(400)
    except PreferenceError as error:
        return _refused(form, error, display=form)
    return _saved(_("Display settings saved."))


@bp.route("/settings/identities/<int:number>", methods=["POST"])
@login_required
def save_identity(number: int) -> Any:
    """The display name and signature of one of the person's addresses."""
    form = IdentityForm(prefix=f"identity-{number}")
    if not form.validate_on_submit():
        return _page(400, identity=(number, form))
    try:
        identity = preferences().set_identity(
            current_user.person,
            form.address.data,
            display_name=form.display_name.data or "",
            signature=form.signature.data or "",
        )
    except PreferenceError as error:
        return _refused(form, error, identity=(number, form))
    return _saved(_("Identity %(address)s saved.", address=identity.address))


@bp.route("/settings/default-identity", methods=["POST"])
@login_required
def save_default_identity() -> Any:
    """Which address new messages are written from."""
    form = DefaultIdentityForm(prefix="default")
    addresses = [i.address for i in preferences().identities_for(current_user.person)]
    form.address.choices = [(address, address) for address in addresses]
    if not form.validate_on_submit():
        return _page(400, default=form)
    try:
        preferences().set_default_identity(current_user.person, form.address.data)
    except PreferenceError as error:
        return _refused(form, error, default=form)
    return _saved(_("New messages will be written as %(address)s.", address=form.address.data))


@bp.route("/settings/language", methods=["POST"])
@login_required
def save_language() -> Any:
    """The account's language, as the header's language menu sets it."""
    form = LanguageSettingForm(prefix="language")
    if not form.validate_on_submit() or form.language.data not in LANGUAGES:
        return _page(400, language=form)
    session["language"] = form.language.data
    services().core.directory.set_language(current_user.person.login, form.language.data)
    return _saved(_("Language saved."))


@bp.route("/settings/labels/new", methods=["POST"])
@login_required
def create_label() -> Any:
    """A new label."""
    form = LabelForm(prefix="new-label")
    if not form.validate_on_submit():
        return _page(400, new_label=form)
    try:
        label = preferences().create_label(current_user.person, form.name.data, form.colour.data)
    except PreferenceError as error:
        return _refused(form, error, new_label=form)
    return _saved(_("Label “%(name)s” created.", name=label.name))


@bp.route("/settings/labels/<int:number>", methods=["POST"])
@login_required
def change_label(number: int) -> Any:
    """Rename or recolour a label (its keyword, on the messages, stays)."""
    form = LabelForm(prefix=f"label-{number}")
    if not form.validate_on_submit():
        return _page(400, label=(number, form))
    try:
        label = preferences().change_label(
            current_user.person, form.keyword.data, name=form.name.data, colour=form.colour.data
        )
    except NotFoundError:
        abort(404)
    except PreferenceError as error:
        return _refused(form, error, label=(number, form))
    return _saved(_("Label “%(name)s” saved.", name=label.name))


@bp.route("/settings/labels/<int:number>/delete", methods=["POST"])
@login_required
def delete_label(number: int) -> Any:
    """Delete a label; with the box ticked, take its keyword off every message too."""
    form = DeleteLabelForm(prefix=f"delete-{number}")
    if not form.validate_on_submit():
        abort(400)
    person = current_user.person
    try:
        label = preferences().label(person, form.keyword.data)
    except NotFoundError:
        abort(404)
    if form.from_messages.data:
        count = imap(
            lambda client: remove_keyword_everywhere(client, folder_tree(client), label.keyword)
        )
        preferences().delete_label(person, label.keyword)
        return _saved(
            _(
                "Label “%(name)s” deleted and removed from %(count)s messages.",
                name=label.name,
                count=count,
            )
        )
    preferences().delete_label(person, label.keyword)
    return _saved(_("Label “%(name)s” deleted.", name=label.name))


# --- labels on the ticked messages of a list ---------------------------------------


def _back(folder: str) -> str:
    back = request.form.get("back", "")
    if not back.startswith("/mail/") or back.startswith("//"):
        back = url_for("mail.folder", folder=folder)
    return back


@bp.route("/<path:folder>/labels", methods=["POST"])
@login_required
def label_messages(folder: str) -> Response:
    """Apply a label to the ticked messages, or take it off them."""
    values = request.form.getlist("uid")
    if len(values) > MAX_SELECTED_COUNT or not all(v.isdigit() for v in values):
        abort(400)
    uids = sorted({int(v) for v in values if int(v) > 0})
    if request.form.get("label_action") not in ("add", "remove"):
        abort(400)
    is_added = request.form.get("label_action") == "add"
    try:
        label = preferences().label(current_user.person, request.form.get("label", ""))
    except NotFoundError:
        abort(400)
    if not uids:
        flash(_("Select at least one message first."), "error")
        return redirect(_back(folder))

    def change(client: IMAPClient) -> None:
        current = find_folder(folder_tree(client), folder)
        store_keyword(client, current, uids, label.keyword, is_added=is_added)

    try:
        imap(change)
    except FolderNotFoundError:
        abort(404)
    if is_added:
        flash(
            _("Label “%(name)s” applied: %(count)s.", name=label.name, count=len(uids)), "success"
        )
    else:
        flash(
            _("Label “%(name)s” removed: %(count)s.", name=label.name, count=len(uids)), "success"
        )
    return redirect(_back(folder))
