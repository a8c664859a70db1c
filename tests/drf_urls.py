"""Views of the Django REST framework tests, routed so the checks find them (W501-W505).

The safe views use the mixin and the ``EncryptedFields*`` backends; the ``Plain*`` ones are what a
project writes without them, each with the option that reaches encrypted data.
"""

from __future__ import annotations

from django.urls import path
from django_filters import rest_framework as django_filters
from rest_framework import filters, generics, permissions, serializers

from authhero_encrypt.integrations.drf import (
    EncryptedFieldsOrderingFilter,
    EncryptedFieldsSearchFilter,
    EncryptedFieldsSerializerMixin,
)
from authhero_encrypt.integrations.drf.filtersets import (
    EncryptedFieldsFilterBackend,
    EncryptedFieldsFilterSet,
)
from example_project.authhero.models import Client
from tests.testapp.models import Connection, PrivateKey, Secret


class ClientSerializer(EncryptedFieldsSerializerMixin, serializers.ModelSerializer):
    class Meta:
        model = Client
        fields = ["id", "client_id", "name", "client_secret"]


class SecretSerializer(EncryptedFieldsSerializerMixin, serializers.ModelSerializer):
    class Meta:
        model = Secret
        fields = ["id", "label", "token", "notes"]


class ReadableSecretSerializer(EncryptedFieldsSerializerMixin, serializers.ModelSerializer):
    class Meta:
        model = Secret
        fields = ["id", "label", "token", "notes"]
        readable_secrets = ["token"]


class ConnectionSerializer(EncryptedFieldsSerializerMixin, serializers.ModelSerializer):
    class Meta:
        model = Connection
        fields = ["id", "name", "options"]


class PrivateKeySerializer(EncryptedFieldsSerializerMixin, serializers.ModelSerializer):
    class Meta:
        model = PrivateKey
        fields = ["id", "name", "pem"]


class PlainSecretSerializer(serializers.ModelSerializer):
    class Meta:
        model = Secret
        fields = ["id", "label", "token", "notes"]


class SecretFilterSet(EncryptedFieldsFilterSet):
    class Meta:
        model = Secret
        fields = "__all__"


class PlainSecretFilterSet(django_filters.FilterSet):
    token = django_filters.CharFilter()

    class Meta:
        model = Secret
        fields = ["label"]


class Open:
    permission_classes = [permissions.AllowAny]  # anonymous, as the attacker of the issue


class SafeClients(Open, generics.ListCreateAPIView):
    queryset = Client.objects.order_by("pk")
    serializer_class = ClientSerializer


class SafeClient(Open, generics.RetrieveUpdateAPIView):
    queryset = Client.objects.all()
    serializer_class = ClientSerializer


class SafeSecrets(Open, generics.ListCreateAPIView):
    queryset = Secret.objects.order_by("pk")
    serializer_class = SecretSerializer
    filter_backends = [
        EncryptedFieldsOrderingFilter,
        EncryptedFieldsSearchFilter,
        EncryptedFieldsFilterBackend,
    ]
    filterset_class = SecretFilterSet
    search_fields = ["label"]


class SafeSecret(Open, generics.RetrieveUpdateAPIView):
    queryset = Secret.objects.all()
    serializer_class = SecretSerializer


class ReadableSecret(Open, generics.RetrieveAPIView):
    queryset = Secret.objects.all()
    serializer_class = ReadableSecretSerializer


class SafeConnections(Open, generics.ListCreateAPIView):
    queryset = Connection.objects.order_by("pk")
    serializer_class = ConnectionSerializer
    filter_backends = [EncryptedFieldsOrderingFilter, EncryptedFieldsFilterBackend]
    filterset_fields = ["name"]


class SafeConnection(Open, generics.RetrieveUpdateAPIView):
    queryset = Connection.objects.all()
    serializer_class = ConnectionSerializer


class SafePrivateKeys(Open, generics.ListCreateAPIView):
    queryset = PrivateKey.objects.order_by("pk")
    serializer_class = PrivateKeySerializer


class PlainOrdering(Open, generics.ListAPIView):
    """DRF's OrderingFilter with its default ordering_fields: ``options`` is readable."""

    queryset = Connection.objects.order_by("pk")
    serializer_class = ConnectionSerializer
    filter_backends = [filters.OrderingFilter]


class PlainSearch(Open, generics.ListAPIView):
    queryset = Secret.objects.order_by("pk")
    serializer_class = SecretSerializer
    filter_backends = [filters.SearchFilter]
    search_fields = ["label", "token"]


class PlainFilterFields(Open, generics.ListAPIView):
    queryset = Secret.objects.order_by("pk")
    serializer_class = SecretSerializer
    filter_backends = [django_filters.DjangoFilterBackend]
    filterset_fields = ["label", "token"]


class PlainFilterSet(Open, generics.ListAPIView):
    queryset = Secret.objects.order_by("pk")
    serializer_class = SecretSerializer
    filter_backends = [django_filters.DjangoFilterBackend]
    filterset_class = PlainSecretFilterSet


class PlainSerializer(Open, generics.ListAPIView):
    queryset = Secret.objects.order_by("pk")
    serializer_class = PlainSecretSerializer
    filter_backends: list[type] = []


urlpatterns = [
    path("clients/", SafeClients.as_view()),
    path("clients/<int:pk>/", SafeClient.as_view()),
    path("secrets/", SafeSecrets.as_view()),
    path("secrets/<int:pk>/", SafeSecret.as_view()),
    path("readable/<int:pk>/", ReadableSecret.as_view()),
    path("connections/", SafeConnections.as_view()),
    path("connections/<int:pk>/", SafeConnection.as_view()),
    path("keys/", SafePrivateKeys.as_view()),
    path("plain/ordering/", PlainOrdering.as_view()),
    path("plain/search/", PlainSearch.as_view()),
    path("plain/filter-fields/", PlainFilterFields.as_view()),
    path("plain/filterset/", PlainFilterSet.as_view()),
    path("plain/serializer/", PlainSerializer.as_view()),
]
