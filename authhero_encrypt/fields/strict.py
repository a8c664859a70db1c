"""Strict mode: a stored value without a ciphertext prefix is refused instead of returned.

AuthHero reads a value without the ``enc:v1:`` prefix as legacy plaintext, so that turning
encryption on needs no migration script; the fields do the same by default. Once every row has
been encrypted (``encryption_status --check`` is green), that rule only helps someone who can
write a row around the application (SQL injection with write access, a tampered backup
restored): they plant a ``client_secret`` of their choosing, and ``ENC:v1:...`` or a leading
space counts as plaintext too. ``ENCRYPTION_REJECT_PLAINTEXT = True`` (or a field's
``reject_plaintext=True``) turns that read into a
:class:`~authhero_encrypt.exceptions.DecryptionError` naming the model, field and primary
key. SQL ``NULL`` is still ``None``; ``""`` is refused like any other plaintext, since every
write with a key stores ``""`` encrypted, as AuthHero does.

The commands read raw columns and never meet this rule. The admin, which shows badges and never
the value, reads rows inside :func:`plaintext_tolerated`, so a row planted or left behind can
be seen (``legacy plaintext``) and overwritten there.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from authhero_encrypt.conf import conf

__all__ = ["check_reject_plaintext", "plaintext_tolerated", "rejects_plaintext"]

_tolerated: ContextVar[bool] = ContextVar("authhero_encrypt_plaintext_tolerated", default=False)


def check_reject_plaintext(value: object) -> bool | None:
    """Validate a field's ``reject_plaintext`` argument: ``None``, ``True`` or ``False``."""
    if value is not None and not isinstance(value, bool):
        raise ValueError(
            f"reject_plaintext must be None (follow ENCRYPTION_REJECT_PLAINTEXT), True or "
            f"False, not {type(value).__name__}."
        )
    return value


def rejects_plaintext(field_setting: bool | None) -> bool:
    """Whether a field with ``reject_plaintext=field_setting`` refuses stored plaintext now.

    Read on every call (only reads of plaintext ask), so ``override_settings`` applies at once.
    A setting that is not a bool is reported by check E006 and, until fixed, counts as on when
    truthy: a typo must not quietly keep planted values readable.
    """
    if _tolerated.get():
        return False
    if field_setting is not None:
        return field_setting
    return bool(conf.ENCRYPTION_REJECT_PLAINTEXT)


@contextmanager
def plaintext_tolerated() -> Iterator[None]:
    """Read legacy plaintext as AuthHero does inside the block, whatever strict mode says.

    For code that never hands the value on, such as the admin's pages (badges, write-only
    inputs); the block covers the current thread or task only.
    """
    token = _tolerated.set(True)
    try:
        yield
    finally:
        _tolerated.reset(token)
