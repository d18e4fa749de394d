"""IC-Q on explicit epoch models (SPEC sections 7 and 10): one loop, two environments.

Independent references: IC-Q on the primitive instance (a different simulator,
primitive steps) against IC-Q on its export (seed means compared with a
confidence bound, and bit for bit where both environments consume the same
uniforms); ``Q_hat*`` of the AIS-induced SMDP (:mod:`estimators.ais`) with the
reference law the run samples (the stationary law of the epoch chain under the
run's fixed behavior, :mod:`estimators.stationary`); brute-force intersections
of the states' admissible sets.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from icsmdp_theory.cells import cell_admissible, cell_offsets
from icsmdp_theory.epoch_export import export_epoch
from icsmdp_theory.epoch_level import FITTED_COUNTS, cell_rule
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError, InvalidInstanceError
from icsmdp_theory.examples import load_example
from icsmdp_theory.generators import random_icsmdp
from icsmdp_theory.io import instance_from_dict, instance_to_dict
from solvers.api import PolicyIteration, solve
from solvers.icq import ICQ, EpsilonGreedy, FixedBehavior
from solvers.records import evaluate_greedy_policies, load_run, save_run

ais = pytest.importorskip("estimators.ais")
stationary = pytest.importorskip("estimators.stationary")
tangent = pytest.importorskip("estimators.tangent")


def random_epoch_model(seed: int, *, K: int = 6, N: int = 2, gamma: float = 0.8,
                       classes: int = 3) -> EpochModel:
    """Every ``(k, i)``; ``phi_i(k) = k mod classes``; the states of a cell share one successor
    and otherwise draw their own sets; up to 3 outcomes ``(k', tau <= 3)`` per pair."""
    rng = np.random.default_rng(seed)
    states = np.array([[k, i] for k in range(K) for i in range(N)])
    S, C = len(states), N + 1
    adm = rng.random((S, C)) < 0.5
    common = rng.integers(0, C, size=(N, classes))   # one shared successor per cell
    adm[np.arange(S), common[states[:, 1], states[:, 0] % classes]] = True
    cols = {k: [] for k in ("state", "successor", "next_label", "tau", "prob")}
    for s in range(S):
        for c in np.flatnonzero(adm[s]):
            n_out = int(rng.integers(1, 4))
            if c == N:
                outs = [(-1, t) for t in rng.choice(np.arange(1, 4), size=n_out, replace=False)]
            else:
                cand = [(k, t) for k in range(K) for t in (1, 2, 3)]
                outs = [cand[j] for j in rng.choice(len(cand), size=n_out, replace=False)]
            p = rng.dirichlet(np.ones(n_out))
            for (k2, t), pj in zip(outs, p):
                for key, v in zip(cols, (s, c, k2, t, pj)):
                    cols[key].append(v)
    obs = [np.arange(K) % classes for _ in range(N)]
    return EpochModel(name=f"random-epoch-{seed}", gamma=gamma, agents=[f"a{i}" for i in range(N)],
                      labels=[f"k{k}" for k in range(K)], states=states, admissible=adm,
                      rho0=rng.dirichlet(np.ones(S)), reward=rng.random((S, C)),
                      transitions=cols, observation=obs)


def _heterogeneous_model():
    for seed in range(100):
        m = random_epoch_model(seed)
        cadm = cell_admissible(m)
        offs = cell_offsets(m.num_observations)
        cells = offs[m.state_agent] + m.state_observation
        if (m.admissible != cadm[cells]).any() and m.admissible[:, -1].mean() > 0.3:
            return m
    raise AssertionError("no heterogeneous model found")


def _cell_uniform(model):
    """Uniform over each cell's admissible set: the law FixedBehavior() samples."""
    cadm = cell_admissible(model).astype(float)
    offs = cell_offsets(model.num_observations)
    b = cadm / cadm.sum(axis=1, keepdims=True)
    return [b[offs[i]:offs[i + 1]] for i in range(model.num_agents)]


# ---------------------------------------------------------------- cells
def test_cell_admissible_is_the_intersection_of_the_states_sets():
    for seed in range(5):
        m = random_epoch_model(seed)
        got = cell_admissible(m)
        offs = cell_offsets(m.num_observations)
        for i in range(m.num_agents):
            for o in range(m.num_observations[i]):
                st = [s for s in range(m.num_epoch_states)
                      if m.state_agent[s] == i and m.state_observation[s] == o]
                want = np.logical_and.reduce([m.admissible[s] for s in st])
                assert np.array_equal(got[offs[i] + o], want)


def test_cell_without_a_common_successor_is_an_error():
    m = EpochModel(name="x", gamma=0.5, agents=["a"], labels=["u", "v"], states=[[0, 0], [1, 0]],
                   admissible=[[True, False], [False, True]], rho0=[1.0, 0.0],
                   reward=[[0.0, np.nan], [np.nan, 1.0]],
                   transitions={"state": [0, 1], "successor": [0, 1], "next_label": [1, -1],
                                "tau": [1, 1], "prob": [1.0, 1.0]},
                   observation=[[0, 0]])
    with pytest.raises(InvalidInstanceError, match=r"cell \(agent 0 `a`, observation 0\)"):
        cell_admissible(m)
    with pytest.raises(InvalidInstanceError, match="no admissible successor in common"):
        solve(ICQ(updates=10), m)


# ---------------------------------------------------------------- convergence
def test_tabular_converges_to_q_hat_of_the_sampled_reference_on_an_epoch_model():
    # heterogeneous cells (states of a cell admit different successors), durations 1..3
    m = _heterogeneous_model()
    beh = _cell_uniform(m)
    law = stationary.stationary_law(m, behavior=beh).law
    q_hat = ais.ais_solution(ais.ais_smdp(m, reference=law)).q
    q_unif = ais.ais_solution(ais.ais_smdp(m, reference="uniform")).q
    pairs = tangent.mu_on_cells(m, stationary.mu(m, law, behavior=beh)) > 0.01
    assert pairs.sum() >= 8
    assert np.abs(q_hat - q_unif)[pairs].max() > 0.4   # the reference matters here
    rec = solve(ICQ(updates=8000, seeds=12, behavior=FixedBehavior(), seed=4,
                    checkpoints=(80, 800, 8000), horizon=10 ** 9), m)
    assert rec.success, rec.message
    assert rec.truncations.sum() == 0
    err = np.abs(rec.q - q_hat[None, None])[:, :, pairs].max(axis=2)
    mean = err.mean(axis=1)
    assert mean[0] > mean[1] > mean[2]
    assert err[-1].max() <= 0.25     # |Q_hat*| up to ~2; measured 0.18 (60,000 updates: 0.045)
    assert np.abs(rec.q[-1].mean(axis=0) - q_hat)[pairs].max() <= 0.05   # seed mean: 0.019
    assert (np.abs(rec.q[-1] - q_unif)[:, pairs].max(axis=1) > 0.25).all()
    # entries outside a cell's set are never estimated
    assert np.all(np.isnan(rec.q[:, :, ~cell_admissible(m)]))


def test_choices_stay_in_the_cell_admissible_set():
    m = _heterogeneous_model()
    cadm = cell_admissible(m)
    offs = cell_offsets(m.num_observations)
    for beh in (EpsilonGreedy(epsilon=0.5), FixedBehavior()):
        rec = solve(ICQ(updates=400, seeds=3, behavior=beh, log_messages=True), m)
        msg = rec.messages
        assert cadm[offs[msg["receiver"]] + msg["observation"], msg["successor"]].all()


# ---------------------------------------------------------------- conformance
def test_export_learns_what_the_primitive_instance_learns():
    # same cells; seed means of Q_T agree within a 4.5-sigma bound on every pair
    model = load_example("tiny-handoff")
    e = export_epoch(model)
    kw = dict(updates=1000, seeds=48, behavior=EpsilonGreedy(epsilon=0.3),
              checkpoints=(1000,), horizon=model.horizon)
    qp = solve(ICQ(seed=1, **kw), model).q[-1]
    qe = solve(ICQ(seed=2, **kw), e).q[-1]
    assert np.array_equal(np.isnan(qp), np.isnan(qe))
    ok = ~np.isnan(qp[0])
    a, b = qp[:, ok], qe[:, ok]
    se = np.sqrt(a.var(axis=0, ddof=1) / len(a) + b.var(axis=0, ddof=1) / len(b))
    diff = np.abs(a.mean(axis=0) - b.mean(axis=0))
    assert np.all(diff <= 4.5 * se + 1e-12), (diff, se)
    assert se.max() > 0  # the comparison is not vacuous


def _one_step_deterministic(seed):
    """Invocations of exactly one step, deterministic kernels and rho0: only the choices are random."""
    m = random_icsmdp(seed, num_agents=3, num_interface=5, nnz_per_row=1, end_probability=1.0,
                      stop_admissible=True, observation=3, gamma=0.85, horizon=6)
    doc = instance_to_dict(m)
    doc["rho_latent_interface"] = [[1.0] + [0.0] * 4]
    doc["rho_agent"] = [1.0, 0.0, 0.0]
    return instance_from_dict(doc)


@pytest.mark.parametrize("learner", ["tabular", "linear"])
def test_one_step_deterministic_instance_runs_bit_for_bit_like_its_export(learner):
    # both environments then consume the same uniforms (the choice columns) and
    # messages carry the same (b, tau = 1, R = r): the runs are identical
    model = _one_step_deterministic(3)
    e = export_epoch(model)
    kw = dict(learner=learner, updates=1500, seeds=4, seed=9, behavior=EpsilonGreedy(epsilon=0.4),
              checkpoints=(0, 100, 1500), log_messages=True, horizon=model.horizon)
    rp, re = solve(ICQ(**kw), model), solve(ICQ(**kw), e)
    stops = np.bincount(rp.messages["seed"][rp.messages["sender"] == model.num_agents],
                        minlength=4)
    assert np.all(stops > 0) and np.all(rp.episodes > stops + 1)   # STOP and horizon restarts
    assert np.array_equal(rp.q, re.q, equal_nan=True)
    for f in rp.messages:
        assert np.array_equal(rp.messages[f], re.messages[f]), f
    for f in ("updates", "primitive_steps", "episodes", "truncations"):
        assert np.array_equal(getattr(rp, f), getattr(re, f)), f


# ---------------------------------------------------------------- reproducibility and records
def test_batched_seeds_equal_single_seed_runs_on_an_epoch_model():
    m = _heterogeneous_model()
    kw = dict(updates=500, seed=3, checkpoints=(50, 500), behavior=EpsilonGreedy(epsilon=0.3),
              log_messages=True, horizon=5)
    batch = solve(ICQ(seeds=4, **kw), m)
    assert batch.truncations.sum() > 0
    for k in (0, 3):
        alone = solve(ICQ(seeds=(k,), **kw), m)
        assert np.array_equal(alone.q[:, 0], batch.q[:, k], equal_nan=True)
        mine = batch.messages["seed"] == k
        for f, v in alone.messages.items():
            assert np.array_equal(v, batch.messages[f][mine]), f
    assert batch.settings["horizon"] == 5


def test_epoch_run_record_round_trips_and_loads_strictly(tmp_path):
    m = _heterogeneous_model()
    rec = solve(ICQ(updates=200, seeds=2, checkpoints=(20,)), m)
    assert rec.model_kind == "epoch" and rec.num_epoch_states == m.num_epoch_states
    assert rec.settings["horizon"] == 10_000
    assert np.array_equal(rec.cell_admissible, cell_admissible(m))
    npz, js = save_run(rec, tmp_path / "run")
    back = load_run(tmp_path / "run")
    assert back.model_kind == "epoch" and back.num_epoch_states == m.num_epoch_states
    assert np.array_equal(back.q, rec.q, equal_nan=True)
    assert np.array_equal(back.admissible, rec.admissible)
    # exact value of the learned greedy policies, against the epoch optimum
    ev = evaluate_greedy_policies(m, back)
    assert np.all(ev.gap_v0 >= -1e-9)
    assert ev.optimal_v0 == pytest.approx(float(m.rho0 @ solve(PolicyIteration(tol=1e-12), m).v))
    # strict: a wrong kind, and a per-agent admissible array under `model_kind` "epoch"
    meta = json.loads(js.read_text())
    js.write_text(json.dumps({**meta, "model_kind": "options"}))
    with pytest.raises(InvalidArgumentError, match="`model_kind` must be one of"):
        load_run(tmp_path / "run")
    js.write_text(json.dumps(meta))
    arrays = dict(np.load(npz))
    arrays["admissible"] = arrays["admissible"][:m.num_agents]
    np.savez(npz, **arrays)
    with pytest.raises(InvalidArgumentError, match=r"array `admissible` must have shape"):
        load_run(tmp_path / "run")
    # a primitive model cannot evaluate an epoch run
    with pytest.raises(InvalidArgumentError, match="explicit epoch model"):
        evaluate_greedy_policies(load_example("tiny-handoff"), rec)


def test_fitted_model_with_differing_cells_is_refused_with_the_cell_named():
    # a fitted model's cells follow the union rule: some choice would have no law to simulate
    m = _heterogeneous_model()
    fitted = EpochModel(
        name="fitted", gamma=m.gamma, agents=m.agent_names, labels=m.labels,
        states=np.stack([m.state_label, m.state_agent], axis=1), admissible=m.admissible,
        rho0=m.rho0, reward=m.reward,
        transitions={"state": m.trans_state, "successor": m.trans_successor,
                     "next_label": m.trans_next_label, "tau": m.trans_tau, "prob": m.trans_prob},
        observation=m.observation, counts={"format": FITTED_COUNTS})
    assert cell_rule(fitted) == "union" and cell_rule(m) == "intersection"
    assert (cell_admissible(fitted, rule="union") >= cell_admissible(fitted)).all()
    with pytest.raises(InvalidArgumentError, match=r"union rule, and cell \(agent \d `a\d`, observation \d\)"):
        solve(ICQ(updates=10), fitted)
