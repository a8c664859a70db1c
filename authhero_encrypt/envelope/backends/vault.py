"""HashiCorp Vault / OpenBao Transit: the KEK is a Transit key that never leaves the server.

Data keys are wrapped with Transit ``encrypt`` and unwrapped with ``decrypt``, always with the
field's context, on a key created with ``derived=true``: Vault derives a key per context, so a
wrapped key copied to another column (or, with a per-row context, another row) does not open.
Rotation rewraps with Transit ``rewrap``, server-side: the data key never enters the process.
hvac is imported on first use (the package's ``vault`` extra).

The stored key id is ``<transit key name>:v<key version>`` and the wrapped key the bytes of the
Transit ciphertext ``vault:v<version>:<base64>``, so ``encryption_status`` counts values per key
version.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import re
import threading
from collections.abc import Sequence
from typing import Any

from django.core.checks import CheckMessage, Error
from django.core.exceptions import ImproperlyConfigured

from authhero_encrypt.envelope.backends.base import KeyProvider
from authhero_encrypt.exceptions import DecryptionError, KeyProviderError, MissingKeyError

__all__ = ["VaultTransitKeyProvider", "vault_error"]

_KEY_NAME = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_KEY_ID = re.compile(r"([A-Za-z0-9_.-]{1,128}):v([1-9][0-9]{0,9})")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def vault_error(exc: Exception, operation: str, key_id: str, provider: str) -> Exception:
    """The :class:`KeyProviderError` for a failed Transit call; other exceptions come back as is.

    Vault's own error text is quoted only for single calls (a batch answer can hold the other
    items' plaintext data keys); messages never hold a data key or ciphertext.
    """
    try:
        import hvac.exceptions as hvac_errors
        import requests
    except ImportError:  # pragma: no cover - a client exists only when hvac does
        return exc
    where = f"Vault Transit {operation} with key {key_id!r}"
    if isinstance(exc, requests.exceptions.RequestException):
        return KeyProviderError(
            f"{where} got no answer ({type(exc).__name__}): Vault is unreachable; check the url "
            f"OPTION of envelope provider {provider!r} and the network, then retry.",
            key_id=key_id,
            provider=provider,
            code=None,
        )
    if not isinstance(exc, hvac_errors.VaultError):
        return exc
    said = (
        "; ".join(str(error) for error in (exc.errors or []))[:300] if operation != "batch" else ""
    )
    code = type(exc).__name__
    if isinstance(exc, hvac_errors.VaultDown):
        advice = "Vault is sealed or in maintenance: unseal it, then retry"
        code = "Sealed"
    elif isinstance(exc, hvac_errors.Forbidden):
        advice = (
            "permission denied: the token's policy must allow update on the Transit encrypt, "
            "decrypt and rewrap paths of this key and read on its keys/ path"
        )
    elif isinstance(exc, hvac_errors.InvalidPath):
        advice = "no such Transit key or mount: check the key and mount_point OPTIONS"
    elif "too old" in said or "disallowed by policy" in said:
        advice = (
            "the key's min_decryption_version refuses this key version: lower it, and run "
            "encryption_migrate before raising it again"
        )
        code = "MinDecryptionVersion"
    elif "authentication failed" in said:
        advice = (
            "the wrapped key does not open under this context: it was copied from another "
            "field or row, or tampered with"
        )
    else:
        advice = "Vault refused the call"
    detail = f" (Vault said: {said})" if said else ""
    return KeyProviderError(
        f"{where} failed ({code}): {advice}.{detail}", key_id=key_id, provider=provider, code=code
    )


class VaultTransitKeyProvider(KeyProvider):
    """The KEK is a Vault or OpenBao Transit key (``derived=true``).

    OPTIONS: ``url`` (required), ``key`` (the Transit key new values are wrapped with; required
    to write), ``mount_point`` (``"transit"``), ``token`` (default: hvac reads ``VAULT_TOKEN``)
    or ``approle`` (``{"role_id", "secret_id", "mount_point": "approle"}``), ``namespace``,
    ``timeout`` (seconds, ``5``) and ``verify`` (TLS: ``True``, ``False`` or a CA bundle path).
    """

    key_id_pattern = _KEY_ID
    supports_rewrap = True

    def __init__(
        self,
        name: str = "vault",
        *,
        url: Any = None,
        key: Any = None,
        mount_point: Any = "transit",
        token: Any = None,
        approle: Any = None,
        namespace: Any = None,
        timeout: Any = 5,
        verify: Any = True,
    ) -> None:
        super().__init__(name)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ImproperlyConfigured('"url" must be the http(s) URL of the Vault server.')
        if key is not None and (not isinstance(key, str) or not _KEY_NAME.fullmatch(key)):
            raise ImproperlyConfigured('"key" must be a Transit key name (A-Z a-z 0-9 _ . -).')
        if not isinstance(mount_point, str) or not mount_point.strip("/"):
            raise ImproperlyConfigured('"mount_point" must be the path Transit is mounted at.')
        if token is not None and (not isinstance(token, str) or not token):
            raise ImproperlyConfigured('"token" must be a non-empty string.')
        if approle is not None:
            if token is not None:
                raise ImproperlyConfigured('Give "token" or "approle", not both.')
            if not isinstance(approle, dict) or not all(
                isinstance(approle.get(part), str) and approle[part]
                for part in ("role_id", "secret_id")
            ):
                raise ImproperlyConfigured('"approle" must be {"role_id": ..., "secret_id": ...}.')
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ImproperlyConfigured('"timeout" must be a number of seconds above 0.')
        if not isinstance(verify, (bool, str)):
            raise ImproperlyConfigured('"verify" must be True, False or a CA bundle path.')
        if namespace is not None and not isinstance(namespace, str):
            raise ImproperlyConfigured('"namespace" must be a string.')
        self.url, self.key, self.mount_point = url, key, mount_point.strip("/")
        self._token, self._approle, self._namespace = token, approle, namespace
        self._timeout, self._verify = float(timeout), verify
        self._client: Any = None
        self._latest: int | None = None
        self._lock = threading.Lock()

    # -- configuration --------------------------------------------------------------------------

    def checks(self, *, active: bool = True) -> list[CheckMessage]:
        errors: list[CheckMessage] = []
        if importlib.util.find_spec("hvac") is None:
            errors.append(
                Error(
                    f"Envelope provider {self.name!r} uses Vault Transit but hvac is not "
                    "installed.",
                    hint="pip install hvac (what the package's vault extra installs; from a clone: "
                    "pip install './authhero-encrypt[vault]').",
                    id="authhero_encrypt.E309",
                )
            )
        if active and self.key is None:
            errors.append(
                Error(
                    f"Envelope provider {self.name!r} wraps new values but its OPTIONS name no "
                    'Transit "key", so no value can be written.',
                    hint='Add "key": "<transit key name>" (created with derived=true).',
                    id="authhero_encrypt.E308",
                )
            )
        return errors

    def configured_key_id(self) -> str | None:
        return self.key  # type: ignore[no-any-return,unused-ignore]

    # -- the client -----------------------------------------------------------------------------

    def _login(self, client: Any) -> None:
        approle = self._approle
        client.auth.approle.login(
            role_id=approle["role_id"],
            secret_id=approle["secret_id"],
            mount_point=approle.get("mount_point", "approle"),
        )

    def client(self, key_id: str) -> Any:
        """The hvac client, logged in on first use."""
        with self._lock:
            if self._client is None:
                try:
                    import hvac
                except ImportError as exc:
                    raise KeyProviderError(
                        f"This needs Vault Transit (envelope provider {self.name!r}), but hvac "
                        "is not installed. Install it with: pip install hvac (what the "
                        "package's vault extra installs)",
                        provider=self.name,
                        code="HvacMissing",
                    ) from exc
                client = hvac.Client(
                    url=self.url,
                    token=self._token,
                    namespace=self._namespace,
                    timeout=self._timeout,
                    verify=self._verify,
                )
                if self._approle is not None:
                    self._call_raw(lambda: self._login(client), "AppRole login", key_id)
                self._client = client
            return self._client

    def _call_raw(self, call: Any, operation: str, key_id: str) -> Any:
        try:
            return call()
        except Exception as exc:
            error = vault_error(exc, operation, key_id, self.name)
            if error is exc:
                raise
            raise error from exc

    def _call(self, operation: str, key_id: str, method: str, **params: Any) -> Any:
        transit = self.client(key_id).secrets.transit

        def call() -> Any:
            return getattr(transit, method)(mount_point=self.mount_point, **params)

        try:
            return self._call_raw(call, operation, key_id)
        except KeyProviderError as exc:
            if self._approle is None or exc.code != "Forbidden":
                raise
            # An AppRole token that expired: log in again, once, and retry.
            self._call_raw(lambda: self._login(self._client), "AppRole login", key_id)
            return self._call_raw(call, operation, key_id)

    # -- keys -----------------------------------------------------------------------------------

    def _key(self) -> str:
        if self.key is None:
            raise MissingKeyError(
                f"Envelope provider {self.name!r} has no Transit key in its OPTIONS, so there is "
                'no key to wrap data keys with. Set "key".'
            )
        return self.key  # type: ignore[no-any-return,unused-ignore]

    def latest_version(self) -> int:
        """The Transit key's latest version (read once per process), refusing a key that is
        not ``derived``: its wraps would not be bound to the field's context."""
        if self._latest is None:
            key = self._key()
            answer = self._call("read key", key, "read_key", name=key)["data"]
            if not answer.get("derived"):
                raise KeyProviderError(
                    f"Transit key {key!r} was not created with derived=true, so its wraps would "
                    "not be bound to the field's context. Create a derived key (bao write -f "
                    f"{self.mount_point}/keys/NAME derived=true) and point the key OPTION at it.",
                    key_id=key,
                    provider=self.name,
                    code="NotDerived",
                )
            self._latest = int(answer["latest_version"])
        return self._latest

    def active_key_id(self) -> str:
        return f"{self._key()}:v{self.latest_version()}"

    def _stored(self, ciphertext: str, key: str) -> tuple[str, bytes]:
        _vault, version, body = ciphertext.split(":", 2)
        number = int(version[1:])
        with self._lock:
            if self._latest is None or number > self._latest:
                self._latest = number  # a wrap under a newer version shows a rotation
        return f"{key}:v{number}", base64.b64decode(body, validate=True)

    def _ciphertext(self, key_id: str, wrapped: bytes) -> tuple[str, str]:
        match = _KEY_ID.fullmatch(key_id)
        if match is None:  # pragma: no cover - the codec checks key_id_pattern first
            raise DecryptionError("Not a Vault Transit key id.", key_id=key_id)
        return match[1], f"vault:v{match[2]}:{_b64(wrapped)}"

    def _dek(self, plaintext: str, key_id: str) -> bytes:
        try:
            dek = base64.b64decode(plaintext, validate=True)
        except binascii.Error:  # pragma: no cover - Vault answers base64
            dek = b""
        return self.checked_dek(dek, "Vault Transit decrypt", key_id)

    def _with_context(self, operation: str, key_id: str, wrapped: bytes, context: str) -> Any:
        """Transit ``decrypt`` or ``rewrap`` of one stored wrapped key, with its context."""
        key, ciphertext = self._ciphertext(key_id, wrapped)
        return self._call(
            operation,
            key_id,
            f"{operation}_data",
            name=key,
            ciphertext=ciphertext,
            context=_b64(context.encode("utf-8")),
        )["data"]

    # -- the provider API -----------------------------------------------------------------------

    def wrap(self, dek: bytes, context: str) -> tuple[str, bytes]:
        key = self._key()
        self.latest_version()  # refuses a key that is not derived, before anything is sealed
        answer = self._call(
            "encrypt",
            key,
            "encrypt_data",
            name=key,
            plaintext=_b64(dek),
            context=_b64(context.encode("utf-8")),
        )
        return self._stored(answer["data"]["ciphertext"], key)

    def unwrap(self, key_id: str, wrapped: bytes, context: str) -> bytes:
        return self._dek(
            self._with_context("decrypt", key_id, wrapped, context)["plaintext"], key_id
        )

    def rewrap(self, key_id: str, wrapped: bytes, context: str) -> tuple[str, bytes]:
        key = self._ciphertext(key_id, wrapped)[0]
        if key != self._key():
            # Transit rewraps within one key only: another key name goes through this process.
            return self.wrap(self.unwrap(key_id, wrapped, context), context)
        return self._stored(
            self._with_context("rewrap", key_id, wrapped, context)["ciphertext"], key
        )

    def unwrap_many(self, items: Sequence[tuple[str, bytes, str]]) -> list[bytes]:
        """One Transit ``decrypt`` per key name with a ``batch_input``."""
        if not items:
            return []
        keys = {self._ciphertext(key_id, wrapped)[0] for key_id, wrapped, _ in items}
        if len(keys) > 1:
            return super().unwrap_many(items)
        (key,) = keys
        batch = [
            {
                "ciphertext": self._ciphertext(key_id, wrapped)[1],
                "context": _b64(context.encode("utf-8")),
            }
            for key_id, wrapped, context in items
        ]
        answer = self._call(
            "batch", key, "decrypt_data", name=key, ciphertext=None, batch_input=batch
        )
        results = answer["data"]["batch_results"]
        return [
            self._dek(result.get("plaintext") or "", key_id)
            for result, (key_id, _wrapped, _context) in zip(results, items, strict=True)
        ]
