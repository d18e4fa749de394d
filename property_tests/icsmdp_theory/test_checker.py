"""The Theorem 1 checker on run records with known answers."""
import dataclasses

import numpy as np
import pytest

from estimators.checker import check_run, lhs_per_seed
from icsmdp_theory.generators import NumpyChoices, draw_icsmdp
from icsmdp_theory.errors import InvalidArgumentError

T = np.array([100, 200, 400, 800, 1600, 3200, 6400.0])


@pytest.fixture(scope="module")
def setup():
    from icsmdp_theory.cells import cell_of_epoch_states
    from estimators.gaps import gap_report
    from estimators.stationary import mu, stationary_law
    from solvers import ModifiedPolicyIteration, solve
    from solvers.icq import ICQ, FixedBehavior
    model = draw_icsmdp(NumpyChoices(5), observation="mod", latent=1, agents=2, interface=4)
    template = solve(ICQ(updates=200, seeds=2, behavior=FixedBehavior(), checkpoints=(100, 200)),
                     model)
    law = stationary_law(model)
    w = mu(model, law.law)
    oracle = solve(ModifiedPolicyIteration(tol=1e-12), model)
    rep = gap_report(model, reference="stationary", stationary_law=law, minimax=False)
    cells = cell_of_epoch_states(model)
    return dict(model=model, template=template, mu=w, q_star=oracle.q, q_hat=rep.q_hat, cells=cells)


def _record(setup, snapshots):
    """A record with the given (K, S, cells, C) snapshots at checkpoints T."""
    K, S = snapshots.shape[:2]
    t = setup["template"]
    return dataclasses.replace(t, checkpoints=T.astype(int), q=snapshots,
                               seeds=np.arange(S), reached=np.ones((K, S), bool))


def _lhs(setup, q_cells):
    """Independent lhs: loop over epoch states."""
    model, w, qs, cells = setup["model"], setup["mu"], setup["q_star"], setup["cells"]
    N, C = model.num_agents, model.num_successors
    total = 0.0
    for f in range(cells.shape[0]):
        for i in range(N):
            for c in range(C):
                if model.agents[i].successors[c]:
                    total += w[f, i, c] * (q_cells[cells[f, i], c] - qs[f * N + i, c]) ** 2
    return total


def test_lhs_matches_a_loop_over_states(setup):
    rng = np.random.default_rng(0)
    q = rng.normal(size=(len(T), 3) + setup["q_hat"].shape)
    L = lhs_per_seed(setup["model"], _record(setup, q), setup["q_star"], setup["mu"])
    for k in (0, 3):
        for s in range(3):
            assert L[s, k] == pytest.approx(_lhs(setup, q[k, s]), rel=1e-12)


def _orth_record(setup, excess):
    """Snapshots ``Q_hat* + a v`` with ``v`` mu-orthogonal to ``Q_hat* o phi - Q*``, so that
    seed ``s`` at checkpoint ``k`` has lhs exactly ``floor + excess[s, k]``."""
    model, w, qs, cells = setup["model"], setup["mu"], setup["q_star"], setup["cells"]
    N = model.num_agents
    qh = np.nan_to_num(setup["q_hat"])
    adm = ~np.isnan(setup["q_hat"])
    g = np.zeros_like(qh)   # g(cell, c') = sum_{s in cell} mu (Q_hat - Q*): the cross-term direction
    for f in range(cells.shape[0]):
        for i in range(N):
            g[cells[f, i]] += w[f, i] * np.nan_to_num(qh[cells[f, i]] - qs[f * N + i])
    u = np.where(adm, np.random.default_rng(1).normal(size=qh.shape), 0.0)
    v = u - (u * g).sum() / (g * g).sum() * g
    norm2 = _lhs(setup, qh + v) - _lhs(setup, qh)   # exact: the cross term vanishes
    assert abs(_lhs(setup, qh + 2 * v) - _lhs(setup, qh) - 4 * norm2) < 1e-9 * (1 + norm2)
    a = np.sqrt(np.asarray(excess) / norm2)          # (S, K)
    return _record(setup, qh[None, None] + a.T[:, :, None, None] * v[None, None])


def test_floor_plus_c_over_T_holds_with_exponent_minus_one(setup):
    c = np.random.default_rng(2).uniform(2.0, 4.0, size=(16, 1))
    rec = _orth_record(setup, c / T[None, :])
    res = check_run(setup["model"], rec)
    floor = _lhs(setup, np.nan_to_num(setup["q_hat"]))
    assert res.floor == pytest.approx(floor, rel=1e-9)
    np.testing.assert_allclose(res.lhs_mean, floor + c.mean() / T, rtol=1e-9)
    dec = res.mixing["decay"]
    assert dec["exponent"] == pytest.approx(-1.0, abs=1e-6)
    assert dec["lower"] <= -1.0 + 1e-6 and dec["upper"] >= -1.0 - 1e-6
    assert res.verdicts["mixing"]["verdict"] == "holds"
    assert res.verdicts["interface:alpha_tight"]["verdict"] == "holds"
    assert res.verdicts["overall"]["verdict"] == "holds" and res.success


def test_record_under_the_interface_term_holds_with_c0_zero(setup):
    rec = _orth_record(setup, np.full((16, T.size), 0.5))   # no decay, but far below 2 alpha^2
    res = check_run(setup["model"], rec)
    assert res.mixing["c0_min"]["alpha_tight"] == 0.0
    assert res.verdicts["mixing"]["verdict"] == "holds"


def test_record_that_stays_above_the_bound_is_violated(setup):
    probe = check_run(setup["model"], _orth_record(setup, np.full((16, T.size), 0.5)))
    excess = probe.interface_term["alpha_tight"] - probe.floor + 1.0   # 1.0 above the bound's floor
    rec = _orth_record(setup, np.full((16, T.size), excess))
    res = check_run(setup["model"], rec)
    assert res.mixing["c0_min"]["alpha_tight"] > 0
    assert res.verdicts["mixing"]["verdict"] == "violated"
    assert res.verdicts["overall"]["verdict"] == "violated" and not res.success


def test_record_below_the_floor_is_violated(setup):
    # the mu-weighted cell means of Q* minimize lhs over cell functions: below Q_hat*'s floor
    model, w, qs, cells = setup["model"], setup["mu"], setup["q_star"], setup["cells"]
    N, C = model.num_agents, model.num_successors
    qproj = np.zeros_like(setup["q_hat"])
    mass = np.zeros_like(qproj)
    for f in range(cells.shape[0]):
        for i in range(N):
            qproj[cells[f, i]] += w[f, i] * np.nan_to_num(qs[f * N + i])
            mass[cells[f, i]] += w[f, i]
    qproj = np.where(mass > 0, qproj / np.where(mass > 0, mass, 1), np.nan_to_num(setup["q_hat"]))
    floor = _lhs(setup, np.nan_to_num(setup["q_hat"]))
    assert _lhs(setup, qproj) < 0.97 * floor  # the cheat really beats the interface floor
    rec = _record(setup, np.broadcast_to(qproj, (len(T), 4) + qproj.shape).copy())
    res = check_run(model, rec)
    assert res.verdicts["interface:alpha_tight"]["verdict"] == "violated"
    assert "below the exact floor" in res.verdicts["interface:alpha_tight"]["reason"]
    assert not res.success


def test_record_for_another_map_is_refused(setup):
    model = setup["model"].with_observation(
        [np.arange(a.observation.size).reshape(a.observation.shape) for a in setup["model"].agents])
    with pytest.raises(InvalidArgumentError, match="observation counts"):
        check_run(model, setup["template"])
