# SPDX-License-Identifier: GPL-3.0-or-later
"""What every ``groupware`` command module shares: consoles, the data folder, tables."""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import click
from rich.cells import cell_len
from rich.console import Console

from groupware.config import Config, load_config
from groupware.core.services import Core
from groupware.errors import GroupwareError

# No emoji codes: ":...:" in a name is text. Values from the directory go into
# tables as Text, never as markup (a school named "[annexe]" is not a style).
out = Console(
    highlight=False, emoji=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160
)
err = Console(stderr=True, highlight=False, emoji=False, soft_wrap=True)


def actor() -> str:
    """Who the audit trail names for a command: ``cli:<system user>``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"cli:{user}"


class Context:
    """The data folder chosen with ``--data`` or ``GROUPWARE_DATA``."""

    def __init__(self, data: Path | None) -> None:
        self.data = data
        self._core: Core | None = None

    def config(self) -> Config:
        if self.data is None:
            raise GroupwareError("no data folder: pass --data DIR or set GROUPWARE_DATA")
        return load_config(self.data)

    def core(self) -> Core:
        if self._core is None:
            self._core = Core.open(self.config())
        return self._core


pass_context = click.make_pass_decorator(Context)


def print_columns(headers: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """Aligned plain columns, one line per row, never cut (scripts read them)."""
    widths = [
        max(cell_len(value) for value in column) for column in zip(headers, *rows, strict=True)
    ]
    lines = [
        "  ".join(
            value + " " * (width - cell_len(value))
            for value, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in (headers, *rows)
    ]
    click.echo("\n".join(lines))
