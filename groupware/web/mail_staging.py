# SPDX-License-Identifier: GPL-3.0-or-later
"""Files waiting to be attached to a message being written in the webmail.

Each file is uploaded on its own (so the browser can show its progress) before the
message is sent or saved as a draft, and waits here, in a folder of the web
session under the data folder. On disk a file is named by a random id, never by
the name the person gave (which may hold ``..``, slashes or a reserved name); that
name, the media type and the size are in a small JSON file beside it. A session's
files are removed when its message is sent or discarded, when the person signs
out, and, for sessions that end otherwise (idle, closed browser), by a sweep of
folders untouched for a day. No Flask here.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from groupware.config import Config

#: The staging area's folder, under the data folder.
STAGING_FOLDER: Final = Path("webmail-staging")
#: Staged files older than this are stale: their session ended without sending.
STALE_SECONDS: Final = 24 * 3600
#: A session may hold this many times the per-message limit (several pages open).
SESSION_FACTOR: Final = 4
MAX_NAME_CHARS: Final = 200
_ID: Final = re.compile(r"^[A-Za-z0-9_-]{22}$")
_ID_BYTES: Final = 16
_META: Final = ".json"
DEFAULT_TYPE: Final = "application/octet-stream"
_TYPE: Final = re.compile(r"^[a-z0-9!#$&^_.+-]{1,64}/[a-z0-9!#$&^_.+-]{1,64}$")


class StagingLimitError(Exception):
    """The file would take the message (or the session) over the size limit."""

    def __init__(self, limit_bytes: int) -> None:
        super().__init__(f"over {limit_bytes} bytes")
        self.limit_bytes = limit_bytes


@dataclass(frozen=True, slots=True)
class StagedFile:
    """One uploaded file, waiting for its message."""

    id: str
    name: str
    media_type: str
    size_bytes: int


def clean_name(name: str) -> str:
    """A file name fit for a MIME header: no path, no control characters, bounded."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(c for c in base if c.isprintable()).strip().lstrip(".")
    return text[:MAX_NAME_CHARS] or "attachment"


def clean_type(media_type: str) -> str:
    """The declared media type if it looks like one, else ``application/octet-stream``."""
    value = media_type.split(";", 1)[0].strip().lower()
    return value if _TYPE.match(value) else DEFAULT_TYPE


class Staging:
    """The staging area: one folder per web session under ``root``."""

    def __init__(self, root: Path, limit_bytes: int) -> None:
        self.root = root
        self.limit_bytes = limit_bytes

    def _folder(self, session_id: int) -> Path:
        return self.root / str(int(session_id))

    def add(
        self,
        session_id: int,
        name: str,
        media_type: str,
        data: bytes,
        *,
        with_ids: Iterable[str] = (),
    ) -> StagedFile:
        """Keep ``data`` for the message that already has ``with_ids`` attached.

        Raises:
            StagingLimitError: the message's files, or the session's, would exceed the limit.
        """
        self.sweep()
        others = sum(f.size_bytes for f in self.files(session_id, with_ids))
        if others + len(data) > self.limit_bytes:
            raise StagingLimitError(self.limit_bytes)
        held = sum(f.size_bytes for f in self.all_files(session_id))
        if held + len(data) > self.limit_bytes * SESSION_FACTOR:
            raise StagingLimitError(self.limit_bytes)
        folder = self._folder(session_id)
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        staged = StagedFile(
            id=secrets.token_urlsafe(_ID_BYTES),
            name=clean_name(name),
            media_type=clean_type(media_type),
            size_bytes=len(data),
        )
        (folder / staged.id).write_bytes(data)
        meta = {"name": staged.name, "type": staged.media_type, "size": staged.size_bytes}
        (folder / (staged.id + _META)).write_text(json.dumps(meta), encoding="utf-8")
        return staged

    def get(self, session_id: int, file_id: str) -> StagedFile | None:
        """The staged file ``file_id`` of the session, or ``None``."""
        if not _ID.match(file_id):
            return None
        meta = self._folder(session_id) / (file_id + _META)
        try:
            values = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return StagedFile(
            id=file_id,
            name=str(values.get("name", "attachment")),
            media_type=str(values.get("type", DEFAULT_TYPE)),
            size_bytes=int(values.get("size", 0)),
        )

    def files(self, session_id: int, ids: Iterable[str]) -> list[StagedFile]:
        """The staged files among ``ids`` (unknown ones skipped), each once, in order."""
        found = (self.get(session_id, i) for i in dict.fromkeys(ids))
        return [f for f in found if f is not None]

    def all_files(self, session_id: int) -> list[StagedFile]:
        """Every file the session holds."""
        folder = self._folder(session_id)
        if not folder.is_dir():
            return []
        return self.files(session_id, (p.stem for p in folder.glob("*" + _META)))

    def read(self, session_id: int, file_id: str) -> bytes:
        """A staged file's bytes (``file_id`` checked by :meth:`get` first)."""
        if not _ID.match(file_id):
            raise FileNotFoundError(file_id)
        return (self._folder(session_id) / file_id).read_bytes()

    def remove(self, session_id: int, ids: Iterable[str]) -> None:
        """Forget some staged files (sent, discarded or taken off the message)."""
        folder = self._folder(session_id)
        for file_id in ids:
            if _ID.match(file_id):
                (folder / file_id).unlink(missing_ok=True)
                (folder / (file_id + _META)).unlink(missing_ok=True)

    def discard_session(self, session_id: int) -> None:
        """Remove every file of a session that ends."""
        shutil.rmtree(self._folder(session_id), ignore_errors=True)

    def sweep(self, now: float | None = None) -> None:
        """Remove the files staged more than a day ago, and folders empty for a day.

        A folder is removed only once unchanged for a day, never one another
        request of its session has just made and is about to write into.
        """
        if not self.root.is_dir():
            return
        deadline = (time.time() if now is None else now) - STALE_SECONDS
        for folder in self.root.iterdir():
            if not folder.is_dir():
                continue
            for path in folder.iterdir():
                with contextlib.suppress(OSError):  # removed meanwhile by its session
                    if path.stat().st_mtime < deadline:
                        path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # not empty, or removed meanwhile
                if folder.stat().st_mtime < deadline:
                    folder.rmdir()


def staging_for(config: Config) -> Staging:
    """The process's staging area, with the configured per-message limit."""
    return Staging(config.path(STAGING_FOLDER), config.webmail.max_attachment_bytes)
