"""Run records: files, greedy policies and their exact values (SPEC section 7).

The exact value of a decentralized policy is checked against a dense
evaluation written here from the option reduction alone:
``V(f, i) = R_i(y, c) + [c != STOP] sum_y' D_i(y'|y) V(f[y -> y'], c)`` with
``c = pi_i(phi_i(m, l_i))``, solved with ``numpy.linalg.solve``.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from icsmdp_theory.epoch import initial_epoch_law
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.examples import load_example
from icsmdp_theory.generators import random_icsmdp
from icsmdp_theory.options import option_reduction
from solvers.api import solve
from solvers.icq import ICQ, FixedBehavior
from solvers.records import (RUN_FORMAT, cells_from_epoch_q, epoch_policy, evaluate_greedy_policies,
                             greedy_cell_policies, load_run, save_run)


def _dense_policy_value(model, cell_policy):
    """Independent exact value of a decentralized policy over epoch states ``s = f*N + i``."""
    N = model.num_agents
    shape = (model.num_latent, model.num_interface) + model.num_private
    F = model.num_full_states
    offs = np.concatenate([[0], np.cumsum(model.num_observations)])
    A = np.eye(F * N)
    b = np.zeros(F * N)
    for f in range(F):
        x, m, *ls = np.unravel_index(f, shape)
        for i, ag in enumerate(model.agents):
            red = option_reduction(model, i)
            c = int(cell_policy[offs[i] + ag.observation[m, ls[i]]])
            y = model.local_index(i, x, m, ls[i])
            s = f * N + i
            b[s] = red.option_reward()[y, c]
            if c == N:
                continue
            D = red.apply_end_kernel(np.eye(red.num_local_states))[y]
            for y2 in np.flatnonzero(D):
                x2, m2, l2 = model.local_decode(i, y2)
                ls2 = list(ls)
                ls2[i] = l2
                f2 = np.ravel_multi_index((x2, m2, *ls2), shape)
                A[s, f2 * N + c] -= D[y2]
    return np.linalg.solve(A, b)


def _random_q(model, rng, S):
    n = sum(model.num_observations)
    return rng.standard_normal((S, n, model.num_successors))


def test_greedy_policy_values_are_exact():
    model = random_icsmdp(8, num_agents=2, num_latent=2, num_interface=3, num_private=(1, 2),
                          observation="random", stop_admissible=True)
    rng = np.random.default_rng(0)
    q = _random_q(model, rng, 6)
    q[1] = q[0]  # duplicate policies are evaluated once
    ev = evaluate_greedy_policies(model, q)
    assert ev.iterations <= 5
    cell_adm = np.array([a.successors for a in model.agents])[
        np.repeat(np.arange(model.num_agents), model.num_observations)]
    rho0 = initial_epoch_law(model).reshape(-1)
    for s in range(6):
        pol = ev.policies[s]
        assert cell_adm[np.arange(pol.size), pol].all()
        v = _dense_policy_value(model, pol)
        assert np.allclose(ev.values[s], v, rtol=1e-10, atol=1e-10)
        assert ev.v0[s] == pytest.approx(rho0 @ v, rel=1e-10, abs=1e-12)
    # nobody beats the centralized optimum, whose value is attained by some epoch policy
    assert np.all(ev.max_gap >= -1e-8) and np.all(ev.gap_v0 >= -1e-8)


def test_greedy_cell_policies_tie_rule_and_unreached():
    adm = np.array([[True, True, True], [False, True, True], [True, False, True]])
    q = np.array([[[1.0, 1.0 + 5e-11, 0.0], [9.0, 2.0, 2.0], [np.nan, np.nan, np.nan]]])
    pol = greedy_cell_policies(q, adm)
    assert pol.tolist() == [[0, 1, 0]]  # tie -> lowest; inadmissible 9 ignored; all-nan -> first


def test_epoch_policy_maps_observations():
    model = load_example("tiny-handoff")  # planner: m0 -> o0, m1/m2 -> o1; checker injective
    sigma = epoch_policy(model, np.array([1, 2, 0, 2, 2]))
    assert sigma.tolist() == [[1, 0], [2, 2], [2, 2]]
    with pytest.raises(InvalidArgumentError, match="`cell_policy`"):
        epoch_policy(model, np.array([1, 2]))


def test_cells_from_epoch_q_refuses_aliased_maps():
    model = load_example("tiny-handoff")
    q = solve(__import__("solvers").ValueIteration(), model).q
    with pytest.raises(InvalidArgumentError, match="not a function of the observation cell"):
        cells_from_epoch_q(model, q)
    inj = model.with_observation([[[0], [1], [2]], [[0], [1], [2]]])
    cells = cells_from_epoch_q(inj, solve(__import__("solvers").ValueIteration(), inj).q)
    assert cells.shape == (6, 3)


@pytest.mark.parametrize("learner", ["tabular", "mlp"])
def test_save_load_round_trip(tmp_path, learner):
    model = load_example("tiny-handoff")
    rec = solve(ICQ(learner=learner, updates=200, seeds=3, hidden=(4, 4), log_messages=True,
                    checkpoints=(0, 50), behavior=FixedBehavior()), model)
    npz, js = save_run(rec, tmp_path / "run")
    assert npz.name == "run.npz" and js.name == "run.json"
    back = load_run(tmp_path / "run.npz")
    for f in ("instance", "learner", "gamma", "num_agents", "num_observations", "status",
              "success", "message", "iterations", "base_seed"):
        assert getattr(back, f) == getattr(rec, f), f
    for f in ("checkpoints", "q", "admissible", "seeds", "reached", "updates", "primitive_steps",
              "episodes", "truncations", "checkpoint_seconds", "eps0_value", "eps0_grad",
              "theta_distance"):
        assert np.array_equal(getattr(back, f), getattr(rec, f), equal_nan=True), f
    for k in rec.messages:
        assert np.array_equal(back.messages[k], rec.messages[k])
    assert len(back.theta) == len(rec.theta)
    for a, b in zip(back.theta, rec.theta):
        assert np.array_equal(a, b)
    assert back.settings == json.loads(json.dumps(rec.settings))
    # the greedy values of a loaded record are those of the original
    e1, e2 = evaluate_greedy_policies(model, rec), evaluate_greedy_policies(model, back)
    assert np.array_equal(e1.values, e2.values)


def test_external_minimal_record_loads(tmp_path):
    # what an external IC-Q implementation must write: the required keys only
    q = np.full((2, 4, 5, 3), np.nan)
    q[:, :, :, 2] = 1.0
    np.savez(tmp_path / "ext.npz", checkpoints=np.array([10, 20]), q=q,
             admissible=np.array([[False, True, True], [True, False, True]]))
    (tmp_path / "ext.json").write_text(json.dumps({
        "format": RUN_FORMAT, "instance": "tiny-handoff", "learner": "external",
        "gamma": 0.9, "num_agents": 2, "num_observations": [2, 3]}))
    rec = load_run(tmp_path / "ext")
    assert rec.num_seeds == 4 and rec.seeds.tolist() == [0, 1, 2, 3]
    assert rec.reached.all() and rec.status == "completed"
    ev = evaluate_greedy_policies(load_example("tiny-handoff"), rec)
    assert np.all(ev.policies == 2)  # STOP everywhere


def test_load_run_rejects_bad_files(tmp_path):
    with pytest.raises(InvalidArgumentError, match="file not found"):
        load_run(tmp_path / "none")
    np.savez(tmp_path / "bad.npz", checkpoints=np.array([1]), q=np.zeros((1, 1, 4, 3)),
             admissible=np.ones((2, 3), bool))
    meta = {"format": RUN_FORMAT, "instance": "x", "learner": "y", "gamma": 0.9,
            "num_agents": 2, "num_observations": [2, 3]}
    (tmp_path / "bad.json").write_text(json.dumps(meta))
    with pytest.raises(InvalidArgumentError, match=r"`q` must have shape \(1, S, 5, 3\)"):
        load_run(tmp_path / "bad")
    (tmp_path / "bad.json").write_text(json.dumps({**meta, "format": "other"}))
    with pytest.raises(InvalidArgumentError, match="`format`"):
        load_run(tmp_path / "bad")
    (tmp_path / "bad.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "gamma"}))
    with pytest.raises(InvalidArgumentError, match="missing key `gamma`"):
        load_run(tmp_path / "bad")


def test_evaluation_refuses_a_foreign_record():
    rec = solve(ICQ(updates=20, seeds=1), load_example("tiny-handoff"))
    with pytest.raises(InvalidArgumentError, match="observation counts"):
        evaluate_greedy_policies(load_example("workflow"), rec)
