"""The view of ``benchmarks/per_request.py``'s test-client request: one ``get()`` per request."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.urls import path

from benchmarks.suite import models

_MODELS = {"plain": models.PlainClient, "recipe": models.RecipeClient, "ours": models.OursClient}


def client_detail(request: HttpRequest, library: str, client_id: str) -> JsonResponse:
    row = _MODELS[library].objects.get(client_id=client_id)
    return JsonResponse({"name": row.name, "secret_length": len(row.client_secret)})


urlpatterns = [path("client/<str:library>/<str:client_id>/", client_detail)]
