from __future__ import annotations

from django.apps import AppConfig


class AuthHeroDemoConfig(AppConfig):
    name = "example_project.authhero"
    label = "authhero"
    verbose_name = "AuthHero (demo)"
    default_auto_field = "django.db.models.BigAutoField"
