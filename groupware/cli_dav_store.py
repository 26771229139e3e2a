# SPDX-License-Identifier: GPL-3.0-or-later
"""``groupware dav``: move calendars and address books in and out of the SQL store.

``dav import-radicale PATH`` copies an existing Radicale file store (its storage
folder, or the ``collection-root`` inside it) into the SQL store, keeping every
href; run again, it changes nothing. ``dav export DEST`` writes the SQL store out
as plain ``.ics`` and ``.vcf`` files in Radicale's layout.
"""

from __future__ import annotations

from pathlib import Path

import click
from radicale import config as radicale_config
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from groupware.cli_support import Context, err, out, pass_context
from groupware.dav.sqlstore.migrate import (
    MigrationReport,
    export_file_store,
    import_file_store,
    scan_file_store,
)
from groupware.dav.sqlstore.storage import SqlStorage
from groupware.errors import GroupwareError


def _store(context: Context) -> SqlStorage:
    return SqlStorage(radicale_config.load(), context.core().engine)


@click.group()
def dav() -> None:
    """Calendars and address books: import from Radicale, export to files."""


@dav.command("import-radicale")
@click.argument("path", type=click.Path(exists=True, file_okay=False, path_type=Path))
@pass_context
def dav_import_radicale(context: Context, path: Path) -> None:
    """Import the Radicale file store at PATH (keeps hrefs; idempotent)."""
    total = sum(len(collection.hrefs) for collection in scan_file_store(path))
    store = _store(context)
    progress = Progress(
        TextColumn("[bold]Importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
    )
    task = progress.add_task("import", total=total)
    with progress:
        report = import_file_store(store, path, on_item=lambda: progress.advance(task))
    _print_report(report, "imported")
    if report.rejected:
        raise SystemExit(1)


@dav.command("export")
@click.argument("destination", type=click.Path(file_okay=False, path_type=Path))
@pass_context
def dav_export(context: Context, destination: Path) -> None:
    """Write every calendar and address book under DESTINATION as .ics/.vcf files."""
    if destination.exists() and any(destination.iterdir()):
        raise GroupwareError(f"{destination} is not empty")
    report = export_file_store(_store(context), destination)
    _print_report(report, "exported")


def _print_report(report: MigrationReport, verb: str) -> None:
    out.print(f"{report.collections} collections, {report.items} items {verb}.", markup=False)
    for where, reason in report.rejected:
        out.print(f"rejected {where}: {reason}", markup=False)
