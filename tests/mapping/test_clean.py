"""clean_attrs_sized: the fast paths give what the general cleaning gives."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from letta_otel.mapping.clean import _DROP, INT64_MAX, _clean, clean_attrs, clean_attrs_sized

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 2**53, 2**53 + 1, INT64_MAX, INT64_MAX + 1, 2**64]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["x\ud800y", "é", "a" * 40, ""]),
    st.binary(max_size=3),
)
_VALUES = st.one_of(
    _SCALARS,
    st.lists(_SCALARS, max_size=3),
    st.lists(_SCALARS, max_size=3).map(tuple),
    st.lists(st.text(max_size=40), max_size=3).map(tuple),
    st.dictionaries(st.text(max_size=3), _SCALARS, max_size=2),
)
_KEYS = st.one_of(st.text(max_size=6), st.sampled_from(["gen_ai.x", "k\udc80", "ü"]))


def _reference(attrs: dict[Any, Any], long: int) -> tuple[dict[str, Any], bool]:
    """The cleaning as it was before the fast paths, and finalize's length test."""
    cleaned: dict[str, Any] = {}
    for key, value in attrs.items():
        c = _clean(value)
        if c is not _DROP and c is not None:
            cleaned[_clean(str(key))] = c
    too_long = any(
        (isinstance(v, str) and len(v) > long)
        or (isinstance(v, tuple | list) and any(isinstance(i, str) and len(i) > long for i in v))
        for v in cleaned.values()
    )
    return cleaned, too_long


@given(st.dictionaries(_KEYS, _VALUES, max_size=6), st.sampled_from([0, 5, 30, 4096]))
def test_clean_attrs_sized_matches_the_general_cleaning(attrs: dict[Any, Any], long: int) -> None:
    cleaned, too_long = clean_attrs_sized(attrs, long)
    expected, expected_long = _reference(attrs, long)
    assert cleaned == expected
    assert [type(v) for v in cleaned.values()] == [type(v) for v in expected.values()]
    assert list(cleaned) == list(expected)
    assert clean_attrs(attrs) == expected
    if not too_long:
        assert not expected_long  # the fast path may only err towards "check it"
    if expected_long:
        assert too_long
