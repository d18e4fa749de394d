"""Canonical state labels (SPEC section 10, "Traces" and "Observation maps over labels").

A state of an epoch model or a trace is any JSON value: a scalar (``null``,
a bool, an integer, a finite float, a string), a list or an object with
string keys, nested at most :data:`MAX_LABEL_DEPTH` containers deep. Its
*label* is the canonical compact JSON text

    ``label(v) = json.dumps(v, separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False)``

so two states are the same state exactly when their labels are equal
(object key order and whitespace never matter; ``1`` and ``1.0`` and ``true``
stay three different labels, as JSON keeps them apart). The export of a
primitive instance labels the full state ``f = (x, m, l_0, ..., l_{N-1})`` as
``label([x, m, l_0, ..., l_{N-1}])``, and the trace simulator writes that
same list as ``state``, so a trace of a primitive instance fits to the
export's labels.

Examples
--------
>>> canonical_label([0, 2, 0, 1])
'[0,2,0,1]'
>>> canonical_label({"b": 1, "a": [True, None, "x"]})
'{"a":[true,null,"x"],"b":1}'
>>> canonical_label(2.5)
'2.5'
>>> canonical_label(float("nan"))
Traceback (most recent call last):
...
icsmdp_theory.labels.InvalidLabelError: state label: value at `$` must be a finite number; got nan
"""
from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from icsmdp_theory.errors import InvalidInstanceError

__all__ = ["MAX_LABEL_DEPTH", "InvalidLabelError", "canonical_label", "check_label_value"]

#: Largest number of nested containers (lists/objects) a state may have.
MAX_LABEL_DEPTH = 8

_ENCODER = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=False,
                            allow_nan=False)


class InvalidLabelError(InvalidInstanceError):
    """A state value is not a JSON scalar, list or object of bounded depth (SPEC section 10)."""


def _normalize(value: Any, path: str, depth: int) -> Any:
    """Validated copy of ``value`` with tuples as lists and numpy scalars as Python numbers."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            raise InvalidLabelError(f"state label: value at `{path}` must be a finite number; got {v!r}")
        return v
    if isinstance(value, (list, tuple, dict)):
        if depth >= MAX_LABEL_DEPTH:
            raise InvalidLabelError(f"state label: value at `{path}` nests more than "
                                    f"{MAX_LABEL_DEPTH} lists/objects")
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                if not isinstance(k, str):
                    raise InvalidLabelError(f"state label: object keys must be strings; key {k!r} "
                                            f"at `{path}` is {type(k).__name__}")
                out[k] = _normalize(v, f"{path}.{k}", depth + 1)
            return out
        return [_normalize(v, f"{path}[{j}]", depth + 1) for j, v in enumerate(value)]
    raise InvalidLabelError(f"state label: value at `{path}` must be a JSON scalar, list or object; "
                            f"got {type(value).__name__}")


def check_label_value(value: Any) -> Any:
    """Validate a state value and return it as plain JSON data (tuples -> lists, numpy -> Python).

    Raises
    ------
    InvalidLabelError
        A non-finite float, a non-string object key, an unsupported type, or
        more than :data:`MAX_LABEL_DEPTH` nested containers; the message names
        the position (``$`` is the value itself, ``$[1].a`` an entry in it).
    """
    return _normalize(value, "$", 0)


def canonical_label(value: Any) -> str:
    """Canonical label of a state value: compact, key-sorted JSON text (SPEC section 10).

    Parameters
    ----------
    value : JSON scalar, list (or tuple) or object (dict with string keys)
        Nested at most :data:`MAX_LABEL_DEPTH` containers deep; floats finite;
        numpy scalars are accepted and written as the Python number.

    Returns
    -------
    str
        ``json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False)``.

    Raises
    ------
    InvalidLabelError
        (a :class:`ValueError`) when ``value`` is not such a value.
    """
    return _ENCODER.encode(_normalize(value, "$", 0))
