# SPDX-License-Identifier: GPL-3.0-or-later
"""Logging set-up: the only place that adds handlers."""

from __future__ import annotations

import logging
import sys


def setup_logging(level: str = "INFO") -> None:
    """One line per event on standard error: time, level, logger, message."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Radicale logs every request at INFO; ours already says what matters.
    if level.upper() != "DEBUG":
        logging.getLogger("radicale").setLevel(logging.WARNING)
        logging.getLogger("cheroot").setLevel(logging.WARNING)
