# SPDX-License-Identifier: GPL-3.0-or-later
"""Framework-free domain: database, directory, accounts, authentication, audit.

Nothing in this package imports Flask, Radicale, aiosmtpd or another service
package (``tests/test_architecture.py`` keeps it so).
"""
