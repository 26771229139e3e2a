# SPDX-License-Identifier: GPL-3.0-or-later
"""The DAV store over SQL: Radicale's storage API on indexed tables (DESIGN.md §3)."""
