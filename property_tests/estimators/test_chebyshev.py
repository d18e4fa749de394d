"""The TV Chebyshev radius LP (SPEC section 5) against closed forms, grid search and a plain LP."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from estimators.chebyshev import tv_chebyshev_radius
from icsmdp_theory.errors import InvalidArgumentError
from property_tests.estimators import full_lp_radius


def _tv(p, q):
    return 0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum(axis=-1)


def _check_certificate(laws, res, tol):
    """The centre is a probability law achieving the radius; the bracket is valid and tight."""
    assert res.center.min() >= 0 and abs(res.center.sum() - 1) <= 1e-12
    assert abs(_tv(laws, res.center).max() - res.radius) <= 1e-12
    assert res.lower_bound <= res.radius + 1e-12
    assert res.radius - res.lower_bound <= tol


@pytest.mark.parametrize("seed", range(8))
def test_two_laws_radius_is_half_their_distance(seed):
    rng = np.random.default_rng(seed)
    K = int(rng.integers(2, 90))                       # also crosses the block-merging size
    alpha = rng.choice([0.1, 1.0])
    p, q = rng.dirichlet(np.full(K, alpha), size=2)
    res = tv_chebyshev_radius([p, q], tol=1e-10)
    assert res.success
    assert abs(res.radius - _tv(p, q) / 2) <= 1e-9
    assert res.lower_bound <= _tv(p, q) / 2 + 1e-12      # the certificate never overstates
    _check_certificate([p, q], res, 1e-10)


def test_sub_probability_laws_count_the_missing_mass():
    p, q = np.array([0.5, 0.3]), np.array([0.2, 0.6])   # masses 0.8 and 0.8 (truncated)
    res = tv_chebyshev_radius([p, q], tol=1e-12)
    # any probability law q on 2 points is at TV >= (0.2 + |...|)/2 from each; the optimum is
    # the midpoint completed to mass 1: brute force on a fine grid
    grid = np.linspace(0, 1, 200001)
    best = min(max(_tv(p, [g, 1 - g]), _tv(q, [g, 1 - g])) for g in grid[::50])
    assert abs(res.radius - best) <= 1e-3 and res.radius <= best + 1e-12


def _simplex_grid(n):
    a, b = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    keep = a + b <= n
    a, b = a[keep], b[keep]
    return np.stack([a, b, n - a - b], axis=1) / n


@pytest.mark.parametrize("seed", range(6))
def test_three_point_support_against_grid_search(seed):
    rng = np.random.default_rng(10 + seed)
    laws = rng.dirichlet(np.full(3, 0.7), size=int(rng.integers(2, 7)))
    n = 400
    grid = _simplex_grid(n)
    worst = _tv(laws[None, :, :], grid[:, None, :]).max(axis=1)
    best = worst.min()
    res = tv_chebyshev_radius(laws, tol=1e-10)
    assert res.success
    _check_certificate(laws, res, 1e-10)
    assert res.radius <= best + 1e-10                 # the LP is optimal ...
    assert res.lower_bound <= best + 1e-12
    assert res.radius >= best - 2.0 / n               # ... and the grid is within 2/n of it


@pytest.mark.parametrize("seed", range(4))
def test_dual_certificate_is_the_weighted_minimum(seed):
    # g(lambda) = min over centres of sum_s lambda_s TV(p_s, q): checked on a simplex grid
    from estimators.chebyshev import _dual_bound  # the certificate itself is under test
    rng = np.random.default_rng(30 + seed)
    laws = rng.dirichlet(np.full(3, 0.8), size=4) * rng.uniform(0.9, 1.0, size=(4, 1))
    lam = rng.dirichlet(np.ones(4))
    c = 0.5 * (1 - laws.sum(axis=1))
    n = 400
    grid = _simplex_grid(n)
    weighted = (_tv(laws[None, :, :], grid[:, None, :]) * lam).sum(axis=1).min()
    g = _dual_bound(laws, c, lam)
    assert g <= weighted + 1e-12 and g >= weighted - 2.0 / n


@pytest.mark.parametrize("seed", range(3))
def test_long_support_with_block_merging_matches_the_plain_lp(seed):
    rng = np.random.default_rng(20 + seed)
    n, num_o, T = 9, 3, 40                             # K = 120 > 64: blocks are merged and split
    decay = rng.uniform(0.5, 0.85, size=(n, 1, 1))
    mix = rng.dirichlet(np.ones(num_o), size=n)[:, :, None]
    laws = (mix * (1 - decay) * decay ** np.arange(T)[None, None, :]).reshape(n, -1)
    laws += 0.02 * rng.dirichlet(np.ones(num_o * T), size=n)
    laws /= laws.sum(axis=1, keepdims=True) / (1 - 1e-6)   # truncated: mass 1 - 1e-6
    blocks = np.repeat(np.arange(num_o), T) * 100 + np.minimum(np.arange(num_o * T) % T, 7)
    res = tv_chebyshev_radius(laws, tol=1e-9, blocks=blocks)
    assert res.success and res.support_size == num_o * T
    _check_certificate(laws, res, 1e-9)
    ref = full_lp_radius(laws)
    assert abs(res.radius - ref) <= 1e-8 and res.lower_bound <= ref + 1e-9


def test_duplicates_and_empty_support_points_are_removed():
    rng = np.random.default_rng(4)
    base = rng.dirichlet(np.ones(5), size=4)
    laws = np.zeros((8, 7))
    laws[:, [0, 2, 3, 5, 6]] = np.vstack([base, base])
    res = tv_chebyshev_radius(laws)
    ref = tv_chebyshev_radius(base)
    assert res.num_distinct_laws == 4 and res.support_size == 5
    assert abs(res.radius - ref.radius) <= 1e-12
    assert res.center[[1, 4]].tolist() == [0.0, 0.0]
    single = tv_chebyshev_radius(np.vstack([base[:1]] * 3))
    assert single.radius == 0.0 and single.lp_solves == 0


@pytest.mark.parametrize("laws, match", [
    ([[0.5, 0.5, 0.5]], "total mass <= 1"),
    ([[-0.1, 1.1]], "non-negative"),
    ([1.0, 0.0], "shape"),
])
def test_bad_laws_are_rejected(laws, match):
    with pytest.raises(InvalidArgumentError, match=match):
        tv_chebyshev_radius(laws)
