"""Tangent features, the spectrum of ``Sigma_mu`` and ``eps_app`` against brute force (SPEC section 8).

References: finite differences of the network output; the explicit
parameter-space matrix ``Sigma = sum_j mu_j g_j g_j^T`` (tiny networks only);
vertex enumeration of the sup-norm linear program; ``numpy.linalg.lstsq``
for the min-norm interpolant; a fine grid over the trust-region disk.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from estimators.tangent import (feature_spectrum, gram_matrix, linear_approximation_error,
                                mu_on_cells, run_tangent_report, tangent_approximation_error,
                                tangent_features)
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.examples import load_example
from solvers.approximators import MLPQ, mlp_init, mlp_values


def _fd(est, theta, h=1e-6):
    J = np.empty((est.num_observations, est.num_successors, theta.size))
    for p in range(theta.size):
        e = np.zeros_like(theta)
        e[p] = h
        J[:, :, p] = (np.nan_to_num(est.values_at(theta + e)) - np.nan_to_num(est.values_at(theta - e))) / (2 * h)
    return J


def _tiny_mlps(seed=0, hidden=(3, 2)):
    rng = np.random.default_rng(seed)
    adm = np.array([[True, True, False], [True, False, True]])
    ests, th0 = [], []
    for i, nO in enumerate((2, 3)):
        th = mlp_init(rng, nO, hidden, 3) + 0.05 * rng.standard_normal(
            sum(a * b + b for a, b in zip((nO,) + hidden, hidden + (3,))))
        ests.append(MLPQ(1, nO, adm[i], theta0=th, hidden=hidden))
        th0.append(th)
    return ests, th0, adm


def test_mlp_tangent_features_match_finite_differences():
    ests, th0, adm = _tiny_mlps()
    for est, th in zip(ests, th0):
        g0 = tangent_features(est, th)
        assert np.allclose(g0, _fd(est, th) * est.admissible[None, :, None], rtol=1e-6, atol=1e-7)
        assert np.all(g0[:, ~est.admissible] == 0)


def test_gram_route_spectrum_equals_parameter_space_matrix():
    ests, th0, adm = _tiny_mlps(1)
    blocks = [tangent_features(e, t) for e, t in zip(ests, th0)]
    rng = np.random.default_rng(2)
    mu = rng.random((5, 3)) * np.repeat(adm, (2, 3), axis=0)
    mu[0, 0] = 0.0  # a pair that is never sampled
    mu /= mu.sum()
    spec = feature_spectrum(blocks, mu, adm)
    # explicit Sigma over the concatenated parameter vector (block diagonal by agent)
    P = [b.shape[2] for b in blocks]
    Sigma = np.zeros((sum(P), sum(P)))
    cell = 0
    for i, b in enumerate(blocks):
        off = sum(P[:i])
        for o in range(b.shape[0]):
            for c in np.flatnonzero(adm[i]):
                g = np.zeros(sum(P))
                g[off:off + P[i]] = b[o, c]
                Sigma += mu[cell + o, c] * np.outer(g, g)
        cell += b.shape[0]
    ev = np.linalg.eigvalsh(Sigma)
    nz = ev[ev > 1e-12 * ev.max()]
    assert spec.lambda_max == pytest.approx(ev.max(), rel=1e-10)
    assert spec.lambda_0 == pytest.approx(nz.min(), rel=1e-8)
    assert spec.rank == nz.size
    top = np.sort(spec.eigenvalues[spec.eigenvalues > spec.tolerance])
    assert np.allclose(top, np.sort(nz), rtol=1e-8)


def test_lambda_0_skips_null_directions():
    # features psi(o, c') in R^2 all proportional to (1, 1): rank 1
    adm = np.array([[True, True]])
    psi = np.array([[[1.0, 1.0], [2.0, 2.0]], [[3.0, 3.0], [0.5, 0.5]]])
    mu = np.full((2, 2), 0.25)
    spec = feature_spectrum([psi], mu, adm)
    # Sigma = 0.25 * sum_j a_j^2 * [[1,1],[1,1]]: eigenvalues 0 and 2 * 0.25 * sum_j a_j^2
    assert spec.rank == 1
    assert spec.lambda_0 == pytest.approx(2 * 0.25 * (1 + 4 + 9 + 0.25), rel=1e-12)
    assert spec.lambda_max == spec.lambda_0
    assert gram_matrix([psi], mu, adm).shape == (4, 4)


def _lp_vertex_brute_force(A, q):
    """min_x ||A x - q||_inf by enumerating vertices of the LP in (x, t)."""
    n, d = A.shape
    rows = np.vstack([np.hstack([A, -np.ones((n, 1))]), np.hstack([-A, -np.ones((n, 1))])])
    rhs = np.concatenate([q, -q])
    best = np.inf
    for act in itertools.combinations(range(2 * n), d + 1):
        M = rows[list(act)]
        if abs(np.linalg.det(M)) < 1e-12:
            continue
        z = np.linalg.solve(M, rhs[list(act)])
        if np.all(rows @ z <= rhs + 1e-9):
            best = min(best, z[-1])
    return best


@pytest.mark.parametrize("seed", range(4))
def test_linear_eps_app_lp_matches_vertex_enumeration(seed):
    rng = np.random.default_rng(seed)
    adm = np.array([[True, False, True], [True, True, False]])
    feats = [rng.standard_normal((2, 3, 2)), rng.standard_normal((3, 3, 2))]
    q = rng.standard_normal((5, 3)) * 2
    res = linear_approximation_error(feats, q, adm)
    expect = []
    cell = 0
    for i, f in enumerate(feats):
        A = f[:, adm[i], :].reshape(-1, 2)
        t = q[cell:cell + f.shape[0]][:, adm[i]].reshape(-1)
        expect.append(_lp_vertex_brute_force(A, t))
        cell += f.shape[0]
        # the returned theta attains the value
        assert np.abs(A @ res.theta[i] - t).max() == pytest.approx(res.sup_error[i], abs=1e-9)
    assert np.allclose(res.sup_error, expect, atol=1e-8)
    assert res.eps_app == pytest.approx(max(expect) ** 2, abs=1e-8)


def test_tangent_min_norm_interpolant_matches_lstsq():
    ests, th0, adm = _tiny_mlps(3, hidden=(6, 5))
    blocks = [tangent_features(e, t) for e, t in zip(ests, th0)]
    q0 = np.concatenate([e.values_at(t) for e, t in zip(ests, th0)])
    rng = np.random.default_rng(4)
    target = q0 + rng.standard_normal(q0.shape) * 0.3
    res = tangent_approximation_error(blocks, q0, target, adm, omega=None)
    cell = 0
    for i, b in enumerate(blocks):
        G = b[:, adm[i]].reshape(-1, b.shape[2])
        r = (target - q0)[cell:cell + b.shape[0]][:, adm[i]].reshape(-1)
        x = np.linalg.lstsq(G, r, rcond=None)[0]  # min-norm solution (full row rank here)
        assert res.interpolates[i]
        assert res.min_norm[i] == pytest.approx(np.linalg.norm(x), rel=1e-8)
        assert np.allclose(res.delta[i], x, atol=1e-8)
        cell += b.shape[0]
    assert res.eps_app < 1e-18
    big = tangent_approximation_error(blocks, q0, target, adm, omega=10 * res.min_norm.max())
    assert big.within_ball.all() and big.eps_app < 1e-18


def test_constrained_tangent_fit_matches_disk_grid():
    # one agent, two parameters, three pairs: min ||G d - r||_inf over ||d|| <= omega
    adm = np.array([[True, True, True]])
    G = np.array([[1.0, 0.2], [0.3, -1.0], [0.7, 0.7]])
    g0 = G.reshape(1, 3, 2)
    r = np.array([2.0, -1.5, 0.4])
    omega = 0.8
    res = tangent_approximation_error([g0], np.zeros((1, 3)), r[None, :], adm, omega=omega)
    assert not res.within_ball[0]
    assert np.linalg.norm(res.delta[0]) <= omega * (1 + 1e-9)
    assert np.abs(G @ res.delta[0] - r).max() == pytest.approx(res.sup_error[0], abs=1e-12)
    rad = np.linspace(0, omega, 400)
    ang = np.linspace(0, 2 * np.pi, 1600)
    pts = np.stack([np.outer(rad, np.cos(ang)).ravel(), np.outer(rad, np.sin(ang)).ravel()], 1)
    vals = np.abs(pts @ G.T - r).max(axis=1)
    L = np.linalg.norm(G, axis=1).max()
    h = max(omega / 399, omega * 2 * np.pi / 1600)
    assert vals.min() - L * h <= res.sup_error[0] <= vals.min() + 1e-9
    assert res.unconstrained_sup_error[0] <= res.sup_error[0] + 1e-12


def test_mu_on_cells_and_argument_checks():
    model = load_example("tiny-handoff")
    mu_epoch = np.arange(18, dtype=float).reshape(3, 2, 3)
    cells = mu_on_cells(model, mu_epoch)
    # tiny-handoff cells: planner m0 -> 0, m1/m2 -> 1; checker m -> 2 + m
    assert np.array_equal(cells[1], mu_epoch[1, 0] + mu_epoch[2, 0])
    assert np.array_equal(cells[2:], mu_epoch[:, 1])
    with pytest.raises(InvalidArgumentError, match="`mu`"):
        feature_spectrum([np.zeros((2, 3, 1))], np.zeros((3, 3)), np.ones((1, 3), bool))
    with pytest.raises(InvalidArgumentError, match="`omega`"):
        tangent_approximation_error([np.zeros((1, 3, 1))], np.zeros((1, 3)), np.zeros((1, 3)),
                                    np.ones((1, 3), bool), omega=0.0)


def test_run_tangent_report_of_an_mlp_run():
    from solvers.api import solve
    from solvers.icq import ICQ, FixedBehavior
    model = load_example("tiny-handoff")
    rec = solve(ICQ(learner="mlp", updates=300, seeds=2, hidden=(8, 8), behavior=FixedBehavior(),
                    checkpoints=(0, 100, 300)), model)
    assert rec.success
    assert np.all(rec.eps0_value[0] == 0) and np.all(rec.eps0_grad[0] == 0)
    assert np.all(rec.eps0_value[-1] > 0)
    q_target = np.nan_to_num(rec.q[-1, 0])
    mu = np.where(rec.cell_admissible, 1.0, 0.0)
    mu /= mu.sum()
    rep = run_tangent_report(model, rec, q_target=q_target, mu=mu)
    assert rep.spectrum.lambda_max >= rep.spectrum.lambda_0 > 0
    assert rep.eps0_value == pytest.approx(float(np.nanmax(rec.eps0_value)))
    # eps_0 recorded along the run equals |Q - Qbar| recomputed from the saved parameters
    est = MLPQ(1, 2, rec.admissible[0], theta0=rec.theta0[0][0], hidden=(8, 8))
    th, t0 = rec.theta[0][0], rec.theta0[0][0]
    qbar = est.values_at(t0) + tangent_features(est, t0) @ (th - t0)
    gap = np.nanmax(np.abs(est.values_at(th) - qbar))
    assert gap <= rec.eps0_value[-1, 0] + 1e-12
    assert np.allclose(mlp_values(th, np.eye(2), (8, 8), 3)[:, rec.admissible[0]],
                       rec.q[-1, 0, :2][:, rec.admissible[0]], rtol=1e-12, atol=1e-12)
