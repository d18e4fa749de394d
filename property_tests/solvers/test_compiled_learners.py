"""The compiled loop's linear and MLP learners (:mod:`solvers.compiled`) against the numpy loop.

Reference (a second implementation): ``ICQ(engine="numpy")``, the batched
numpy loop with :class:`solvers.approximators.LinearQ` / :class:`~solvers.approximators.MLPQ`,
written independently of the kernel. Every deterministic field of the two
records must be equal bit for bit (:func:`test_compiled.assert_same_run`:
``Q`` at every checkpoint, ``theta0``, ``theta``, ``eps0_value``,
``eps0_grad``, ``theta_distance``, the message log, the counters), on both
bundled examples, an explicit epoch model, random instances and random
network shapes, every behavior, step rule and step index, given features and
inputs, the projection on ``B(theta_0, omega)``, unshared initial
parameters, truncating horizons, stalls, divergence and the driver's chunk
boundaries.

The kernel's numeric pieces are checked against numpy itself: the pairwise
sum against ``ndarray.sum`` and the BLAS calls against ``np.matmul`` on
random arrays of many shapes (bit for bit).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings as hsettings, strategies as st

from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.examples import EXAMPLES, load_example
from icsmdp_theory.generators import random_icsmdp
from icsmdp_theory.math_reasoning import math_reasoning
from property_tests.solvers.test_compiled import (BEHAVIORS, assert_same_run,  # noqa: F401
                                                  interrupt_after_chunks, small_chunks)
from solvers import compiled
from solvers.api import solve
from solvers.icq import ICQ, EpsilonGreedy, FixedBehavior, StepSize

LEARNERS = {"linear": dict(learner="linear"), "mlp": dict(learner="mlp", hidden=(16, 16))}


def _features(model, learner, rng):
    """Random linear features ``psi_i[o, c', d]`` (d = 3) or MLP inputs ``x_i[o, 4]``."""
    C = model.num_successors
    if learner == "linear":
        return [rng.normal(size=(n, C, 3)) for n in model.num_observations]
    return [rng.normal(size=(n, 4)) for n in model.num_observations]


@pytest.mark.parametrize("learner", LEARNERS)
@pytest.mark.parametrize("example", EXAMPLES)
@pytest.mark.parametrize("behavior", BEHAVIORS)
def test_bundled_examples_bit_for_bit(learner, example, behavior):
    model = load_example(example)
    a, _ = assert_same_run(ICQ(**LEARNERS[learner], updates=400, seeds=3, seed=5,
                               behavior=BEHAVIORS[behavior](model), checkpoints=(0, 1, 50, 233),
                               log_messages=True), model)
    assert a.success and np.isfinite(a.eps0_value).all()


def test_default_mlp_bit_for_bit():
    # two hidden layers of 64: the BLAS kernels' vectorized blocks, not only their tails
    assert_same_run(ICQ(learner="mlp", updates=300, seeds=2, seed=1, checkpoints=(0, 100),
                        log_messages=True, behavior=EpsilonGreedy(epsilon=0.3)),
                    load_example("workflow"))


@pytest.mark.parametrize("learner", LEARNERS)
@pytest.mark.parametrize("step", [StepSize(rule="constant", c=0.02, index="pair"),
                                  StepSize(rule="harmonic", c=0.5, k0=2),
                                  StepSize(rule="paper", nu=0.5, lambda0=2.0, max_step=0.05)])
def test_step_rules_bit_for_bit(learner, step):
    assert_same_run(ICQ(**LEARNERS[learner], updates=300, seeds=(4, 0, 2), seed=9, step=step,
                        log_messages=True, behavior=EpsilonGreedy(epsilon=0.3)),
                    load_example("workflow"))


@pytest.mark.parametrize("learner", LEARNERS)
def test_features_projection_and_unshared_init_bit_for_bit(learner):
    model = load_example("workflow")
    feats = _features(model, learner, np.random.default_rng(3))
    omega = 0.05
    a, _ = assert_same_run(ICQ(**LEARNERS[learner], updates=300, seeds=3, features=feats,
                               omega=omega, shared_init=False, log_messages=True,
                               checkpoints=(0, 150), step=StepSize(rule="constant", c=0.2)), model)
    # the projection acted: some agent's parameters sit on the sphere of radius omega
    assert np.isclose(np.nanmax(a.theta_distance), omega, rtol=1e-12)


@pytest.mark.parametrize("learner", LEARNERS)
def test_truncating_horizon_and_stalls_bit_for_bit(learner):
    model = random_icsmdp(0, num_agents=2, num_interface=3, end_probability=0.05, horizon=8,
                          stop_admissible=True)
    a, _ = assert_same_run(ICQ(**LEARNERS[learner], updates=150, seeds=3, log_messages=True,
                               checkpoints=(30, 100)), model)
    assert a.truncations.sum() > 0
    model = random_icsmdp(0, num_agents=2, num_interface=2, end_probability=0.005, horizon=5,
                          stop_admissible=True)
    a, _ = assert_same_run(ICQ(**LEARNERS[learner], updates=60, seeds=6, stall_steps=1,
                               log_messages=True), model)
    assert a.status == "stalled"


@pytest.mark.parametrize("learner", LEARNERS)
def test_explicit_epoch_model_bit_for_bit(learner):
    model = math_reasoning("MathQA")
    for behavior in ("greedy", "uniform"):
        assert_same_run(ICQ(**LEARNERS[learner], updates=300, seeds=2, seed=2, log_messages=True,
                            behavior=BEHAVIORS[behavior](model), checkpoints=(0, 20, 150)), model)


@pytest.mark.parametrize("learner", LEARNERS)
def test_chunk_boundaries_bit_for_bit(learner, small_chunks):  # noqa: F811
    assert_same_run(ICQ(**LEARNERS[learner], updates=200, seeds=2, log_messages=True,
                        checkpoints=(0, 7, 100),
                        behavior=EpsilonGreedy(epsilon=0.5, final_epsilon=0.1, decay_steps=100)),
                    load_example("workflow"))


@pytest.mark.parametrize("learner", LEARNERS)
def test_divergence_bit_for_bit(learner):
    with np.errstate(over="ignore", invalid="ignore"):
        a, _ = assert_same_run(ICQ(**LEARNERS[learner], updates=300, seeds=2,
                                   behavior=EpsilonGreedy(epsilon=0.5),
                                   step=StepSize(rule="constant", c=1e6), checkpoints=(10,)),
                               load_example("tiny-handoff"))
    assert a.status == "diverged"


@hsettings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), agents=st.integers(1, 3), interface=st.integers(1, 4),
       end=st.sampled_from([0.2, 0.5, 0.9]), stop=st.booleans(),
       behavior=st.sampled_from(["greedy", "decaying", "uniform", "law"]),
       learner=st.sampled_from(["linear", "mlp"]),
       hidden=st.lists(st.integers(2, 9), min_size=1, max_size=3), given_features=st.booleans(),
       omega=st.sampled_from([None, 0.1, 1.0]))
def test_random_instances_and_shapes_bit_for_bit(seed, agents, interface, end, stop, behavior,
                                                 learner, hidden, given_features, omega):
    model = random_icsmdp(seed, num_agents=agents, num_interface=interface, end_probability=end,
                          horizon=30, stop_admissible=stop)
    feats = _features(model, learner, np.random.default_rng(seed)) if given_features else None
    assert_same_run(ICQ(learner=learner, hidden=tuple(hidden), features=feats, omega=omega,
                        updates=100, seeds=2, seed=seed, behavior=BEHAVIORS[behavior](model),
                        log_messages=True, checkpoints=(0, 40)), model)


def test_interrupt_keeps_the_parameters_reached(monkeypatch):
    """Ctrl-C between chunks: the MLP checkpoints reached are exact, the rest unreached."""
    model = load_example("workflow")
    settings = ICQ(learner="mlp", hidden=(8,), updates=2000, seeds=2, checkpoints=(0, 10, 100, 1000))
    interrupt_after_chunks(monkeypatch, 20)
    rec = solve(dataclasses.replace(settings, engine="compiled"), model)
    monkeypatch.undo()
    full = solve(dataclasses.replace(settings, engine="numpy"), model)
    got = rec.reached
    assert rec.status == "interrupted" and 0 < rec.updates[0] < 2000 and rec.updates[1] == 0
    assert got[:, 0].sum() >= 2 and not got[:, 1].any()
    assert np.array_equal(rec.q[got], full.q[got], equal_nan=True)
    assert np.array_equal(rec.eps0_grad[got], full.eps0_grad[got])
    assert np.array_equal(rec.theta[0][1], full.theta0[0][1])  # seed 1 never started


def test_engine_choice_for_unsupported_shapes():
    model = load_example("tiny-handoff")
    with pytest.raises(InvalidArgumentError, match="hidden width of 1"):
        ICQ(learner="mlp", hidden=(4, 1), engine="compiled")
    feats = [np.ones((n, model.num_successors, 1)) for n in model.num_observations]
    with pytest.raises(InvalidArgumentError, match=r"`features\[0\]` has dimension 1"):
        ICQ(learner="linear", features=feats, engine="compiled")
    # auto falls back to numpy there, and runs
    settings = ICQ(learner="linear", features=feats, updates=50)
    assert settings.engine_used == "numpy"
    assert solve(settings, model).timings["engine"] == "numpy"


@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 16, 63, 64, 65, 127, 128, 129, 200, 256, 1000, 4096,
                               4160, 8193, 20000])
def test_pairwise_sum_is_numpys(n):
    rng = np.random.default_rng(n)
    a, b = rng.normal(size=n) * 1e3, rng.normal(size=n)
    assert compiled._pairwise(0, a, 0, b, 0, n) + 0.0 == (a * b).sum()
    assert 0.0 + compiled._pairwise(1, a, 0, b, 0, n) == ((a - b) ** 2).sum()
    # offsets: the run a[3:], b[1:]
    if n > 4:
        assert 0.0 + compiled._pairwise(0, a, 3, b, 1, n - 4) == (a[3:n - 1] * b[1:n - 3]).sum()


def test_blas_calls_are_numpys():
    import numba

    @numba.njit
    def vecmat(x, W, k, m, out):
        compiled._vecmat(x, 0, W, 0, k, m, out, 0)

    @numba.njit
    def matvec(A, m, n, x, out):
        compiled._matvec(A, 0, m, n, x, 0, out, 0)

    rng = np.random.default_rng(0)
    for _ in range(100):
        k, m = (int(v) for v in rng.integers(2, 90, 2))
        x, W = rng.normal(size=(2, k)), rng.normal(size=(2, k, m))
        ref = np.matmul(x[:, None, :], W)[:, 0, :]
        A, y = rng.normal(size=(2, k, m)), rng.normal(size=(2, m))
        ref2 = np.matmul(A, y[:, :, None])[:, :, 0]
        for s in range(2):
            out, out2 = np.empty(m), np.empty(k)
            vecmat(x[s], W[s].ravel(), k, m, out)
            matvec(A[s].ravel(), k, m, y[s], out2)
            assert np.array_equal(out, ref[s]) and np.array_equal(out2, ref2[s])
