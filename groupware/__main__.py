# SPDX-License-Identifier: GPL-3.0-or-later
"""``python -m groupware`` runs the command line."""

from groupware.cli import main

main()
