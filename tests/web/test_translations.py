"""The French catalog is complete, compiled, typographically consistent, and used.

French is the portal's default language, so every message of the current sources
must have a French translation; English is the msgid itself and needs no catalog.
"""

from __future__ import annotations

import ast
import io
import re
from html.parser import HTMLParser
from pathlib import Path

import jinja2
import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from flask_babel import gettext

from groupware.app import build_http_app
from groupware.core.services import Core

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "groupware" / "web"
TEMPLATES = WEB / "templates"
FR_DIR = WEB / "translations" / "fr" / "LC_MESSAGES"
# Text that is the same in every language: the names of the languages themselves.
ALLOWED_LITERALS = frozenset({"Français", "English"})
# Attributes whose value a person reads or hears.
VISIBLE_ATTRIBUTES = frozenset({"title", "alt", "placeholder", "aria-label"})
_PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]|%[sd]")
_LETTER = re.compile(r"[^\W\d_]")


def extracted_messages() -> dict[str, set[str]]:
    """msgid → where it appears, extracted with babel.cfg exactly as pybabel does."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    keywords = {**DEFAULT_KEYWORDS, "_l": None}
    found: dict[str, set[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        str(WEB), method_map, options_map, keywords=keywords
    ):
        assert isinstance(message, str), f"{filename}:{lineno}: plural forms are not used"
        found.setdefault(message, set()).add(f"{filename}:{lineno}")
    return found


def french_catalog() -> Catalog:
    with (FR_DIR / "messages.po").open("rb") as po:
        return read_po(po, locale="fr")


def _translations(catalog: Catalog) -> dict[str, str]:
    return {
        str(message.id): str(message.string)
        for message in catalog
        if message.id and not message.fuzzy and message.string
    }


def test_sources_have_messages_to_translate() -> None:
    messages = extracted_messages()
    # A guard against a babel.cfg whose patterns match nothing.
    assert "Sign in" in messages
    assert "Identifier" in messages  # a lazy form label (-k _l)
    assert "Welcome, %(name)s" in messages  # a template


def test_every_message_has_a_french_translation() -> None:
    catalog = french_catalog()
    problems = []
    for msgid, places in sorted(extracted_messages().items()):
        message = catalog.get(msgid)
        where = ", ".join(sorted(places))
        if message is None:
            problems.append(f"missing: {msgid!r} ({where})")
        elif not message.string:
            problems.append(f"empty: {msgid!r} ({where})")
        elif message.fuzzy:
            problems.append(f"fuzzy: {msgid!r} ({where})")
    assert not problems, "run pybabel extract/update (see babel.cfg):\n" + "\n".join(problems)


def test_catalog_has_no_stale_messages() -> None:
    current = extracted_messages()
    stale = [str(m.id) for m in french_catalog() if m.id and m.id not in current]
    assert not stale, f"messages no longer in the sources: {stale}"


def test_translations_keep_the_placeholders() -> None:
    for msgid, msgstr in _translations(french_catalog()).items():
        assert sorted(_PLACEHOLDER.findall(msgid)) == sorted(_PLACEHOLDER.findall(msgstr)), msgid


def test_french_typography_is_consistent() -> None:
    # ’ for apostrophes; a no-break space before : ; ? ! (not a plain one, not none).
    for msgid, msgstr in _translations(french_catalog()).items():
        assert "'" not in msgstr, f"straight apostrophe in the translation of {msgid!r}"
        for found in re.finditer(r"[:;?!](?=\s|$)", msgstr):
            before = msgstr[found.start() - 1] if found.start() else ""
            assert before == "\u00a0", f"{msgstr[found.start()]!r} in {msgstr!r}"


def test_committed_mo_matches_the_po() -> None:
    catalog = french_catalog()
    compiled = io.BytesIO()
    write_mo(compiled, catalog)  # fuzzy entries left out, as pybabel compile does
    compiled.seek(0)
    with (FR_DIR / "messages.mo").open("rb") as mo:
        committed = read_mo(mo)
    expected = _translations(read_mo(compiled))
    assert _translations(committed) == expected, (
        "messages.mo is out of date: pybabel compile -d groupware/web/translations"
    )
    assert expected == _translations(catalog)


def test_portal_finds_the_catalog_and_speaks_french_by_default(core: Core) -> None:
    app = build_http_app(core)
    directories = app.extensions["babel"].translation_directories
    assert [Path(d).resolve() for d in directories] == [(WEB / "translations").resolve()]
    with app.test_request_context("/login"):  # no Accept-Language: the default locale
        assert gettext("Sign in") == "Se connecter"
    with app.test_request_context("/login", headers={"Accept-Language": "en-GB,en;q=0.8"}):
        assert gettext("Sign in") == "Sign in"


class _TextCollector(HTMLParser):
    """Text nodes and visible attribute values of a template with its tags blanked."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[int, str]] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if name in VISIBLE_ATTRIBUTES and value:
                self.found.append((self.getpos()[0], value))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.found.append((self.getpos()[0], data))


def template_literals(source: str) -> list[tuple[int, str]]:
    """Literal text with letters a reader would see, outside ``{{ }}``, ``{% %}``, ``{# #}``."""
    env = jinja2.Environment(extensions=["jinja2.ext.i18n"], autoescape=True)
    pieces: list[str] = []
    for _lineno, kind, value in env.lex(source):
        # Jinja code becomes a blank of the same line count, so line numbers hold.
        pieces.append(value if kind == "data" else "\n" * value.count("\n") + " ")
    collector = _TextCollector()
    collector.feed("".join(pieces))
    collector.close()
    return [
        (line, text.strip())
        for line, text in collector.found
        if _LETTER.search(text) and text.strip() not in ALLOWED_LITERALS
    ]


def test_template_literal_check_catches_untranslated_text() -> None:
    sample = (
        '<p>{{ _("Fine") }}</p>\n'
        '<p title="Oops">Hello {{ name }}</p><b>{% if x %}Bye{% endif %}</b>'
    )
    assert [text for _line, text in template_literals(sample)] == ["Oops", "Hello", "Bye"]


@pytest.mark.parametrize(
    "template", sorted(p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*.html"))
)
def test_templates_have_no_text_outside_gettext(template: str) -> None:
    literals = template_literals((TEMPLATES / template).read_text(encoding="utf-8"))
    assert not literals, f"{template}: text outside _(): {literals}"


def _python_sources() -> list[Path]:
    return sorted(WEB.rglob("*.py"))


@pytest.mark.parametrize("path", _python_sources(), ids=lambda p: p.name)
def test_views_pass_user_text_through_gettext(path: Path) -> None:
    # flash() messages and form field labels are read by people: never bare strings.
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bare = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        name = getattr(node.func, "id", getattr(node.func, "attr", ""))
        first = node.args[0]
        if (name == "flash" or name.endswith("Field")) and isinstance(first, ast.Constant):
            bare.append(f"line {node.lineno}: {name}({first.value!r})")
    assert not bare, f"{path.name}: {bare}"
