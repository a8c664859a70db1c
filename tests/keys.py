"""Keys used across the tests. KEY_A is the reference vectors' key: the bytes 0 to 31."""

from __future__ import annotations

import base64

KEY_A = base64.b64encode(bytes(range(32))).decode()
KEY_B = base64.b64encode(bytes(range(32, 64))).decode()
KEY_C = base64.b64encode(bytes(range(64, 96))).decode()
