from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from authhero_encrypt.inventory import find_targets


class KeepSecretsElsewhere:
    """A router that places testapp.Secret on another database."""

    def allow_migrate(self, db: str, app_label: str, model_name: Any = None, **hints: Any) -> Any:
        if model_name == "secret":
            return db == "elsewhere"
        return None


def labels(targets: list[Any]) -> list[str]:
    return [str(target) for target in targets]


def test_every_encrypted_field_and_path_of_the_selection():
    assert labels(find_targets(["testapp.Secret", "testapp.EmailProvider"])) == [
        "testapp.Secret.token",
        "testapp.Secret.notes",
        "testapp.EmailProvider.credentials [*]",
    ]


def test_unknown_selectors_are_refused():
    with pytest.raises(LookupError, match="No installed app"):
        find_targets(["nosuchapp"])
    with pytest.raises(LookupError, match="no model 'Nope'"):
        find_targets(["testapp.Nope"])


@override_settings(DATABASE_ROUTERS=[f"{__name__}.KeepSecretsElsewhere"])
def test_models_the_routers_keep_out_of_the_database_are_left_out():
    assert "testapp.Secret.token" not in labels(find_targets(["testapp"], using="default"))
    assert "testapp.Secret.token" in labels(find_targets(["testapp"], using="elsewhere"))
    # Without ``using`` every model counts, whatever the routers say.
    assert "testapp.Secret.token" in labels(find_targets(["testapp"]))
