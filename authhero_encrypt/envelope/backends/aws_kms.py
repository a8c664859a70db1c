"""``aws-kms``: the KEK is an AWS KMS key; data keys are wrapped with ``Encrypt`` and unwrapped
with ``Decrypt``, and the KEK never enters this process. boto3 is imported on first use.

OPTIONS: ``key_id`` (a key id, key ARN, alias name or alias ARN: required to write; reads use
the ARN stored in each value), ``region``, ``endpoint_url``, ``timeout`` (seconds, per attempt)
and ``max_attempts`` (boto3 "standard" retries, the first attempt included).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

from django.core.checks import CheckMessage, Error
from django.core.exceptions import ImproperlyConfigured

from authhero_encrypt.envelope.backends.base import KeyProvider
from authhero_encrypt.envelope.format import AWS_KMS, KMS_KEY_ID
from authhero_encrypt.exceptions import KeyProviderError, MissingKeyError

__all__ = ["AwsKmsKeyProvider", "kms_context", "kms_error", "make_kms_client"]

KMS_CONTEXT_FORMAT = "authhero_encrypt:format"
KMS_CONTEXT_FIELD = "authhero_encrypt:field"
_METHODS = {"DescribeKey": "describe_key", "Encrypt": "encrypt", "Decrypt": "decrypt"}
_KMS_KEY_ID_HINT = (
    'For example: "key_id": "arn:aws:kms:eu-west-1:111122223333:key/'
    '1234abcd-12ab-34cd-56ef-1234567890ab" (an alias such as "alias/authhero" works too).'
)


def kms_context(context: str) -> dict[str, str]:
    """The KMS encryption context for a field: logged by CloudTrail, required to unwrap."""
    return {KMS_CONTEXT_FORMAT: "env:v1", KMS_CONTEXT_FIELD: context}


def _non_negative(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ImproperlyConfigured(f"{what} must be a number of at least 0, not {value!r}"[:200])
    return float(value)


class AwsKmsKeyProvider(KeyProvider):
    """The KEK is an AWS KMS key (see the module docstring for the OPTIONS).

    Stored values name the key ARN KMS answers with, and ``Decrypt`` is told that key id, so a
    value is only opened by its own key. Every failure of a call becomes a
    :class:`KeyProviderError` naming the operation and key. ``client_factory`` is a seam: by
    default a boto3 client is made from the OPTIONS when it is first needed.
    """

    key_id_pattern = KMS_KEY_ID

    def __init__(
        self,
        name: str = AWS_KMS,
        *,
        key_id: Any = None,
        region: Any = None,
        endpoint_url: Any = None,
        timeout: Any = 5,
        max_attempts: Any = 3,
        client_factory: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__(name)
        # Kept as given: checks() reports malformed ones (E303, E304), and a client is only
        # made from valid ones.
        self.key_id = key_id
        self.options = {
            "region": region,
            "endpoint_url": endpoint_url,
            "timeout": timeout,
            "max_attempts": max_attempts,
        }
        self._client_factory = client_factory or self._make_client
        self._client: Any = None
        self._active_arn: str | None = None

    def _what(self, option: str) -> str:
        return f"OPTIONS[{option!r}] of envelope provider {self.name!r}"

    def parsed_key_id(self) -> str | None:
        """The configured key id; ``None`` if unset, ``ImproperlyConfigured`` if malformed."""
        value = self.key_id
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not value.strip() or value != value.strip():
            raise ImproperlyConfigured(
                f"{self._what('key_id')} must be a non-empty string without surrounding "
                "spaces. " + _KMS_KEY_ID_HINT
            )
        return value

    def client_options(self) -> dict[str, Any]:
        """The keyword arguments of :func:`make_kms_client`; ``ImproperlyConfigured`` if bad."""
        region, endpoint = self.options["region"], self.options["endpoint_url"]
        for option, value in (("region", region), ("endpoint_url", endpoint)):
            if value is not None and (not isinstance(value, str) or not value):
                raise ImproperlyConfigured(f"{self._what(option)} must be a non-empty string.")
        if endpoint is not None and not endpoint.startswith(("http://", "https://")):
            raise ImproperlyConfigured(f"{self._what('endpoint_url')} must be an http(s) URL.")
        timeout = _non_negative(self.options["timeout"], self._what("timeout"))
        if timeout == 0:
            raise ImproperlyConfigured(f"{self._what('timeout')} must be more than 0 seconds.")
        attempts = self.options["max_attempts"]
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ImproperlyConfigured(
                f"{self._what('max_attempts')} must be an integer of at least 1."
            )
        return {
            "region": region,
            "endpoint_url": endpoint,
            "timeout": timeout,
            "max_attempts": attempts,
        }

    def checks(self, *, active: bool = True) -> list[CheckMessage]:
        errors: list[CheckMessage] = []
        if importlib.util.find_spec("boto3") is None:
            errors.append(
                Error(
                    f"Envelope provider {self.name!r} uses AWS KMS but boto3 is not installed.",
                    hint="pip install boto3 (what the package's aws extra installs; from a clone: "
                    "pip install './authhero-encrypt[aws]').",
                    id="authhero_encrypt.E302",
                )
            )
        try:
            key_id = self.parsed_key_id()
        except ImproperlyConfigured as exc:
            errors.append(Error(str(exc), id="authhero_encrypt.E303"))
        else:
            if key_id is None and active:
                errors.append(
                    Error(
                        f"Envelope provider {self.name!r} wraps new values but has no "
                        f"{self._what('key_id')}, so no value can be written.",
                        hint="Set it to the ARN of a symmetric KMS key.",
                        id="authhero_encrypt.E303",
                    )
                )
        try:
            self.client_options()
        except ImproperlyConfigured as exc:
            errors.append(Error(str(exc), id="authhero_encrypt.E304"))
        return errors

    def configured_key_id(self) -> str | None:
        return self.key_id if isinstance(self.key_id, str) and self.key_id else None

    def _make_client(self) -> Any:
        options = self.client_options()
        try:
            return make_kms_client(**options)
        except ImportError as exc:
            # A DecryptionError, so that a read names the field and row that needed KMS.
            raise KeyProviderError(
                f"This needs AWS KMS (envelope provider {self.name!r}), but boto3 is not "
                "installed. Install it with: pip install boto3 (what the package's aws extra "
                "installs)",
                provider=self.name,
                code="Boto3Missing",
            ) from exc

    def client(self, key_id: str) -> Any:
        """The boto3 client, made on first use: a value is refused before any setup is tried."""
        if self._client is None:
            try:
                self._client = self._client_factory()
            except Exception as exc:
                error = kms_error(exc, "client setup", key_id, self.name)
                if error is exc:
                    raise
                raise error from exc
        return self._client

    def _configured(self) -> str:
        key_id = self.parsed_key_id()
        if not key_id:
            raise MissingKeyError(
                f"Envelope provider {self.name!r} has no key_id in its OPTIONS, so there is no "
                "KMS key to wrap data keys with. Set it to the key's ARN."
            )
        return key_id

    def _call(self, operation: str, key_id: str, **params: Any) -> Any:
        method = getattr(self.client(key_id), _METHODS[operation])
        try:
            return method(**params)
        except Exception as exc:
            error = kms_error(exc, operation, key_id, self.name)
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
        return self.checked_dek(bytes(answer["Plaintext"]), "KMS Decrypt", key_id)


# What to do about each KMS error code; the codes are those of the KMS API reference.
_KMS_ADVICE = {
    "AccessDeniedException": "KMS denied the call: grant this application's AWS identity "
    "kms:Encrypt and kms:Decrypt on the key (key policy or IAM), or check the key id",
    "DisabledException": "the KMS key is disabled: enable it (EnableKey); values wrapped by it "
    "cannot be read until then",
    "KMSInvalidStateException": "the KMS key is not usable in its current state (for example "
    "pending deletion): cancel the deletion (CancelKeyDeletion) and enable it",
    "NotFoundException": "the KMS key does not exist in this account and region: check "
    "the key_id and region OPTIONS",
    "InvalidKeyUsageException": "the KMS key is not a symmetric ENCRYPT_DECRYPT key",
    "IncorrectKeyException": "the wrapped data key belongs to another KMS key than the one named "
    "in the stored value",
    "InvalidCiphertextException": "KMS could not open the wrapped data key: it was tampered "
    "with, copied from another field, or wrapped by another key",
    "ThrottlingException": "KMS throttled the call (request quota exceeded): retry later, raise "
    "the quota, or raise the data-key cache TTL so fewer calls are made",
    "LimitExceededException": "a KMS limit was exceeded: retry later or raise the quota",
    "KeyUnavailableException": "the KMS key is temporarily unavailable: retry later",
    "KMSInternalException": "KMS failed internally: retry later",
    "DependencyTimeoutException": "KMS timed out internally: retry later",
    "UnrecognizedClientException": "KMS does not recognise the AWS credentials: check them",
    "InvalidSignatureException": "KMS rejected the request signature: check the AWS credentials",
}


def kms_error(exc: Exception, operation: str, key_id: str, provider: str = AWS_KMS) -> Exception:
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
            provider=provider,
            code=code,
        )
    where = f"KMS {operation} with key {key_id!r}"
    reasons: tuple[tuple[type[Exception], str | None, str], ...] = (
        (
            NoRegionError,
            "NoRegion",
            "was not attempted: no AWS region is configured. Set the region OPTION (or "
            "AWS_DEFAULT_REGION).",
        ),
        (
            NoCredentialsError,
            "NoCredentials",
            "was not attempted: no AWS credentials were found (environment, shared config or "
            "instance role).",
        ),
        (
            BotoCoreError,
            None,
            f"got no answer ({type(exc).__name__}): KMS is unreachable; check the region and "
            "endpoint_url OPTIONS and the network, then retry.",
        ),
    )
    for kind, reason_code, reason in reasons:
        if isinstance(exc, kind):
            return KeyProviderError(
                f"{where} {reason}", key_id=key_id, provider=provider, code=reason_code
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
