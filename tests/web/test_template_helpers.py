"""The templates' fast ``_()`` and ``url_for``: the same answers as Jinja's and Flask's."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask, url_for
from flask_babel import Babel
from markupsafe import Markup

from groupware.web.formatting import (
    install_template_gettext,
    install_template_url_for,
    remembered_url_for,
)


@pytest.fixture
def app() -> Flask:
    app = Flask(__name__)
    Babel(app)
    install_template_gettext(app)
    install_template_url_for(app)

    @app.route("/mail/<path:folder>")
    def folder(folder: str) -> str:
        return folder

    return app


@pytest.mark.parametrize(
    ("endpoint", "values"),
    [
        ("folder", {"folder": "INBOX"}),
        ("folder", {"folder": "Projets/2026", "sort": "date", "order": "asc", "page": 2}),
        ("folder", {"folder": "INBOX", "page": 2, "threads": 1}),  # order kept
        ("folder", {"folder": "Été & co", "q": "a b"}),
        ("folder", {"folder": "INBOX", "_anchor": "top"}),
        ("folder", {"folder": "INBOX", "_external": True}),
        ("folder", {"folder": "INBOX", "uid": [1, 2]}),  # unhashable: not remembered
    ],
)
def test_remembered_urls_are_flasks(app: Flask, endpoint: str, values: dict[str, Any]) -> None:
    for root in ("", "/portail"):
        with app.test_request_context("/", base_url=f"http://example.org{root}"):
            expected = url_for(endpoint, **values)
            assert remembered_url_for(endpoint, **values) == expected
            assert remembered_url_for(endpoint, **values) == expected  # from the cache
            assert root in expected


def test_template_gettext_formats_and_escapes_as_jinja_does(app: Flask) -> None:
    with app.test_request_context("/"):
        render = app.jinja_env.from_string
        assert render('{{ _("Page %(n)s", n="<b>") }}').render() == "Page &lt;b&gt;"
        assert render('{{ _("100%% sûr") }}').render() == "100% sûr"
        assert render('{{ _("Plain") }}').render() == "Plain"
        html = app.jinja_env.from_string('{% autoescape true %}{{ _("<i>") }}{% endautoescape %}')
        assert html.render() == str(Markup("<i>"))  # the catalogue's own markup is kept
