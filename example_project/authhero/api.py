"""A small Auth0-style management API: ``/api/v2/clients`` and ``/api/v2/connections``.

Served through ``EncryptedFieldsSerializerMixin``: ``client_secret`` is write-only, connection
``options`` are shown without their four secret paths, a pasted ciphertext is refused (400, code
``ciphertext``), and ordering, search and filters leave encrypted data out. Admin users only
(a session from the admin's login, or basic authentication).
"""

from __future__ import annotations

from rest_framework import authentication, mixins, permissions, serializers, viewsets

from authhero_encrypt.integrations.drf import (
    EncryptedFieldsOrderingFilter,
    EncryptedFieldsSearchFilter,
    EncryptedFieldsSerializerMixin,
)
from authhero_encrypt.integrations.drf.filtersets import EncryptedFieldsFilterBackend
from example_project.authhero.models import Client, Connection

FILTERS = [EncryptedFieldsOrderingFilter, EncryptedFieldsSearchFilter, EncryptedFieldsFilterBackend]


class ClientSerializer(EncryptedFieldsSerializerMixin, serializers.ModelSerializer):
    """``client_secret`` is taken on create and update and never returned (not opted in with
    ``Meta.readable_secrets``)."""

    class Meta:
        model = Client
        fields = ["client_id", "name", "client_secret"]


class ConnectionSerializer(EncryptedFieldsSerializerMixin, serializers.ModelSerializer):
    """``options`` comes back without ``client_secret``, ``app_secret``, ``twilio_token`` and
    ``configuration.client_secret``; an update that leaves them out keeps them."""

    class Meta:
        model = Connection
        fields = ["id", "name", "strategy", "options"]


class ManagementViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """List, retrieve, create and update; no delete in this demo."""

    authentication_classes = [
        authentication.SessionAuthentication,
        authentication.BasicAuthentication,
    ]
    permission_classes = [permissions.IsAdminUser]
    filter_backends = FILTERS


class ClientViewSet(ManagementViewSet):
    queryset = Client.objects.order_by("client_id")
    serializer_class = ClientSerializer
    lookup_field = "client_id"
    search_fields = ["client_id", "name"]
    filterset_fields = ["client_id", "name"]


class ConnectionViewSet(ManagementViewSet):
    queryset = Connection.objects.order_by("name")
    serializer_class = ConnectionSerializer
    search_fields = ["name", "options__client_id"]
    filterset_fields = ["name", "strategy"]
