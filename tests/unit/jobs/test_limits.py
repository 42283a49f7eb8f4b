"""``nests_deeper_than`` answers exactly what parsing and walking the JSON would."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from jobs.limits import nests_deeper_than, value_depth

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet="[]{}\"\\ab,:", max_size=6),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=40,
)


@given(_JSON, st.integers(min_value=0, max_value=12))
def test_the_answer_is_the_parsed_value_s_depth_against_the_limit(value: Any, limit: int) -> None:
    text = json.dumps(value, ensure_ascii=False)
    assert nests_deeper_than(text, limit) == (value_depth(value, limit) > limit)


def test_brackets_inside_strings_are_not_nesting() -> None:
    text = json.dumps({"note": "[[[[[[[[[[{{{{{{{{{{"})
    assert not nests_deeper_than(text, 2)
    assert nests_deeper_than(json.dumps([[[[]]]]), 3)
    assert not nests_deeper_than(json.dumps([[[[]]]]), 4)
