# SPDX-License-Identifier: GPL-3.0-or-later
"""The forms of the webmail settings page, and the words for what the store refuses.

Every form is a Flask-WTF form (CSRF token checked by the app's ``CSRFProtect``
before any view runs). The bounds here repeat those of ``core.mail_preferences``
so that the browser and the page say them early; the store checks them again and
its refusals (:class:`PreferenceError`) are shown on the field they concern.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length

from groupware.core.mail_preferences import (
    MAX_DISPLAY_NAME_CHARS,
    MAX_LABEL_NAME_CHARS,
    MAX_SIGNATURE_CHARS,
    MESSAGES_PER_PAGE_CHOICES,
    PreferenceError,
    ReadingPane,
)

MAX_ADDRESS_CHARS = 255
MAX_KEYWORD_FIELD_CHARS = 64


def pane_labels() -> dict[str, Any]:
    """The reading pane layouts, as the page names them."""
    return {
        ReadingPane.LIST.value: _l("List only (a message opens on its own page)"),
        ReadingPane.RIGHT.value: _l("Message beside the list"),
        ReadingPane.BOTTOM.value: _l("Message below the list"),
    }


def colour_labels() -> dict[str, Any]:
    """The palette's colours by name (the swatch shows the colour, the name says it)."""
    return {
        "red": _l("Red"),
        "orange": _l("Orange"),
        "green": _l("Green"),
        "teal": _l("Teal"),
        "blue": _l("Blue"),
        "indigo": _l("Indigo"),
        "purple": _l("Purple"),
        "pink": _l("Pink"),
        "brown": _l("Brown"),
        "grey": _l("Grey"),
    }


def standard_label_names() -> dict[str, Any]:
    """Names of the keywords other clients set (``core.mail_preferences.STANDARD_LABELS``)."""
    return {
        "important": _l("Important"),
        "work": _l("Work"),
        "personal": _l("Personal"),
        "todo": _l("To do"),
        "later": _l("Later"),
    }


def refusal_text(error: PreferenceError) -> Any:
    """What to tell the person about a refused preference."""
    limits = {
        "display_name": MAX_DISPLAY_NAME_CHARS,
        "signature": MAX_SIGNATURE_CHARS,
        "name": MAX_LABEL_NAME_CHARS,
    }
    texts = {
        "not_a_choice": _l("Choose one of the options offered."),
        "empty": _l("This field is required."),
        "invalid": _l("Control characters are not allowed here."),
        "not_yours": _l("You may not send as this address."),
        "taken": _l("You already have a label with this name."),
        "full": _l("You have too many labels: delete one first."),
    }
    if error.reason == "too_long":
        return _l("At most %(count)s characters.", count=limits.get(error.field, 0))
    return texts.get(error.reason, _l("This value is not accepted."))


def _too_long(count: int) -> Any:
    return _l("At most %(count)s characters.", count=count)


class DisplayForm(FlaskForm):
    """Page size and reading pane."""

    messages_per_page = SelectField(
        _l("Messages per page"),
        coerce=int,
        choices=lambda: [(count, str(count)) for count in MESSAGES_PER_PAGE_CHOICES],
        validators=[InputRequired()],
        validate_choice=False,  # the store checks it and says so in our words
    )
    reading_pane = RadioField(
        _l("Reading pane"),
        choices=lambda: list(pane_labels().items()),
        validators=[InputRequired()],
    )


class IdentityForm(FlaskForm):
    """The display name and signature of one address (the address is hidden)."""

    address = HiddenField(validators=[DataRequired(), Length(max=MAX_ADDRESS_CHARS)])
    display_name = StringField(
        _l("Display name"),
        validators=[Length(max=MAX_DISPLAY_NAME_CHARS, message=_too_long(MAX_DISPLAY_NAME_CHARS))],
    )
    signature = TextAreaField(
        _l("Signature"),
        validators=[Length(max=MAX_SIGNATURE_CHARS, message=_too_long(MAX_SIGNATURE_CHARS))],
        render_kw={"rows": 4, "maxlength": MAX_SIGNATURE_CHARS},
    )


class DefaultIdentityForm(FlaskForm):
    """Which address a new message is written from."""

    address = SelectField(_l("Write new messages as"), validators=[DataRequired()])


class LanguageSettingForm(FlaskForm):
    """The portal's language (the same as the header's menu)."""

    language = SelectField(
        _l("Language"),
        choices=lambda: [("fr", "Français"), ("en", "English")],
        validators=[DataRequired()],
    )


class LabelForm(FlaskForm):
    """A label's name and colour (new, or an existing one's, keyword hidden)."""

    keyword = HiddenField(validators=[Length(max=MAX_KEYWORD_FIELD_CHARS)])
    name = StringField(
        _l("Name"),
        validators=[
            DataRequired(message=_l("This field is required.")),
            Length(max=MAX_LABEL_NAME_CHARS, message=_too_long(MAX_LABEL_NAME_CHARS)),
        ],
        render_kw={"maxlength": MAX_LABEL_NAME_CHARS},
    )
    colour = RadioField(
        _l("Colour"),
        choices=lambda: list(colour_labels().items()),
        default="blue",
        validators=[InputRequired()],
    )


class DeleteLabelForm(FlaskForm):
    """Delete a label, and maybe take it off every message too."""

    keyword = HiddenField(validators=[DataRequired(), Length(max=MAX_KEYWORD_FIELD_CHARS)])
    from_messages = BooleanField(_l("Also remove it from the messages of every folder"))
