"""Dependency direction (DESIGN.md §4): core is framework-free; services don't import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "groupware"
FRAMEWORKS = (
    "flask",
    "flask_login",
    "flask_wtf",
    "flask_babel",
    "werkzeug",
    "radicale",
    "aiosmtpd",
    "cheroot",
    "jinja2",
    "wtforms",
)
SERVICES = ("groupware.dav", "groupware.mail", "groupware.web", "groupware.app", "groupware.cli")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import (absolute imports only)"
            if node.module:
                found.add(node.module)
    return found


def _modules(subpackage: str) -> list[Path]:
    return sorted((PACKAGE / subpackage).rglob("*.py"))


def _is_under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


@pytest.mark.parametrize("path", _modules("core"), ids=lambda p: p.name)
def test_core_imports_no_framework_and_no_service(path: Path) -> None:
    bad = {m for m in _imports(path) if _is_under(m, FRAMEWORKS) or _is_under(m, SERVICES)}
    assert not bad, f"{path.relative_to(PACKAGE.parent)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", _modules("dav"), ids=lambda p: p.name)
def test_dav_imports_neither_web_nor_mail(path: Path) -> None:
    bad = {
        m
        for m in _imports(path)
        if _is_under(
            m, ("groupware.web", "groupware.mail", "groupware.app", "groupware.cli", "flask")
        )
    }
    assert not bad, f"{path.relative_to(PACKAGE.parent)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", _modules("web"), ids=lambda p: p.name)
def test_web_imports_neither_dav_nor_mail_nor_radicale(path: Path) -> None:
    bad = {
        m
        for m in _imports(path)
        if _is_under(
            m,
            (
                "groupware.dav",
                "groupware.mail",
                "groupware.app",
                "groupware.cli",
                "radicale",
                "aiosmtpd",
            ),
        )
    }
    assert not bad, f"{path.relative_to(PACKAGE.parent)} imports {sorted(bad)}"


@pytest.mark.parametrize("path", _modules("mail"), ids=lambda p: p.name)
def test_mail_imports_neither_web_nor_dav(path: Path) -> None:
    bad = {
        m
        for m in _imports(path)
        if _is_under(
            m,
            (
                "groupware.web",
                "groupware.dav",
                "groupware.app",
                "groupware.cli",
                "flask",
                "radicale",
            ),
        )
    }
    assert not bad, f"{path.relative_to(PACKAGE.parent)} imports {sorted(bad)}"


def test_the_walker_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import flask\nfrom radicale import config\n", encoding="utf-8")
    assert {"flask", "radicale"} <= _imports(sample)
