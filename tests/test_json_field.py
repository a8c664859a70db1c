"""JSONPathEncryptedField on a real database, proven against the raw column.

Every claim about what is at rest is checked by reading the column with a cursor. The secrets
used hold a space or a ``!``, which base64url never produces, so "the plaintext is nowhere in
the stored text" can only pass when the value really is encrypted.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import connection, models, transaction
from django.db.models import F, Value
from django.db.models.fields.json import KeyTransform
from django.test import override_settings
from django.test.utils import isolate_apps

from authhero_encrypt.crypto import PREFIX, decrypt_value, encrypt_value, encrypt_with
from authhero_encrypt.exceptions import DecryptionError, MissingKeyError
from authhero_encrypt.fields import JSONPathEncryptedField
from authhero_encrypt.keys import Key, load_encryption_key
from tests.keys import KEY_A, KEY_B
from tests.testapp.models import Connection, EmailProvider, MigrationSource

pytestmark = pytest.mark.django_db

VECTORS = json.loads(
    (Path(__file__).parent / "vectors" / "authhero-v1-vectors.json").read_text("utf-8")
)
REFERENCE_KEY = Key.from_secret(None, load_encryption_key(KEY_A))

needs_json_contains = pytest.mark.skipif(
    connection.vendor == "sqlite", reason="SQLite has no JSON contains lookup"
)


def connection_options() -> dict[str, Any]:
    """An AuthHero connection's options, with every kind of JSON value."""
    return {
        "client_id": "abc",
        "client_secret": "cs secret!",
        "app_secret": "",
        "twilio_sid": "AC123",
        "twilio_token": "tw token!",
        "scope": ["email", "profile", "client_secret"],
        "port": 443,
        "ratio": 0.25,
        "enabled": True,
        "disabled": False,
        "nothing": None,
        "unicode": "ключ 🔑",
        "empty": "",
        "configuration": {
            "client_id": "inner-id",
            "client_secret": "秘密 secret!",
            "app_secret": "plain inner!",
            "nested": {"client_secret": "deep plain!"},
            "list": [1, "two", {"client_secret": "in a list!"}],
        },
    }


CONNECTION_SECRETS = {
    ("client_secret",),
    ("app_secret",),
    ("twilio_token",),
    ("configuration", "client_secret"),
}


def provider_credentials() -> dict[str, Any]:
    return {
        "api_key": "key one!",
        "domain": "mg.example.com",
        "empty": "",
        "unicode": "пароль 🔐",
        "port": 587,
        "secure": True,
        "region": None,
        "smtp": {"password": "nested plain!"},
        "tags": ["a", "b"],
    }


PROVIDER_SECRETS = {("api_key",), ("domain",), ("empty",), ("unicode",)}


def source_credentials() -> dict[str, Any]:
    return {
        "domain": "tenant.auth0.com",
        "client_id": "m-id",
        "client_secret": "m secret!",
        "audience": None,
    }


SOURCE_SECRETS = {("client_secret",)}

CASES = [
    pytest.param(Connection, "options", connection_options, CONNECTION_SECRETS, id="Connection"),
    pytest.param(
        EmailProvider, "credentials", provider_credentials, PROVIDER_SECRETS, id="EmailProvider"
    ),
    pytest.param(
        MigrationSource, "credentials", source_credentials, SOURCE_SECRETS, id="MigrationSource"
    ),
]


# Helpers -------------------------------------------------------------------------------------


def stored(model: type[models.Model], pk: Any, column: str, raw_column: Any) -> Any:
    """The document in the column, parsed (PostgreSQL's driver may have parsed it already)."""
    value = raw_column(model, pk, column)
    return json.loads(value) if isinstance(value, str) else value


def walk(document: Any, at: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every leaf with its location: dict keys as ``str``, list indices as ``int``."""
    if isinstance(document, dict):
        for key, value in document.items():
            yield from walk(value, (*at, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from walk(value, (*at, index))
    else:
        yield at, document


def at(document: Any, location: tuple[Any, ...]) -> Any:
    for step in location:
        document = document[step]
    return document


def canonical(value: Any) -> str:
    # json.dumps tells 1 from 1.0 from True, which == does not.
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def assert_at_rest(at_rest: Any, original: Any, secrets: set[tuple[str, ...]]) -> None:
    """Exactly the leaves at ``secrets`` are ciphertext of the original; the rest are equal."""
    assert sorted(map(repr, (loc for loc, _ in walk(at_rest)))) == sorted(
        map(repr, (loc for loc, _ in walk(original)))
    )
    seen = set()
    for location, value in walk(original):
        kept = at(at_rest, location)
        if location in secrets:
            seen.add(location)
            assert isinstance(kept, str)
            assert kept.startswith(PREFIX), location
            assert decrypt_value(kept) == value
        else:
            assert canonical(kept) == canonical(value), location
    assert seen == secrets
    text = canonical(at_rest)
    for location in secrets:
        plaintext = at(original, location)
        if plaintext:
            assert plaintext not in text


def insert_raw(model: type[models.Model], name: str, column: str, document: Any) -> Any:
    """Insert a row with SQL, as AuthHero (or a table that predates encryption) would."""
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({qn('name')}, {qn(column)}) VALUES (%s, %s)",
            [name, None if document is None else json.dumps(document)],
        )
        cursor.execute(f"SELECT MAX({qn('id')}) FROM {table}")
        return cursor.fetchone()[0]


def write_raw(model: type[models.Model], pk: Any, column: str, document: Any) -> None:
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(model._meta.db_table)} SET {qn(column)} = %s WHERE {qn('id')} = %s",
            [json.dumps(document), pk],
        )
        assert cursor.rowcount == 1


def tamper(ciphertext: str) -> str:
    """Change one character in the middle of the payload, keeping it canonical base64url."""
    index = len(PREFIX) + 20
    swapped = "A" if ciphertext[index] != "A" else "B"
    return ciphertext[:index] + swapped + ciphertext[index + 1 :]


# Round trips ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("model", "column", "make", "secrets"), CASES)
def test_round_trip_encrypts_exactly_the_listed_leaves(model, column, make, secrets, raw_column):
    obj = model.objects.create(name="x", **{column: make()})
    assert_at_rest(stored(model, obj.pk, column, raw_column), make(), secrets)
    fresh = model.objects.get(pk=obj.pk)
    assert canonical(getattr(fresh, column)) == canonical(make())


@pytest.mark.parametrize(("model", "column", "make", "secrets"), CASES)
def test_every_write_uses_a_fresh_iv(model, column, make, secrets, raw_column):
    one = model.objects.create(name="one", **{column: make()})
    two = model.objects.create(name="two", **{column: make()})
    first = stored(model, one.pk, column, raw_column)
    second = stored(model, two.pk, column, raw_column)
    for location in secrets:
        assert at(first, location) != at(second, location)


def test_update_of_a_row_reencrypts_and_reads_back(raw_column):
    obj = Connection.objects.create(name="x", options={"client_secret": "old one!"})
    obj.options = connection_options()
    obj.save()
    assert_at_rest(
        stored(Connection, obj.pk, "options", raw_column), obj.options, CONNECTION_SECRETS
    )
    assert Connection.objects.get(pk=obj.pk).options == connection_options()


@pytest.mark.parametrize(
    "document",
    [
        {},
        [],
        [{"client_secret": "in a top-level list!"}],
        "client_secret",
        "",
        0,
        1.5,
        True,
        False,
        {"client_secret": None, "configuration": None},
        {"client_secret": 7, "app_secret": [], "twilio_token": {"a": "b"}},
        {"configuration": "flat string!"},
        {"configuration": ["client_secret"]},
        {"configuration": {}},
    ],
)
def test_documents_without_secret_strings_are_stored_as_they_are(document, raw_column):
    obj = Connection.objects.create(name="x", options=document)
    assert canonical(stored(Connection, obj.pk, "options", raw_column)) == canonical(document)
    assert canonical(Connection.objects.get(pk=obj.pk).options) == canonical(document)


def test_missing_paths_are_not_created(raw_column):
    obj = Connection.objects.create(name="x", options={"client_id": "abc"})
    assert stored(Connection, obj.pk, "options", raw_column) == {"client_id": "abc"}


def test_none_is_sql_null_and_json_null_stays_null(raw_column):
    empty = Connection.objects.create(name="none", options=None)
    assert raw_column(Connection, empty.pk, "options") is None
    assert Connection.objects.get(pk=empty.pk).options is None
    assert Connection.objects.filter(options__isnull=True).get() == empty

    nulls = Connection.objects.create(
        name="nulls", options={"client_secret": None, "configuration": {"client_secret": None}}
    )
    assert stored(Connection, nulls.pk, "options", raw_column) == {
        "client_secret": None,
        "configuration": {"client_secret": None},
    }
    assert Connection.objects.get(pk=nulls.pk).options == nulls.options
    assert Connection.objects.filter(options__isnull=False).get() == nulls


# Documents AuthHero wrote --------------------------------------------------------------------


def padded(ciphertext: str) -> str:
    text = ciphertext[len(PREFIX) :]
    return PREFIX + text + "=" * (-len(text) % 4)


@override_settings(ENCRYPTION_KEY_FALLBACKS=[f"authhero:{KEY_A}"])
def test_documents_authhero_stored_read_back(raw_column):
    original = connection_options()
    original["configuration"]["client_secret"] = "x"  # 29 bytes sealed: the payload pads
    at_rest = copy.deepcopy(original)
    at_rest["client_secret"] = encrypt_with(REFERENCE_KEY, original["client_secret"])
    at_rest["app_secret"] = encrypt_with(
        REFERENCE_KEY, original["app_secret"], prefix=f"{PREFIX}authhero:"
    )
    at_rest["twilio_token"] = encrypt_with(REFERENCE_KEY, original["twilio_token"])
    at_rest["configuration"]["client_secret"] = padded(encrypt_with(REFERENCE_KEY, "x"))
    assert at_rest["configuration"]["client_secret"].endswith("=")
    assert at_rest["app_secret"].startswith("enc:v1:authhero:")

    pk = insert_raw(Connection, "from authhero", "options", at_rest)
    assert Connection.objects.get(pk=pk).options == original
    assert Connection.objects.filter(pk=pk).values_list("options", flat=True).get() == original
    assert stored(Connection, pk, "options", raw_column) == at_rest


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: str(len(v["plaintext"])))
def test_reference_vectors_at_every_kind_of_path(vector):
    cipher = vector["ciphertext"]
    options = {
        "client_id": "abc",
        "client_secret": cipher,
        "configuration": {"client_secret": cipher},
    }
    credentials = {"api_key": cipher, "port": 25}
    connection_pk = insert_raw(Connection, "v", "options", options)
    provider_pk = insert_raw(EmailProvider, "v", "credentials", credentials)
    source_pk = insert_raw(MigrationSource, "v", "credentials", {"client_secret": cipher})
    plain = vector["plaintext"]
    assert Connection.objects.get(pk=connection_pk).options == {
        "client_id": "abc",
        "client_secret": plain,
        "configuration": {"client_secret": plain},
    }
    assert EmailProvider.objects.get(pk=provider_pk).credentials == {"api_key": plain, "port": 25}
    assert MigrationSource.objects.get(pk=source_pk).credentials == {"client_secret": plain}


# Queries on plaintext keys -------------------------------------------------------------------


@pytest.fixture
def connections() -> dict[str, Connection]:
    def make(name: str, options: Any) -> Connection:
        return Connection.objects.create(name=name, options=options)

    return {
        "abc": make("abc", {**connection_options(), "client_id": "abc", "rank": 2}),
        "abd": make("abd", {"client_id": "abd", "client_secret": "abd secret!", "rank": 3}),
        "xyz": make("xyz", {"client_id": "xyz", "twilio_sid": "AC9", "rank": 1}),
        "bare": make("bare", {"twilio_token": "only a secret!"}),
        "nested": make("nested", {"foo": {"client_secret": "plain here"}}),
        "null": make("null", None),
    }


def names(queryset: Any) -> list[str]:
    return sorted(obj.name for obj in queryset)


def test_filter_on_a_plaintext_key(connections):
    assert names(Connection.objects.filter(options__client_id="abc")) == ["abc"]
    assert names(Connection.objects.filter(options__client_id__startswith="ab")) == ["abc", "abd"]
    assert names(Connection.objects.filter(options__client_id__in=["abd", "xyz"])) == [
        "abd",
        "xyz",
    ]
    assert names(Connection.objects.filter(options__rank__gt=1)) == ["abc", "abd"]
    assert names(Connection.objects.filter(options__client_id__isnull=True)) == [
        "bare",
        "nested",
        "null",
    ]
    assert names(Connection.objects.filter(options__configuration__client_id="inner-id")) == ["abc"]


def test_a_secret_name_below_a_plaintext_key_is_queryable(connections):
    # Only the declared path is secret: options.foo.client_secret is ordinary plaintext.
    assert names(Connection.objects.filter(options__foo__client_secret="plain here")) == ["nested"]
    assert names(
        Connection.objects.filter(options__configuration__nested__client_secret="deep plain!")
    ) == ["abc"]


def test_values_and_ordering_on_a_plaintext_key(connections):
    with_id = Connection.objects.filter(options__has_key="client_id")
    assert list(with_id.order_by("options__client_id").values_list("name", flat=True)) == [
        "abc",
        "abd",
        "xyz",
    ]
    assert list(with_id.order_by("-options__client_id").values_list("name", flat=True)) == [
        "xyz",
        "abd",
        "abc",
    ]
    assert list(with_id.order_by("options__rank").values_list("name", flat=True)) == [
        "xyz",
        "abc",
        "abd",
    ]
    assert list(with_id.order_by("name").values("options__client_id")) == [
        {"options__client_id": "abc"},
        {"options__client_id": "abd"},
        {"options__client_id": "xyz"},
    ]
    assert list(with_id.order_by("name").values_list("options__client_id", flat=True)) == [
        "abc",
        "abd",
        "xyz",
    ]
    assert list(
        with_id.order_by("name").values_list("name", "options__configuration__client_id")
    ) == [("abc", "inner-id"), ("abd", None), ("xyz", None)]


def test_key_presence(connections):
    assert names(Connection.objects.filter(options__has_key="twilio_sid")) == ["abc", "xyz"]
    # Asking whether a secret is present compares nothing, so it is allowed.
    assert names(Connection.objects.filter(options__has_key="client_secret")) == ["abc", "abd"]
    assert names(Connection.objects.filter(options__has_keys=["client_id", "twilio_sid"])) == [
        "abc",
        "xyz",
    ]
    assert names(Connection.objects.filter(options__has_any_keys=["foo", "twilio_token"])) == [
        "abc",
        "bare",
        "nested",
    ]


@needs_json_contains
def test_contains_with_only_plaintext_keys(connections):
    assert names(Connection.objects.filter(options__contains={"client_id": "abc"})) == ["abc"]
    assert names(
        Connection.objects.filter(options__contains={"configuration": {"client_id": "inner-id"}})
    ) == ["abc"]
    assert names(
        Connection.objects.filter(options__configuration__contains={"client_id": "inner-id"})
    ) == ["abc"]


FORBIDDEN = [
    pytest.param(lambda: Connection.objects.filter(options__client_secret="x"), "client_secret"),
    pytest.param(
        lambda: Connection.objects.filter(options__client_secret__startswith="x"),
        "client_secret",
    ),
    pytest.param(
        lambda: Connection.objects.filter(options__configuration__client_secret__contains="x"),
        "configuration.client_secret",
    ),
    pytest.param(lambda: Connection.objects.filter(options__app_secret__isnull=True), "app_secret"),
    pytest.param(
        lambda: Connection.objects.exclude(options__twilio_token__in=["x"]), "twilio_token"
    ),
    pytest.param(lambda: Connection.objects.order_by("options__twilio_token"), "twilio_token"),
    pytest.param(
        lambda: Connection.objects.order_by("-options__configuration__client_secret"),
        "configuration.client_secret",
    ),
    pytest.param(lambda: Connection.objects.values("options__client_secret"), "client_secret"),
    pytest.param(
        lambda: Connection.objects.values("options__client_secret__below"), "client_secret"
    ),
    pytest.param(
        lambda: Connection.objects.filter(options__client_secret__below="x"), "client_secret"
    ),
    pytest.param(
        lambda: Connection.objects.annotate(secret=F("options__twilio_token")), "twilio_token"
    ),
    pytest.param(
        lambda: Connection.objects.values_list("options__configuration__client_secret"),
        "configuration.client_secret",
    ),
    pytest.param(
        lambda: Connection.objects.filter(options__contains={"client_secret": "x"}),
        "client_secret",
    ),
    pytest.param(
        lambda: Connection.objects.filter(
            options__contains={"client_id": "abc", "configuration": {"client_secret": "x"}}
        ),
        "configuration.client_secret",
    ),
    pytest.param(
        lambda: Connection.objects.filter(options__contained_by={"twilio_token": "x"}),
        "twilio_token",
    ),
    pytest.param(lambda: EmailProvider.objects.filter(credentials__api_key="x"), "api_key"),
    pytest.param(lambda: EmailProvider.objects.filter(credentials__domain="x"), "domain"),
    pytest.param(lambda: EmailProvider.objects.values("credentials__api_key"), "api_key"),
    pytest.param(
        lambda: EmailProvider.objects.filter(credentials__contains={"api_key": "x"}), "api_key"
    ),
    pytest.param(
        lambda: MigrationSource.objects.filter(credentials__client_secret__iexact="x"),
        "client_secret",
    ),
]


@pytest.mark.parametrize(("build", "path"), FORBIDDEN)
def test_lookups_into_a_secret_path_are_refused(build, path):
    with pytest.raises(FieldError, match="is an encrypted path") as info:
        list(build())
    assert f"'{path}'" in str(info.value)


@pytest.mark.parametrize(
    "build",
    [
        lambda: Connection.objects.filter(options=F("options")),
        lambda: Connection.objects.filter(options__icontains="abc"),
        lambda: EmailProvider.objects.filter(credentials__icontains="key"),
    ],
)
def test_comparing_the_whole_document_is_refused(build):
    with pytest.raises(FieldError, match="holds encrypted paths") as info:
        list(build())
    assert "cannot be compared" in str(info.value)


@pytest.mark.parametrize(
    ("build", "path"),
    [
        (
            lambda: Connection.objects.filter(options__configuration={"client_id": "i"}),
            "configuration",
        ),
        (
            lambda: Connection.objects.filter(options__configuration__icontains="enc"),
            "configuration",
        ),
        (lambda: Connection.objects.filter(options__configuration__in=[{}]), "configuration"),
        (
            lambda: Connection.objects.exclude(options__configuration__startswith="{"),
            "configuration",
        ),
    ],
)
def test_comparing_a_key_with_secrets_below_it_is_refused(build, path, connections):
    # The object at options.configuration holds ciphertext, so it would never compare equal.
    with pytest.raises(FieldError, match="holds encrypted paths") as info:
        list(build())
    assert f"testapp.Connection.options: '{path}'" in str(info.value)
    assert "options__configuration__client_id=" in str(info.value)


def test_a_key_with_secrets_below_it_keeps_its_safe_lookups(connections):
    assert names(Connection.objects.filter(options__configuration__isnull=False)) == ["abc"]
    assert names(Connection.objects.filter(options__configuration__has_key="client_secret")) == [
        "abc"
    ]


def test_a_refusal_names_model_field_and_path():
    with pytest.raises(FieldError) as info:
        Connection.objects.filter(options__configuration__client_secret="x")
    assert str(info.value) == (
        "testapp.Connection.options: 'configuration.client_secret' is an encrypted path, so "
        "'options__configuration__client_secret' cannot reach it: the database only holds its "
        "ciphertext. Query a plaintext key instead, or load the rows and compare in Python."
    )


# Reads: values(), legacy plaintext, prefixed values ------------------------------------------


def test_values_of_the_document_and_of_a_parent_are_decrypted(connections):
    abc = Connection.objects.filter(name="abc")
    expected = {**connection_options(), "client_id": "abc", "rank": 2}
    assert abc.values("options").get() == {"options": expected}
    assert abc.values_list("options", flat=True).get() == expected
    assert abc.values("options__configuration").get() == {
        "options__configuration": expected["configuration"]
    }
    assert abc.values_list("name", "options__configuration").get() == (
        "abc",
        expected["configuration"],
    )
    assert abc.values_list("options__configuration__nested", flat=True).get() == {
        "client_secret": "deep plain!"
    }
    assert Connection.objects.filter(name="null").values_list("options", flat=True).get() is None


def test_a_key_transform_built_by_hand_is_refused_at_a_secret_and_decrypts_above_one():
    # KeyTransform(...) bypasses get_transform: the column guard refuses it at a secret leaf,
    # and an object holding secrets, selected, comes back with its secrets decrypted.
    Connection.objects.create(name="abc", options=connection_options())
    expected = connection_options()
    for secret in (
        KeyTransform("client_secret", "options"),
        KeyTransform("client_secret", KeyTransform("configuration", "options")),
    ):
        with pytest.raises(FieldError, match="client_secret"):
            list(Connection.objects.annotate(secret=secret).values_list("secret"))
    by_hand = Connection.objects.annotate(
        configuration=KeyTransform("configuration", "options"),
        client=KeyTransform("client_id", "options"),
    )
    assert by_hand.values_list("configuration", "client").get() == (
        expected["configuration"],
        "abc",
    )


def test_values_of_a_wildcard_document_are_decrypted():
    EmailProvider.objects.create(name="p", credentials=provider_credentials())
    assert EmailProvider.objects.values_list("credentials", flat=True).get() == (
        provider_credentials()
    )


def test_legacy_plaintext_reads_back_and_is_encrypted_on_the_next_save(raw_column):
    pk = insert_raw(Connection, "legacy", "options", connection_options())
    assert stored(Connection, pk, "options", raw_column) == connection_options()
    obj = Connection.objects.get(pk=pk)
    assert obj.options == connection_options()
    obj.save()
    assert_at_rest(
        stored(Connection, pk, "options", raw_column), connection_options(), CONNECTION_SECRETS
    )
    assert Connection.objects.get(pk=pk).options == connection_options()


def test_a_mix_of_legacy_and_ciphertext_reads_back(raw_column):
    at_rest = {"client_secret": "legacy plain!", "twilio_token": encrypt_value("tw token!")}
    pk = insert_raw(Connection, "mixed", "options", at_rest)
    assert Connection.objects.get(pk=pk).options == {
        "client_secret": "legacy plain!",
        "twilio_token": "tw token!",
    }


def test_a_value_that_decrypts_is_kept_verbatim(raw_column):
    cipher = encrypt_value("already sealed!")
    vector = VECTORS[0]["ciphertext"]
    options = {"client_secret": cipher, "configuration": {"client_secret": vector}}
    obj = Connection.objects.create(name="x", options=options)
    at_rest = stored(Connection, obj.pk, "options", raw_column)
    assert at_rest["client_secret"] == cipher
    assert at_rest["configuration"]["client_secret"] == vector
    assert Connection.objects.get(pk=obj.pk).options == {
        "client_secret": "already sealed!",
        "configuration": {"client_secret": VECTORS[0]["plaintext"]},
    }


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(lambda: "enc:v1:not base64!", id="garbage"),
        pytest.param(lambda: tamper(encrypt_value("tampered!")), id="tampered"),
        pytest.param(
            lambda: encrypt_with(Key.from_secret(None, load_encryption_key(KEY_B)), "other!"),
            id="other-key",
        ),
        pytest.param(lambda: encrypt_value("x").replace(PREFIX, f"{PREFIX}nokey:"), id="key-id"),
    ],
)
def test_a_prefixed_value_that_does_not_decrypt_is_refused(bad, raw_column):
    obj = Connection.objects.create(name="x", options={"client_id": "abc", "app_secret": "a!"})
    before = raw_column(Connection, obj.pk, "options")
    value = bad()
    obj.options = {"client_id": "abc", "configuration": {"client_secret": value}}
    with pytest.raises(DecryptionError) as info, transaction.atomic():
        obj.save()
    message = str(info.value)
    assert "testapp.Connection.options" in message
    assert "'configuration.client_secret'" in message
    assert "nothing was written" in message
    assert value not in message
    assert raw_column(Connection, obj.pk, "options") == before
    with pytest.raises(DecryptionError), transaction.atomic():
        Connection.objects.create(name="new", options={"twilio_token": value})
    assert Connection.objects.count() == 1


# Key unset -----------------------------------------------------------------------------------


@override_settings(ENCRYPTION_KEY=None)
def test_without_a_key_it_is_a_plain_json_field(raw_column):
    obj = Connection.objects.create(name="plain", options=connection_options())
    assert stored(Connection, obj.pk, "options", raw_column) == connection_options()
    assert Connection.objects.get(pk=obj.pk).options == connection_options()
    assert Connection.objects.filter(options__client_id="abc").get() == obj
    assert Connection.objects.values_list("options", flat=True).get() == connection_options()
    provider = EmailProvider.objects.create(name="p", credentials=provider_credentials())
    assert stored(EmailProvider, provider.pk, "credentials", raw_column) == (provider_credentials())


def test_without_a_key_reading_ciphertext_names_the_row_and_path(raw_column):
    obj = Connection.objects.create(name="sealed", options=connection_options())
    at_rest = stored(Connection, obj.pk, "options", raw_column)
    with override_settings(ENCRYPTION_KEY=None):
        with pytest.raises(MissingKeyError) as info:
            Connection.objects.get(pk=obj.pk)
        with pytest.raises(MissingKeyError):
            Connection.objects.values_list("options__configuration", flat=True).get()
        # Plaintext keys stay readable.
        assert Connection.objects.values_list("options__client_id", flat=True).get() == "abc"
    message = str(info.value)
    assert "testapp.Connection.options" in message
    assert "path '" in message
    assert f"primary key {obj.pk!r}" in message
    assert "ENCRYPTION_KEY" in message
    for location in CONNECTION_SECRETS:
        if at(connection_options(), location):
            assert at(at_rest, location) not in message
            assert at(connection_options(), location) not in message


@override_settings(ENCRYPTION_KEY=None)
def test_without_a_key_a_prefixed_value_is_refused_on_save():
    with pytest.raises(MissingKeyError) as info, transaction.atomic():
        Connection.objects.create(name="x", options={"client_secret": VECTORS[0]["ciphertext"]})
    assert "'client_secret'" in str(info.value)
    assert not Connection.objects.exists()


# Tampering -----------------------------------------------------------------------------------


@pytest.mark.parametrize("location", [("client_secret",), ("configuration", "client_secret")])
def test_tampered_ciphertext_names_model_field_path_and_row(location, raw_column):
    obj = Connection.objects.create(name="t", options=connection_options())
    at_rest = stored(Connection, obj.pk, "options", raw_column)
    parent = at(at_rest, location[:-1])
    parent[location[-1]] = tamper(parent[location[-1]])
    write_raw(Connection, obj.pk, "options", at_rest)
    path = ".".join(location)
    for read in (
        lambda: Connection.objects.get(pk=obj.pk),
        lambda: Connection.objects.values_list("options", flat=True).get(),
    ):
        with pytest.raises(DecryptionError) as info:
            read()
        assert type(info.value) is DecryptionError
        message = str(info.value)
        assert "testapp.Connection.options" in message
        assert f"path '{path}'" in message
        assert f"primary key {obj.pk!r}" in message
        assert at(at_rest, location) not in message
        assert at(connection_options(), location) not in message
    # The other secrets and the plaintext keys are still reachable.
    assert Connection.objects.values_list("options__client_id", flat=True).get() == "abc"


# dumpdata / loaddata -------------------------------------------------------------------------


def test_dumpdata_writes_ciphertext_and_loaddata_restores_it(raw_column, tmp_path):
    rows = [
        (Connection, "options", connection_options, CONNECTION_SECRETS),
        (EmailProvider, "credentials", provider_credentials, PROVIDER_SECRETS),
        (MigrationSource, "credentials", source_credentials, SOURCE_SECRETS),
    ]
    pks = {
        model: model.objects.create(name="d", **{col: make()}).pk for model, col, make, _ in rows
    }
    out = StringIO()
    call_command(
        "dumpdata",
        "testapp.Connection",
        "testapp.EmailProvider",
        "testapp.MigrationSource",
        format="json",
        stdout=out,
    )
    dump = out.getvalue()
    for _, _, make, secrets in rows:
        for location in secrets:
            plaintext = at(make(), location)
            if plaintext:
                assert plaintext not in dump
                assert json.dumps(plaintext)[1:-1] not in dump
    dumped = {(item["model"], item["pk"]): item["fields"] for item in json.loads(dump)}
    for model, column, make, secrets in rows:
        assert_at_rest(dumped[(model._meta.label_lower, pks[model])][column], make(), secrets)

    for model, *_ in rows:
        model.objects.all().delete()
    fixture = tmp_path / "documents.json"
    fixture.write_text(dump, "utf-8")
    call_command("loaddata", str(fixture), verbosity=0)

    for model, column, make, _ in rows:
        assert getattr(model.objects.get(pk=pks[model]), column) == make()
        # The dumped ciphertext decrypts, so it is written back byte for byte.
        at_rest = stored(model, pks[model], column, raw_column)
        assert at_rest == dumped[(model._meta.label_lower, pks[model])][column]


# Writes never touch the caller's document ----------------------------------------------------


def test_save_does_not_mutate_the_callers_document(raw_column):
    options = connection_options()
    configuration = options["configuration"]
    obj = Connection(name="x", options=options)
    obj.save()
    assert obj.options is options
    assert options == connection_options()
    assert options["configuration"] is configuration
    obj.save()
    assert obj.options == connection_options()
    assert_at_rest(stored(Connection, obj.pk, "options", raw_column), options, CONNECTION_SECRETS)


def test_bulk_create_stores_ciphertext_and_leaves_the_documents_alone(raw_column):
    objs = [
        Connection(name="one", options=connection_options()),
        Connection(name="two", options={**connection_options(), "client_id": "two"}),
        Connection(name="none", options=None),
    ]
    documents = [obj.options for obj in objs]
    before = copy.deepcopy(documents)
    Connection.objects.bulk_create(objs)
    assert [obj.options for obj in objs] == before
    assert all(obj.options is doc for obj, doc in zip(objs, documents, strict=True))
    for name, document in (("one", before[0]), ("two", before[1])):
        pk = Connection.objects.get(name=name).pk
        assert_at_rest(stored(Connection, pk, "options", raw_column), document, CONNECTION_SECRETS)
    assert raw_column(Connection, Connection.objects.get(name="none").pk, "options") is None
    providers = [EmailProvider(name="p", credentials=provider_credentials())]
    EmailProvider.objects.bulk_create(providers)
    assert providers[0].credentials == provider_credentials()
    pk = EmailProvider.objects.get().pk
    assert_at_rest(
        stored(EmailProvider, pk, "credentials", raw_column),
        provider_credentials(),
        PROVIDER_SECRETS,
    )


def test_bulk_update_stores_ciphertext_and_leaves_the_documents_alone(raw_column):
    one = Connection.objects.create(name="one", options={"client_id": "a"})
    two = Connection.objects.create(name="two", options={"client_id": "b"})
    one.options = connection_options()
    two.options = {"client_id": "b", "twilio_token": "two token!"}
    before = [copy.deepcopy(one.options), copy.deepcopy(two.options)]
    Connection.objects.bulk_update([one, two], ["options"])
    assert [one.options, two.options] == before
    assert_at_rest(stored(Connection, one.pk, "options", raw_column), before[0], CONNECTION_SECRETS)
    assert_at_rest(
        stored(Connection, two.pk, "options", raw_column), before[1], {("twilio_token",)}
    )
    assert Connection.objects.get(pk=one.pk).options == before[0]
    assert Connection.objects.get(pk=two.pk).options == before[1]


def test_queryset_update_stores_ciphertext_and_leaves_the_document_alone(raw_column):
    obj = Connection.objects.create(name="one", options={"client_id": "a"})
    Connection.objects.create(name="other", options={"client_id": "z"})
    document = connection_options()
    assert Connection.objects.filter(name="one").update(options=document) == 1
    assert document == connection_options()
    assert_at_rest(stored(Connection, obj.pk, "options", raw_column), document, CONNECTION_SECRETS)
    assert Connection.objects.get(pk=obj.pk).options == document
    assert Connection.objects.get(name="other").options == {"client_id": "z"}
    Connection.objects.filter(name="one").update(options=None)
    assert raw_column(Connection, obj.pk, "options") is None


def test_a_value_expression_with_a_plain_json_output_field_is_encrypted(raw_column):
    # Value(doc, output_field=JSONField()) is compiled by the plain field, not this one, so the
    # document must already be encrypted when it reaches it.
    def value(secret: str) -> Value:
        return Value({"client_id": "v", "client_secret": secret}, output_field=models.JSONField())

    obj = Connection.objects.create(name="v", options=value("created!"))
    assert_at_rest(
        stored(Connection, obj.pk, "options", raw_column),
        {"client_id": "v", "client_secret": "created!"},
        {("client_secret",)},
    )
    Connection.objects.filter(pk=obj.pk).update(options=value("updated!"))
    assert_at_rest(
        stored(Connection, obj.pk, "options", raw_column),
        {"client_id": "v", "client_secret": "updated!"},
        {("client_secret",)},
    )
    obj.options = value("saved!")
    obj.save()
    assert_at_rest(
        stored(Connection, obj.pk, "options", raw_column),
        {"client_id": "v", "client_secret": "saved!"},
        {("client_secret",)},
    )
    assert Connection.objects.get(pk=obj.pk).options == {
        "client_id": "v",
        "client_secret": "saved!",
    }


# Declaration and migrations ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "not NoneType"),
        ({"encrypted_paths": None}, "not NoneType"),
        ({"encrypted_paths": []}, "encrypted_paths is empty"),
        ({"encrypted_paths": "client_secret"}, "not str"),
        ({"encrypted_paths": ["a..b"]}, "has an empty segment"),
        ({"encrypted_paths": [".a"]}, "has an empty segment"),
        ({"encrypted_paths": ["*.a"]}, "uses '*' before the last segment"),
        ({"encrypted_paths": ["a", 3]}, "encrypted_paths[1] must be a string, not int"),
    ],
)
def test_invalid_declarations_fail_when_the_model_is_defined(kwargs, message):
    with isolate_apps("tests.testapp"), pytest.raises(ValueError, match="encrypted_paths") as info:

        class Broken(models.Model):
            options = JSONPathEncryptedField(**kwargs)

            class Meta:
                app_label = "testapp"

            def __str__(self) -> str:
                return "isolated"

    assert message in str(info.value)


@pytest.mark.parametrize(
    ("model", "column", "paths"),
    [
        (
            Connection,
            "options",
            ["client_secret", "app_secret", "twilio_token", "configuration.client_secret"],
        ),
        (EmailProvider, "credentials", ["*"]),
        (MigrationSource, "credentials", ["client_secret"]),
    ],
)
def test_deconstruct(model, column, paths):
    field = model._meta.get_field(column)
    name, path, args, kwargs = field.deconstruct()
    assert (name, path, args) == (column, "authhero_encrypt.fields.JSONPathEncryptedField", [])
    assert kwargs["encrypted_paths"] == paths
    assert type(kwargs["encrypted_paths"]) is list
    rebuilt = JSONPathEncryptedField(*args, **kwargs)
    assert rebuilt.deconstruct()[1:] == (path, args, kwargs)
    assert rebuilt.encrypted_paths == field.encrypted_paths


def test_migrations_are_up_to_date():
    call_command("makemigrations", "testapp", check=True, dry_run=True, verbosity=0)


def test_refusals_follow_the_declaration_not_the_name():
    # Only configuration.client_secret is declared: the top-level client_secret is plaintext.
    with isolate_apps("tests.testapp"):

        class Nested(models.Model):
            options = JSONPathEncryptedField(encrypted_paths=["configuration.client_secret"])

            class Meta:
                app_label = "testapp"

            def __str__(self) -> str:
                return "isolated"

        str(Nested.objects.filter(options__client_secret="x").query)
        Nested.objects.filter(options__contains={"client_secret": "x"})
        with pytest.raises(FieldError, match=r"'configuration\.client_secret'"):
            Nested.objects.filter(options__configuration__client_secret="x")
        with pytest.raises(FieldError, match=r"'configuration\.client_secret'"):
            Nested.objects.filter(options__contains={"configuration": {"client_secret": "x"}})
        with pytest.raises(FieldError, match=r"'configuration\.client_secret'"):
            Nested.objects.filter(options__configuration__contains={"client_secret": "x"})
