"""estimators.decentralized against brute force over every assignment of every cell.

The brute force enumerates the full product of the cells' admissible sets (the
intersection of their states' sets, computed here), with no reachability
pruning, and evaluates each policy with estimators.policy_value.
"""
from __future__ import annotations

from itertools import product

import numpy as np
import pytest

from estimators.decentralized import (best_decentralized_policy, count_decentralized_policies,
                                      decentralized_cells, enumerate_decentralized_policies)
from estimators.decentralized import _Walker  # the enumeration itself, for the value check
from estimators.policy_value import policy_value
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError, StateSpaceTooLargeError
from icsmdp_theory.math_reasoning import math_reasoning


def random_cell_model(seed: int, *, K: int = 5, N: int = 2, num_obs: int = 2) -> EpochModel:
    """Every (label, agent); a coarse random map; per-cell admissible sets plus extra per-state ones."""
    rng = np.random.default_rng(seed)
    obs = [rng.integers(0, num_obs, K) for _ in range(N)]
    states = [[k, i] for k in range(K) for i in range(N)]
    S = len(states)
    cell_adm = {}
    adm = np.zeros((S, N + 1), bool)
    for s, (k, i) in enumerate(states):
        key = (i, int(obs[i][k]))
        if key not in cell_adm:
            row = rng.random(N + 1) < 0.6
            row[rng.integers(0, N + 1)] = True
            cell_adm[key] = row
        adm[s] = cell_adm[key] | (rng.random(N + 1) < 0.2)   # states may admit more
    tr = {key: [] for key in ("state", "successor", "next_label", "tau", "prob")}
    for s in range(S):
        for c in np.flatnonzero(adm[s]):
            outs = [(-1, 1)] if c == N else [(int(k2), 1) for k2 in rng.choice(K, 2, replace=False)]
            for (k2, t), q in zip(outs, rng.dirichlet(np.ones(len(outs)))):
                tr["state"].append(s); tr["successor"].append(int(c)); tr["next_label"].append(k2)
                tr["tau"].append(t); tr["prob"].append(float(q))
    reward = np.where(adm, rng.normal(size=(S, N + 1)), np.nan)
    comps = np.where(adm[:, :, None], rng.random((S, N + 1, 2)), np.nan)
    comps[:, :N, 0] = 0.0                               # "correct": paid at STOP only
    rho0 = np.zeros(S)
    rho0[rng.choice(S, 2, replace=False)] = 0.5
    return EpochModel(name=f"cells{seed}", gamma=0.9, agents=[f"a{i}" for i in range(N)],
                      labels=[f"k{k}" for k in range(K)], states=states, admissible=adm,
                      rho0=rho0, transitions=tr, reward=reward, observation=obs,
                      component_names=["correct", "cost"], components=comps)


def brute_force(model, weights, discounted):
    """All assignments of all cells; values by policy_value."""
    offsets = np.concatenate([[0], np.cumsum(model.num_observations)])
    cell = offsets[model.state_agent] + model.state_observation
    n_cells = int(offsets[-1])
    inter = np.ones((n_cells, model.num_successors), bool)
    for s in range(model.num_epoch_states):
        inter[cell[s]] &= model.admissible[s]
    out = []
    for choice in product(*[np.flatnonzero(inter[x]) for x in range(n_cells)]):
        sigma = np.asarray(choice, np.int64)[cell]
        pv = policy_value(model, sigma, discounted=discounted)
        out.append((sum(w * pv.values[k] for k, w in weights.items()), pv.values, sigma))
    return out


def _value_sets(values_list, names):
    return sorted(tuple(np.round([v[n] for n in names], 9).tolist()) for v in values_list)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("discounted", [False, True])
def test_optimum_equals_brute_force_on_random_models(seed, discounted):
    model = random_cell_model(seed)
    for weights in ({"correct": 1.0}, {"correct": 1.0, "cost": -0.3}):
        brute = brute_force(model, weights, discounted)
        finite = [b for b in brute if np.isfinite(b[0])]
        if not finite:
            with pytest.raises(InvalidArgumentError, match="no decentralized policy"):
                best_decentralized_policy(model, weights=weights, discounted=discounted)
            continue
        best = best_decentralized_policy(model, weights=weights, discounted=discounted)
        assert best.value == pytest.approx(max(b[0] for b in finite), abs=1e-10)
        pv = policy_value(model, best.policy, discounted=discounted)
        assert best.value == pytest.approx(sum(w * pv.values[k] for k, w in weights.items()),
                                           abs=1e-12)


@pytest.mark.parametrize("seed", range(12))
def test_enumeration_covers_every_policy_once_up_to_unreached_cells(seed):
    """The value vectors of the pruned enumeration are exactly the distinct ones of brute force
    on the reachable part; each enumerated policy differs from the others on a reached cell."""
    model = random_cell_model(seed)
    names = ("reward", "correct")
    brute = brute_force(model, {"reward": 1.0}, True)
    mine = [policy_value(model, s).values for s in enumerate_decentralized_policies(model)]
    assert set(_value_sets([b[1] for b in brute], names)) == set(_value_sets(mine, names))
    assert len(mine) == count_decentralized_policies(model)
    assert len(mine) <= len(brute)


def test_fast_values_agree_with_policy_value_on_every_policy():
    """The enumeration's restricted solves against policy_value (NaN conventions included)."""
    for seed in range(12):
        model = random_cell_model(seed)
        walker = _Walker(model)
        for choice, reached in walker.walk():
            sigma = walker.epoch_policy(choice)[0]
            for discounted in (False, True):
                mine = walker.values(sigma, reached, discounted)
                ref = policy_value(model, sigma, discounted=discounted).values
                for k, v in ref.items():
                    assert (np.isnan(v) and np.isnan(mine[k])) or mine[k] == pytest.approx(
                        v, abs=1e-10), (seed, k, discounted)


def test_math_reasoning_optimum_equals_brute_force():
    m = math_reasoning("MMLU-HS")
    brute = brute_force(m, {"correct": 1.0}, False)
    # full tables: C(0000) {E, T}, C(1000) {STOP, K}, C(1010) {STOP, E, T}, C(1100) {STOP, K},
    # E(0000) {C, K}, E(1000) {C, K}; every other cell has one successor: 2*2*3*2*2*2
    assert len(brute) == 96
    best = best_decentralized_policy(m)
    assert best.value == pytest.approx(max(b[0] for b in brute), abs=1e-12)
    assert best.num_policies == 14                  # distinct on the cells each one reaches
    cost = {"correct": 1.0, "tokens": 0.05}
    brute = brute_force(m, cost, True)
    best = best_decentralized_policy(m, weights=cost)
    assert best.objective == {"weights": cost, "discounted": True}
    assert best.value == pytest.approx(max(b[0] for b in brute), abs=1e-12)


def test_ties_go_to_the_shorter_policy():
    """Comb-E with the commissioner between the editor and the checker (E(1000) -> C(1100) ->
    K) and Comb-E without it are equally accurate: the optimum takes the one with fewer calls."""
    m = math_reasoning("MathQA")
    best = best_decentralized_policy(m)
    assert best.values["calls"] == pytest.approx(
        max(policy_value(m, s, discounted=False).values["calls"]
            for s in enumerate_decentralized_policies(m)
            if policy_value(m, s, discounted=False).values["correct"] >= best.value - 1e-12))


def test_refusals_and_errors():
    m = math_reasoning("MathQA")
    with pytest.raises(StateSpaceTooLargeError, match=r"more than 10 deterministic decentralized "
                                                      r"policies"):
        best_decentralized_policy(m, max_policies=10)
    with pytest.raises(StateSpaceTooLargeError):
        next(enumerate_decentralized_policies(m, max_policies=10))
    with pytest.raises(InvalidArgumentError, match=r"`objective` must be one of reward, correct"):
        best_decentralized_policy(m, objective="latency")
    with pytest.raises(InvalidArgumentError, match=r"either `objective` or `weights`"):
        best_decentralized_policy(m, objective="correct", weights={"correct": 1.0})
    with pytest.raises(InvalidArgumentError, match=r"`weights`: unknown reward column 'x'"):
        best_decentralized_policy(m, weights={"x": 1.0})
    with pytest.raises(InvalidArgumentError, match=r"`model` must be an EpochModel"):
        decentralized_cells("model")
    r = best_decentralized_policy(m, objective="reward")     # the scalar reward is `correct` here
    assert r.objective["discounted"] is True and r.status == "computed"
