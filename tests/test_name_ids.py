"""Name-based ids made without `uuid.UUID` objects are exactly `uuid.uuid5`'s,
and a file's account id is canonical exactly as `str(UUID(...))` makes it."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.balance_file import canonical_uuid
from domain.name_ids import uuid5_int, uuid5_text


@given(st.uuids(), st.text())
def test_name_ids_are_uuid5(namespace: uuid.UUID, name: str) -> None:
    expected = uuid.uuid5(namespace, name)
    assert uuid5_int(namespace.bytes, name) == expected.int
    assert uuid5_text(namespace.bytes, name) == str(expected)


FORMS: list[Callable[[uuid.UUID], str]] = [
    str,
    lambda u: str(u).upper(),
    lambda u: u.hex,
    lambda u: u.hex.upper(),
    lambda u: "{" + str(u) + "}",
    lambda u: u.urn,
    lambda u: str(u)[:9] + str(u)[9:].upper(),
]


@given(st.uuids(), st.sampled_from(FORMS))
def test_an_id_is_canonical_as_uuid_makes_it(
    value: uuid.UUID, form: Callable[[uuid.UUID], str]
) -> None:
    text = form(value)
    assert canonical_uuid(text) == str(uuid.UUID(text)) == str(value)


@pytest.mark.parametrize(
    "text",
    ["", "not-a-uuid", "0" * 31, "g" * 32, "00000000-0000-0000-0000-00000000000"],
)
def test_what_is_not_a_uuid_is_refused_as_uuid_refuses_it(text: str) -> None:
    with pytest.raises(ValueError):
        uuid.UUID(text)
    with pytest.raises(ValueError):
        canonical_uuid(text)
