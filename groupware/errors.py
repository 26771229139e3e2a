# SPDX-License-Identifier: GPL-3.0-or-later
"""Error types shared by every service; each protocol edge maps them to replies."""

from __future__ import annotations


class GroupwareError(Exception):
    """Base of every error we raise on purpose."""


class ConfigError(GroupwareError):
    """The configuration is missing, unreadable or invalid; startup refuses."""


class NotFoundError(GroupwareError):
    """A person, group or object that was named does not exist."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"no such {kind}: {name}")
        self.kind = kind
        self.name = name


class ConflictError(GroupwareError):
    """The change would contradict existing state (duplicate name, member twice...)."""


class PasswordPolicyError(GroupwareError):
    """A new password breaks the policy; ``problems`` are message keys for the user."""

    def __init__(self, problems: list[str], min_length: int) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
        self.min_length = min_length
