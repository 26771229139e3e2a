# SPDX-License-Identifier: GPL-3.0-or-later
"""Locale-aware formatting for long lists, and the templates' gettext, made cheap.

A message list formats a date and a size on every line and translates a dozen
labels per line: through Flask-Babel each call looks up the request context, the
domain, the locale and the catalogue again (some 10 µs each, half the time of
rendering a 50-line page). Here the catalogue is looked up once per request, and
formatted values are remembered by (value, format, locale, time zone): the same
dates come back as people page through their folders.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any, Final

from babel import dates, numbers
from flask import Flask, g, request, url_for
from flask_babel import get_locale, get_timezone, get_translations
from jinja2 import pass_eval_context
from jinja2.nodes import EvalContext
from markupsafe import Markup

#: Formatted dates and sizes remembered by the process.
FORMATTED_ENTRIES_COUNT: Final = 8192
#: Built URLs remembered by the process (folder links, sort and page links...).
URL_ENTRIES_COUNT: Final = 8192
_TRANSLATIONS_KEY: Final = "_groupware_translations"


def request_translations() -> Any:
    """This request's catalogue, looked up once (the locale is fixed per request)."""
    found = g.get(_TRANSLATIONS_KEY)
    if found is None:
        found = get_translations()
        setattr(g, _TRANSLATIONS_KEY, found)
    return found


def install_template_gettext(app: Flask) -> None:
    """Give the templates' ``_()`` and ``ngettext()`` the request's catalogue directly.

    Called after ``Babel(app)``, whose own callables look the catalogue up on every
    call. Same ``newstyle`` semantics as Jinja's (``%(name)s`` variables, the
    translation marked safe and its variables escaped when autoescaping), but
    called directly: Jinja's own wrappers resolve ``gettext`` in the context and
    go through ``Context.call`` twice per string, and a page has a few hundred.
    """
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: request_translations().ugettext(s),
        ngettext=lambda s, p, n: request_translations().ungettext(s, p, n),
        pgettext=lambda c, s: request_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: request_translations().unpgettext(c, s, p, n),
        newstyle=True,
    )
    app.jinja_env.globals.update(gettext=_template_gettext, _=_template_gettext)


@pass_eval_context
def _template_gettext(eval_ctx: EvalContext, string: str, /, **variables: Any) -> str:
    """``_("...", name=value)`` in a template, as Jinja's newstyle ``gettext``."""
    found: str = request_translations().ugettext(string)
    if eval_ctx.autoescape:
        found = Markup(found)  # noqa: S704 - our catalogue's text; variables escaped below
    # As Jinja's: formatted even without variables (``%%`` is a literal percent).
    return found % variables if variables or "%" in found else found


def install_template_url_for(app: Flask) -> None:
    """Give the templates a ``url_for`` that remembers the URLs it built.

    Flask builds each URL again through the URL map (some 40 µs); a mailbox page
    links every folder, column and page, the same ones on every view. A relative
    URL depends only on the endpoint, its values and where the portal is mounted
    (no URL defaults or value preprocessors are registered): those key the cache.
    External URLs, anchors and other ``_`` options, blueprint-relative endpoints
    (``.name``) and unhashable values go to Flask's ``url_for`` every time.
    """
    app.jinja_env.globals["url_for"] = remembered_url_for


def remembered_url_for(endpoint: str, **values: Any) -> str:
    """:func:`flask.url_for`, remembered for plain relative URLs."""
    if endpoint.startswith(".") or any(name.startswith("_") for name in values):
        return url_for(endpoint, **values)
    key = tuple(values.items())  # in order: it is the query string's
    try:
        return _built_url(request.script_root, endpoint, key)
    except TypeError:  # an unhashable value
        return url_for(endpoint, **values)


@lru_cache(maxsize=URL_ENTRIES_COUNT)
def _built_url(script_root: str, endpoint: str, values: tuple[tuple[str, Any], ...]) -> str:
    # ``script_root`` keys the cache; url_for reads it from the request itself.
    return url_for(endpoint, **dict(values))


@lru_cache(maxsize=FORMATTED_ENTRIES_COUNT)
def _datetime_text(value: datetime, format: str, locale: str, zone: Any) -> str:  # noqa: A002
    # As Flask-Babel does it: babel converts to ``zone`` (a naive value is UTC).
    return str(dates.format_datetime(value, format, tzinfo=zone, locale=locale))


def datetime_text(value: datetime, format: str = "medium") -> str:  # noqa: A002
    """Like Flask-Babel's ``format_datetime`` (the person's zone and locale), remembered."""
    return _datetime_text(value, format, str(get_locale()), get_timezone())


@lru_cache(maxsize=FORMATTED_ENTRIES_COUNT)
def _decimal_text(value: float, locale: str) -> str:
    return str(numbers.format_decimal(value, locale=locale))


def decimal_text(value: float) -> str:
    """Like Flask-Babel's ``format_decimal`` in the request's locale, remembered."""
    return _decimal_text(value, str(get_locale()))
