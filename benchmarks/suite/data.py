"""The data every library is measured on: the same secrets and documents for all of them."""

from __future__ import annotations

import random
import string
from datetime import datetime, timedelta, timezone
from typing import Any

from benchmarks.suite.models import SECRET_LENGTH

_ALPHABET = string.ascii_letters + string.digits + "-_"


def secrets(count: int, seed: int) -> list[str]:
    """``count`` distinct-looking ASCII secrets of 40 characters (40 bytes of UTF-8)."""
    rng = random.Random(seed)
    return ["".join(rng.choices(_ALPHABET, k=SECRET_LENGTH)) for _ in range(count)]


def connection_options(index: int, secret: str, nested_secret: str) -> dict[str, Any]:
    """An AuthHero-shaped ``connections.options`` document of an OIDC connection: 10 keys.

    Two of its strings are secret (``client_secret`` and ``configuration.client_secret``); the
    rest is what such a document carries beside them: endpoints, scopes, flags, a nested object.
    """
    return {
        "client_id": f"0f4c8a1e-{index:08d}-4f6b-9d2e-client",
        "client_secret": secret,
        "issuer": "https://login.example.com/3b1d7c2a/v2.0",
        "authorization_endpoint": "https://login.example.com/3b1d7c2a/oauth2/v2.0/authorize",
        "token_endpoint": "https://login.example.com/3b1d7c2a/oauth2/v2.0/token",
        "jwks_uri": "https://login.example.com/3b1d7c2a/discovery/v2.0/keys",
        "scope": "openid profile email offline_access",
        "brute_force_protection": True,
        "disable_signup": False,
        "configuration": {
            "client_secret": nested_secret,
            "tenant_domain": f"tenant{index % 97}.example.com",
        },
    }


def token_rows(count: int, seed: int) -> list[dict[str, Any]]:
    """The two-column model's rows: one 40-character secret each."""
    return [{"token": secret} for secret in secrets(count, seed)]


def client_rows(count: int, seed: int) -> list[dict[str, Any]]:
    """OAuth client rows: ids, a name, a tenant, two callback URLs, two timestamps, a secret."""
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    rows = []
    for index, secret in enumerate(secrets(count, seed)):
        created = start + timedelta(seconds=37 * index)
        rows.append(
            {
                "client_id": f"{index:08x}-7d1c-4c1e-9a0b-5e3f2a6b8c4d",
                "name": f"Customer portal {index}",
                "tenant_id": f"tenant-{index % 97:03d}",
                "callbacks": [
                    f"https://app{index}.example.com/callback",
                    f"https://app{index}.example.com/silent-renew",
                ],
                "created_at": created,
                "updated_at": created + timedelta(days=3),
                "client_secret": secret,
            }
        )
    return rows


def option_rows(count: int, seed: int) -> list[dict[str, Any]]:
    top, nested = secrets(count, seed), secrets(count, seed + 1)
    return [{"options": connection_options(i, top[i], nested[i])} for i in range(count)]
