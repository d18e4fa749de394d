"""Canonical state labels (SPEC section 10): compact sorted JSON, strict validation."""
import json
import math

import numpy as np
import pytest

from icsmdp_theory.labels import MAX_LABEL_DEPTH, InvalidLabelError, canonical_label


@pytest.mark.parametrize("value, expected", [
    ([0, 2, 0, 1], "[0,2,0,1]"),
    ((0, 2, 0, 1), "[0,2,0,1]"),
    ({"b": 1, "a": [True, None, "x"]}, '{"a":[true,null,"x"],"b":1}'),
    ("é", '"é"'),
    (1, "1"), (1.0, "1.0"), (True, "true"), (None, "null"),
    ([np.int64(3), np.float64(0.5), np.bool_(False)], "[3,0.5,false]"),
])
def test_canonical_form(value, expected):
    assert canonical_label(value) == expected


def test_key_order_and_whitespace_do_not_matter():
    a = json.loads('{ "z" : [1, {"q": 2, "p": 3}], "a": "s" }')
    b = json.loads('{"a":"s","z":[1,{"p":3,"q":2}]}')
    assert canonical_label(a) == canonical_label(b)
    # the label parses back to the same value (round trip through json)
    assert json.loads(canonical_label(a)) == a


def test_distinct_json_values_stay_distinct():
    # 1, 1.0 and true are equal in Python but different JSON values
    labels = {canonical_label(v) for v in (1, 1.0, True, "1", [1])}
    assert len(labels) == 5


@pytest.mark.parametrize("value, fragment", [
    (float("nan"), "finite"), ([1, math.inf], "`$[1]` must be a finite number"),
    ({"a": {"b": -math.inf}}, "`$.a.b`"), ({1: 2}, "keys must be strings"),
    ({1, 2}, "JSON scalar, list or object"), (b"x", "JSON scalar"),
])
def test_invalid_values(value, fragment):
    with pytest.raises(InvalidLabelError, match=None) as exc:
        canonical_label(value)
    assert isinstance(exc.value, ValueError)
    assert fragment in str(exc.value) and "\n" not in str(exc.value)


def test_depth_limit():
    v = 0
    for _ in range(MAX_LABEL_DEPTH):
        v = [v]
    assert canonical_label(v) == "[" * MAX_LABEL_DEPTH + "0" + "]" * MAX_LABEL_DEPTH
    with pytest.raises(InvalidLabelError, match="nests more than 8"):
        canonical_label([v])
    with pytest.raises(InvalidLabelError, match="nests more than 8"):
        canonical_label({"a": v})
