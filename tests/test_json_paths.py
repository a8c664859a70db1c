"""``parse_paths`` and ``PathTrie``: which leaves of a JSON document are secret.

Pure tests, no database. The property tests encrypt with the real codec and the reference
vectors' key, and judge every leaf against an oracle written from AuthHero's rules rather than
from the trie, so a walk that skips or over-reaches a leaf is caught.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from authhero_encrypt.crypto import PREFIX, decrypt_with, encrypt_with
from authhero_encrypt.json_paths import WILDCARD, Path, PathTrie, parse_paths, path_text
from authhero_encrypt.keys import KeyRing, build_keyring
from tests.keys import KEY_A

CONNECTION_PATHS = ["client_secret", "app_secret", "twilio_token", "configuration.client_secret"]
RING: KeyRing = build_keyring(KEY_A)


def trie(paths: list[str]) -> PathTrie:
    return PathTrie.build(parse_paths(paths))


def mark(path: Path, value: str) -> str:
    """A visible stand-in for encryption: says which path it was called with."""
    return f"<{path_text(path)}:{value}>"


def encrypt(path: Path, value: str) -> str:
    assert RING.active is not None
    return encrypt_with(RING.active, value)


def decrypt(path: Path, value: str) -> str:
    return decrypt_with(RING, value)


# parse_paths ---------------------------------------------------------------------------------


def test_parse_connection_paths():
    assert parse_paths(CONNECTION_PATHS) == (
        ("client_secret",),
        ("app_secret",),
        ("twilio_token",),
        ("configuration", "client_secret"),
    )


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (["*"], (("*",),)),
        (["configuration.*"], (("configuration", "*"),)),
        (("client_secret",), (("client_secret",),)),
        (["a", "a", "b.c", "b.c"], (("a",), ("b", "c"))),
        (["a", "a.b"], (("a",), ("a", "b"))),
    ],
)
def test_parse_accepts(paths, expected):
    assert parse_paths(paths) == expected


def test_path_text_is_the_declaration():
    assert [path_text(p) for p in parse_paths(CONNECTION_PATHS)] == CONNECTION_PATHS


@pytest.mark.parametrize(
    ("paths", "message"),
    [
        ([], "encrypted_paths is empty"),
        ((), "encrypted_paths is empty"),
        (None, "not NoneType"),
        ("client_secret", "must be a list of dot-separated key paths"),
        ("*", "not str"),
        ({"client_secret"}, "not set"),
        ({"client_secret": True}, "not dict"),
        (42, "not int"),
        ([""], "encrypted_paths[0] = '' has an empty segment"),
        (["a..b"], "encrypted_paths[0] = 'a..b' has an empty segment"),
        ([".a"], "encrypted_paths[0] = '.a' has an empty segment"),
        (["ok", "a."], "encrypted_paths[1] = 'a.' has an empty segment"),
        (["*.a"], "encrypted_paths[0] = '*.a' uses '*' before the last segment"),
        (["a.*.b"], "encrypted_paths[0] = 'a.*.b' uses '*' before the last segment"),
        (["a", "*.*"], "encrypted_paths[1] = '*.*' uses '*' before the last segment"),
        ([1], "encrypted_paths[0] must be a string, not int"),
        (["a", None], "encrypted_paths[1] must be a string, not NoneType"),
        (["a", b"b"], "encrypted_paths[1] must be a string, not bytes"),
        ([["a", "b"]], "encrypted_paths[0] must be a string, not list"),
    ],
)
def test_parse_refuses(paths, message):
    with pytest.raises(ValueError, match="encrypted_paths") as info:
        parse_paths(paths)
    assert message in str(info.value)


def test_bare_string_message_shows_the_list_form():
    with pytest.raises(ValueError, match=r"not str") as info:
        parse_paths("client_secret")
    assert '["client_secret", "configuration.client_secret"]' in str(info.value)


# Which leaves are secret ---------------------------------------------------------------------


def test_connection_document():
    doc = {
        "client_id": "abc",
        "client_secret": "s1",
        "app_secret": "",
        "twilio_sid": "AC1",
        "twilio_token": "t1",
        "scope": ["email", "client_secret"],
        "configuration": {"client_secret": "s2", "client_id": "inner", "app_secret": "x"},
    }
    assert trie(CONNECTION_PATHS).transform(doc, mark) == {
        "client_id": "abc",
        "client_secret": "<client_secret:s1>",
        "app_secret": "<app_secret:>",
        "twilio_sid": "AC1",
        "twilio_token": "<twilio_token:t1>",
        "scope": ["email", "client_secret"],
        "configuration": {
            "client_secret": "<configuration.client_secret:s2>",
            "client_id": "inner",
            "app_secret": "x",
        },
    }


def test_star_covers_direct_strings_only():
    doc = {
        "api_key": "k",
        "empty": "",
        "port": 587,
        "tls": True,
        "none": None,
        "nested": {"password": "p", "deeper": {"x": "y"}},
        "list": ["a", {"b": "c"}],
    }
    assert trie(["*"]).transform(doc, mark) == {
        "api_key": "<api_key:k>",
        "empty": "<empty:>",
        "port": 587,
        "tls": True,
        "none": None,
        "nested": {"password": "p", "deeper": {"x": "y"}},
        "list": ["a", {"b": "c"}],
    }


def test_star_inside_an_object():
    doc = {
        "top": "t",
        "configuration": {"a": "1", "b": 2, "c": {"d": "e"}, "f": ["g"]},
        "other": {"a": "1"},
    }
    assert trie(["configuration.*"]).transform(doc, mark) == {
        "top": "t",
        "configuration": {"a": "<configuration.a:1>", "b": 2, "c": {"d": "e"}, "f": ["g"]},
        "other": {"a": "1"},
    }


def test_star_beside_a_deeper_path():
    doc = {"a": "1", "configuration": {"client_secret": "s", "client_id": "i"}}
    assert trie(["*", "configuration.client_secret"]).transform(doc, mark) == {
        "a": "<a:1>",
        "configuration": {"client_secret": "<configuration.client_secret:s>", "client_id": "i"},
    }


def test_a_path_that_is_also_a_parent():
    paths = trie(["configuration", "configuration.client_secret"])
    assert paths.transform({"configuration": "flat"}, mark) == {
        "configuration": "<configuration:flat>"
    }
    assert paths.transform({"configuration": {"client_secret": "s", "x": "y"}}, mark) == {
        "configuration": {"client_secret": "<configuration.client_secret:s>", "x": "y"}
    }


def test_a_dotted_key_is_not_a_path():
    # A path is split on dots, so it can never name a key that itself contains one.
    doc = {"configuration.client_secret": "s", "configuration": {"client_secret": "t"}}
    assert trie(["configuration.client_secret"]).transform(doc, mark) == {
        "configuration.client_secret": "s",
        "configuration": {"client_secret": "<configuration.client_secret:t>"},
    }


def test_a_literal_star_key_is_only_matched_by_the_wildcard():
    assert trie(["a"]).transform({"*": "x", "a": "y"}, mark) == {"*": "x", "a": "<a:y>"}


@pytest.mark.parametrize(
    "value", [0, 1.5, -3, True, False, None, [], ["s"], {}, {"x": "s"}, [{"client_secret": "s"}]]
)
def test_non_string_at_a_listed_path_is_left_alone(value):
    doc = {"client_secret": value, "configuration": {"client_secret": value}}
    result = trie(CONNECTION_PATHS).transform(doc, mark)
    assert result == doc
    assert type(result["client_secret"]) is type(value)
    assert list(trie(CONNECTION_PATHS).secrets(doc)) == []


@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"client_id": "abc"},
        {"configuration": None},
        {"configuration": "flat"},
        {"configuration": ["client_secret"]},
        {"configuration": {}},
        {"configuration": {"other": {"client_secret": "s"}}},
    ],
)
def test_missing_paths_and_parents_are_never_created(doc):
    before = copy.deepcopy(doc)
    result = trie(CONNECTION_PATHS).transform(doc, mark)
    assert result == before
    assert result is doc  # nothing to change, so not even a copy


@pytest.mark.parametrize("doc", [None, "client_secret", 3, True, ["client_secret", {"a": "b"}]])
def test_a_document_that_is_not_an_object_is_returned_as_is(doc):
    assert trie(["*"]).transform(doc, mark) is doc
    assert trie(CONNECTION_PATHS).transform(doc, mark) is doc
    assert list(trie(["*"]).secrets(doc)) == []


def test_secrets_yields_concrete_paths():
    doc = {
        "client_secret": "s1",
        "client_id": "abc",
        "port": 1,
        "configuration": {"client_secret": "s2", "a": "b", "c": {"client_secret": "no"}},
    }
    assert sorted(trie(["client_secret", "configuration.*"]).secrets(doc)) == [
        (("client_secret",), "s1"),
        (("configuration", "a"), "b"),
        (("configuration", "client_secret"), "s2"),
    ]


def test_secrets_skips_a_parent_that_is_not_an_object():
    assert list(trie(["a.b"]).secrets({"a": ["b"]})) == []
    assert list(trie(["a.b"]).secrets({"a": "b"})) == []


def test_node_at_finds_the_paths_below_a_key():
    paths = trie(["client_secret", "configuration.client_secret", "configuration.deep.*"])
    assert paths.node_at(()) is paths
    configuration = paths.node_at(("configuration",))
    assert configuration is not None
    assert configuration.leaves == {"client_secret"}
    deep = paths.node_at(["configuration", "deep"])
    assert deep is not None
    assert deep.wildcard
    assert paths.node_at(("client_secret",)) is None
    assert paths.node_at(("configuration", "client_secret")) is None
    assert paths.node_at(("other", "configuration")) is None


# transform: copying --------------------------------------------------------------------------


def authhero_connection() -> dict[str, Any]:
    return {
        "client_id": "abc",
        "client_secret": "s1",
        "scope": ["email", "profile"],
        "configuration": {"client_secret": "s2", "nested": {"client_secret": "s3"}},
        "other": {"x": "y"},
    }


def test_transform_with_copy_never_mutates_the_input():
    doc = authhero_connection()
    before = copy.deepcopy(doc)
    configuration, other, scope = doc["configuration"], doc["other"], doc["scope"]
    result = trie(CONNECTION_PATHS).transform(doc, mark)
    assert doc == before
    assert doc["configuration"] is configuration
    assert result is not doc
    assert result["configuration"] is not configuration
    assert result["client_secret"] == "<client_secret:s1>"
    assert result["configuration"]["client_secret"] == "<configuration.client_secret:s2>"
    # Branches without a secret are shared, not copied.
    assert result["other"] is other
    assert result["scope"] is scope
    assert result["configuration"]["nested"] is configuration["nested"]


def test_transform_without_copy_changes_the_document_in_place():
    doc = authhero_connection()
    configuration = doc["configuration"]
    result = trie(CONNECTION_PATHS).transform(doc, mark, copy=False)
    assert result is doc
    assert doc["configuration"] is configuration
    assert doc["client_secret"] == "<client_secret:s1>"
    assert configuration["client_secret"] == "<configuration.client_secret:s2>"
    assert configuration["nested"] == {"client_secret": "s3"}


def test_transform_keeps_key_order():
    doc = {"z": "1", "client_secret": "s", "a": "2"}
    assert list(trie(["client_secret"]).transform(doc, mark)) == ["z", "client_secret", "a"]


# Properties ----------------------------------------------------------------------------------

# A small key alphabet, so random paths often hit random documents; "." and "*" appear as
# literal keys to prove a path is never read as a key and vice versa.
keys = st.sampled_from(["a", "b", "c", "client_secret", "*", "x.y", "é"])
leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)
)
documents = st.recursive(
    leaves,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=4),
    max_leaves=20,
)
objects = st.dictionaries(keys, documents, max_size=5)
segments = st.sampled_from(["a", "b", "c", "client_secret", "é"])
declared = st.lists(
    st.builds(
        lambda head, last: ".".join([*head, last]),
        st.lists(segments, max_size=2),
        segments | st.just(WILDCARD),
    ),
    min_size=1,
    max_size=4,
)


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


def is_listed(location: tuple[Any, ...], value: Any, paths: list[str]) -> bool:
    """AuthHero's rule, stated independently of the trie."""
    if not isinstance(value, str) or not all(isinstance(step, str) for step in location):
        return False
    for path in paths:
        parts = tuple(path.split("."))
        if parts == location:
            return True
        if parts[-1] == WILDCARD and parts[:-1] == location[:-1] and len(location) == len(parts):
            return True
    return False


def canonical(value: Any) -> str:
    # json.dumps tells 1 from 1.0 from True, which == does not.
    return json.dumps(value, ensure_ascii=False)


@given(objects, declared)
def test_encrypt_then_decrypt_is_the_identity(document, paths):
    before = copy.deepcopy(document)
    secret = trie(paths)
    stored = secret.transform(document, encrypt)
    assert canonical(document) == canonical(before)
    assert canonical(secret.transform(stored, decrypt)) == canonical(before)
    assert canonical(secret.transform(stored, decrypt, copy=False)) == canonical(before)


@given(objects, declared)
def test_only_listed_leaves_change_at_rest(document, paths):
    stored = trie(paths).transform(document, encrypt)
    assert [location for location, _ in walk(stored)] == [loc for loc, _ in walk(document)]
    for location, value in walk(document):
        kept = at(stored, location)
        if is_listed(location, value, paths):
            assert isinstance(kept, str)
            assert kept.startswith(PREFIX)
            assert decrypt_with(RING, kept) == value
        else:
            assert canonical(kept) == canonical(value)


@given(objects, declared)
def test_secrets_are_exactly_the_listed_leaves(document, paths):
    expected = sorted(
        (location, value) for location, value in walk(document) if is_listed(location, value, paths)
    )
    assert sorted(trie(paths).secrets(document)) == expected


@given(objects, declared)
def test_replace_in_place_changes_the_same_leaves_as_transform(document, paths):
    secret = trie(paths)
    stored = secret.transform(document, encrypt)
    secret.replace_in_place(stored, lambda at, key, value: decrypt((*at, key), value))
    assert canonical(stored) == canonical(document)


def test_replace_in_place_hands_over_the_parent_path_and_the_key():
    doc = {
        "client_secret": "s1",
        "client_id": "abc",
        "port": 1,
        "configuration": {"client_secret": "s2", "a": "b", "c": {"client_secret": "no"}},
        "other": {"client_secret": "no"},
    }
    expected = copy.deepcopy(doc)
    expected["client_secret"] = "<client_secret:s1>"
    expected["configuration"].update(
        a="<configuration.a:b>", client_secret="<configuration.client_secret:s2>"
    )
    paths = trie(["client_secret", "configuration.*"])
    assert paths.replace_in_place(doc, lambda at, key, value: mark((*at, key), value)) is None
    assert doc == expected


@pytest.mark.parametrize("doc", [None, "client_secret", 3, ["client_secret", {"a": "b"}]])
def test_replace_in_place_leaves_a_document_that_is_not_an_object(doc):
    before = copy.deepcopy(doc)
    trie(["*", "a.b"]).replace_in_place(doc, lambda at, key, value: "changed")
    assert doc == before
