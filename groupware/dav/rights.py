# SPDX-License-Identifier: GPL-3.0-or-later
"""Radicale rights plugin: deny unless a rule allows.

For now the only rule is ownership: a user reads and writes the collections
under their own principal ``/<login>/``; everyone authenticated may read the
root (discovery needs it). Anonymous gets nothing.
"""

from __future__ import annotations

from typing import Any

from radicale import pathutils
from radicale.rights import BaseRights


class Rights(BaseRights):
    """Radicale's rights hook; the class name is what Radicale's loader expects."""

    def __init__(self, configuration: Any) -> None:  # Radicale seam
        super().__init__(configuration)

    def authorization(self, user: str, user_groups: set[str], path: str) -> str:
        """Radicale permission letters for ``user`` on ``path``."""
        if not user:
            return ""
        parts = [part for part in pathutils.strip_path(path).split("/") if part]
        if not parts:
            return "R"
        if parts[0] != user:
            return ""
        if len(parts) == 1:
            return "RW"
        if len(parts) == 2:
            return "rw"
        return ""
