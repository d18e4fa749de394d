"""IC-Q runs reproduce, bit for bit, the outputs recorded from the original ``run_icq``.

Independent reference: the SHA-256 digests in :data:`RECORDED` were produced
by the implementation *before* ``run_icq`` became a batch-run object (the
209-line function of commit ``55f429e``, kept as a plain copy in
``/work/orig``), with this very module::

    cd /tmp && PYTHONPATH=/work/orig python -c "
    import importlib.util as u
    s = u.spec_from_file_location('reg', '/work/main/property_tests/solvers/test_icq_regression.py')
    m = u.module_from_spec(s); s.loader.exec_module(m)
    for name in m.CASES: print(repr(name), ':', repr(m.case_digest(name)), ',')"

(numpy 2.x, float64, scipy-openblas 0.3.31 on x86-64). A digest covers
every deterministic field of the :class:`~solvers.records.RunRecord`: ``Q``
at every checkpoint, the message log, the counters (updates, primitive steps,
episodes, truncations), the linearization errors, the parameters, the status
and the settings; wall-clock timings are left out (only which checkpoints
carry a time). Arrays are hashed as little-endian bytes with their field
name, dtype kind and shape, and NaNs in one canonical bit pattern, so the
digest depends only on the numbers. The MLP cases go through BLAS matrix
products: their digests hold on the machine type they were recorded on (the
CI machine), not necessarily on another CPU family.

The cases cover the tabular, linear and MLP learners; epsilon-greedy
(constant and decaying) and fixed (uniform and given) behaviors; 1 and 5
seeds and a subset of seed ids; both bundled examples; with and without the
message log; runs with horizon truncations, one that diverges and one that
stalls.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest

from icsmdp_theory.examples import load_example
from icsmdp_theory.generators import random_icsmdp
from solvers.api import solve
from solvers.icq import ICQ, EpsilonGreedy, FixedBehavior, StepSize


def _tiny_probs():
    return [np.array([[0.0, 0.25, 0.75], [0.0, 0.6, 0.4]]), np.array([[0.9, 0.0, 0.1]] * 3)]


def _tiny_linear_features():
    rng = np.random.default_rng(5)
    return [rng.normal(size=(2, 3, 4)), rng.normal(size=(3, 3, 4))]


def _tiny_mlp_inputs():
    rng = np.random.default_rng(6)
    return [rng.normal(size=(2, 3)), rng.normal(size=(3, 3))]


def _truncating():
    # invocations last 20 steps on average; the horizon is 8
    return random_icsmdp(0, num_agents=2, num_interface=3, end_probability=0.05, horizon=8,
                         stop_admissible=True)


def _stalling():
    return random_icsmdp(0, num_agents=1, num_interface=2, end_probability=1e-4, horizon=3,
                         stop_admissible=True)


#: name -> (model factory, ICQ settings factory)
CASES = {
    "tabular-tiny-greedy-1seed-log": (
        lambda: load_example("tiny-handoff"),
        lambda: ICQ(updates=1000, seeds=1, behavior=EpsilonGreedy(epsilon=0.2),
                    checkpoints=(0, 10, 100), log_messages=True, seed=3)),
    "tabular-tiny-fixedlaw-5seeds-log": (
        lambda: load_example("tiny-handoff"),
        lambda: ICQ(updates=600, seeds=5, behavior=FixedBehavior(probabilities=_tiny_probs()),
                    log_messages=True, init=1.5, step=StepSize(rule="harmonic", c=2.0, k0=3.0,
                                                               index="agent"))),
    "tabular-workflow-decaying-5seeds-log": (
        lambda: load_example("workflow"),
        lambda: ICQ(updates=600, seeds=5, seed=7, log_messages=True, checkpoints=(0, 50, 300),
                    behavior=EpsilonGreedy(epsilon=0.5, final_epsilon=0.05, decay_steps=300))),
    "tabular-workflow-uniform-5seeds-paper": (
        lambda: load_example("workflow"),
        lambda: ICQ(updates=500, seeds=5, behavior=FixedBehavior(),
                    step=StepSize(rule="paper", nu=0.5, lambda0=0.2, max_step=0.5))),
    "tabular-workflow-greedy-seedsubset": (
        lambda: load_example("workflow"),
        lambda: ICQ(updates=400, seeds=(4, 1), seed=11, behavior=EpsilonGreedy(epsilon=0.1),
                    checkpoints=(3, 200), log_messages=True)),
    "linear-tiny-greedy-1seed-log": (
        lambda: load_example("tiny-handoff"),
        lambda: ICQ(learner="linear", updates=600, seeds=1, behavior=EpsilonGreedy(epsilon=0.3),
                    log_messages=True, checkpoints=(0, 300))),
    "linear-tiny-features-5seeds": (
        lambda: load_example("tiny-handoff"),
        lambda: ICQ(learner="linear", updates=400, seeds=5, features=_tiny_linear_features(),
                    omega=3.0, step=StepSize(rule="constant", c=0.02, index="pair"),
                    behavior=FixedBehavior())),
    "linear-workflow-uniform-5seeds-log": (
        lambda: load_example("workflow"),
        lambda: ICQ(learner="linear", updates=400, seeds=5, seed=2, behavior=FixedBehavior(),
                    log_messages=True, checkpoints=(100, 200))),
    "linear-tiny-diverged": (
        lambda: load_example("tiny-handoff"),
        lambda: ICQ(learner="linear", updates=300, seeds=2, behavior=FixedBehavior(),
                    step=StepSize(rule="constant", c=1e6), checkpoints=(10,))),
    "mlp-workflow-greedy-5seeds-log": (
        lambda: load_example("workflow"),
        lambda: ICQ(learner="mlp", updates=300, seeds=5, seed=7, hidden=(16, 16),
                    behavior=EpsilonGreedy(epsilon=0.3), checkpoints=(0, 50, 150),
                    log_messages=True)),
    "mlp-tiny-inputs-1seed-unshared": (
        lambda: load_example("tiny-handoff"),
        lambda: ICQ(learner="mlp", updates=400, seeds=1, hidden=(8,), features=_tiny_mlp_inputs(),
                    shared_init=False, omega=2.0, behavior=FixedBehavior(probabilities=_tiny_probs()),
                    log_messages=True)),
    "mlp-workflow-uniform-unshared-notrack": (
        lambda: load_example("workflow"),
        lambda: ICQ(learner="mlp", updates=200, seeds=(1, 4), hidden=(8, 4), shared_init=False,
                    behavior=FixedBehavior(), track_linearization=False, checkpoints=(20,))),
    "tabular-truncations-4seeds-log": (
        _truncating,
        lambda: ICQ(updates=150, seeds=4, log_messages=True, checkpoints=(30, 150))),
    "mlp-truncations-5seeds": (
        _truncating,
        lambda: ICQ(learner="mlp", updates=80, seeds=5, hidden=(6,), checkpoints=(0, 80))),
    "tabular-stalled": (
        _stalling,
        lambda: ICQ(updates=10, seeds=2, stall_steps=200, log_messages=True)),
}


def _hash_array(h, name: str, a) -> None:
    a = np.asarray(a)
    if a.dtype.kind == "f":
        a = np.where(np.isnan(a), np.nan, a).astype("<f8")
    elif a.dtype.kind in "iu":
        a = a.astype("<i8")
    elif a.dtype.kind == "b":
        a = a.astype("u1")
    else:
        raise TypeError(f"{name}: unexpected dtype {a.dtype}")
    h.update(f"{name}|{a.dtype.kind}|{a.shape}|".encode())
    h.update(np.ascontiguousarray(a).tobytes())


def record_digest(rec) -> str:
    """SHA-256 of every deterministic field of a :class:`~solvers.records.RunRecord`."""
    h = hashlib.sha256()
    message = rec.message if rec.status != "completed" else rec.message.split(";")[0]
    head = {"success": bool(rec.success), "status": rec.status, "message": message,
            "iterations": int(rec.iterations), "instance": rec.instance, "learner": rec.learner,
            "gamma": float(rec.gamma).hex(), "num_agents": int(rec.num_agents),
            "num_observations": [int(n) for n in rec.num_observations],
            "base_seed": rec.base_seed, "settings": rec.settings,
            "total_updates": rec.timings["total_updates"], "batch_steps": rec.timings["batch_steps"]}
    h.update(json.dumps(head, sort_keys=True, default=repr).encode())
    for f in ("admissible", "checkpoints", "q", "seeds", "reached", "updates", "primitive_steps",
              "episodes", "truncations", "eps0_value", "eps0_grad", "theta_distance"):
        _hash_array(h, f, getattr(rec, f))
    _hash_array(h, "checkpoint_timed", np.isfinite(rec.checkpoint_seconds))
    for f in ("theta0", "theta", "features"):
        h.update(f"{f}|{len(getattr(rec, f))}|".encode())
        for j, a in enumerate(getattr(rec, f)):
            _hash_array(h, f"{f}[{j}]", a)
    if rec.messages is None:
        h.update(b"messages|None")
    else:
        for f in sorted(rec.messages):
            _hash_array(h, f"msg_{f}", rec.messages[f])
    return h.hexdigest()


def case_digest(name: str) -> str:
    """Run case ``name`` of :data:`CASES` and digest its record."""
    make_model, make_settings = CASES[name]
    with np.errstate(over="ignore", invalid="ignore"):  # the diverging case overflows on purpose
        return record_digest(solve(make_settings(), make_model()))


#: Digests of the original implementation (see the module docstring for the command).
RECORDED = {
    "tabular-tiny-greedy-1seed-log":
        "b83f34c0cb98680660e7bad0c546cb1df2c2ff7f92bb9abe8c3fc12b5abf934d",
    "tabular-tiny-fixedlaw-5seeds-log":
        "4a850b88413b02e99c17514ac2735caa79dc718ed8db123ed19c64a2dc5606d9",
    "tabular-workflow-decaying-5seeds-log":
        "278d98eca2867801be993cfa5f41bafa052fbef2b2ae136dca1f6f6631c3a427",
    "tabular-workflow-uniform-5seeds-paper":
        "c6834a2ed523752454c8198152ff1e6423096e73c724ed37e91639771e1ed0c2",
    "tabular-workflow-greedy-seedsubset":
        "61ea2a2aa879087d36702846594da55af7667c16e38d6a91cc50ac560377816b",
    "linear-tiny-greedy-1seed-log":
        "fdf2b3d405ef433078ec19d3deaf0975cb61a5093106f5454d43e059b09cb8c5",
    "linear-tiny-features-5seeds":
        "c09c61f07cb604c9c1482cf828637c8909174b40f4d634bcc9cdea00eb5e0c0f",
    "linear-workflow-uniform-5seeds-log":
        "b7a319b3be736caba65a6e0b92d992ee12c0db8122576f775394eac71b1e0f3b",
    "linear-tiny-diverged":
        "c19480f007f50b2b468e89a519dabd7d41942566e64a066f62a56c1403e8163b",
    "mlp-workflow-greedy-5seeds-log":
        "807688e8070aadddd8061c3371b027b641a405c49303dd17d996db951139938b",
    "mlp-tiny-inputs-1seed-unshared":
        "fa496f5c0c763bffccb58e9b2142169b5446b5f31559bfa13fe02e9ea421db71",
    "mlp-workflow-uniform-unshared-notrack":
        "0ace7716f0b6c8604d97932a8cd490a90ac02e70f03727af504d6038d50c9369",
    "tabular-truncations-4seeds-log":
        "05e1d1fa0dc3fefdacb433acb29d4f4593064729a2ba65e512b778a9bcc8c13f",
    "mlp-truncations-5seeds":
        "4b6a64bffea7fb4442c9135faee49b7ca487d0e4c4ece0210a5a26db7213f665",
    "tabular-stalled":
        "ce2242267535c7e539dd27770e4311d4cbc9ac2e698306b367636f2dc1d265ff",
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_run_reproduces_the_original_implementation_bit_for_bit(name):
    assert case_digest(name) == RECORDED[name], name


def test_digest_sees_a_one_ulp_change():
    make_model, make_settings = CASES["tabular-tiny-greedy-1seed-log"]
    rec = solve(make_settings(), make_model())
    q = rec.q.copy()
    q[-1, 0, 0, 1] = np.nextafter(q[-1, 0, 0, 1], np.inf)
    assert record_digest(dataclasses.replace(rec, q=q)) != record_digest(rec)
    msgs = {k: v.copy() for k, v in rec.messages.items()}
    msgs["tau"][-1] += 1
    assert record_digest(dataclasses.replace(rec, messages=msgs)) != record_digest(rec)
    assert record_digest(dataclasses.replace(rec, episodes=rec.episodes + 1)) != record_digest(rec)
