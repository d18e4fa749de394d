"""IC-Q (Algorithm 1, SPEC section 7) against exact optima, and its protocol guarantees.

Independent references: ``Q*_lat`` by policy iteration on the committed
chain (exact-AIS instances, where ``Q_hat* o phi = Q*``), ``Q_hat*`` of the
AIS-induced SMDP with the ``stationary`` and ``uniform`` references
(:mod:`estimators.ais`), the stationary law of the epoch chain
(:mod:`estimators.stationary`, for which pairs are ever sampled), and
runs of single seeds compared bit for bit with batched runs.
"""
from __future__ import annotations

import gc
import inspect
import json
import types

import numpy as np
import pytest

from reports.cli import main as cli_main
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.examples import load_example
from icsmdp_theory.generators import random_icsmdp
from icsmdp_theory.io import instance_from_dict, instance_to_dict
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.simulate import BatchSimulator
from solvers.api import PolicyIteration, solve
from solvers.icq import (ICQ, BatchRun, EpsilonGreedy, FixedBehavior, ICQAgent, StepSize,
                         build_agents, replay_agent)
from solvers.records import cells_from_epoch_q, evaluate_greedy_policies

stationary = pytest.importorskip("estimators.stationary", reason="estimators.stationary not available")
ais = pytest.importorskip("estimators.ais", reason="estimators.ais (Q_hat*) not available")
tangent = pytest.importorskip("estimators.tangent", reason="estimators.tangent not available")


def _injective_tiny():
    return load_example("tiny-handoff").with_observation([[[0], [1], [2]], [[0], [1], [2]]])


def _sampled_pairs(model):
    """Pairs ``(cell, c')`` with positive mass under the uniform behavior's long-run law."""
    law = stationary.stationary_law(model).law
    return tangent.mu_on_cells(model, stationary.mu(model, law)) > 0


def _errors(rec, target, pairs):
    """``max |Q - target|`` over sampled pairs, per checkpoint and seed: ``(K, S)``."""
    return np.abs(rec.q - target[None, None])[:, :, pairs].max(axis=2)


# ---------------------------------------------------------------- convergence
@pytest.mark.parametrize("behavior", [EpsilonGreedy(epsilon=0.2), FixedBehavior()],
                         ids=["epsilon-greedy", "uniform"])
def test_tabular_converges_to_q_star_on_exact_ais_instance(behavior):
    # nX = 1, no private states, injective maps: Q_hat* o phi = Q*.
    model = _injective_tiny()
    q_star = cells_from_epoch_q(model, solve(PolicyIteration(tol=1e-12), model).q)
    pairs = _sampled_pairs(model)
    rec = solve(ICQ(updates=8000, seeds=16, behavior=behavior, checkpoints=(80, 800, 8000),
                    seed=1), model)
    assert rec.success, rec.message
    err = _errors(rec, q_star, pairs)
    mean = err.mean(axis=1)
    assert mean[0] > mean[1] > mean[2]
    assert err[-1].max() <= 0.02  # stated tolerance at T = 8000, every seed


def test_tabular_converges_to_q_star_on_random_exact_ais_instance():
    model = random_icsmdp(2, num_agents=2, num_interface=4, gamma=0.8, horizon=10 ** 6,
                          stop_admissible=True, end_probability=(0.4, 1.0))
    q_star = cells_from_epoch_q(model, solve(PolicyIteration(tol=1e-12), model).q)
    pairs = _sampled_pairs(model)
    rec = solve(ICQ(updates=15_000, seeds=32, behavior=FixedBehavior(),
                    checkpoints=(150, 1500, 15_000)), model)
    err = _errors(rec, q_star, pairs)
    mean = err.mean(axis=1)
    assert mean[0] > 2 * mean[1] > 4 * mean[2]
    assert err[-1].max() <= 0.15  # stated tolerance (|Q*| up to ~2.5)


def _aliased_model():
    # phi(m) = m mod 2 on 4 interface states; the stationary and uniform references
    # give Q_hat* that differ by 0.64 (searched over random_icsmdp seeds 0..39)
    return random_icsmdp(14, num_agents=2, num_interface=4, gamma=0.8, horizon=10 ** 6,
                         stop_admissible=True, end_probability=(0.4, 1.0), observation=2)


def test_tabular_converges_to_stationary_q_hat_on_aliased_instance():
    model = _aliased_model()
    q_stat = ais.ais_solution(ais.ais_smdp(model, reference="stationary")).q
    q_unif = ais.ais_solution(ais.ais_smdp(model, reference="uniform")).q
    pairs = _sampled_pairs(model)
    tol = 0.1
    assert np.abs(q_stat - q_unif)[pairs].max() > 5 * tol
    rec = solve(ICQ(updates=15_000, seeds=32, behavior=FixedBehavior(),
                    checkpoints=(150, 1500, 15_000)), model)
    err_s = _errors(rec, q_stat, pairs)
    err_u = _errors(rec, q_unif, pairs)
    assert err_s.mean(axis=1)[0] > err_s.mean(axis=1)[1] > err_s.mean(axis=1)[2]
    assert err_s[-1].max() <= tol
    assert err_u[-1].min() > 4 * tol


# ---------------------------------------------------------------- reproducibility
@pytest.mark.parametrize("learner", ["tabular", "linear", "mlp"])
def test_batched_seeds_equal_single_seed_runs(learner):
    model = load_example("workflow")
    kw = dict(learner=learner, updates=300 if learner == "mlp" else 1500, seed=7,
              checkpoints=(0, 50, 150), hidden=(16, 16), behavior=EpsilonGreedy(epsilon=0.3),
              track_linearization=learner == "mlp", log_messages=True)
    batch = solve(ICQ(seeds=5, **kw), model)
    assert batch.success
    for pos, k in enumerate([0, 3, 4]):
        alone = solve(ICQ(seeds=(k,), **kw), model)
        assert np.array_equal(alone.q[:, 0], batch.q[:, k], equal_nan=True)
        # the same trajectory: every message and journal entry of seed k, in order
        mine = batch.messages["seed"] == k
        for f, v in alone.messages.items():
            assert np.array_equal(v, batch.messages[f][mine]), f
        for f in ("updates", "primitive_steps", "episodes", "truncations"):
            assert getattr(alone, f)[0] == getattr(batch, f)[k], f
        if learner == "mlp":
            assert np.array_equal(alone.eps0_value[:, 0], batch.eps0_value[:, k])
    again = solve(ICQ(seeds=5, **kw), model)
    assert np.array_equal(again.q, batch.q, equal_nan=True)
    other = solve(ICQ(seeds=5, **{**kw, "seed": 8}), model)
    assert not np.array_equal(other.q[-1], batch.q[-1], equal_nan=True)


# ---------------------------------------------------------------- the interface
def test_update_receives_exactly_three_scalars_besides_its_own_decision():
    sig = inspect.signature(ICQAgent.update)
    assert list(sig.parameters) == ["self", "seeds", "o", "successor", "b", "tau", "R"]
    assert list(inspect.signature(ICQAgent.bootstrap).parameters) == ["self", "seeds", "o"]


def _reachable(root):
    """Objects reachable from ``root`` through instance state (not through classes or modules)."""
    skip = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType)
    seen, stack, out = set(), [root], []
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, skip):
            continue
        seen.add(id(obj))
        out.append(obj)
        stack.extend(gc.get_referents(obj))
    return out


@pytest.mark.parametrize("learner", ["tabular", "mlp"])
def test_agents_cannot_reach_each_other_or_the_model(learner):
    model = load_example("workflow")
    agents = build_agents(ICQ(learner=learner, seeds=2, hidden=(4,)), model)
    model_arrays = [arr for a in model.agents for arr in
                    (a.rho_private, a.internal_policy, a.reward, a.end_probability, a.observation,
                     a.successors, *[k.data for k in a.kernel])]
    for i, agent in enumerate(agents):
        objs = _reachable(agent)
        others = [a for j, a in enumerate(agents) if j != i]
        assert not any(o is a for o in objs for a in others)
        assert not any(isinstance(o, (ICSMDP, BatchSimulator)) for o in objs)
        mine = [o for o in objs if isinstance(o, np.ndarray)]
        for arr in mine:
            assert not any(np.shares_memory(arr, m) for m in model_arrays)
            for other in others:
                assert not any(np.shares_memory(arr, x) for x in _reachable(other)
                               if isinstance(x, np.ndarray))


@pytest.mark.parametrize("learner", ["tabular", "mlp"])
def test_each_agent_replays_from_its_messages_alone(learner):
    model = load_example("workflow")
    settings = ICQ(learner=learner, updates=400, seeds=3, hidden=(8,), log_messages=True,
                   checkpoints=(400,), behavior=EpsilonGreedy(epsilon=0.3))
    rec = solve(settings, model)
    msgs = rec.messages
    offs = rec.cell_offsets
    for i in range(model.num_agents):
        table = replay_agent(settings, model, msgs, i)
        assert np.array_equal(table, rec.q[-1][:, offs[i]:offs[i + 1]], equal_nan=True)
    # the log: one message per update, epochs 0..T-1 per seed, STOP sends b = 0
    assert msgs["seed"].size == rec.updates.sum()
    for s in rec.seeds:
        ep = msgs["epoch"][msgs["seed"] == s]
        assert np.array_equal(ep, np.arange(400))
    stop = msgs["sender"] == model.num_agents
    assert np.all(msgs["b"][stop] == 0) and np.all(msgs["sender"] == msgs["successor"])
    assert np.all(msgs["tau"] >= 1) and np.all(msgs["tau"] <= model.horizon)
    adm = rec.admissible[msgs["receiver"], msgs["successor"]]
    assert adm.all()


# ---------------------------------------------------------------- semantics
def test_horizon_truncation_discards_unfinished_epochs():
    # invocations last 20 steps on average; the horizon is 8
    model = random_icsmdp(0, num_agents=2, num_interface=3, end_probability=0.05, horizon=8,
                          stop_admissible=True)
    rec = solve(ICQ(updates=200, seeds=4, log_messages=True, checkpoints=(200,)), model)
    assert rec.success
    assert np.all(rec.truncations > 0)
    assert np.all(rec.messages["tau"] <= 8)
    # every primitive step belongs to an update or to a discarded (truncated) epoch tail
    assert np.all(rec.episodes >= rec.truncations)


def test_stall_is_reported_not_looped_forever():
    model = random_icsmdp(0, num_agents=1, num_interface=2, end_probability=1e-4, horizon=3,
                          stop_admissible=True)
    rec = solve(ICQ(updates=10, seeds=2, stall_steps=200), model)
    assert rec.status == "stalled" and not rec.success
    assert "no update" in rec.message


def test_keyboard_interrupt_keeps_reached_checkpoints(monkeypatch):
    calls = {"n": 0}
    original = ICQAgent.update

    def flaky(self, *args):
        calls["n"] += 1
        if calls["n"] == 60:
            raise KeyboardInterrupt
        return original(self, *args)
    monkeypatch.setattr(ICQAgent, "update", flaky)
    # the numpy loop calls ICQAgent.update (the compiled one: test_compiled.py)
    rec = solve(ICQ(updates=1000, seeds=2, checkpoints=(0, 5, 1000), engine="numpy"),
                load_example("tiny-handoff"))
    assert rec.status == "interrupted" and not rec.success
    assert rec.reached[:2].all() and not rec.reached[2].any()
    assert np.isnan(rec.q[2]).all()
    monkeypatch.undo()
    model = load_example("tiny-handoff")
    assert np.isnan(evaluate_greedy_policies(model, rec).v0).all()
    assert np.isfinite(evaluate_greedy_policies(model, rec, checkpoint=1).v0).all()


def test_step_sizes_and_epsilon_schedule():
    k = np.arange(5)
    assert np.allclose(StepSize(rule="constant", c=0.3)(k), 0.3)
    assert np.allclose(StepSize(c=2.0, k0=4.0)(k), 2.0 / (k + 4.0))
    assert np.allclose(StepSize(rule="paper", nu=0.5, lambda0=0.1)(k), 1.0 / (0.1 * (k + 1)))
    assert np.allclose(StepSize(rule="paper", nu=0.5, lambda0=0.1, max_step=2.0)(k),
                       np.minimum(2.0, 1.0 / (0.1 * (k + 1))))
    eg = EpsilonGreedy(epsilon=0.5, final_epsilon=0.1, decay_steps=4)
    assert np.allclose(eg.at(np.array([0, 2, 4, 10])), [0.5, 0.3, 0.1, 0.1])


def test_pairwise_step_counts_are_per_observation_and_successor():
    # one agent, one observation, STOP only: Q(o, STOP) is the running average of R with 1/(k+1)
    model = random_icsmdp(4, num_agents=1, num_interface=1, stop_admissible=True,
                          successor_density=0.0)
    rec = solve(ICQ(updates=50, seeds=1, step=StepSize(c=1.0, k0=1.0), log_messages=True,
                    checkpoints=(50,)), model)
    assert rec.q[-1, 0, 0, 1] == pytest.approx(rec.messages["R"].mean(), rel=1e-12)


def test_settings_are_validated():
    with pytest.raises(InvalidArgumentError, match=r"`learner` must be one of \('tabular', 'linear', 'mlp'\)"):
        ICQ(learner="deep")
    with pytest.raises(InvalidArgumentError, match="`updates`"):
        ICQ(updates=0)
    with pytest.raises(InvalidArgumentError, match="`seeds`"):
        ICQ(seeds=(1, 1))
    with pytest.raises(InvalidArgumentError, match="`checkpoints`"):
        ICQ(updates=10, checkpoints=(11,))
    with pytest.raises(InvalidArgumentError, match="`hidden`"):
        ICQ(hidden=())
    with pytest.raises(InvalidArgumentError, match="`rule`"):
        StepSize(rule="adam")
    with pytest.raises(InvalidArgumentError, match="`nu`"):
        StepSize(rule="paper")
    model = load_example("tiny-handoff")
    with pytest.raises(InvalidArgumentError, match=r"`features\[0\]`"):
        solve(ICQ(learner="linear", features=[np.zeros((2, 3)), np.zeros((3, 3, 1))]), model)
    bad = [np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]]), np.full((3, 3), 1 / 3)]
    with pytest.raises(InvalidArgumentError, match="inadmissible"):
        solve(ICQ(behavior=FixedBehavior(probabilities=bad)), model)


@pytest.mark.parametrize("make, message", [
    (lambda: ICQ(updates=0), r"`updates` must be an integer >= 1, got 0\."),
    (lambda: ICQ(updates=1.5), r"`updates` must be an integer >= 1, got 1\.5\."),
    (lambda: ICQ(seeds=0), r"`seeds` must be an integer >= 1, got 0\."),
    (lambda: ICQ(seeds=True), r"`seeds` must be a count >= 1 or a sequence of seed ids, got True\."),
    (lambda: ICQ(seed=-1), r"`seed` must be an integer >= 0, got -1\."),
    (lambda: ICQ(init="a"), r"`init` must be a finite number, got 'a'\."),
    (lambda: ICQ(init=np.nan), r"`init` must be a finite number, got nan\."),
    (lambda: ICQ(omega=-1.0), r"`omega` must be a finite number > 0, got -1\.0\."),
    (lambda: ICQ(stall_steps=0), r"`stall_steps` must be an integer >= 1, got 0\."),
    (lambda: EpsilonGreedy(epsilon=1.5), r"`epsilon` must lie in \[0, 1\], got 1\.5\."),
    (lambda: EpsilonGreedy(final_epsilon=np.nan), r"`final_epsilon` must lie in \[0, 1\], got nan\."),
    (lambda: EpsilonGreedy(decay_steps=-1), r"`decay_steps` must be an integer >= 0, got -1\."),
    (lambda: StepSize(c=0), r"`c` must be a finite number > 0, got 0\."),
    (lambda: StepSize(max_step=np.inf), r"`max_step` must be a finite number > 0, got inf\."),
    (lambda: StepSize(rule="paper", nu=0.5, lambda0=True),
     r"`lambda0` must be a finite number > 0, got True\."),
])
def test_settings_errors_state_the_requirement_and_the_value(make, message):
    # one InvalidArgumentError per bad value, never a TypeError from deeper down
    with pytest.raises(InvalidArgumentError, match=message):
        make()


def test_fixed_behavior_law_is_followed():
    model = load_example("tiny-handoff")
    probs = [np.array([[0.0, 0.25, 0.75], [0.0, 0.25, 0.75]]), np.array([[0.9, 0.0, 0.1]] * 3)]
    rec = solve(ICQ(updates=4000, seeds=2, behavior=FixedBehavior(probabilities=probs),
                    log_messages=True, checkpoints=(4000,)), model)
    m = rec.messages
    sel = (m["receiver"] == 0) & (m["observation"] == 0)
    frac = np.mean(m["successor"][sel] == 2)
    n = sel.sum()
    assert abs(frac - 0.75) <= 5 * np.sqrt(0.75 * 0.25 / n)


# ---------------------------------------------------------------- CLI
def test_cli_run_json_smoke(capsys, tmp_path):
    out = tmp_path / "run"
    code = cli_main(["run", "tiny-handoff", "--updates", "300", "--seeds", "3", "--json",
                     "--checkpoints", "10,100", "--out", str(out), "--evaluate"])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["status"] == "completed" and doc["checkpoints"] == [10, 100, 300]
    assert np.asarray(doc["q"], dtype=float).shape == (3, 3, 5, 3)
    assert doc["evaluation"]["gap_v0"] == pytest.approx([0.0, 0.0, 0.0], abs=1e-9)
    assert (tmp_path / "run.npz").exists() and (tmp_path / "run.json").exists()


def _cli(argv):
    """Exit status of ``icsmdp`` (argparse exits through SystemExit)."""
    try:
        return cli_main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("argv", [
    ["tiny-handoff", "--learner", "deep"], ["tiny-handoff", "--updates", "0"],
    ["tiny-handoff", "--seeds", "x"], ["tiny-handoff", "--checkpoints", "5,999999"],
    ["tiny-handoff", "--epsilon", "2"], ["tiny-handoff", "--behavior", "greedy"],
    ["tiny-handoff", "--omega", "-1"], ["tiny-handoff", "--bogus"], ["no-such-instance"],
    ["tiny-handoff", "--updates"]])
def test_cli_run_bad_arguments_exit_2_with_one_line(capsys, tmp_path, argv):
    out = ["--out", str(tmp_path / "r")]
    code = _cli(["run", *out, *argv])
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("icsmdp run: error:"), err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_tabular_converges_to_stationary_q_hat_on_workflow():
    # private states, latent difficulty, 4-bit observations; long horizon so that the
    # sampled epochs follow the epoch chain of SPEC section 6
    doc = instance_to_dict(load_example("workflow"))
    doc["horizon"] = 10 ** 6
    model = instance_from_dict(doc)
    q_stat = ais.ais_solution(ais.ais_smdp(model, reference="stationary")).q
    q_unif = ais.ais_solution(ais.ais_smdp(model, reference="uniform")).q
    mass = tangent.mu_on_cells(model, stationary.mu(model, stationary.stationary_law(model).law))
    pairs = mass >= 3e-3  # pairs sampled often enough for 2e5 updates
    rec = solve(ICQ(updates=200_000, seeds=32, behavior=FixedBehavior(),
                    checkpoints=(2000, 20_000, 200_000)), model)
    err_s = _errors(rec, q_stat, pairs)
    err_u = _errors(rec, q_unif, pairs)
    assert err_s.mean(axis=1)[0] > err_s.mean(axis=1)[1] > err_s.mean(axis=1)[2]
    assert err_s[-1].max() <= 0.15
    assert err_u[-1].min() > 0.6


def test_a_huge_update_budget_allocates_nothing_of_its_length():
    """T = 10^12 updates: the run is set up at once (no table of length T, which was 8 TB) and
    the checkpoint lookup names exactly the recorded counts."""
    run = BatchRun(ICQ(updates=10**12, seeds=1, checkpoints=(0, 10)), load_example("tiny-handoff"))
    assert run.checkpoint_index(np.array([0, 1, 10, 11, 10**12])).tolist() == [0, -1, 1, -1, 2]
