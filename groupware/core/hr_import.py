# SPDX-License-Identifier: GPL-3.0-or-later
"""Import of the HR export: people, their addresses and their groups.

The file is UTF-8 CSV (BOM optional), comma or semicolon separated, with a header
row holding at least ``numen,nom,prenom,date_naissance,fonction,etablissement``
and optionally ``discipline,service``. Dates are ``DD/MM/YYYY`` or ``YYYY-MM-DD``.

The import is keyed by NUMEN (through its keyed hash) and idempotent: running the
same file twice changes nothing the second time. A bad line is rejected alone,
with its line number and reason; the rest of the file is imported. Everything is
written in one transaction, so an interrupted import leaves the directory as it
was. Names changed in HR update the person but never their address.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Final

from sqlalchemy import Connection, delete, insert, select, update

from groupware.core.db import addresses, group_members, groups, persons
from groupware.core.directory import Directory, NewPerson, import_group_specs
from groupware.core.names import base_local_part, unique_local_part
from groupware.core.passwords import is_valid_numen
from groupware.errors import GroupwareError

REQUIRED_COLUMNS: Final = ("numen", "nom", "prenom", "date_naissance", "fonction", "etablissement")
OPTIONAL_COLUMNS: Final = ("discipline", "service")
MAX_FIELD_CHARS: Final = 255
_COMPARED: Final = (
    "first_name",
    "last_name",
    "birth_date",
    "role",
    "school",
    "discipline",
    "service",
)


class ImportFileError(GroupwareError):
    """The file as a whole cannot be read (encoding, header)."""


@dataclass(slots=True)
class ImportReport:
    """What an import did."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: int = 0
    disabled: list[str] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)
    lines_count: int = 0


@dataclass(frozen=True, slots=True)
class _Row:
    line: int
    person: NewPerson


def parse_date(text: str) -> date:
    """``DD/MM/YYYY`` or ``YYYY-MM-DD``.

    Raises:
        ValueError: any other form, or an impossible date.
    """
    text = text.strip()
    for form in ("%d/%m/%Y", "%Y-%m-%d"):
        try:
            parsed = datetime.strptime(text, form).date()  # noqa: DTZ007 - a calendar date
        except ValueError:
            continue
        if form == "%d/%m/%Y" and len(text) != 10:
            break
        return parsed
    raise ValueError(f"invalid date {text!r} (expected DD/MM/YYYY or YYYY-MM-DD)")


def read_rows(data: bytes) -> Iterator[_Row | tuple[int, str]]:
    """Parse the file: a :class:`_Row` per good line, ``(line, reason)`` per bad one.

    Raises:
        ImportFileError: not UTF-8, empty, or a header without the required columns.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ImportFileError(f"line {line}: the file is not UTF-8 text") from exc
    first_line = text.split("\n", 1)[0]
    if not first_line.strip():
        raise ImportFileError("line 1: the file is empty or has no header row")
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = [name.strip().lower() for name in next(reader)]
    except csv.Error as exc:
        raise ImportFileError(f"line 1: unreadable header: {exc}") from exc
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise ImportFileError(
            f"line 1: missing column(s) {', '.join(missing)} "
            f"(the header must name {', '.join(REQUIRED_COLUMNS)})"
        )
    index = {
        name: header.index(name)
        for name in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
        if name in header
    }
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield (reader.line_num, f"unreadable CSV: {exc}")
            continue
        line = reader.line_num
        if not any(value.strip() for value in values):
            continue
        if len(values) != len(header):
            yield (line, f"expected {len(header)} fields, found {len(values)}")
            continue
        yield _parse_line(line, {name: values[i].strip() for name, i in index.items()})


def _parse_line(line: int, fields: dict[str, str]) -> _Row | tuple[int, str]:
    numen = fields["numen"]
    if not is_valid_numen(numen):
        return (line, f"invalid NUMEN {numen!r}: 13 digits or uppercase letters expected")
    for name in ("nom", "prenom", "fonction", "etablissement"):
        if not fields[name]:
            return (line, f"empty {name}")
    for name, value in fields.items():
        if len(value) > MAX_FIELD_CHARS:
            return (line, f"{name} longer than {MAX_FIELD_CHARS} characters")
    if not base_local_part(fields["prenom"], fields["nom"]):
        return (line, "nom and prenom must contain letters")
    try:
        birth = parse_date(fields["date_naissance"])
    except ValueError as exc:
        return (line, str(exc))
    return _Row(
        line,
        NewPerson(
            numen=numen,
            first_name=fields["prenom"],
            last_name=fields["nom"],
            birth_date=birth,
            role=fields["fonction"],
            school=fields["etablissement"],
            discipline=fields.get("discipline", ""),
            service=fields.get("service", ""),
        ),
    )


class HrImport:
    """Applies an HR file to the directory."""

    def __init__(self, directory: Directory) -> None:
        self._directory = directory

    def run(
        self,
        data: bytes,
        *,
        actor: str,
        disable_missing: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> ImportReport:
        """Import ``data`` (the file's bytes).

        Args:
            data: the CSV file's content.
            actor: who runs the import (audit).
            disable_missing: disable active people absent from the file.
            progress: called with ``(done, total)`` lines as the import advances.

        Raises:
            ImportFileError: the file as a whole is unusable; nothing was changed.
        """
        report = ImportReport()
        rows: list[_Row] = []
        seen: dict[str, int] = {}
        key = self._directory.numen_key
        for item in read_rows(data):
            report.lines_count += 1
            if isinstance(item, tuple):
                report.rejected.append(item)
                continue
            digest = key.digest(item.person.numen)
            if digest in seen:
                report.rejected.append((item.line, f"NUMEN already on line {seen[digest]}"))
                continue
            seen[digest] = item.line
            rows.append(item)
        total = len(rows)
        with self._directory.engine.begin() as conn:
            state = _State.load(conn)
            for done, row in enumerate(rows, start=1):
                self._apply(conn, state, row.person, report)
                if progress is not None and (done % 500 == 0 or done == total):
                    progress(done, total)
            if disable_missing:
                gone = [
                    login
                    for digest, (_id, login, active) in state.by_digest.items()
                    if active and digest not in seen
                ]
                if gone:
                    conn.execute(
                        update(persons)
                        .where(persons.c.login.in_(gone))
                        .values(
                            is_active=False,
                            updated_at=self._directory.clock(),
                            credential_version=persons.c.credential_version + 1,
                        )
                    )
                report.disabled = sorted(gone)
        self._directory.audit.record(
            "directory.import",
            actor=actor,
            detail=(
                f"created={len(report.created)} updated={len(report.updated)} "
                f"unchanged={report.unchanged} disabled={len(report.disabled)} "
                f"rejected={len(report.rejected)}"
            ),
        )
        return report

    def _apply(self, conn: Connection, state: _State, new: NewPerson, report: ImportReport) -> None:
        directory = self._directory
        digest = directory.numen_key.digest(new.numen)
        now = directory.clock()
        wanted_groups = {
            state.group_id(conn, spec, now)
            for spec in import_group_specs(new.school, new.role, (new.discipline, new.service))
        }
        existing = state.by_digest.get(digest)
        if existing is None:
            local = unique_local_part(
                base_local_part(new.first_name, new.last_name),
                lambda cand: f"{cand}@{directory.domain}" in state.addresses,
            )
            person_id = directory.insert_person(conn, new, digest, local, now)
            state.addresses.add(f"{local}@{directory.domain}")
            state.by_digest[digest] = (person_id, local, True)
            state.values[person_id] = _values(new)
            if wanted_groups:
                conn.execute(
                    insert(group_members),
                    [
                        {"group_id": g, "person_id": person_id, "source": "import"}
                        for g in wanted_groups
                    ],
                )
            report.created.append(local)
            return
        person_id, login, _active = existing
        changed = False
        if state.values.get(person_id) != _values(new):
            conn.execute(
                update(persons)
                .where(persons.c.id == person_id)
                .values(**_values(new), updated_at=now)
            )
            state.values[person_id] = _values(new)
            changed = True
        current = state.import_groups.get(person_id, set())
        manual = state.manual_groups.get(person_id, set())
        to_add = wanted_groups - current - manual
        to_remove = current - wanted_groups
        if to_add:
            conn.execute(
                insert(group_members),
                [{"group_id": g, "person_id": person_id, "source": "import"} for g in to_add],
            )
        if to_remove:
            conn.execute(
                delete(group_members).where(
                    group_members.c.person_id == person_id,
                    group_members.c.group_id.in_(to_remove),
                    group_members.c.source == "import",
                )
            )
        state.import_groups[person_id] = (current | to_add) - to_remove
        if changed or to_add or to_remove:
            report.updated.append(login)
        else:
            report.unchanged += 1


def _values(new: NewPerson) -> dict[str, object]:
    return {
        "first_name": new.first_name,
        "last_name": new.last_name,
        "birth_date": new.birth_date,
        "role": new.role,
        "school": new.school,
        "discipline": new.discipline,
        "service": new.service,
    }


@dataclass(slots=True)
class _State:
    """The directory in memory for the length of one import (50,000 rows fit easily)."""

    by_digest: dict[str, tuple[int, str, bool]]
    values: dict[int, dict[str, object]]
    addresses: set[str]
    groups: dict[str, tuple[int, str]]
    import_groups: dict[int, set[int]]
    manual_groups: dict[int, set[int]]

    @classmethod
    def load(cls, conn: Connection) -> _State:
        by_digest: dict[str, tuple[int, str, bool]] = {}
        values: dict[int, dict[str, object]] = {}
        for row in conn.execute(select(persons)):
            by_digest[row.numen_hmac] = (row.id, row.login, row.is_active)
            values[row.id] = {name: getattr(row, name) for name in _COMPARED}
        import_groups: dict[int, set[int]] = {}
        manual_groups: dict[int, set[int]] = {}
        for row in conn.execute(select(group_members)):
            target = import_groups if row.source == "import" else manual_groups
            target.setdefault(row.person_id, set()).add(row.group_id)
        return cls(
            by_digest=by_digest,
            values=values,
            addresses={row.address for row in conn.execute(select(addresses.c.address))},
            groups={row.name: (row.id, row.kind) for row in conn.execute(select(groups))},
            import_groups=import_groups,
            manual_groups=manual_groups,
        )

    def group_id(self, conn: Connection, spec: tuple[str, str, str, str], now: datetime) -> int:
        name, display_name, kind, school = spec
        found = self.groups.get(name)
        if found is not None and found[1] != kind:
            return self.group_id(conn, (f"{name}.{kind}", display_name, kind, school), now)
        if found is not None:
            return found[0]
        result = conn.execute(
            insert(groups).values(
                name=name, display_name=display_name, kind=kind, school=school, created_at=now
            )
        )
        group_id = int(result.inserted_primary_key[0])
        self.groups[name] = (group_id, kind)
        return group_id
