from __future__ import annotations

import base64
from typing import Any

import pytest
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from authhero_encrypt.crypto import decrypt_with
from authhero_encrypt.exceptions import DecryptionError
from authhero_encrypt.inventory import MALFORMED, UNTAGGED, find_targets, key_label, survey
from authhero_encrypt.keys import Key, KeyRing


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
    # Managed models only: an unmanaged one would have its table looked up in "elsewhere".
    chosen = ["testapp.Secret", "testapp.Swapped"]
    assert "testapp.Secret.token" not in labels(find_targets(chosen, using="default"))
    assert "testapp.Secret.token" in labels(find_targets(chosen, using="elsewhere"))
    # Without ``using`` every model counts, whatever the routers say.
    assert "testapp.Secret.token" in labels(find_targets(chosen))


@pytest.mark.django_db
def test_unmanaged_models_are_included_when_their_table_exists():
    found = survey(["testapp.UnmanagedClient", "testapp.UnmanagedGhost"], using="default")
    assert labels(found.targets) == ["testapp.UnmanagedClient.client_secret"]
    assert [(e.model_label, e.reason) for e in found.excluded] == [
        (
            "testapp.UnmanagedGhost",
            "unmanaged, and its table 'testapp_no_such_table' does not exist in database 'default'",
        )
    ]
    # Without a database there is no table to look for: both are targets.
    assert len(find_targets(["testapp.UnmanagedClient", "testapp.UnmanagedGhost"])) == 2


# Key labels: the id of a stored value is shown only when the codec could have written it ------

PAYLOADS = st.one_of(
    st.binary(min_size=20, max_size=40).map(
        lambda raw: base64.urlsafe_b64encode(raw).decode().rstrip("=")
    ),
    st.binary(min_size=20, max_size=40).map(lambda raw: base64.urlsafe_b64encode(raw).decode()),
    st.text(alphabet="AQgwBz09-_=+/: ", min_size=0, max_size=48),
)
IDS = st.one_of(st.sampled_from(["k", "2026-11", "a_b-C9"]), st.text(min_size=1, max_size=12))


@settings(max_examples=400, deadline=None)
@given(key_id=IDS, payload=PAYLOADS)
def test_key_label_shows_an_id_only_for_a_value_the_codec_accepts(key_id, payload):
    """An unconfigured id is shown exactly when the codec parses the whole value (id and a
    canonical payload of at least an IV and a tag) and fails only on the key."""
    stored = f"enc:v1:{key_id}:{payload}"
    ring = KeyRing.from_keys(Key.from_secret("configured", bytes(32)), ())
    try:
        decrypt_with(ring, stored)
        well_formed = True  # pragma: no cover - no key here has these ids
    except DecryptionError as exc:
        well_formed = "not configured" in str(exc)
    label = key_label(stored)
    if ":" in key_id or not key_id:
        return  # the id ends at the first ':'; an empty id is untagged
    assert label == (key_id if well_formed else MALFORMED)
    assert key_label(stored, ("other", key_id)) == key_id  # a configured id is always shown


def test_key_label_of_untagged_values():
    assert key_label("enc:v1:" + "A" * 40) == UNTAGGED
    assert key_label("enc:v1::" + "A" * 40) == UNTAGGED
    assert key_label("enc:v1:Str0ng-Passw0rd_LEAKME:x") == MALFORMED
