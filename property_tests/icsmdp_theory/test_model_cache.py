"""Caches keyed by what they depend on (STYLE 19; issue: stale caches across ``with_observation``).

Before this fix, caches lived in the model's ``__dict__`` and ``with_observation``
copied them, the dict-valued ones by reference: a child model learned with its
parent's observations and returned its parent's behavior-keyed stationary law.
Here every cached computation is done on a parent first, then on a child with
other maps, and compared bit for bit with the same computation on a fresh copy
of the child (rebuilt from its JSON document, so it shares nothing).
"""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from estimators.behavior import uniform_behavior
from estimators.epoch_chain import end_law
from estimators.stationary import stationary_law
from icsmdp_theory.examples import load_example
from icsmdp_theory.io import instance_from_dict, instance_to_dict
from icsmdp_theory.options import option_reduction
from icsmdp_theory.simulate import simulation_tables
from icsmdp_theory.testing.strategies import icsmdps, observation_maps
from solvers import ICQ, ModifiedPolicyIteration, solve
from solvers.committed_chain import committed_chain


def _fresh(model):
    return instance_from_dict(instance_to_dict(model))


def _skewed_behavior(model, rng):
    """A non-uniform behavior: random positive weights on each observation's admissible successors."""
    out = []
    for b in uniform_behavior(model):
        w = rng.uniform(0.1, 1.0, size=b.shape) * (b > 0)
        out.append(w / w.sum(axis=1, keepdims=True))
    return out


def _everything(model, behavior):
    """Every cached computation of a model, as plain arrays."""
    N = model.num_agents
    out = {}
    for i in range(N):
        red = option_reduction(model, i)
        out[f"kbar{i}"] = model.mean_kernel(i).toarray()
        out[f"R{i}"] = red.option_reward()
        out[f"g{i}"] = red.effective_discount()
        out[f"end_law{i}"] = np.asarray(end_law(model, i))
    tables = simulation_tables(model)
    out["obs_of"] = tables.obs_of
    out["stationary"] = np.asarray(stationary_law(model, behavior=behavior).law)
    out["stationary_uniform"] = np.asarray(stationary_law(model).law)
    out["q_star"] = solve(ModifiedPolicyIteration(tol=1e-10), model).q
    out["chain_admissible"] = committed_chain(model).admissible
    rec = solve(ICQ(updates=120, seeds=2, checkpoints=(120,), progress=False), model)
    out["icq_q"] = rec.q
    return out


def _assert_bitwise_equal(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        x, y = np.asarray(a[k]), np.asarray(b[k])
        assert x.shape == y.shape, k
        assert np.array_equal(x, y, equal_nan=True), f"{k} differs from a fresh model's"


@settings(max_examples=15)
@given(model=icsmdps(agents=(1, 3), latent=(1, 2), interface=(1, 3), private=(1, 2)),
       data=st.data())
def test_parent_then_child_equals_a_fresh_child_bit_for_bit(model, data):
    maps = [data.draw(observation_maps(model.num_interface, a.num_private))
            for a in model.agents]
    child = model.with_observation(maps)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    _everything(model, _skewed_behavior(model, rng))        # fill the parent's caches
    behavior = _skewed_behavior(child, rng)
    _assert_bitwise_equal(_everything(child, behavior), _everything(_fresh(child), behavior))


def test_the_reported_case_tiny_handoff():
    """The issue's example: the parent simulates and computes a law, then a child with flipped maps."""
    m = load_example("tiny-handoff")
    maps = [a.observation.max() - a.observation for a in m.agents]
    settings_ = ICQ(updates=300, seeds=1, checkpoints=(300,), progress=False)
    b = [np.array([[0.0, 0.8, 0.2], [0.0, 0.3, 0.7]]),
         np.array([[0.6, 0.0, 0.4], [0.1, 0.0, 0.9], [0.5, 0.0, 0.5]])]
    solve(settings_, m)                                     # the parent simulates first
    parent_law = stationary_law(m, behavior=b).law          # and computes a behavior's law
    child = m.with_observation(maps)
    fresh = _fresh(child)
    assert np.array_equal(solve(settings_, child).q, solve(settings_, fresh).q, equal_nan=True)
    # the same arrays b_i(c'|o) mean another epoch behavior under the flipped labels
    child_law = stationary_law(child, behavior=b).law
    assert np.array_equal(child_law, stationary_law(fresh, behavior=b).law)
    assert not np.allclose(child_law, parent_law)           # the case is not trivial


def test_no_cache_container_is_shared():
    m = load_example("tiny-handoff")
    option_reduction(m, 0)
    simulation_tables(m)
    child = m.with_observation([a.observation.max() - a.observation for a in m.agents])
    assert child.derived is not m.derived
    assert child.derived.keys(observation=True) == []                      # nothing carried
    assert ("simulation_tables",) in m.derived.keys(observation=True)
    assert set(child.derived.keys(observation=False)) == set(m.derived.keys(observation=False))
    option_reduction(child, 1)                              # a new dynamics value in the child ...
    assert ("option_reduction", 1) not in m.derived.keys(observation=False)  # ... not in the parent
