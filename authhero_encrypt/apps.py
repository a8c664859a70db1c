from __future__ import annotations

from django.apps import AppConfig
from django.core import checks


class AuthHeroEncryptConfig(AppConfig):
    name = "authhero_encrypt"
    verbose_name = "AuthHero field encryption"

    def ready(self) -> None:
        from authhero_encrypt.admin_checks import check_admin_secrets
        from authhero_encrypt.checks import check_encryption_enabled, check_key_settings

        checks.register(check_key_settings, checks.Tags.security)
        checks.register(check_encryption_enabled, checks.Tags.security, deploy=True)
        checks.register(check_admin_secrets, checks.Tags.admin)
