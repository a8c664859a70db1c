"""How the status report counts and verifies envelope fields (``EnvelopeEncryptedTextField``).

Their columns are not counted by the aggregate query: an ``env:v1`` value is classified by
parsing it (:func:`authhero_encrypt.envelope.rotation.classify`), which SQL prefix tests cannot
do, so these columns are always streamed. They hold private keys and certificates bundles, a
handful of rows per tenant, so reading them costs little.

Labels (``by_key``), never text a row could hide a secret in:

* ``<provider>:<key id>`` (``local:k2``, ``aws-kms:<key ARN>``, ``vault:authhero:v3``): a
  well-formed ``env:v1`` value, by the provider and key id that wrapped its data key
  (``local:(no key id)`` for a ring key without an id; a Vault key id carries the Transit key
  version);
* ``(malformed)``: text with the ``env:v1:`` prefix that does not parse (nothing of it shown);
* an ``enc:v1`` value (the column was an ``EncryptedTextField``) by its ``enc:v1`` key label,
  as in any other column: a bare key id, ``(no key id)`` for untagged. It is sealed into
  ``env:v1`` on the row's next save or by ``encryption_migrate``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured

from authhero_encrypt.conf import conf
from authhero_encrypt.crypto import PREFIX as ENC_V1_PREFIX
from authhero_encrypt.envelope.backends.local import LocalKeyProvider
from authhero_encrypt.envelope.codec import open_value
from authhero_encrypt.envelope.config import parse_provider, provider_named
from authhero_encrypt.envelope.format import AWS_KMS, LOCAL, PROVIDER_NAME
from authhero_encrypt.envelope.format import PREFIX as ENV_PREFIX
from authhero_encrypt.envelope.format import parse as parse_envelope
from authhero_encrypt.envelope.registry import load_backend, provider_entries
from authhero_encrypt.envelope.rotation import Kind, classify
from authhero_encrypt.exceptions import EncryptionError
from authhero_encrypt.inventory import MALFORMED, UNTAGGED, key_label
from authhero_encrypt.keys import KeyRing

__all__ = [
    "active_envelope_label",
    "envelope_kek",
    "envelope_label",
    "envelope_opener",
    "is_remote_label",
    "is_stored_encrypted",
    "label_readable",
    "open_envelope",
]


def envelope_label(stored: str, known_ids: tuple[str, ...] = ()) -> str | None:
    """The ``by_key`` label of one stored value of an envelope column; ``None`` for legacy
    plaintext (``""`` included), which is not encrypted."""
    status = classify(stored)
    if status.kind is Kind.ENVELOPE:
        return f"{status.provider}:{status.key_id or UNTAGGED}"
    if status.kind is Kind.MALFORMED:
        return MALFORMED
    if status.kind is Kind.ENC_V1:
        return key_label(stored, known_ids)
    return None


def is_stored_encrypted(stored: str) -> bool:
    """Whether ``--verify`` opens this value of an envelope column (``env:v1`` or ``enc:v1``)."""
    return stored.startswith((ENV_PREFIX, ENC_V1_PREFIX))


def open_envelope(field: Any, stored: str, pk: Any = None, using: str = "default") -> None:
    """Open one ``env:v1`` value of ``field`` in row ``pk`` (unwrap, then authenticate its
    payload); raises ``DecryptionError`` (or ``MissingKeyError``, ``KeyProviderError``) when it
    does not open. A field with a per-row context loads the row (without the field) to ask its
    ``envelope_context`` function."""
    context = field.context
    if getattr(field, "row_context", None) is not None:
        manager = field.model._base_manager.using(using).defer(field.attname)
        context = field.context_for(manager.get(pk=pk))
    open_value(provider_named, stored, context)


def _envelope_provider(label: str) -> str | None:
    """The provider an envelope label names; ``None`` for an ``enc:v1`` or malformed label
    (``enc:v1`` key ids never hold ``:``)."""
    provider, sep, _key_id = label.partition(":")
    return provider if sep and PROVIDER_NAME.fullmatch(provider) else None


def is_remote_label(label: str) -> bool:
    """Whether ``label`` counts envelope values a provider other than the key ring opens."""
    provider = _envelope_provider(label)
    return provider is not None and provider != LOCAL


def label_readable(label: str, ring: KeyRing | None) -> bool | None:
    """Whether the configured keys can open the envelope values under ``label``, as far as the
    label tells: ``None`` when it is not an envelope label, ``False`` for a provider no entry
    configures, ``True`` for another provider than ``local`` (only its server can tell:
    ``--verify`` asks it)."""
    provider = _envelope_provider(label)
    if provider is None:
        return None
    key_id = label[len(provider) + 1 :]
    if provider != LOCAL:
        try:
            return provider in provider_entries(warn=False)
        except ImproperlyConfigured:
            return False
    if ring is None:
        return False
    return key_id in ring.by_id if key_id != UNTAGGED else bool(ring.untagged)


def envelope_kek(ring: KeyRing | None) -> dict[str, Any]:
    """The KEK new envelope values are wrapped by, from the settings alone (no server call):
    ``{"provider", "key_id"}`` (``key_id`` as configured: for aws-kms an alias stays an alias,
    for Vault the Transit key name), or ``{"provider": None, "error": ...}`` when the provider
    settings are invalid."""
    try:
        entries = provider_entries(warn=False)
        provider = parse_provider(conf.ENCRYPTION_ENVELOPE_PROVIDER, entries)
        if provider != LOCAL:
            key_id = load_backend(provider, entries[provider]).configured_key_id()
            return {"provider": provider, "key_id": key_id}
    except ImproperlyConfigured as exc:  # manage.py check reports it (E301, E306-E308)
        return {"provider": None, "key_id": None, "error": str(exc)}
    active = ring.active if ring is not None else None
    return {"provider": provider, "key_id": None if active is None else (active.id or UNTAGGED)}


def active_envelope_label(ring: KeyRing | None, *, resolve: bool = False) -> str | None:
    """The ``by_key`` label of envelope values wrapped by the active KEK, ``None`` when there
    is none. A KMS key configured by alias is resolved to its ARN (the label values carry)
    only with ``resolve``: that is a KMS call, made for ``--require-active-key`` alone."""
    kek = envelope_kek(ring)
    provider, key_id = kek["provider"], kek["key_id"]
    if provider is None or key_id is None:
        return None
    # A KMS alias, or a provider whose stored key ids carry more than its settings (Vault's
    # "<key>:v<version>"): only the provider can tell what new values are wrapped under.
    remote = provider != LOCAL and not (provider == AWS_KMS and key_id.startswith("arn:"))
    if resolve and remote:
        try:
            key_id = provider_named(provider).active_key_id()
        except (ImproperlyConfigured, EncryptionError):
            return None  # nothing can be shown under it: the gate fails, saying so
    return f"{provider}:{key_id}"


def envelope_opener(stored: str, ring: KeyRing, context: str) -> str | None:
    """For a local ``env:v1`` value wrapped by a key without an id (which its text cannot
    tell apart): the fingerprint of the active key when it wrapped the data key, ``""`` when
    another key did; ``None`` for any other value. Only for values that opened."""
    envelope = parse_envelope(stored)
    if envelope.provider != LOCAL or envelope.key_id or ring.active is None:
        return None
    if LocalKeyProvider(ring=ring).is_active("", envelope.wrapped, context):
        return ring.active.fingerprint
    return ""
