"""Canonical JSON: one byte form for signatures and body hashes, and never a float."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobs.canonical import FloatInJsonError, _only_exact_values, _refuse_floats, body_hash, canonical_json


def test_keys_are_sorted_without_spaces_and_text_stays_utf8() -> None:
    assert canonical_json({"b": [1, {"z": None, "a": True}], "a": "été"}) == (
        '{"a":"été","b":[1,{"a":true,"z":null}]}'.encode()
    )


def test_the_same_value_in_another_key_order_has_the_same_hash() -> None:
    assert body_hash({"a": "1", "b": {"c": 2, "d": 3}}) == body_hash({"b": {"d": 3, "c": 2}, "a": "1"})
    assert body_hash({"a": "1"}) != body_hash({"a": "1.0"})


@pytest.mark.parametrize(
    ("value", "path"),
    [
        (1.5, "value"),
        ({"amount": 30.0}, "amount"),
        ({"lines": [{"amount": "1"}, {"amount": float("nan")}]}, "lines.1.amount"),
        ([0, [float("inf")]], "1.0"),
    ],
)
def test_floats_are_refused_anywhere_with_their_path(value: object, path: str) -> None:
    with pytest.raises(FloatInJsonError) as caught:
        canonical_json(value)
    assert caught.value.path == path or (path == "value" and caught.value.path == "")
    assert isinstance(caught.value, ValueError)
    with pytest.raises(ValueError, match="decimal strings"):
        body_hash(value)


def test_non_string_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="keys must be strings"):
        canonical_json({1: "a"})


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=3),
    lambda children: st.lists(children, max_size=3) | st.tuples(children)
    | st.dictionaries(st.text(max_size=2) | st.integers(0, 3), children, max_size=3),
    max_leaves=20,
)


@given(_VALUES)
def test_the_quick_check_agrees_with_the_walk_that_names_the_path(value: object) -> None:
    try:
        _refuse_floats(value, "")
    except ValueError:
        assert not _only_exact_values(value)
    else:
        assert _only_exact_values(value)
