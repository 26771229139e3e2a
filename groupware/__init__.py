# SPDX-License-Identifier: GPL-3.0-or-later
"""groupware: mail, calendars, contacts and a portal for education authorities."""

__version__ = "0.1.0"
