# SPDX-License-Identifier: GPL-3.0-or-later
"""Message files of the mail store: immutable, one per message, written durably.

A file is written to a temporary name in its final folder, fsynced, renamed, and
the folder is fsynced (and, when the write made the folder, its parents too), so a
crash leaves each file absent or complete. The index row naming a file is
committed only after :meth:`BlobFiles.write_many` returns (``mail.store``).

Files written together share a folder, so that one folder fsync covers them all.
Folders are ``xx/yy`` of a random name; a writer fills one with up to
:data:`FILES_PER_FOLDER` files before it draws the next, so that it makes (and
fsyncs into its parent) a new folder rarely, while files still spread evenly over
all folders in the long run. Paths are kept in the index, so the layout is free to
change. Blocking: callers are worker threads.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
import weakref
from collections.abc import Sequence
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Final

from groupware.mail.spool import fsync_dir

#: Files a writer puts in one folder before it moves to another, random one.
FILES_PER_FOLDER: Final = 256


class BlobFiles:
    """Immutable message files under one folder, written durably."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._prefix = str(root) + os.sep  # reads build str paths: pathlib costs more
        # Folders whose entry in their parent this process made durable (at most 65,792).
        self._durable_folders: set[str] = set()
        self._folder = ""  # the folder being filled, and how many more files it takes
        self._folder_room = 0
        self._folder_lock = threading.Lock()
        # Writes the files of one call side by side; its idle threads end with it.
        self._writers = ThreadPoolExecutor(max_workers=4, thread_name_prefix="mail-blob-write")
        weakref.finalize(self, self._writers.shutdown, wait=False)

    def write(self, data: bytes) -> str:
        """Store ``data`` durably; returns its path relative to the root."""
        return self.write_many([data])[0]

    def write_many(self, contents: Sequence[bytes]) -> list[str]:
        """Store several messages durably, in one folder; their paths relative to the root.

        Each file is fsynced before its rename; the folder once after every rename.
        On an error nothing written here stays.
        """
        folder = self._folder_for(len(contents))
        paths = [f"{folder}/{secrets.token_hex(16)}.eml" for _data in contents]
        try:
            if len(paths) == 1:
                self._write_file(paths[0], contents[0])
            else:
                self._write_side_by_side(paths, contents)
            fsync_dir(self.root / folder)
        except BaseException:
            for relative in paths:
                self.remove(relative)
            raise
        return paths

    def _write_side_by_side(self, paths: Sequence[str], contents: Sequence[bytes]) -> None:
        """Files written by several threads at once; raises the first failure.

        The file system joins concurrent fsyncs into fewer journal commits, and each
        thread waits for the interpreter lock again after its fsync at the same time
        as the others, not one after the other.
        """
        writes = [
            self._writers.submit(self._write_file, path, data)
            for path, data in zip(paths, contents, strict=True)
        ]
        futures.wait(writes)
        for write in writes:
            write.result()

    def _folder_for(self, count: int) -> str:
        """The folder for ``count`` new files: the current one while it has room."""
        with self._folder_lock:
            if self._folder_room <= 0:
                name = secrets.token_hex(2)
                self._folder, self._folder_room = f"{name[:2]}/{name[2:]}", FILES_PER_FOLDER
            self._folder_room -= count
            folder = self._folder
        self._make_folder(folder)
        return folder

    def _make_folder(self, folder: str) -> None:
        """The ``xx/yy`` folder, its entry in its parent durable.

        A level found already there is fsynced in its parent too, once per process: it
        may have just been made by another thread that has not fsynced it yet.
        """
        if folder in self._durable_folders:
            return
        path, relative = self.root, ""
        for level in folder.split("/"):
            parent, path = path, path / level
            relative = f"{relative}/{level}" if relative else level
            if relative in self._durable_folders:
                continue
            with contextlib.suppress(FileExistsError):
                path.mkdir()
            fsync_dir(parent)
            self._durable_folders.add(relative)

    def _write_file(self, relative: str, data: bytes) -> None:
        """One file: a temporary name, the bytes, fsync, then the final name."""
        target = self._prefix + relative
        temporary = target[: -len(".eml")] + ".tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(temporary)
            raise
        os.close(fd)
        os.replace(temporary, target)

    def read(self, relative: str, size: int | None = None) -> bytes:
        """The bytes of one file; ``size`` (as indexed) saves asking the file system.

        One open, one read, one close: a FETCH of many bodies pays little else.
        """
        fd = os.open(self._prefix + relative, os.O_RDONLY)
        try:
            if size is None:
                size = os.fstat(fd).st_size
            # A regular file gives all it holds up to the count asked; one octet more
            # than expected shows a file larger than its index says: read the rest.
            data = os.read(fd, size + 1)
            if len(data) > size:
                parts = [data]
                while chunk := os.read(fd, 1 << 20):
                    parts.append(chunk)
                data = b"".join(parts)
            return data
        finally:
            os.close(fd)

    def read_range(self, relative: str, start: int, end: int) -> bytes:
        """``data[start:end]`` of one file without reading the rest."""
        with open(self._prefix + relative, "rb") as handle:
            handle.seek(start)
            return handle.read(max(0, end - start))

    def remove(self, relative: str) -> None:
        """Delete one file (missing is fine: removal is idempotent)."""
        with contextlib.suppress(FileNotFoundError):
            (self.root / relative).unlink()
