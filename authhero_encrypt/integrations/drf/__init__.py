"""Django REST framework support (the package's ``drf`` extra).

* :class:`EncryptedFieldsSerializerMixin` for ``ModelSerializer``: secrets write-only (opt-in
  readable with ``Meta.readable_secrets``), JSON documents without their secret paths, typed-in
  ciphertext refused with the code ``ciphertext``;
* :class:`EncryptedFieldsOrderingFilter` and :class:`EncryptedFieldsSearchFilter`: DRF's filter
  backends, leaving encrypted data out of ``?ordering=`` and ``?search=``;
* ``authhero_encrypt.integrations.drf.filtersets`` (django-filter): ``EncryptedFieldsFilterSet``
  and ``EncryptedFieldsFilterBackend``;
* system checks W501-W505 (``authhero_encrypt.integrations.drf_checks``) over the views the
  URLconf routes, E506 for a setting naming this integration when its packages are missing.

Imported only when a project uses it; Django REST framework is not a dependency of the app.
"""

from __future__ import annotations

try:
    import rest_framework  # noqa: F401
except ImportError as exc:
    raise ImportError(
        "authhero_encrypt.integrations.drf needs Django REST framework: "
        "pip install djangorestframework django-filter (what the package's drf extra installs)"
    ) from exc

from authhero_encrypt.integrations.drf.fields import (
    SecretCharField,
    SecretJSONField,
    ciphertext_validator,
)
from authhero_encrypt.integrations.drf.filters import (
    EncryptedFieldsOrderingFilter,
    EncryptedFieldsSearchFilter,
)
from authhero_encrypt.integrations.drf.serializers import EncryptedFieldsSerializerMixin

__all__ = [
    "EncryptedFieldsOrderingFilter",
    "EncryptedFieldsSearchFilter",
    "EncryptedFieldsSerializerMixin",
    "SecretCharField",
    "SecretJSONField",
    "ciphertext_validator",
]
