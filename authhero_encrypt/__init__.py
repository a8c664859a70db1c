"""Encrypt Django credential fields at rest, byte-compatible with AuthHero's ``enc:v1`` format."""

from __future__ import annotations

__version__ = "0.3.0.dev0"
