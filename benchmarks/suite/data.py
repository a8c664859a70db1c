"""The data every library is measured on: the same secrets and documents for all of them."""

from __future__ import annotations

import random
import string
from typing import Any

from benchmarks.suite.models import SECRET_LENGTH

_ALPHABET = string.ascii_letters + string.digits + "-_"


def secrets(count: int, seed: int) -> list[str]:
    """``count`` distinct-looking ASCII secrets of 40 characters (40 bytes of UTF-8)."""
    rng = random.Random(seed)
    return ["".join(rng.choices(_ALPHABET, k=SECRET_LENGTH)) for _ in range(count)]


def connection_options(index: int, secret: str, nested_secret: str) -> dict[str, Any]:
    """An AuthHero-shaped ``connections.options`` document of an OIDC connection.

    Two of its strings are secret (``client_secret`` and ``configuration.client_secret``); the
    rest is what such a document carries beside them: endpoints, scopes, flags, a nested policy.
    """
    return {
        "client_id": f"0f4c8a1e-{index:08d}-4f6b-9d2e-client",
        "client_secret": secret,
        "issuer": "https://login.example.com/3b1d7c2a/v2.0",
        "authorization_endpoint": "https://login.example.com/3b1d7c2a/oauth2/v2.0/authorize",
        "token_endpoint": "https://login.example.com/3b1d7c2a/oauth2/v2.0/token",
        "userinfo_endpoint": "https://graph.example.com/oidc/userinfo",
        "jwks_uri": "https://login.example.com/3b1d7c2a/discovery/v2.0/keys",
        "scope": "openid profile email offline_access",
        "icon_url": "https://cdn.example.com/icons/oidc.svg",
        "set_user_root_attributes": "on_each_login",
        "brute_force_protection": True,
        "disable_signup": False,
        "import_mode": False,
        "requires_username": False,
        "password_complexity_options": {"min_length": 12},
        "configuration": {
            "client_secret": nested_secret,
            "tenant_domain": f"tenant{index % 97}.example.com",
            "use_wsfed": False,
        },
    }


def documents(count: int, seed: int) -> list[dict[str, Any]]:
    top, nested = secrets(count, seed), secrets(count, seed + 1)
    return [connection_options(i, top[i], nested[i]) for i in range(count)]
