"""The shared validators: accepted values, and one located message per failure."""
import numpy as np
import pytest

from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.validation import is_int, is_real, positive_int, positive_real, unit_interval


@pytest.mark.parametrize("value, expected", [(3, True), (np.int64(3), True), (True, False),
                                             (np.bool_(True), False), (3.0, False), ("3", False)])
def test_is_int(value, expected):
    assert is_int(value) is expected


@pytest.mark.parametrize("value, expected", [(0.5, True), (np.float32(2), True), (np.inf, False),
                                             (np.nan, False), (False, False), ("1.0", False)])
def test_is_real(value, expected):
    assert is_real(value) is expected


def test_positive_int_messages():
    assert positive_int("seeds", np.int64(2)) == 2
    with pytest.raises(InvalidArgumentError, match=r"^`seeds` must be an integer >= 1, got 0\.$"):
        positive_int("seeds", 0)
    with pytest.raises(InvalidArgumentError, match=r"`k` must be an integer >= 2, got 1\.5"):
        positive_int("k", 1.5, low=2)


def test_positive_real_and_unit_interval():
    assert positive_real("tol", 1e-8) == 1e-8
    with pytest.raises(InvalidArgumentError, match=r"`tol` must be a finite number > 0"):
        positive_real("tol", float("inf"))
    assert unit_interval("p", 1.0) == 1.0
    assert unit_interval("eps", 0.0, open_low=False) == 0.0
    with pytest.raises(InvalidArgumentError, match=r"`p` must lie in \(0, 1\], got 0"):
        unit_interval("p", 0)
    with pytest.raises(InvalidArgumentError, match=r"`gamma` must lie in \(0, 1\), got 1"):
        unit_interval("gamma", 1, open_high=True)
