"""Encrypted drop-in replacements for ``CharField`` and ``TextField``."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, TypeGuard

from django.core import checks
from django.db import connections
from django.utils.datastructures import DictWrapper

from authhero_encrypt.crypto import IV_BYTES, PREFIX, TAG_BYTES
from authhero_encrypt.fields.base import EncryptedStringMixin
from authhero_encrypt.fields.generic import _GT, _ST, CharField, TextField
from authhero_encrypt.keys import KEY_ID_MAX_LENGTH

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

__all__ = ["EncryptedCharField", "EncryptedTextField", "stored_length"]

# The widest VARCHAR MySQL and MariaDB allow in utf8mb4 (65,535 bytes, 4 bytes a character).
MYSQL_MAX_VARCHAR = 16383


def stored_length(max_length: int) -> int:
    """The column width that holds the ciphertext of ``max_length`` characters, whatever they are.

    Every character may take 4 bytes of UTF-8; the payload adds a 12-byte IV and a 16-byte tag;
    base64 turns each 3 bytes (rounded up, as a padded writer would) into 4 characters; then the
    ``enc:v1:`` prefix and room for a key id of up to 64 characters and its ``:``.
    """
    payload = IV_BYTES + 4 * max_length + TAG_BYTES
    return len(PREFIX) + KEY_ID_MAX_LENGTH + 1 + 4 * math.ceil(payload / 3)


def _valid_length(max_length: object) -> TypeGuard[int]:
    return isinstance(max_length, int) and not isinstance(max_length, bool) and max_length > 0


class EncryptedCharField(EncryptedStringMixin, CharField[_ST, _GT]):  # type: ignore[misc]
    """A ``CharField`` stored as ``enc:v1:`` ciphertext.

    ``max_length`` limits the plaintext, as users and forms see it; the database column is made
    wide enough for the ciphertext of that many characters (see :func:`stored_length`).
    """

    description = "Encrypted string (up to %(max_length)s characters)"

    def db_type_parameters(self, connection: BaseDatabaseWrapper) -> DictWrapper[Any]:
        params = dict(self.__dict__)
        if _valid_length(self.max_length):
            params["max_length"] = stored_length(self.max_length)
        return DictWrapper(params, connection.ops.quote_name, "qn_")

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = super().check(**kwargs)
        if not _valid_length(self.max_length):
            return errors  # Django's own fields.E120 / E121 say what is wrong with it
        width = stored_length(self.max_length)
        for alias in kwargs.get("databases") or ():
            if connections[alias].vendor == "mysql" and width > MYSQL_MAX_VARCHAR:
                errors.append(
                    checks.Error(
                        f"max_length={self.max_length} needs a {width}-character column for "
                        f"its ciphertext, wider than MySQL/MariaDB's {MYSQL_MAX_VARCHAR}.",
                        hint="Use EncryptedTextField for values this long.",
                        obj=self,
                        id="authhero_encrypt.E104",
                    )
                )
        return errors


class EncryptedTextField(EncryptedStringMixin, TextField[_ST, _GT]):  # type: ignore[misc]
    """A ``TextField`` stored as ``enc:v1:`` ciphertext."""

    description = "Encrypted text"
