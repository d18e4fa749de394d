"""The exact evaluation of greedy cell policies and the Theorem 1 checker with adaptable agents
(modes, issue 15 item 1, slice 4).

Independent truths, built here from the file arrays alone:

- :class:`~property_tests.estimators.test_gaps_modes.Dense` (per ``(agent, mode)`` dense option
  reductions by ``numpy.linalg.solve``, every full epoch state enumerated): ``V^sigma`` of an epoch
  policy over choices ``j = a*(N+1) + c'`` by fixed-point iteration;
- ``Q*`` from :func:`~property_tests.icsmdp_theory.test_modes.explicit_q` (each mode a separate agent
  copy);
- the epoch chain on full epoch states under the behavior uniform over each agent's admissible
  choices (mode ``a``'s undiscounted end law ``(I - Kbar diag(1-beta))^-1 Kbar diag(beta)``, a STOP
  restarts from ``rho0``), its long-run occupancy from ``rho0`` as the Abel limit
  ``(1 - lam) rho0 (I - lam P)^-1`` (``lam = 1 - 1e-7``; equal to the Cesaro limit SPEC 4 defines,
  also for periodic or reducible chains), ``mu(s, j) = pi(s) / |adm_i|``, and the
  stationary-reference AIS (``R_hat``, ``D_hat`` weighted by ``pi`` within each cell, uniform in a
  cell without mass), ``Q_hat*`` by value iteration, ``epsilon_phi``, ``eta`` and ``alpha_tight``;
- the one-mode model: when every mode has the same internal policy, a record whose ``Q`` repeats the
  one-mode run's values in every mode block must give the one-mode check (``mu`` splits evenly over
  the modes, so every weighted sum is unchanged) and the same greedy policies and values.
"""
import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from estimators.checker import check_run
from estimators.stationary import mu as mu_of, stationary_law
from estimators.tangent import mu_on_cells
from icsmdp_theory.io import instance_from_dict, instance_to_dict
from icsmdp_theory.testing.strategies import icsmdps, icsmdps_with_modes
from property_tests.estimators.test_gaps_modes import Dense, _same_policy_modes
from property_tests.icsmdp_theory.test_modes import explicit_q, modes_doc
from reports.cli import main
from solvers.api import solve
from solvers.icq import ICQ, FixedBehavior
from solvers.records import evaluate_greedy_policies

TOL = 1e-7
#: Abel parameter of the dense occupancy; states below ZERO_MASS count as unvisited.
ABEL = 1.0 - 1e-7
ZERO_MASS = 1e-6


def dense_rho0(model, dense):
    """``rho0[f, i] = rho_XM[x, m] prod_j rho_L[j][l_j] rho_C[i]`` over ``Dense.fulls``."""
    doc = instance_to_dict(model)
    rxm = np.asarray(doc["rho_latent_interface"], float)
    rl = [np.asarray(a["rho_private"], float).reshape(-1) for a in doc["agents"]]
    rc = np.asarray(doc["rho_agent"], float)
    out = np.zeros((dense.F, dense.N))
    for k, f in enumerate(dense.fulls):
        p = rxm[f[0], f[1]] * np.prod([rl[j][f[2 + j]] for j in range(dense.N)])
        out[k] = p * rc
    return out


def greedy_by_hand(q_row, adm_row):
    """Lowest admissible index within 1e-10 of the largest finite admissible value (``nan`` =
    not learned); the lowest admissible index when no admissible value is finite."""
    js = [j for j in range(len(adm_row)) if adm_row[j]]
    finite = [j for j in js if np.isfinite(q_row[j])]
    if not finite:
        return js[0]
    best = max(q_row[j] for j in finite)
    return next(j for j in finite if q_row[j] >= best - 1e-10)


def dense_policy(dense, cell_policy):
    """``sigma[f, i] = pi(cell(f, i))`` flattened over ``s = f*N + i``."""
    return np.array([cell_policy[dense.cell(k, i)] for k in range(dense.F) for i in range(dense.N)])


def dense_occupancy(dense, rho0):
    """The long-run occupancy ``pi[f, i]`` of the epoch chain under the uniform choice law."""
    N, S, F = dense.N, dense.S, dense.F
    n = F * N
    P = np.zeros((n, n))
    ends = [[np.linalg.solve(np.eye(Pc.shape[0]) - Pc, Pe) for _, _, Pc, Pe in per]
            for per in dense.red]
    for k in range(F):
        for i in range(N):
            s = k * N + i
            y = dense.local[k, i]
            js = np.flatnonzero(dense.adm[i])
            for j in js:
                a, cn = divmod(int(j), S)
                row = ends[i][a][y] / len(js)
                if cn == N:
                    P[s] += row.sum() * rho0.reshape(-1)
                else:
                    np.add.at(P[s], dense.nxt[i][k] * N + cn, row)
    pi = np.linalg.solve((np.eye(n) - ABEL * P).T, (1 - ABEL) * rho0.reshape(-1))
    pi[pi < ZERO_MASS] = 0.0
    return (pi / pi.sum()).reshape(F, N)


def dense_stationary_ais(dense, pi):
    """``Q_hat*``, ``epsilon_phi``, ``eta`` and ``alpha_tight`` with the reference ``pi`` (SPEC 4-5)."""
    N, S, J, F = dense.N, dense.S, dense.J, dense.F
    nC = int(dense.off[-1])
    cells = np.array([[dense.cell(k, i) for i in range(N)] for k in range(F)])
    mass = np.zeros(nC)
    np.add.at(mass, cells, pi)
    count = np.bincount(cells.reshape(-1), minlength=nC)
    w = np.where(mass[cells] > 0, pi / np.where(mass[cells] > 0, mass[cells], 1), 1.0 / count[cells])
    R_hat, D_hat = np.zeros((nC, J)), np.zeros((nC, J, nC))
    for k in range(F):
        for i in range(N):
            c, y = cells[k, i], dense.local[k, i]
            for a, (R, D, _, _) in enumerate(dense.red[i]):
                for cn in range(S):
                    j = a * S + cn
                    if dense.adm[i, j]:
                        R_hat[c, j] += w[k, i] * R[y, cn]
                        if cn < N:
                            np.add.at(D_hat[c, j], dense.off[cn] + dense.obs[dense.nxt[i][k], cn],
                                      w[k, i] * D[y])
    cadm = np.repeat(dense.adm, dense.nO, axis=0)
    V = np.zeros(nC)
    while True:
        Q = np.where(cadm, R_hat + D_hat @ V, -np.inf)
        Vn = Q.max(axis=1)
        step, V = np.abs(Vn - V).max(), Vn
        if step < 1e-13:
            break
    eps = eta = 0.0
    for k in range(F):
        for i in range(N):
            c, y = cells[k, i], dense.local[k, i]
            for a, (R, D, _, _) in enumerate(dense.red[i]):
                for cn in range(S):
                    j = a * S + cn
                    if not dense.adm[i, j]:
                        continue
                    eps = max(eps, abs(R[y, cn] - R_hat[c, j]))
                    if cn < N:
                        dv = D[y] @ V[dense.off[cn] + dense.obs[dense.nxt[i][k], cn]]
                        eta = max(eta, abs(dv - D_hat[c, j] @ V))
    q_hat = np.where(cadm, Q, np.nan)
    return q_hat, eps, eta, (eps + eta) / (1 - dense.gamma_bar)


# ------------------------------------------------------------------ greedy-policy evaluation
@settings(max_examples=25, deadline=None, database=None)
@given(icsmdps_with_modes(agents=(1, 3), latent=(1, 2), interface=(1, 3), private=(1, 2),
                          actions=(1, 3), modes=(1, 3)),
       st.integers(0, 2**32 - 1))
def test_greedy_evaluation_with_modes_matches_a_dense_evaluation(model, seed):
    dense = Dense(model)
    rng = np.random.default_rng(seed)
    S, n, J = 3, int(dense.off[-1]), dense.J
    q = np.round(rng.normal(size=(S, n, J)), 1)         # rounded: ties between choices
    q[rng.random(q.shape) < 0.2] = np.nan                # not learned
    q[0, 0] = np.nan                                     # a cell with nothing learned
    ev = evaluate_greedy_policies(model, q)
    cadm = np.repeat(dense.adm, dense.nO, axis=0)
    hand = np.array([[greedy_by_hand(q[s, c], cadm[c]) for c in range(n)] for s in range(S)])
    np.testing.assert_array_equal(ev.policies, hand)
    rho0 = dense_rho0(model, dense).reshape(-1)
    v_star = np.nanmax(explicit_q(model), axis=1)
    assert ev.optimal_v0 == pytest.approx(rho0 @ v_star, abs=TOL)
    np.testing.assert_allclose(ev.optimal_values, v_star, atol=TOL)
    for s in range(S):
        values = dense.policy_value(dense_policy(dense, hand[s]))
        np.testing.assert_allclose(ev.values[s], values, atol=1e-6)
        assert ev.v0[s] == pytest.approx(rho0 @ values, abs=1e-6)
        assert ev.max_gap[s] == pytest.approx(np.max(v_star - values), abs=1e-6)
        assert ev.gap_v0[s] >= -1e-8 and np.all(values <= v_star + 1e-6)


def test_greedy_evaluation_with_modes_by_hand():
    """tiny-handoff with the checker's mode ``fast`` (one step m -> m2 at cost 0.3 except at m2,
    where STOP pays 1): the checker choosing (fast, STOP) in every cell is worth -0.3 at m0 and
    m1 and 1 at m2 (one-step invocations); the planner hands to the checker."""
    model = instance_from_dict(modes_doc())
    n, J = sum(model.num_observations), model.num_choices
    q = np.zeros((1, n, J))
    q[0, 2:, model.choice(1, 2)] = 1.0                   # the checker's 3 cells: (fast, STOP)
    ev = evaluate_greedy_policies(model, q)
    assert ev.policies[0, 2:].tolist() == [model.choice(1, 2)] * 3
    assert ev.policies[0, :2].tolist() == [1, 1]         # the planner's first admissible choice
    checker = ev.values[0].reshape(model.num_full_states, 2)[:, 1]   # full states m0, m1, m2
    np.testing.assert_allclose(checker, [-0.3, -0.3, 1.0], atol=1e-12)
    with pytest.raises(Exception, match=r"\(S, 5, 6\)"):
        evaluate_greedy_policies(model, np.zeros((1, 5, 3)))


# ------------------------------------------------------------------ the checker's terms
@settings(max_examples=10, deadline=None, database=None)
@given(icsmdps_with_modes(agents=(1, 2), latent=(1, 2), interface=(1, 3), private=(1, 2),
                          actions=(1, 2), modes=(2, 3)),
       st.integers(0, 1000))
def test_checker_terms_with_modes_match_a_dense_computation(model, seed):
    rec = solve(ICQ(updates=400, seeds=2, checkpoints=(50, 150, 400), seed=seed,
                    behavior=FixedBehavior()), model)
    res = check_run(model, rec)
    dense = Dense(model)
    N, F = dense.N, dense.F
    pi = dense_occupancy(dense, dense_rho0(model, dense))
    nadm = dense.adm.sum(axis=1)
    mu = np.zeros((F * N, dense.J))
    for k in range(F):
        for i in range(N):
            mu[k * N + i, dense.adm[i]] = pi[k, i] / nadm[i]
    q_star = explicit_q(model)
    cells = np.array([dense.cell(k, i) for k in range(F) for i in range(N)])
    adm = ~np.isnan(q_star)
    for kk in range(len(rec.checkpoints)):
        for s in range(rec.num_seeds):
            d = np.where(adm, rec.q[kk, s][cells] - np.where(adm, q_star, 0.0), 0.0)
            want = float(np.sum(mu * d * d))
            assert res.lhs_per_seed[s, kk] == pytest.approx(want, rel=1e-5, abs=1e-9)
    q_hat, eps, eta, alpha = dense_stationary_ais(dense, pi)
    d = np.where(adm, q_hat[cells] - np.where(adm, q_star, 0.0), 0.0)
    assert res.floor == pytest.approx(float(np.sum(mu * d * d)), rel=1e-5, abs=1e-9)
    assert res.alpha["alpha_tight"] == pytest.approx(alpha, rel=1e-5, abs=1e-8)
    assert res.interface_term["alpha_tight"] == pytest.approx(2 * alpha ** 2, rel=1e-4, abs=1e-8)
    # tabular: Sigma_mu is diagonal, mu pushed to the cells' (o, j) pairs
    mc = np.zeros((int(dense.off[-1]), dense.J))
    np.add.at(mc, cells, mu)
    assert res.approximation["lambda_0"] == pytest.approx(mc[mc > 0].min(), rel=1e-5)
    assert res.approximation["lambda_max"] == pytest.approx(mc[mc > 0].max(), rel=1e-5)
    # SPEC 5: max |Q* - Q_hat* o phi| <= alpha_tight, so the floor is below 2 alpha_tight^2
    assert float(np.sum(mu * d * d)) <= 2 * alpha ** 2 + 1e-9


def _tiled(record, model, modes):
    """``record`` (one mode) with every mode block of agent ``i`` holding its values."""
    S, K = model.num_successors, modes.num_modes
    q = np.full(record.q.shape[:3] + (modes.num_choices,), np.nan)
    agent = record.cell_agent
    for a in range(max(K)):
        rows = np.array([K[i] > a for i in agent])
        q[:, :, rows, a * S:(a + 1) * S] = record.q[:, :, rows, :]
    return dataclasses.replace(record, q=q, admissible=modes.choice_admissible)


@settings(max_examples=10, deadline=None, database=None)
@given(icsmdps(agents=(1, 3), latent=(1, 2), interface=(1, 3), private=(1, 2), actions=(1, 2)),
       st.lists(st.integers(1, 3), min_size=3, max_size=3))
def test_identical_modes_check_and_evaluate_like_the_one_mode_model(model, K):
    K = K[:model.num_agents]
    if max(K) == 1:
        K[0] = 2
    modes = _same_policy_modes(model, K)
    one = solve(ICQ(updates=300, seeds=3, checkpoints=(30, 100, 300), behavior=FixedBehavior()),
                model)
    rec = _tiled(one, model, modes)
    r1, r2 = check_run(model, one), check_run(modes, rec)
    np.testing.assert_allclose(r2.lhs_per_seed, r1.lhs_per_seed, rtol=1e-9, atol=1e-12)
    for key in ("lhs_mean", "lhs_lower", "lhs_upper"):
        np.testing.assert_allclose(getattr(r2, key), getattr(r1, key), rtol=1e-9, atol=1e-12)
    assert r2.floor == pytest.approx(r1.floor, rel=1e-7, abs=1e-12)
    for f in r1.alpha:
        assert r2.alpha[f] == pytest.approx(r1.alpha[f], rel=1e-7, abs=1e-10), f
        assert r2.interface_term[f] == pytest.approx(r1.interface_term[f], rel=1e-7, abs=1e-10)
    assert r2.mixing["t_mix"] == r1.mixing["t_mix"]
    assert {k: v["verdict"] for k, v in r2.verdicts.items() if k != "mixing"} == \
        {k: v["verdict"] for k, v in r1.verdicts.items() if k != "mixing"}
    # mu(s, (a, c')) = mu(s, c') / K_i: Sigma_mu's spectrum on the modes' cells
    law = stationary_law(model)
    mc = mu_on_cells(model, mu_of(model, law.law))
    split = mc / np.asarray(K, float)[one.cell_agent][:, None]
    assert r2.approximation["lambda_0"] == pytest.approx(split[split > 0].min(), rel=1e-7)
    assert r2.approximation["lambda_max"] == pytest.approx(split[split > 0].max(), rel=1e-7)
    # the greedy choice is mode 0's copy of the one-mode greedy successor: the same values
    e1, e2 = evaluate_greedy_policies(model, one), evaluate_greedy_policies(modes, rec)
    np.testing.assert_array_equal(e2.policies, e1.policies)
    np.testing.assert_allclose(e2.values, e1.values, atol=1e-9)
    np.testing.assert_allclose(e2.v0, e1.v0, atol=1e-9)


def test_linear_one_hot_with_modes_checks_like_tabular():
    """Linear IC-Q with the default one-hot features over (o, j) is tabular: ``Sigma_mu`` is
    ``diag(mu on cells)`` and ``eps_app = 0``."""
    model = instance_from_dict(modes_doc())
    common = dict(updates=2000, seeds=2, behavior=FixedBehavior())
    tab = check_run(model, solve(ICQ(learner="tabular", **common), model))
    lin = check_run(model, solve(ICQ(learner="linear", **common), model))
    assert lin.approximation["lambda_0"] == pytest.approx(tab.approximation["lambda_0"], rel=1e-9)
    assert lin.approximation["lambda_max"] == pytest.approx(tab.approximation["lambda_max"],
                                                            rel=1e-9)
    assert lin.approximation["eps_app"] == pytest.approx(0.0, abs=1e-9)
    assert lin.floor == tab.floor and lin.alpha == tab.alpha


# ------------------------------------------------------------------ the CLI
def test_cli_run_evaluate_and_check_with_modes(tmp_path, capsys):
    path = tmp_path / "modes.json"
    path.write_text(json.dumps(modes_doc()))
    run = tmp_path / "r"
    argv = ["run", str(path), "--updates", "2000", "--seeds", "2", "--behavior", "uniform",
            "--evaluate", "--out", str(run), "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    model = instance_from_dict(modes_doc())
    dense = Dense(model)
    rho0 = dense_rho0(model, dense).reshape(-1)
    q = np.asarray(doc["q"], float)[-1]                  # (S, n, J), null -> nan
    cadm = np.repeat(dense.adm, dense.nO, axis=0)
    for s in range(q.shape[0]):
        pol = [greedy_by_hand(q[s, c], cadm[c]) for c in range(q.shape[1])]
        v0 = rho0 @ dense.policy_value(dense_policy(dense, pol))
        assert doc["evaluation"]["v0"][s] == pytest.approx(v0, abs=1e-9)
    assert doc["evaluation"]["optimal_v0"] == pytest.approx(0.783871, abs=1e-6)
    assert main(["check", str(path), str(run) + ".npz", "--json"]) in (0, 1)
    chk = json.loads(capsys.readouterr().out)
    res = check_run(model, solve(ICQ(updates=2000, seeds=2, behavior=FixedBehavior()), model))
    assert chk["floor"] == pytest.approx(res.floor, abs=1e-12)
    np.testing.assert_allclose(chk["lhs_mean"], res.lhs_mean, rtol=1e-12)
