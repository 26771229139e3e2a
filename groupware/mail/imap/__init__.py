# SPDX-License-Identifier: GPL-3.0-or-later
"""IMAP4rev1 server pieces (RFC 3501): command objects, a sans-IO parser, response rendering.

``parser.CommandParser`` turns client bytes into ``commands`` objects; ``wire`` renders
responses. Neither does I/O: the session layer owns the socket.
"""
