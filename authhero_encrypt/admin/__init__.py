"""Admin support: secrets are never written into the admin's HTML, neither plaintext nor ciphertext.

Put :class:`EncryptedFieldsAdminMixin` in front of ``admin.ModelAdmin`` and every encrypted field of
the model is handled:

* list columns and read-only views show a status badge (``encrypted``, ``encrypted, key <id>``,
  ``legacy plaintext``, ``empty``, ``malformed``) worked out from the *stored* text, which the
  queryset reads raw beside the row, in the same query;
* change forms edit encrypted strings write-only: a password input that starts empty, "leave blank
  to keep the current value", and a checkbox to clear it; an untouched secret is left out of the
  ``UPDATE``, so its stored bytes do not change, unless it is legacy plaintext, which the save
  encrypts;
* a ``JSONPathEncryptedField`` is edited as its JSON document with every encrypted path replaced
  by :data:`MASK`; a mask sent back unchanged keeps the current secret, a new value replaces it;
* a form field the admin's ``form`` declares for an encrypted field is swapped for the write-only
  (or masked) one, since a plain input would render the plaintext;
* ``list_filter`` items that reach encrypted data are left out (a filter lists the values it
  finds), and ``list_display`` lookups such as ``client__client_secret`` show a status badge;
* the POST parameters that carry secrets (the model's and its inlines', prefixed or not) are
  marked sensitive, so error reports (``AdminEmailHandler``, the 500 page) cleanse them.

:class:`JSONKeyColumn` lists a plaintext key of a JSON document (``options.client_id``) as a
sortable column. ``authhero_encrypt.admin.checks`` reports ``search_fields``, ``list_filter``,
``ordering`` and ``list_display`` lookups that reach encrypted data.

The modules, from the bottom up: ``badges`` (status of stored text), ``masking`` (documents with
their secrets masked), ``lookups`` (which options reach encrypted data), ``stored`` (stored text
read beside each row), ``widgets``, ``formfields`` and ``forms`` (write-only editing),
``columns`` (list columns), ``sensitive`` (error reports), ``options`` (the mixin) and ``checks``
(system checks W201-E205, registered by the app config).
"""

from __future__ import annotations

from authhero_encrypt.admin.badges import document_status, secret_status
from authhero_encrypt.admin.columns import JSONKeyColumn
from authhero_encrypt.admin.formfields import (
    RETYPE,
    MaskedJSONField,
    SecretAction,
    WriteOnlySecretField,
)
from authhero_encrypt.admin.forms import EncryptedFieldsFormMixin
from authhero_encrypt.admin.masking import MASK
from authhero_encrypt.admin.options import EncryptedFieldsAdminMixin
from authhero_encrypt.admin.widgets import WriteOnlySecretWidget

__all__ = [
    "MASK",
    "RETYPE",
    "EncryptedFieldsAdminMixin",
    "EncryptedFieldsFormMixin",
    "JSONKeyColumn",
    "MaskedJSONField",
    "SecretAction",
    "WriteOnlySecretField",
    "WriteOnlySecretWidget",
    "document_status",
    "secret_status",
]
