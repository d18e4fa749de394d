"""Tests of :mod:`icsmdp_theory.generators`: drawn instances validate, have the
requested sizes and structure, are reproducible, and bad knobs are refused."""
from __future__ import annotations

import re

import numpy as np
import pytest

from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.generators import observation_mod, random_icsmdp, random_sparse_rows
from icsmdp_theory.io import instance_from_dict, instance_to_dict
from icsmdp_theory.model import ICSMDP


def _knobs(seed):
    """Varied knobs drawn from ``seed`` (a small deterministic sweep)."""
    rng = np.random.default_rng(1000 + seed)
    N = int(rng.integers(1, 4))
    return dict(
        num_agents=N, num_latent=int(rng.integers(1, 3)), num_interface=int(rng.integers(1, 6)),
        num_private=tuple(int(v) for v in rng.integers(1, 4, size=N)),
        num_actions=tuple(int(v) for v in rng.integers(1, 4, size=N)),
        nnz_per_row=[None, 1, 2, 5][seed % 4],
        end_probability=[(0.2, 1.0), 0.5, (1e-3, 1e-3), 1.0][(seed // 4) % 4],
        gamma=float(rng.uniform(0.01, 0.99)), horizon=int(rng.integers(1, 100)),
        successor_density=float(rng.uniform(0, 1)),
        stop_admissible=[None, True, False][seed % 3],
        observation=["injective", "random", 1][seed % 3],
        reward_range=(-2.0, 3.0))


@pytest.mark.parametrize("seed", range(60))
def test_drawn_instances_validate_and_have_the_requested_structure(seed):
    k = _knobs(seed)
    model = random_icsmdp(seed, **k)
    assert isinstance(model, ICSMDP)
    # the same document passes validation again from scratch
    instance_from_dict(instance_to_dict(model))
    N, nX, nM = k["num_agents"], k["num_latent"], k["num_interface"]
    assert (model.num_agents, model.num_latent, model.num_interface) == (N, nX, nM)
    assert model.num_private == k["num_private"]
    assert model.gamma == k["gamma"] and model.horizon == k["horizon"]
    assert model.num_epoch_states == nX * nM * int(np.prod(k["num_private"])) * N
    assert model.rho_agent.shape == (N,) and abs(model.rho_agent.sum() - 1) < 1e-12
    for i, a in enumerate(model.agents):
        nL, nA = k["num_private"][i], k["num_actions"][i]
        nY = nX * nM * nL
        assert a.num_actions == nA and a.num_local_states == nY
        assert len(a.kernel) == nA and a.kernel_is_sparse == (k["nnz_per_row"] is not None)
        for K in a.kernel:
            assert K.shape == (nY, nY)
            np.testing.assert_allclose(K.sum(axis=1), 1.0, atol=1e-12)
            assert K.data.min() > 0
            per_row = np.diff(K.indptr)
            expected = nY if k["nnz_per_row"] is None else min(k["nnz_per_row"], nY)
            assert (per_row == expected).all()
        beta = a.end_probability
        if isinstance(k["end_probability"], tuple):
            lo, hi = k["end_probability"]
            assert lo <= beta.min() and beta.max() <= hi
        else:
            assert (beta == k["end_probability"]).all()
        assert a.reward.shape == (nX, nM, nA, N + 1)
        assert -2.0 <= a.reward.min() and a.reward.max() <= 3.0
        assert a.successors.any()
        if k["stop_admissible"] is not None:
            assert a.successors[N] == k["stop_admissible"]
        obs = a.observation
        labels = np.unique(obs)
        np.testing.assert_array_equal(labels, np.arange(labels.size))  # surjective onto 0..nO-1
        if k["observation"] == "injective":
            np.testing.assert_array_equal(obs, np.arange(nM * nL).reshape(nM, nL))
        elif k["observation"] == "random":
            assert labels.size == max(1, (nM * nL + 1) // 2)
        else:
            assert (obs == 0).all()


@pytest.mark.parametrize("nnz", [1, 2, 3, 7, 50])
def test_nnz_per_row(nnz):
    model = random_icsmdp(nnz, num_latent=2, num_interface=4, num_private=(1, 3),
                          num_actions=2, nnz_per_row=nnz)
    for a in model.agents:
        for K in a.kernel:
            nY = K.shape[0]
            counts = [int((K.toarray()[y] > 0).sum()) for y in range(nY)]
            assert counts == [min(nnz, nY)] * nY


def test_random_sparse_rows():
    rng = np.random.default_rng(0)
    for rows, cols, nnz in [(5, 7, 3), (40, 40, 39), (3, 2, 5), (100, 1000, 1)]:
        K = random_sparse_rows(rng, rows, cols, nnz)
        assert K.shape == (rows, cols)
        dense = K.toarray()
        assert ((dense > 0).sum(axis=1) == min(nnz, cols)).all()
        np.testing.assert_allclose(dense.sum(axis=1), 1.0, atol=1e-12)


@pytest.mark.parametrize("seed", range(12))
def test_random_observation_is_surjective(seed):
    model = random_icsmdp(seed, num_agents=2, num_interface=int(seed % 5) + 1,
                          num_private=(1, 3), observation="random")
    for a in model.agents:
        n = a.observation.size
        k = max(1, (n + 1) // 2)
        assert sorted(set(a.observation.ravel().tolist())) == list(range(k))


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_m_mod_k_map(k):
    model = random_icsmdp(k, num_agents=2, num_interface=5, num_private=(1, 2), observation=k)
    for a in model.agents:
        for m in range(5):
            for l in range(a.num_private):
                assert a.observation[m, l] == m % k
    assert observation_mod(5, 2, 2).tolist() == [[0, 0], [1, 1], [0, 0], [1, 1], [0, 0]]


def test_same_seed_same_instance_different_seed_different():
    kw = dict(num_agents=3, num_latent=2, num_interface=4, num_private=2, num_actions=2,
              nnz_per_row=3, observation="random")
    a, b = random_icsmdp(7, **kw), random_icsmdp(7, **kw)
    assert instance_to_dict(a) == instance_to_dict(b)
    c = random_icsmdp(np.random.default_rng(7), **kw)
    assert instance_to_dict(a) == instance_to_dict(c)
    assert instance_to_dict(a) != instance_to_dict(random_icsmdp(8, **kw))


def test_generator_state_is_consumed_not_global():
    rng = np.random.default_rng(3)
    first = instance_to_dict(random_icsmdp(rng))
    second = instance_to_dict(random_icsmdp(rng))
    assert first != second
    np.random.seed(0)
    x = instance_to_dict(random_icsmdp(11))
    np.random.seed(1)
    assert x == instance_to_dict(random_icsmdp(11))


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_agents=0), "`num_agents` must be an integer >= 1, got 0."),
    (dict(num_agents=2.5), "`num_agents` must be an integer >= 1, got 2.5."),
    (dict(num_latent=0), "`num_latent` must be an integer >= 1, got 0."),
    (dict(num_interface=-1), "`num_interface` must be an integer >= 1, got -1."),
    (dict(horizon=0), "`horizon` must be an integer >= 1, got 0."),
    (dict(num_private=0), "`num_private` must hold integers >= 1; entry 0 is 0."),
    (dict(num_private=(1, 0)), "`num_private` must hold integers >= 1; entry 1 is 0."),
    (dict(num_actions=(1, 2, 3)), "`num_actions` must be an int or 2 ints, got 3."),
    (dict(nnz_per_row=0), "`nnz_per_row` must be an integer >= 1, got 0."),
    (dict(nnz_per_row=-2), "`nnz_per_row` must be an integer >= 1, got -2."),
    (dict(end_probability=0), "`end_probability` must lie in (0, 1], got 0."),
    (dict(end_probability=1.5), "`end_probability` must lie in (0, 1], got 1.5."),
    (dict(end_probability=(0.0, 0.5)),
     "`end_probability` bounds must satisfy 0 < lo <= hi <= 1, got (0.0, 0.5)."),
    (dict(end_probability=(0.6, 0.5)),
     "`end_probability` bounds must satisfy 0 < lo <= hi <= 1, got (0.6, 0.5)."),
    (dict(end_probability=(0.1, 0.2, 0.3)),
     "`end_probability` must be a number or (lo, hi), got (0.1, 0.2, 0.3)."),
    (dict(gamma=1.0), "`gamma` must lie in (0, 1), got 1.0."),
    (dict(gamma=0), "`gamma` must lie in (0, 1), got 0."),
    (dict(successor_density=1.5), "`successor_density` must lie in [0, 1], got 1.5."),
    (dict(reward_range=(1.0, 0.0)),
     "`reward_range` must be finite (lo, hi) with lo <= hi, got (1.0, 0.0)."),
    (dict(reward_range=(0.0, float("inf"))),
     "`reward_range` must be finite (lo, hi) with lo <= hi, got (0.0, inf)."),
    (dict(observation="aliased"),
     "`observation` must be 'injective', 'random' or an int, got 'aliased'."),
    (dict(observation=True), "`observation` must be 'injective', 'random' or an int, got True."),
    (dict(observation=4), "`num_bins` must lie in 1..3, got 4."),
    (dict(observation=0), "`num_bins` must lie in 1..3, got 0."),
])
def test_invalid_knobs(kwargs, message):
    with pytest.raises(InvalidArgumentError, match=f"^{re.escape(message)}$"):
        random_icsmdp(0, **kwargs)


def test_end_probability_as_list_is_accepted():
    model = random_icsmdp(0, end_probability=[0.3, 0.4])
    for a in model.agents:
        assert 0.3 <= a.end_probability.min() and a.end_probability.max() <= 0.4


def test_successor_density_extremes():
    full = random_icsmdp(0, num_agents=3, successor_density=1.0)
    assert all(a.successors.all() for a in full.agents)
    none = random_icsmdp(0, num_agents=3, successor_density=0.0, stop_admissible=False)
    for a in none.agents:
        assert a.successors.sum() == 1 and not a.successors[3]
