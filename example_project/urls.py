from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from rest_framework.routers import DefaultRouter

from example_project.authhero.api import ClientViewSet, ConnectionViewSet

# Auth0's management API spells its paths without a trailing slash: /api/v2/clients/{client_id}.
router = DefaultRouter(trailing_slash=False)
router.register("clients", ClientViewSet)
router.register("connections", ConnectionViewSet)

urlpatterns = [
    path("", RedirectView.as_view(url="/admin/", permanent=False)),
    path("admin/", admin.site.urls),
    path("api/v2/", include(router.urls)),
]
