# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``groupware`` command: init, serve, users, groups (shares, collections: ``cli_dav``).

User mistakes (unknown login, bad file, bad option) print one readable line on
standard error and exit non-zero; no traceback reaches the terminal.
"""

from __future__ import annotations

import asyncio
import gc
import getpass
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Final, TypeVar

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from groupware import __version__
from groupware.cli_dav import collections, shares
from groupware.cli_dav_store import dav
from groupware.cli_support import Context, err, out, pass_context
from groupware.cli_support import actor as _actor
from groupware.cli_support import print_columns as _print_columns
from groupware.config import load_config
from groupware.core.account_notices import password_reset_notice
from groupware.core.directory import NewPerson, Person
from groupware.core.hr_import import HrImport, ImportReport, parse_date
from groupware.core.passwords import POLICY_MESSAGES
from groupware.core.services import Core
from groupware.datadir import init_data_dir
from groupware.errors import GroupwareError, PasswordPolicyError
from groupware.logs import setup_logging
from groupware.mail.notices import Notices, deliver_here

F = TypeVar("F", bound=Callable[..., Any])

_SIZE: Final = re.compile(r"(?i)^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$")
_UNITS: Final = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_size(text: str) -> int:
    """``30G``, ``500M``, ``1.5GiB`` or a number of bytes."""
    match = _SIZE.match(text)
    if not match:
        raise click.BadParameter(f"{text!r} is not a size (examples: 30G, 500M, 1048576)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _human_size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return str(count)


@contextmanager
def _user_errors() -> Iterator[None]:
    try:
        yield
    except PasswordPolicyError as exc:
        for problem in exc.problems:
            err.print(f"error: {POLICY_MESSAGES[problem].format(min_length=exc.min_length)}")
        raise SystemExit(1) from None
    except GroupwareError as exc:
        err.print(f"error: {exc}", markup=False)
        raise SystemExit(1) from None
    except OSError as exc:
        # Unreadable file, unwritable folder, full disk: the user's to fix.
        err.print(f"error: {exc}", markup=False)
        raise SystemExit(1) from None


class _Group(click.Group):
    """Runs every command inside the user-error translation."""

    def invoke(self, ctx: click.Context) -> Any:
        with _user_errors():
            return super().invoke(ctx)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--data",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="GROUPWARE_DATA",
    help="Data folder (made by 'groupware init'); or set GROUPWARE_DATA.",
)
@click.version_option(__version__, prog_name="groupware")
@click.pass_context
def main(ctx: click.Context, data: Path | None) -> None:
    """Groupware server: mail, calendars, contacts and a web portal."""
    ctx.obj = Context(data)


# --- init and serve ----------------------------------------------------------------


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--domain", default="example.org", show_default=True, help="Mail domain.")
@click.option("--institution", default=None, help="Name shown in the portal.")
@click.option("--demo", is_flag=True, help="Add a demo institution (schools, staff, groups).")
def init(directory: Path, domain: str, institution: str | None, demo: bool) -> None:
    """Create the data folder DIRECTORY: config, database, TLS certificate, stores."""
    init_data_dir(directory, domain=domain.lower(), institution=institution)
    out.print(f"Created {directory} (config: {directory / 'groupware.toml'})", markup=False)
    if demo:
        _load_demo(Core.open(load_config(directory, env={})))
    out.print(f"Start it with: groupware --data {directory} serve", markup=False)


def _load_demo(core: Core) -> None:
    data = resources.files("groupware.demo").joinpath("staff.csv").read_bytes()
    report = HrImport(core.directory).run(data, actor="demo")
    for admin in core.directory.list_persons():
        if admin.role == "Administrateur":
            core.directory.set_admin(admin.login, True, actor="demo")
    numens = {
        core.directory.numen_key.digest(line.split(";", 1)[0]): line.split(";", 1)[0]
        for line in data.decode("utf-8").splitlines()[1:]
        if line
    }
    table = Table(
        title=f"Demo institution: {len(report.created)} accounts, addresses "
        f"<identifier>@{core.config.server.domain}. First sign-in with the NUMEN, "
        "then choose a password."
    )
    table.add_column("Identifier", no_wrap=True)
    table.add_column("NUMEN (first password)", no_wrap=True)
    table.add_column("Role")
    table.add_column("School")
    for person in core.directory.list_persons():
        role = person.role + (" (admin)" if person.is_admin else "")
        table.add_row(person.login, numens[person.numen_hmac], Text(role), Text(person.school))
    out.print(table)
    core.close()


@main.command()
@click.option(
    "--only",
    default="",
    help="Comma-separated services to run (http, smtp, imap); default: all available.",
)
@click.option(
    "--http-worker",
    is_flag=True,
    hidden=True,
    help="Serve HTTP beside the process that started this one (groupware.http_workers).",
)
@pass_context
def serve(context: Context, only: str, http_worker: bool) -> None:
    """Run the services until SIGTERM or Ctrl-C (HTTP in http.processes_count processes)."""
    from groupware.app import SERVICES, run
    from groupware.http_workers import end_with_parent, processes_count

    config = context.config()
    setup_logging(config.logging.level)
    chosen = frozenset(s.strip() for s in only.split(",") if s.strip()) or frozenset(SERVICES)
    if http_worker:
        end_with_parent()
        chosen = frozenset({"http"})
    asyncio.run(
        run(
            config,
            chosen,
            on_ready=freeze_startup_objects,
            http_processes=1 if http_worker else processes_count(config),
            is_http_worker=http_worker,
        )
    )


def freeze_startup_objects(_addresses: Mapping[str, tuple[str, int]]) -> None:
    """Hide what lives until exit from the cycle collector, once every service is up.

    The modules, the apps and their plugins are some 100,000 objects that every full
    collection walks again; a big DAV answer (a Depth-1 PROPFIND of 10,000 events
    makes as many items and XML elements) triggers several: a quarter of its time.
    Only for the real process: the test servers share the process with pytest.
    """
    gc.collect()
    gc.freeze()


@main.command()
@pass_context
def dns(context: Context) -> None:
    """The DNS records to publish for the mail domain (MX, SPF, DKIM, DMARC, SRV)."""
    from groupware.mail.dns_records import dns_records

    records = dns_records(context.config())
    table = Table(title=f"DNS records for {context.config().server.domain}")
    for column in ("name", "type", "value", "purpose"):
        table.add_column(column, overflow="fold")
    for record in records:
        table.add_row(Text(record.name), record.type, Text(record.value), Text(record.purpose))
    err.print(table)
    # The zone-file lines on standard output, ready to paste or to redirect.
    for record in records:
        out.print(record.zone_line(), markup=False, highlight=False, soft_wrap=True)


# --- users -------------------------------------------------------------------------


@main.group()
def users() -> None:
    """People and their accounts."""


@users.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--disable-missing", is_flag=True, help="Disable active accounts absent from the file."
)
@pass_context
def users_import(context: Context, file: Path, disable_missing: bool) -> None:
    """Import the HR export FILE (CSV); idempotent, keyed by NUMEN."""
    core = context.core()
    data = file.read_bytes()
    progress = Progress(
        TextColumn("[bold]Importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )
    task = progress.add_task("import", total=None)

    def advance(done: int, total: int) -> None:
        # Shown from the first written batch: a refused file shows only its error.
        progress.start()
        progress.update(task, completed=done, total=total)

    try:
        report = HrImport(core.directory).run(
            data, actor=_actor(), disable_missing=disable_missing, progress=advance
        )
    finally:
        progress.stop()
    _print_report(report)


def _print_report(report: ImportReport) -> None:
    table = Table(title="Import report", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("lines read", str(report.lines_count))
    table.add_row("created", str(len(report.created)))
    table.add_row("updated", str(len(report.updated)))
    table.add_row("unchanged", str(report.unchanged))
    table.add_row("disabled", str(len(report.disabled)))
    table.add_row("rejected", str(len(report.rejected)))
    out.print(table)
    for line, reason in report.rejected:
        out.print(f"rejected line {line}: {reason}", markup=False)


@users.command("passwd")
@click.argument("login")
@pass_context
def users_passwd(context: Context, login: str) -> None:
    """Set LOGIN's password from standard input and clear "must change"."""
    core = context.core()
    person = core.directory.get(login)
    if sys.stdin.isatty():
        password = getpass.getpass(f"New password for {person.login}: ")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise GroupwareError("empty password: nothing changed")
    core.directory.set_password(person.login, password, actor=_actor())
    out.print(f"Password set for {person.login}.")


def _birth_date(_ctx: Any, _param: Any, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return parse_date(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@users.command("add")
@click.option("--numen", required=True)
@click.option("--first-name", required=True)
@click.option("--last-name", required=True)
@click.option("--birth-date", callback=_birth_date, help="DD/MM/YYYY or YYYY-MM-DD.")
@click.option("--role", default="", help="Fonction, e.g. Enseignant.")
@click.option("--school", default="", help="Etablissement.")
@click.option("--discipline", default="")
@click.option("--service", default="")
@click.option("--admin", is_flag=True, help="Give the administrator role.")
@pass_context
def users_add(context: Context, /, admin: bool, **fields: Any) -> None:
    """Create one account by hand (first sign-in with the NUMEN)."""
    core = context.core()
    person = core.directory.add_person(NewPerson(**fields), actor=_actor(), is_admin=admin)
    out.print(f"Created {person.login} <{person.email}>")


@users.command("list")
@click.option("--school", default=None, help="Only people of this school.")
@click.option("--active-only", is_flag=True, help="Leave out disabled accounts.")
@pass_context
def users_list(context: Context, school: str | None, active_only: bool) -> None:
    """One line per person: identifier, address, name, role, school, status."""
    people = context.core().directory.list_persons(active_only=active_only, school=school)
    _print_columns(
        ("identifier", "address", "name", "role", "school", "status"),
        [
            (
                person.login,
                person.email,
                person.display_name,
                person.role,
                person.school,
                _status(person),
            )
            for person in people
        ],
    )


def _status(person: Person) -> str:
    if not person.is_active:
        return "disabled"
    return "must-change-password" if person.must_change_password else "active"


@users.command("show")
@click.argument("login")
@pass_context
def users_show(context: Context, login: str) -> None:
    """Everything the directory holds about LOGIN (never the NUMEN or password)."""
    directory = context.core().directory
    person = directory.get(login)
    table = Table(show_header=False, box=None)
    table.add_column("field", style="bold")
    table.add_column("value")
    rows = [
        ("identifier", person.login),
        ("address", person.email),
        ("addresses", ", ".join(directory.addresses_of(person.id))),
        ("name", person.display_name),
        ("birth date", person.birth_date.isoformat() if person.birth_date else ""),
        ("role", person.role + (" (administrator)" if person.is_admin else "")),
        ("school", person.school),
        ("discipline", person.discipline),
        ("service", person.service),
        ("status", _status(person)),
        ("quota", _human_size(person.quota_bytes)),
        ("language", person.language),
        ("groups", ", ".join(group.name for group in directory.groups_of(person.id))),
        ("created", person.created_at.isoformat(timespec="seconds")),
    ]
    for name, value in rows:
        table.add_row(name, Text(value))
    out.print(table)


@users.command("disable")
@click.argument("login")
@pass_context
def users_disable(context: Context, login: str) -> None:
    """Disable LOGIN: no protocol accepts it any more."""
    person = context.core().directory.set_active(login, False, actor=_actor())
    out.print(f"Disabled {person.login}.")


@users.command("enable")
@click.argument("login")
@pass_context
def users_enable(context: Context, login: str) -> None:
    """Enable LOGIN again."""
    person = context.core().directory.set_active(login, True, actor=_actor())
    out.print(f"Enabled {person.login}.")


@users.command("set-quota")
@click.argument("login")
@click.argument("size")
@pass_context
def users_set_quota(context: Context, login: str, size: str) -> None:
    """Set LOGIN's mail quota (SIZE like 30G, 500M or bytes)."""
    person = context.core().directory.set_quota(login, parse_size(size), actor=_actor())
    out.print(f"Quota of {person.login}: {_human_size(person.quota_bytes)}.")


@users.command("add-alias")
@click.argument("login")
@click.argument("address")
@pass_context
def users_add_alias(context: Context, login: str, address: str) -> None:
    """Give LOGIN the extra address ADDRESS (mail to it reaches them; they may send as it)."""
    added = context.core().directory.add_alias(login, address, actor=_actor())
    out.print(f"{added} now reaches {login}.", markup=False)


@users.command("reset")
@click.argument("login")
@pass_context
def users_reset(context: Context, login: str) -> None:
    """Give LOGIN a temporary password, to be changed at next sign-in."""
    core = context.core()
    person = core.directory.get(login)
    temporary = core.directory.reset_password(person.login, actor=_actor())
    notices = Notices(core.config)
    notices.wake = deliver_here(core, notices)
    notices.send(
        person, *password_reset_notice(person, core.config.server.institution_name, by_admin=True)
    )
    out.print(f"Temporary password for {person.login}: {temporary}", markup=False)
    out.print("It must be changed at the next sign-in on the portal.")
    out.print(f"A notice was mailed to {person.email}.", markup=False)


# --- groups ------------------------------------------------------------------------


@main.group()
def groups() -> None:
    """Schools, departments, roles and hand-made groups."""


@groups.command("add")
@click.argument("name")
@click.option("--display-name", default="", help="Name people see.")
@pass_context
def groups_add(context: Context, name: str, display_name: str) -> None:
    """Create the group NAME (lowercase letters, digits, '-' and '.')."""
    group = context.core().directory.add_group(name, display_name, actor=_actor())
    out.print(f"Created group {group.name}.")


@groups.command("list")
@pass_context
def groups_list(context: Context) -> None:
    """Every group, with its kind and number of members."""
    _print_columns(
        ("name", "kind", "members", "display name"),
        [
            (group.name, group.kind, str(count), group.display_name)
            for group, count in context.core().directory.list_groups()
        ],
    )


@groups.command("members")
@click.argument("name")
@pass_context
def groups_members(context: Context, name: str) -> None:
    """The members of group NAME, one per line."""
    people = context.core().directory.members(name)
    click.echo("".join(f"{p.login}\t{p.email}\t{p.display_name}\n" for p in people), nl=False)


@groups.command("add-member")
@click.argument("name")
@click.argument("login")
@pass_context
def groups_add_member(context: Context, name: str, login: str) -> None:
    """Add LOGIN to group NAME."""
    directory = context.core().directory
    directory.add_member(name, login, actor=_actor())
    out.print(f"Added {directory.get(login).login} to {name.strip().lower()}.", markup=False)


@groups.command("remove-member")
@click.argument("name")
@click.argument("login")
@pass_context
def groups_remove_member(context: Context, name: str, login: str) -> None:
    """Remove LOGIN from group NAME."""
    directory = context.core().directory
    directory.remove_member(name, login, actor=_actor())
    out.print(f"Removed {directory.get(login).login} from {name.strip().lower()}.", markup=False)


main.add_command(shares)
main.add_command(collections)
main.add_command(dav)


if __name__ == "__main__":  # pragma: no cover
    main()
