"""The compiled IC-Q loop (:mod:`solvers.compiled`) against the batched numpy loop and the theory.

Reference 1 (a second implementation): ``ICQ(engine="numpy")`` is the batched
numpy loop of :class:`solvers.icq.BatchRun`, written independently of the
kernel; every deterministic field of the two records must be equal bit for
bit (``np.array_equal`` on ``Q`` at every checkpoint, the message log, the
counters), on both bundled examples, explicit epoch models, random
instances, several seeds and seed subsets, every behavior, step rule and
step index, truncating horizons, stalls and the chunk boundaries of the
driver (refills forced every few steps).

Reference 2 (the option reduction): the durations ``tau`` the compiled loop
logs for an invocation from a fully observed local state follow the
duration law of :func:`icsmdp_theory.options.option_reduction`:
``mean(gamma^tau)`` is within 5 standard errors of ``E[gamma^tau | y]``.

The old ``test_icq_regression`` digests (recorded from the original
implementation) also hold with the compiled engine, which is the default for
the tabular learner.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.examples import EXAMPLES, load_example
from icsmdp_theory.generators import random_icsmdp
from icsmdp_theory.math_reasoning import math_reasoning
from icsmdp_theory.options import option_reduction
from solvers import compiled
from solvers.api import solve
from solvers.icq import ICQ, EpsilonGreedy, FixedBehavior, StepSize

_FIELDS = ("q", "reached", "updates", "primitive_steps", "episodes", "truncations", "eps0_value",
           "eps0_grad", "theta_distance", "seeds", "checkpoints", "admissible")


def assert_same_run(settings: ICQ, model) -> tuple:
    """Run both engines; assert every deterministic field equal bit for bit; return both records."""
    a = solve(dataclasses.replace(settings, engine="numpy"), model)
    b = solve(dataclasses.replace(settings, engine="compiled"), model)
    assert a.timings["engine"] == "numpy" and b.timings["engine"] == "compiled"
    for f in _FIELDS:
        x, y = np.asarray(getattr(a, f)), np.asarray(getattr(b, f))
        assert x.shape == y.shape and x.dtype == y.dtype, f
        assert np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f
    assert np.array_equal(np.isfinite(a.checkpoint_seconds), np.isfinite(b.checkpoint_seconds))
    assert (a.status, a.iterations, a.timings["batch_steps"]) == (b.status, b.iterations,
                                                                  b.timings["batch_steps"])
    assert a.message.split(";")[0] == b.message.split(";")[0]
    assert a.settings.pop("engine") == "numpy" and b.settings.pop("engine") == "compiled"
    assert a.settings == b.settings
    for f in ("theta0", "theta", "features"):  # the linear and MLP learners' parameters
        x, y = getattr(a, f), getattr(b, f)
        assert len(x) == len(y), f
        for u, v in zip(x, y):
            assert u.shape == v.shape and np.array_equal(u, v, equal_nan=True), f
    if settings.log_messages:
        assert set(a.messages) == set(b.messages)
        for k in a.messages:
            assert a.messages[k].dtype == b.messages[k].dtype, k
            assert np.array_equal(a.messages[k], b.messages[k],
                                  equal_nan=a.messages[k].dtype.kind == "f"), k
    else:
        assert a.messages is None and b.messages is None
    return a, b


@pytest.fixture
def small_chunks(monkeypatch):
    """Force the driver to refill its streams and log every few steps (chunk boundaries everywhere)."""
    monkeypatch.setattr(compiled, "MAX_STEP_ROWS", 3)
    monkeypatch.setattr(compiled, "_FIRST_STEP_ROWS", 1)
    monkeypatch.setattr(compiled, "_MAX_EVENT_ROWS", 2)
    monkeypatch.setattr(compiled, "_FIRST_EVENT_ROWS", 1)
    monkeypatch.setattr(compiled, "_LOG_ROWS", 2)


def _uniform_law(model):
    """A random fixed law per agent (zero on inadmissible successors)."""
    rng = np.random.default_rng(1)
    out = []
    for a in model.agents:
        p = rng.random((a.num_observations, model.num_successors)) * np.array(a.successors)
        out.append(p / p.sum(axis=1, keepdims=True))
    return out


BEHAVIORS = {
    "greedy": lambda m: EpsilonGreedy(epsilon=0.2),
    "decaying": lambda m: EpsilonGreedy(epsilon=0.9, final_epsilon=0.05, decay_steps=150),
    "uniform": lambda m: FixedBehavior(),
    "law": lambda m: FixedBehavior(probabilities=_uniform_law(m)),
}
STEPS = {
    "default": None,
    "constant-agent": StepSize(rule="constant", c=0.3, index="agent"),
    "harmonic-int": StepSize(rule="harmonic", c=2, k0=3),
    "paper-capped": StepSize(rule="paper", nu=0.5, lambda0=0.2, max_step=0.5),
}


def test_examples_are_the_bundled_ones():
    assert set(EXAMPLES) == {"tiny-handoff", "workflow"}


@pytest.mark.parametrize("example", EXAMPLES)
@pytest.mark.parametrize("behavior", BEHAVIORS)
def test_bundled_examples_bit_for_bit(example, behavior):
    model = load_example(example)
    assert_same_run(ICQ(updates=700, seeds=3, seed=5, behavior=BEHAVIORS[behavior](model),
                        checkpoints=(0, 1, 50, 333), log_messages=True, init=0.25), model)


@pytest.mark.parametrize("step", STEPS)
def test_step_rules_bit_for_bit(step):
    assert_same_run(ICQ(updates=500, seeds=(4, 0, 2), seed=9, step=STEPS[step], log_messages=True,
                        behavior=EpsilonGreedy(epsilon=0.3)), load_example("workflow"))


def test_truncating_horizon_bit_for_bit():
    # invocations last 20 steps on average and the horizon is 8: many are discarded
    model = random_icsmdp(0, num_agents=2, num_interface=3, end_probability=0.05, horizon=8,
                          stop_admissible=True)
    a, _ = assert_same_run(ICQ(updates=300, seeds=4, log_messages=True, checkpoints=(30, 150)), model)
    assert a.truncations.sum() > 0


def test_horizon_setting_and_long_invocations_bit_for_bit():
    # tau up to hundreds of steps: the table of gamma^tau grows past its first 64 entries
    model = random_icsmdp(3, num_agents=2, num_interface=3, end_probability=0.01, horizon=2000,
                          stop_admissible=True)
    a, _ = assert_same_run(ICQ(updates=200, seeds=2, log_messages=True), model)
    assert a.messages["tau"].max() > 64
    assert_same_run(ICQ(updates=300, seeds=2, horizon=3, log_messages=True), load_example("workflow"))


def test_chunk_boundaries_bit_for_bit(small_chunks):
    assert_same_run(ICQ(updates=400, seeds=3, log_messages=True, checkpoints=(0, 7, 100),
                        behavior=EpsilonGreedy(epsilon=0.5, final_epsilon=0.1, decay_steps=100)),
                    load_example("workflow"))
    assert_same_run(ICQ(updates=300, seeds=2, log_messages=True, horizon=4),
                    math_reasoning("MathQA"))


@pytest.mark.parametrize("behavior", [b for b in BEHAVIORS if b != "law"])
def test_explicit_epoch_model_bit_for_bit(behavior):
    model = math_reasoning("MathQA")
    assert isinstance(model, EpochModel)
    assert_same_run(ICQ(updates=600, seeds=3, seed=2, behavior=BEHAVIORS[behavior](model),
                        log_messages=True, checkpoints=(0, 20, 300)), model)
    assert_same_run(ICQ(updates=300, seeds=2, horizon=5, log_messages=True), model)


def test_stalls_bit_for_bit():
    # invocations almost never end and the horizon is 3: seeds stall at different clocks
    model = random_icsmdp(0, num_agents=1, num_interface=2, end_probability=1e-4, horizon=3,
                          stop_admissible=True)
    for seeds in (2, 5):
        a, _ = assert_same_run(ICQ(updates=10, seeds=seeds, stall_steps=200, log_messages=True), model)
        assert a.status == "stalled"
    # the last seed stalls while the others progress: they are run again, capped at its clock
    model = random_icsmdp(0, num_agents=2, num_interface=2, end_probability=0.005, horizon=5,
                          stop_admissible=True)
    a, _ = assert_same_run(ICQ(updates=60, seeds=6, stall_steps=1, log_messages=True), model)
    assert a.status == "stalled" and a.message.startswith("seed 5 ") and a.updates.min() > 0


@hsettings(max_examples=12)
@given(seed=st.integers(0, 10_000), agents=st.integers(1, 3), interface=st.integers(1, 4),
       end=st.sampled_from([0.2, 0.5, 0.9]), horizon=st.sampled_from([5, 30, 200]),
       stop=st.booleans(), behavior=st.sampled_from(["greedy", "decaying", "uniform", "law"]),
       seeds=st.integers(1, 3))
def test_random_instances_bit_for_bit(seed, agents, interface, end, horizon, stop, behavior, seeds):
    model = random_icsmdp(seed, num_agents=agents, num_interface=interface, end_probability=end,
                          horizon=horizon, stop_admissible=stop)
    assert_same_run(ICQ(updates=150, seeds=seeds, seed=seed, behavior=BEHAVIORS[behavior](model),
                        log_messages=True, checkpoints=(0, 40)), model)


def test_invocation_lengths_follow_the_option_reduction():
    """Independent truth: ``E[gamma^tau | y]`` of the option reduction, from the compiled loop's log.

    The planner of ``tiny-handoff`` starts every episode at ``m = 0`` (its
    observation 0 is that local state only); its invocations from there last
    ``tau`` steps with ``E[gamma^tau] = effective_discount()[0]``.
    """
    model = load_example("tiny-handoff")
    rec = solve(ICQ(updates=40_000, seeds=2, behavior=FixedBehavior(), log_messages=True,
                    engine="compiled"), model)
    msg = rec.messages
    pick = (msg["receiver"] == 0) & (msg["observation"] == 0)
    g = model.gamma ** msg["tau"][pick].astype(float)
    truth = float(option_reduction(model, 0).effective_discount()[0])
    assert pick.sum() > 5000
    se = g.std(ddof=1) / np.sqrt(g.size)
    assert abs(g.mean() - truth) < 5 * se + 1e-12, (g.mean(), truth, se)
    assert se > 0  # the law is not degenerate: the test can fail


def interrupt_after_chunks(monkeypatch, n: int) -> None:
    """Compiled chunks of at most 64 step rows, and Ctrl-C (``KeyboardInterrupt``) raised in the
    progress callback after the ``n``-th chunk (``monkeypatch.undo()`` restores both)."""
    monkeypatch.setattr(compiled, "MAX_STEP_ROWS", 64)
    calls = {"n": 0}
    original = compiled.CompiledLoop.run

    def interrupting_run(self, progress):
        def tick(done):
            progress(done)
            calls["n"] += 1
            if calls["n"] == n:
                raise KeyboardInterrupt
        return original(self, tick)

    monkeypatch.setattr(compiled.CompiledLoop, "run", interrupting_run)

def test_interrupt_between_chunks_keeps_checkpoints(monkeypatch):
    """Ctrl-C between compiled chunks: status "interrupted", the checkpoints reached are kept and exact."""
    model = load_example("workflow")
    settings = ICQ(updates=3000, seeds=2, checkpoints=(0, 10, 100, 1000))
    interrupt_after_chunks(monkeypatch, 40)   # seed 0 is mid-run
    rec = solve(dataclasses.replace(settings, engine="compiled"), model)
    monkeypatch.undo()
    full = solve(dataclasses.replace(settings, engine="numpy"), model)
    assert rec.status == "interrupted" and not rec.success
    assert 0 < rec.updates[0] < 3000 and rec.updates[1] == 0
    got = rec.reached
    assert got[:, 0].sum() >= 2 and not got[:, 1].any() and not got[-1].any()
    assert np.array_equal(rec.q[got], full.q[got], equal_nan=True)


def test_engine_validation_and_default():
    from icsmdp_theory.errors import InvalidArgumentError
    with pytest.raises(InvalidArgumentError, match="`engine` must be one of"):
        ICQ(engine="fast")
    with pytest.raises(InvalidArgumentError, match="hidden width of 1"):
        ICQ(engine="compiled", learner="mlp", hidden=(8, 1))
    assert ICQ().engine_used == "compiled"
    assert "engine" not in ICQ().to_dict() and ICQ(engine="numpy").to_dict()["engine"] == "numpy"


def test_streams_equal_seed_streams():
    from icsmdp_theory.simulate import SeedStreams, seed_sequences
    ss = SeedStreams(seed_sequences(4, [3, 8]), step_width=5, event_width=4, block=16)
    rows = np.stack([ss.step() for _ in range(40)])  # (40, 5, 2)
    ev = ss.events(np.array([0, 1]))
    for pos, sid in enumerate((3, 8)):
        step_gen, event_gen = compiled.stream_generators(4, sid)
        assert np.array_equal(step_gen.random(200).reshape(40, 5), rows[:, :, pos])
        assert np.array_equal(event_gen.random(4), ev[pos])
