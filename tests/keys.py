"""Keys used across the tests. KEY_A is the reference vectors' key: the bytes 0 to 31."""

from __future__ import annotations

import base64

KEY_A = base64.b64encode(bytes(range(32))).decode()
KEY_B = base64.b64encode(bytes(range(32, 64))).decode()
KEY_C = base64.b64encode(bytes(range(64, 96))).decode()
# Blind index keys (never the same as an encryption key: check E402).
INDEX_KEY_A = base64.b64encode(bytes(range(96, 128))).decode()
INDEX_KEY_B = base64.b64encode(bytes(range(128, 160))).decode()

# A 3 KB PEM-shaped private key for the envelope tests and benchmark. The spaces and '!' are
# characters base64url never produces, so "not in the stored text" only passes for ciphertext.
SAMPLE_PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    + "\n".join("MIIEvQIBADANBgkqhkiG9w0BAQEFAASC! " + "x" * 30 for _ in range(45))
    + "\n-----END PRIVATE KEY-----\n"
)

# Key settings for rotation tests: "k1" alone, then "k2" active with "k1" kept for reading.
RING_K1 = {"ENCRYPTION_KEY": KEY_A, "ENCRYPTION_KEY_ID": "k1", "ENCRYPTION_KEY_FALLBACKS": []}
RING_K2 = {
    "ENCRYPTION_KEY": KEY_B,
    "ENCRYPTION_KEY_ID": "k2",
    "ENCRYPTION_KEY_FALLBACKS": [f"k1:{KEY_A}"],
}
