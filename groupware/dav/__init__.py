# SPDX-License-Identifier: GPL-3.0-or-later
"""CalDAV/CardDAV: Radicale embedded under ``/dav`` with our plugins.

Radicale does the protocol; we supply authentication (the common ``core.auth``
path), rights (deny unless a rule allows) and the default collections.
"""
