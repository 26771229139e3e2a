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
    # aiosmtpd's "mail.log" logs every SMTP command, AUTH payloads (credentials) too,
    # at INFO and DEBUG: never below WARNING, whatever the level (it also costs about
    # a fifth of the loop's time under load). Our SMTP handlers log what matters.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    # Radicale logs every request at INFO; ours already says what matters.
    if level.upper() != "DEBUG":
        logging.getLogger("radicale").setLevel(logging.WARNING)
        logging.getLogger("cheroot").setLevel(logging.WARNING)
