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
message log; a run with horizon truncations and one that stalls.
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
        lambda: ICQ(updates=2000, seeds=1, behavior=EpsilonGreedy(epsilon=0.2),
                    checkpoints=(0, 10, 100), log_messages=True, seed=3)),
    "tabular-tiny-fixedlaw-5seeds-log": (
        lambda: load_example("tiny-handoff"),
        lambda: ICQ(updates=1500, seeds=5, behavior=FixedBehavior(probabilities=_tiny_probs()),
                    log_messages=True, init=1.5, step=StepSize(rule="harmonic", c=2.0, k0=3.0,
                                                               index="agent"))),
    "tabular-workflow-decaying-5seeds-log": (
        lambda: load_example("workflow"),
        lambda: ICQ(updates=1500, seeds=5, seed=7, log_messages=True, checkpoints=(0, 50, 700),
                    behavior=EpsilonGreedy(epsilon=0.5, final_epsilon=0.05, decay_steps=500))),
    "tabular-workflow-uniform-5seeds-paper": (
        lambda: load_example("workflow"),
        lambda: ICQ(updates=1200, seeds=5, behavior=FixedBehavior(),
                    step=StepSize(rule="paper", nu=0.5, lambda0=0.2, max_step=0.5))),
    "tabular-workflow-greedy-seedsubset": (
        lambda: load_example("workflow"),
        lambda: ICQ(updates=800, seeds=(4, 1), seed=11, behavior=EpsilonGreedy(epsilon=0.1),
                    checkpoints=(3, 400), log_messages=True)),
    "linear-tiny-greedy-1seed-log": (
        lambda: load_example("tiny-handoff"),
        lambda: ICQ(learner="linear", updates=1500, seeds=1, behavior=EpsilonGreedy(epsilon=0.3),
                    log_messages=True, checkpoints=(0, 500))),
    "linear-tiny-features-5seeds": (
        lambda: load_example("tiny-handoff"),
        lambda: ICQ(learner="linear", updates=1000, seeds=5, features=_tiny_linear_features(),
                    omega=3.0, step=StepSize(rule="constant", c=0.02, index="pair"),
                    behavior=FixedBehavior())),
    "linear-workflow-uniform-5seeds-log": (
        lambda: load_example("workflow"),
        lambda: ICQ(learner="linear", updates=1000, seeds=5, seed=2, behavior=FixedBehavior(),
                    log_messages=True, checkpoints=(100, 500))),
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
        lambda: ICQ(updates=300, seeds=4, log_messages=True, checkpoints=(30, 300))),
    "mlp-truncations-5seeds": (
        _truncating,
        lambda: ICQ(learner="mlp", updates=150, seeds=5, hidden=(6,), checkpoints=(0, 150))),
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
    return record_digest(solve(make_settings(), make_model()))


#: Digests of the original implementation (see the module docstring for the command).
RECORDED = {
    'tabular-tiny-greedy-1seed-log':
        'a59b8e9e963c0e5de8899f6e1c6b3296cd753837e57f266ee84ec260db112dc5',
    'tabular-tiny-fixedlaw-5seeds-log':
        '55ac8f0fa61874c0cb5b6f4ada7ea55f938604d4d553dca2c6d6a6cfc6b8c462',
    'tabular-workflow-decaying-5seeds-log':
        'ba9bbb073bc2f7c9bb27bc1b237e81ba80345d3992562ad2279c1f305ab0f785',
    'tabular-workflow-uniform-5seeds-paper':
        'e76c70a5c16eca3f7c60d1f6575e6e74b64d41e2b87d40f0b9771b154186f6ee',
    'tabular-workflow-greedy-seedsubset':
        '6a3b49cb864b8e0de974ef39cabcb24fd360e2c9325613cffef04ccb5ae4ac83',
    'linear-tiny-greedy-1seed-log':
        'af4ee85d102b851755251f73788dde36d5d68d50db3682c05d5bb1ba6b060bd6',
    'linear-tiny-features-5seeds':
        '9d21453e6c5375d5ed467268b6073206ad931867d6e8732471dc2f021a62e0d9',
    'linear-workflow-uniform-5seeds-log':
        'd17e672f1e675c933863eeaf94097ba15931d880f6a952b72222fce367e04c3b',
    'mlp-workflow-greedy-5seeds-log':
        '807688e8070aadddd8061c3371b027b641a405c49303dd17d996db951139938b',
    'mlp-tiny-inputs-1seed-unshared':
        'fa496f5c0c763bffccb58e9b2142169b5446b5f31559bfa13fe02e9ea421db71',
    'mlp-workflow-uniform-unshared-notrack':
        '0ace7716f0b6c8604d97932a8cd490a90ac02e70f03727af504d6038d50c9369',
    'tabular-truncations-4seeds-log':
        'ab55c284e0adb2a8faae39bdbc988777bcf93187e751596f8c514575423c8357',
    'mlp-truncations-5seeds':
        '757146b467a6225dbfd65cd3b95494b5dd8580fdaf6374fd8fcea6e4c927758c',
    'tabular-stalled':
        'ce2242267535c7e539dd27770e4311d4cbc9ac2e698306b367636f2dc1d265ff',
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
