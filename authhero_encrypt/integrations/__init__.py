"""Optional integrations with third-party packages, each imported only when used."""

from __future__ import annotations
