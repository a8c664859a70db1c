"""The app config: registers the system checks and drops cached keys when a setting changes."""

from __future__ import annotations

from django.apps import AppConfig, apps
from django.core import checks
from django.test.signals import setting_changed


class AuthHeroEncryptConfig(AppConfig):
    name = "authhero_encrypt"
    verbose_name = "AuthHero field encryption"

    def ready(self) -> None:
        from authhero_encrypt.checks import (
            check_encryption_enabled,
            check_key_for_encrypted_fields,
            check_key_settings,
            check_reject_plaintext_deploy,
            check_reject_plaintext_setting,
        )
        from authhero_encrypt.envelope.checks import check_envelope_settings
        from authhero_encrypt.envelope.config import reset_envelope
        from authhero_encrypt.fields.updates import install as vet_related_updates
        from authhero_encrypt.keys import reset_keyring

        checks.register(check_key_settings, checks.Tags.security)
        checks.register(check_key_for_encrypted_fields, checks.Tags.security)
        checks.register(check_encryption_enabled, checks.Tags.security, deploy=True)
        if apps.is_installed("django.contrib.admin"):
            # Only then: importing the admin package loads django.contrib.admin.
            from authhero_encrypt.admin.checks import check_admin_secrets

            checks.register(check_admin_secrets, checks.Tags.admin)
            from authhero_encrypt.integrations.import_export_checks import (
                check_import_export_admins,
            )

            checks.register(check_import_export_admins, checks.Tags.admin)
        checks.register(check_envelope_settings, checks.Tags.security)
        checks.register(check_reject_plaintext_setting, checks.Tags.security)
        checks.register(check_reject_plaintext_deploy, checks.Tags.security, deploy=True)
        vet_related_updates()
        from authhero_encrypt.blind_index import checks as blind_index_checks
        from authhero_encrypt.blind_index.keys import reset_index_keyring
        from authhero_encrypt.blind_index.writes import install as tag_every_write

        blind_index_checks.register()
        tag_every_write()
        setting_changed.connect(
            reset_index_keyring, dispatch_uid="authhero_encrypt.reset_index_keyring"
        )
        # Imports Django REST framework only when a check runs, and only if it is installed.
        from authhero_encrypt.integrations.drf_checks import check_drf_settings, check_drf_views

        checks.register(check_drf_settings, checks.Tags.compatibility)
        checks.register(check_drf_views, checks.Tags.security, checks.Tags.urls)

        # override_settings sends this, so a changed key is never served from the cached ring.
        setting_changed.connect(reset_keyring, dispatch_uid="authhero_encrypt.reset_keyring")
        # Providers, the KMS client and cached data keys never outlive a key or envelope setting.
        setting_changed.connect(reset_envelope, dispatch_uid="authhero_encrypt.reset_envelope")
