# SPDX-License-Identifier: GPL-3.0-or-later
"""Mail: SMTP, spool, delivery, mail store, IMAP."""
