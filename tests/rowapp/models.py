"""A model whose envelope values are bound to their row (a per-row envelope context).

An app of its own, so the reports the other tests count over ``testapp`` stay as they are.
"""

from __future__ import annotations

from django.db import models

from authhero_encrypt.fields import EnvelopeEncryptedTextField


def tenant_context(key: TenantKey) -> str:
    """What binds a tenant's private key to its row: the tenant id."""
    return f"tenant:{key.tenant_id}"


class TenantKey(models.Model):
    """A tenant's private key, bound to the tenant (a per-row envelope context)."""

    tenant_id = models.IntegerField()
    pem = EnvelopeEncryptedTextField(null=True, blank=True, envelope_context=tenant_context)

    def __str__(self) -> str:
        return f"tenant {self.tenant_id}"
