"""Minimax gaps (SPEC section 5): the TV Chebyshev radius LP against closed forms and brute force."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from estimators.ais import ais_smdp
from estimators.minimax import minimax_gaps, tv_chebyshev_radius
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.generators import random_icsmdp
from property_tests.estimators import dense_reduction, full_epoch_states


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
    from estimators.minimax import _dual_bound
    rng = np.random.default_rng(30 + seed)
    laws = rng.dirichlet(np.full(3, 0.8), size=4) * rng.uniform(0.9, 1.0, size=(4, 1))
    lam = rng.dirichlet(np.ones(4))
    c = 0.5 * (1 - laws.sum(axis=1))
    n = 400
    grid = _simplex_grid(n)
    weighted = (_tv(laws[None, :, :], grid[:, None, :]) * lam).sum(axis=1).min()
    g = _dual_bound(laws, c, lam)
    assert g <= weighted + 1e-12 and g >= weighted - 2.0 / n


def _full_lp_radius(laws):
    """The SPEC's LP written plainly: u_sk >= |p_sk - q_k|, 0.5 sum_k u_sk <= t, sum q = 1."""
    n, K = laws.shape
    nv = K + n * K + 1
    r = np.arange(n * K)
    s, k = np.divmod(r, K)
    rows = np.concatenate([r, r, n * K + r, n * K + r, 2 * n * K + s, 2 * n * K + np.arange(n)])
    cols = np.concatenate([k, K + r, k, K + r, K + r, np.full(n, nv - 1)])
    vals = np.concatenate([-np.ones(n * K), -np.ones(n * K), np.ones(n * K), -np.ones(n * K),
                           0.5 * np.ones(n * K), -np.ones(n)])
    A = sp.csr_array((vals, (rows, cols)), shape=(2 * n * K + n, nv))
    b = np.concatenate([-laws.ravel(), laws.ravel(), np.zeros(n)])
    c = np.zeros(nv)
    c[-1] = 1
    Aeq = np.zeros((1, nv))
    Aeq[0, :K] = 1
    # HiGHS's default feasibility tolerance (1e-7) leaves errors of that order in the value
    res = linprog(c, A_ub=A, b_ub=b, A_eq=Aeq, b_eq=[1.0], bounds=(0, None), method="highs",
                  options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10})
    return res.fun


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
    ref = _full_lp_radius(laws)
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


def test_minimax_gaps_against_brute_force():
    model = random_icsmdp(11, num_agents=2, num_latent=2, num_interface=3, num_private=(2, 1),
                          num_actions=2, observation="random", end_probability=(0.5, 1.0),
                          successor_density=1.0)
    mg = minimax_gaps(model, tol=1e-10)
    assert mg.success
    ais = ais_smdp(model)
    T = max(law.shape[2] for per in ais.duration_law for law in per if law is not None)
    dense = [dense_reduction(model, i, T) for i in range(model.num_agents)]
    states = list(full_epoch_states(model))
    nM = model.num_interface
    eps_cells, delta_cells = [], []
    for i, agent in enumerate(model.agents):
        nL = agent.num_private
        for o in range(agent.num_observations):
            members = [(x, m, ls) for x, m, ls in states if agent.observation[m, ls[i]] == o]
            ys = [(x * nM + m) * nL + ls[i] for x, m, ls in members]
            adm = np.flatnonzero(agent.successors)
            R = dense[i]["R"][ys][:, adm]
            eps_cells.append(0.5 * (R.max(axis=0) - R.min(axis=0)).max())
            radii = []
            for j in adm[adm < model.num_agents]:
                nOj = model.agents[j].num_observations
                laws = []
                for (x, m, ls), y in zip(members, ys):
                    law = np.zeros((nOj, T))
                    for y2 in range(dense[i]["D"].shape[1]):
                        xm2, l2 = divmod(y2, nL)
                        lj = l2 if j == i else ls[j]
                        law[model.agents[j].observation[xm2 % nM, lj]] += dense[i]["P"][:, y, y2]
                    laws.append(law.ravel())
                radii.append(_full_lp_radius(np.array(laws)))
            delta_cells.append(max(radii, default=0.0))
    np.testing.assert_allclose(mg.cell_epsilon, eps_cells, atol=1e-12)
    np.testing.assert_allclose(mg.cell_delta, delta_cells, atol=1e-8)
    assert mg.epsilon == pytest.approx(max(eps_cells), abs=1e-12)
    assert mg.delta == pytest.approx(max(delta_cells), abs=1e-8)
    assert mg.delta_lower <= mg.delta <= mg.delta_lower + 1e-10
