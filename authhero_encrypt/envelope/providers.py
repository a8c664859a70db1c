"""Key-encryption-key (KEK) providers: wrap and unwrap data keys with the key ring or AWS KMS.

A provider answers three questions: its ``name`` (stored in every value it wraps), the key id new
values are wrapped under, and how to wrap and unwrap a 32-byte data key (DEK) for one field's
``context``. Both providers bind the wrapped DEK to that context (AES-GCM associated data for
``local``, the KMS encryption context for ``aws-kms``), so a wrapped key copied to another column
fails to open. Pure Python, no Django: the providers take a key ring or a boto3 client.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag

from authhero_encrypt.envelope.format import AWS_KMS, DEK_BYTES, IV_BYTES, LOCAL
from authhero_encrypt.exceptions import DecryptionError, KeyProviderError, MissingKeyError
from authhero_encrypt.keys import Key, KeyRing

__all__ = [
    "AwsKmsProvider",
    "KeyProvider",
    "LocalProvider",
    "kms_error",
    "make_kms_client",
]

_LOCAL_WRAP_LABEL = b"authhero_encrypt env:v1 local wrap\x00"
KMS_CONTEXT_FORMAT = "authhero_encrypt:format"
KMS_CONTEXT_FIELD = "authhero_encrypt:field"
_METHODS = {"DescribeKey": "describe_key", "Encrypt": "encrypt", "Decrypt": "decrypt"}


class KeyProvider(Protocol):
    """What the envelope codec needs from a KEK provider."""

    @property
    def name(self) -> str: ...

    def active_key_id(self) -> str:
        """The key id new values are wrapped under; ``MissingKeyError`` if there is none."""
        ...

    def is_active(self, key_id: str, wrapped: bytes, context: str) -> bool:
        """True when the active KEK wrapped ``wrapped`` (so rotation can leave it alone)."""
        ...

    def wrap(self, dek: bytes, context: str) -> tuple[str, bytes]:
        """``(key id, wrapped DEK)`` for ``dek``, bound to ``context``."""
        ...

    def unwrap(self, key_id: str, wrapped: bytes, context: str) -> bytes:
        """The DEK in ``wrapped``; a ``DecryptionError`` (never ``None``) when it does not open."""
        ...


def _local_aad(key_id: str, context: str) -> bytes:
    return _LOCAL_WRAP_LABEL + key_id.encode("ascii") + b"\x00" + context.encode("utf-8")


class LocalProvider:
    """The KEK is a key of the ``ENCRYPTION_KEY`` ring: no new secret to manage.

    New DEKs are wrapped with the active key (AES-256-GCM, a fresh IV, the key id and context as
    associated data); any key of the ring opens the DEKs it wrapped, found by id, or by trying
    each key for values wrapped by a key without an id. ``random_bytes`` is a test seam for the
    known-answer vectors.
    """

    name = LOCAL

    def __init__(self, ring: KeyRing, *, random_bytes: Callable[[int], bytes] = os.urandom):
        self.ring = ring
        self._random = random_bytes

    def _active(self) -> Key:
        if self.ring.active is None:
            raise MissingKeyError(
                "ENCRYPTION_KEY is not set, so the local provider has no key to wrap data keys "
                "with. Set ENCRYPTION_KEY (openssl rand -base64 32)."
            )
        return self.ring.active

    def active_key_id(self) -> str:
        return self._active().id or ""

    def is_active(self, key_id: str, wrapped: bytes, context: str) -> bool:
        active = self._active()
        if key_id or active.id:
            return key_id == (active.id or "")
        # A key without an id is named by nothing: only opening tells the active key apart from
        # an id-less fallback.
        try:
            active.aead.decrypt(wrapped[:IV_BYTES], wrapped[IV_BYTES:], _local_aad("", context))
        except InvalidTag:
            return False
        return True

    def wrap(self, dek: bytes, context: str) -> tuple[str, bytes]:
        key = self._active()
        key_id = key.id or ""
        iv = self._random(IV_BYTES)
        return key_id, iv + key.aead.encrypt(iv, dek, _local_aad(key_id, context))

    def unwrap(self, key_id: str, wrapped: bytes, context: str) -> bytes:
        if key_id:
            key = self.ring.by_id.get(key_id)
            if key is None:
                raise MissingKeyError(
                    f"The data key was wrapped by ring key id {key_id!r}, which is not "
                    "configured. Add that key to ENCRYPTION_KEY_FALLBACKS as "
                    f'"{key_id}:BASE64KEY".',
                    key_id=key_id,
                )
            candidates: tuple[Key, ...] = (key,)
        else:
            candidates = self.ring.untagged
            if not candidates:
                raise MissingKeyError(
                    "This value is envelope-encrypted with the local provider but ENCRYPTION_KEY "
                    "is not set. Set ENCRYPTION_KEY (or ENCRYPTION_KEY_FALLBACKS) to the key "
                    "that wrote it."
                )
        aad = _local_aad(key_id, context)
        for key in candidates:
            try:
                return key.aead.decrypt(wrapped[:IV_BYTES], wrapped[IV_BYTES:], aad)
            except InvalidTag:
                continue
        raise DecryptionError(
            "The wrapped data key does not open under "
            + (f"ring key id {key_id!r}" if key_id else "any configured key")
            + ": it was tampered with, copied from another field, or wrapped by a key that is "
            "not in ENCRYPTION_KEY or ENCRYPTION_KEY_FALLBACKS.",
            key_id=key_id or None,
        )


def kms_context(context: str) -> dict[str, str]:
    """The KMS encryption context for a field: logged by CloudTrail, required to unwrap."""
    return {KMS_CONTEXT_FORMAT: "env:v1", KMS_CONTEXT_FIELD: context}


class AwsKmsProvider:
    """The KEK is an AWS KMS key: DEKs are wrapped with ``Encrypt`` and unwrapped with
    ``Decrypt``, and the KEK never enters this process.

    ``client_factory`` makes the boto3 KMS client (see :func:`make_kms_client`) when it is first
    needed; ``key_id`` is the configured
    key (id, ARN or alias) new values are wrapped under. Stored values name the key ARN KMS
    answers with, and ``Decrypt`` is told that key id, so a value is only opened by its own key.
    Every failure of a call becomes a :class:`KeyProviderError` naming the operation and key.
    """

    name = AWS_KMS

    def __init__(self, client_factory: Callable[[], Any], key_id: str | None) -> None:
        self._client_factory = client_factory
        self._client: Any = None
        self.key_id = key_id
        self._active_arn: str | None = None

    def client(self, key_id: str) -> Any:
        """The boto3 client, made on first use: a value is refused before any setup is tried."""
        if self._client is None:
            try:
                self._client = self._client_factory()
            except Exception as exc:
                error = kms_error(exc, "client setup", key_id)
                if error is exc:
                    raise
                raise error from exc
        return self._client

    def _configured(self) -> str:
        if not self.key_id:
            raise MissingKeyError(
                "ENCRYPTION_ENVELOPE_PROVIDER is 'aws-kms' but ENCRYPTION_KMS_KEY_ID is not "
                "set, so there is no KMS key to wrap data keys with. Set it to the key's ARN."
            )
        return self.key_id

    def _call(self, operation: str, key_id: str, **params: Any) -> Any:
        method = getattr(self.client(key_id), _METHODS[operation])
        try:
            return method(**params)
        except Exception as exc:
            error = kms_error(exc, operation, key_id)
            if error is exc:
                raise
            raise error from exc

    def active_key_id(self) -> str:
        """The ARN of the configured key (asked of KMS once when it is an alias or bare id)."""
        configured = self._configured()
        if configured.startswith("arn:") and ":key/" in configured:
            return configured
        if self._active_arn is None:
            answer = self._call("DescribeKey", configured, KeyId=configured)
            self._active_arn = str(answer["KeyMetadata"]["Arn"])
        return self._active_arn

    def is_active(self, key_id: str, wrapped: bytes, context: str) -> bool:
        return key_id == self.active_key_id()

    def wrap(self, dek: bytes, context: str) -> tuple[str, bytes]:
        configured = self._configured()
        answer = self._call(
            "Encrypt",
            configured,
            KeyId=configured,
            Plaintext=dek,
            EncryptionContext=kms_context(context),
        )
        return str(answer["KeyId"]), bytes(answer["CiphertextBlob"])

    def unwrap(self, key_id: str, wrapped: bytes, context: str) -> bytes:
        answer = self._call(
            "Decrypt",
            key_id,
            CiphertextBlob=wrapped,
            KeyId=key_id,
            EncryptionContext=kms_context(context),
        )
        dek = bytes(answer["Plaintext"])
        if len(dek) != DEK_BYTES:
            raise KeyProviderError(
                f"KMS Decrypt with key {key_id!r} returned {len(dek)} bytes, not a "
                f"{DEK_BYTES}-byte data key; the wrapped key was not written by this codec.",
                key_id=key_id,
                provider=AWS_KMS,
                code="WrongDataKeyLength",
            )
        return dek


# What to do about each KMS error code; the codes are those of the KMS API reference.
_KMS_ADVICE = {
    "AccessDeniedException": "KMS denied the call: grant this application's AWS identity "
    "kms:Encrypt and kms:Decrypt on the key (key policy or IAM), or check the key id",
    "DisabledException": "the KMS key is disabled: enable it (EnableKey); values wrapped by it "
    "cannot be read until then",
    "KMSInvalidStateException": "the KMS key is not usable in its current state (for example "
    "pending deletion): cancel the deletion (CancelKeyDeletion) and enable it",
    "NotFoundException": "the KMS key does not exist in this account and region: check "
    "ENCRYPTION_KMS_KEY_ID and ENCRYPTION_KMS_REGION",
    "InvalidKeyUsageException": "the KMS key is not a symmetric ENCRYPT_DECRYPT key",
    "IncorrectKeyException": "the wrapped data key belongs to another KMS key than the one named "
    "in the stored value",
    "InvalidCiphertextException": "KMS could not open the wrapped data key: it was tampered "
    "with, copied from another field, or wrapped by another key",
    "ThrottlingException": "KMS throttled the call (request quota exceeded): retry later, raise "
    "the quota, or raise ENCRYPTION_ENVELOPE_CACHE_TTL so fewer calls are made",
    "LimitExceededException": "a KMS limit was exceeded: retry later or raise the quota",
    "KeyUnavailableException": "the KMS key is temporarily unavailable: retry later",
    "KMSInternalException": "KMS failed internally: retry later",
    "DependencyTimeoutException": "KMS timed out internally: retry later",
    "UnrecognizedClientException": "KMS does not recognise the AWS credentials: check them",
    "InvalidSignatureException": "KMS rejected the request signature: check the AWS credentials",
}


def kms_error(exc: Exception, operation: str, key_id: str) -> Exception:
    """The :class:`KeyProviderError` for a failed KMS call; other exceptions come back as is.

    Only botocore's own exceptions are translated: anything else is a bug to surface unchanged.
    Messages name the operation, key id and error code, never the data key or plaintext.
    """
    try:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            NoCredentialsError,
            NoRegionError,
        )
    except ImportError:  # pragma: no cover - a client exists only when botocore does
        return exc
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code") or "Unknown")
        aws_message = str(error.get("Message") or "")[:300]
        advice = _KMS_ADVICE.get(code, "KMS refused the call")
        detail = f" (KMS said: {aws_message})" if aws_message else ""
        return KeyProviderError(
            f"KMS {operation} with key {key_id!r} failed with {code}: {advice}.{detail}",
            key_id=key_id,
            provider=AWS_KMS,
            code=code,
        )
    if isinstance(exc, NoRegionError):
        return KeyProviderError(
            f"KMS {operation} with key {key_id!r} was not attempted: no AWS region is "
            "configured. Set ENCRYPTION_KMS_REGION (or AWS_DEFAULT_REGION).",
            key_id=key_id,
            provider=AWS_KMS,
            code="NoRegion",
        )
    if isinstance(exc, NoCredentialsError):
        return KeyProviderError(
            f"KMS {operation} with key {key_id!r} was not attempted: no AWS credentials were "
            "found (environment, shared config or instance role).",
            key_id=key_id,
            provider=AWS_KMS,
            code="NoCredentials",
        )
    if isinstance(exc, BotoCoreError):
        return KeyProviderError(
            f"KMS {operation} with key {key_id!r} got no answer ({type(exc).__name__}): KMS is "
            "unreachable; check ENCRYPTION_KMS_REGION, ENCRYPTION_KMS_ENDPOINT_URL and the "
            "network, then retry.",
            key_id=key_id,
            provider=AWS_KMS,
            code=None,
        )
    return exc


def make_kms_client(
    *, region: str | None, endpoint_url: str | None, timeout: float, max_attempts: int
) -> Any:
    """A boto3 KMS client; boto3 is imported here, so it stays an optional dependency.

    Credentials come from boto3's usual chain (environment, shared config, instance role).
    ``timeout`` bounds connecting and reading; ``max_attempts`` counts the first try and
    boto3's retries (standard mode, which backs off on throttling).
    """
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"mode": "standard", "total_max_attempts": max_attempts},
    )
    return boto3.session.Session().client(
        "kms", region_name=region, endpoint_url=endpoint_url, config=config
    )
