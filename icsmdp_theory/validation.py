"""Shared argument validators (STYLE 7): one implementation of each check.

Every ``_name_iv`` twin of a public function is built from these. Each
validator either returns the normalized value or raises
:class:`~icsmdp_theory.errors.InvalidArgumentError` with the argument in
backticks, the requirement and the offending value.

Examples
--------
>>> is_int(3), is_int(True), is_int(3.0)
(True, False, False)
>>> positive_int("seeds", 4)
4
>>> unit_interval("epsilon", 0.5, open_low=False)
0.5
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from icsmdp_theory.errors import InvalidArgumentError

__all__ = ["is_int", "is_real", "positive_int", "positive_real", "unit_interval"]


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (Python or numpy), booleans excluded."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real(value: Any) -> bool:
    """Whether ``value`` is a finite real number (Python or numpy), booleans excluded."""
    return (isinstance(value, (int, float, np.integer, np.floating))
            and not isinstance(value, (bool, np.bool_)) and math.isfinite(float(value)))


def positive_int(name: str, value: Any, *, low: int = 1) -> int:
    """``value`` as an ``int`` when it is an integer ``>= low``.

    Raises
    ------
    InvalidArgumentError
        ```name` must be an integer >= low, got ...``.
    """
    if not is_int(value) or value < low:
        raise InvalidArgumentError(f"`{name}` must be an integer >= {low}, got {value!r}.")
    return int(value)


def positive_real(name: str, value: Any) -> float:
    """``value`` as a ``float`` when it is a finite real number ``> 0``."""
    if not is_real(value) or not value > 0:
        raise InvalidArgumentError(f"`{name}` must be a finite number > 0, got {value!r}.")
    return float(value)


def unit_interval(name: str, value: Any, *, open_low: bool = True, open_high: bool = False) -> float:
    """``value`` as a ``float`` when it lies in the unit interval.

    Parameters
    ----------
    open_low, open_high : bool
        Whether 0, respectively 1, are excluded (default: ``(0, 1]``).
    """
    ok = is_real(value)
    if ok:
        ok = (value > 0 if open_low else value >= 0) and (value < 1 if open_high else value <= 1)
    if not ok:
        lo, hi = "(" if open_low else "[", ")" if open_high else "]"
        raise InvalidArgumentError(f"`{name}` must lie in {lo}0, 1{hi}, got {value!r}.")
    return float(value)
