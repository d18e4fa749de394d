"""Tests of :mod:`icsmdp_theory.epoch` (SPEC sections 1 and 3) against explicit loops.

The expected layouts are written out by hand from the SPEC: a full state
``(x, m, l_0..l_{N-1})`` is flattened in C order, an epoch state is
``s = f*N + i``, agent ``i``'s local index is ``y = (x*nM + m)*nL_i + l_i`` and
its *rest* index is the C-order index of the other agents' private states.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from icsmdp_theory.epoch import EpochSpace, initial_epoch_law
from icsmdp_theory.errors import StateSpaceTooLargeError
from icsmdp_theory.examples import load_example
from icsmdp_theory.generators import random_icsmdp

SHAPES = [
    dict(num_agents=1, num_latent=1, num_interface=3, num_private=1),
    dict(num_agents=2, num_latent=2, num_interface=3, num_private=(2, 3)),
    dict(num_agents=3, num_latent=2, num_interface=2, num_private=(3, 1, 2)),
    dict(num_agents=3, num_latent=1, num_interface=4, num_private=(1, 2, 1)),
    dict(num_agents=4, num_latent=3, num_interface=1, num_private=(2, 1, 2, 3)),
]


def _explicit_views(model):
    """``[(f, i, y, r)]`` for every full state ``f`` and agent ``i``, by nested loops."""
    nX, nM, nL = model.num_latent, model.num_interface, model.num_private
    N = model.num_agents
    rows = []
    f = 0
    for x in range(nX):
        for m in range(nM):
            for ls in itertools.product(*[range(n) for n in nL]):  # C order, l_{N-1} fastest
                for i in range(N):
                    y = (x * nM + m) * nL[i] + ls[i]
                    r = 0
                    for j in range(N):
                        if j != i:
                            r = r * nL[j] + ls[j]
                    rows.append((f, i, y, r, x, m, ls))
                f += 1
    return rows


@pytest.mark.parametrize("kwargs", SHAPES)
def test_agent_views_agree_with_explicit_loop(kwargs):
    model = random_icsmdp(0, **kwargs)
    space = EpochSpace(model)
    F, N = model.num_full_states, model.num_agents
    nL = model.num_private
    assert space.num_full_states == F == model.num_latent * model.num_interface * int(np.prod(nL))
    assert space.num_epoch_states == F * N
    rng = np.random.default_rng(1)
    arr1 = rng.normal(size=F)
    arr3 = rng.normal(size=(F, 2, 3))
    rows = _explicit_views(model)
    assert len(rows) == F * N
    for i in range(N):
        nY = model.num_latent * model.num_interface * nL[i]
        n_rest = F // nY
        assert space.num_rest[i] == n_rest
        v1 = space.to_agent_view(i, arr1)
        v3 = space.to_agent_view(i, arr3)
        assert v1.shape == (nY, n_rest) and v3.shape == (nY, n_rest, 2, 3)
        seen = np.zeros((nY, n_rest), bool)
        for f, j, y, r, *_ in rows:
            if j != i:
                continue
            assert v1[y, r] == arr1[f]
            assert np.array_equal(v3[y, r], arr3[f])
            assert space.full_of_view[i][y * n_rest + r] == f
            assert space.view_of_full[i][f] == y * n_rest + r
            seen[y, r] = True
        assert seen.all()
        # inverse in both directions
        assert np.array_equal(space.from_agent_view(i, v1), arr1)
        assert np.array_equal(space.from_agent_view(i, v3), arr3)
        w = rng.normal(size=(nY, n_rest, 4))
        assert np.array_equal(space.to_agent_view(i, space.from_agent_view(i, w)), w)


@pytest.mark.parametrize("kwargs", SHAPES)
def test_full_of_view_and_view_of_full_are_inverse_permutations(kwargs):
    model = random_icsmdp(2, **kwargs)
    space = EpochSpace(model)
    F = model.num_full_states
    for i in range(model.num_agents):
        fv, vf = space.full_of_view[i], space.view_of_full[i]
        assert sorted(fv.tolist()) == list(range(F))
        assert sorted(vf.tolist()) == list(range(F))
        assert np.array_equal(fv[vf], np.arange(F))
        assert np.array_equal(vf[fv], np.arange(F))


@pytest.mark.parametrize("kwargs", SHAPES)
def test_decode_matches_explicit_loop(kwargs):
    model = random_icsmdp(3, **kwargs)
    space = EpochSpace(model)
    N = model.num_agents
    for f, i, y, r, x, m, ls in _explicit_views(model):
        s = f * N + i
        assert space.decode(s) == {"x": x, "m": m, "l": tuple(ls), "agent": i}
        assert space.decode(np.int64(s)) == space.decode(s)


def test_decode_tiny_handoff_by_hand():
    space = EpochSpace(load_example("tiny-handoff"))
    # nX = 1, no private states, N = 2: s = m*2 + i
    for s in range(6):
        assert space.decode(s) == {"x": 0, "m": s // 2, "l": (0, 0), "agent": s % 2}


@pytest.mark.parametrize("kwargs", SHAPES)
def test_initial_epoch_law_is_the_brute_force_product(kwargs):
    model = random_icsmdp(4, **kwargs)
    law = initial_epoch_law(model)
    F, N = model.num_full_states, model.num_agents
    assert law.shape == (F, N)
    for f, i, y, r, x, m, ls in _explicit_views(model):
        expected = model.rho_latent_interface[x, m] * model.rho_agent[i]
        for j, lj in enumerate(ls):
            expected *= model.agents[j].rho_private[lj]
        assert abs(law[f, i] - expected) <= 1e-15
    assert abs(law.sum() - 1.0) <= 1e-12
    assert np.all(law >= 0)


def test_initial_epoch_law_tiny_handoff():
    # rho_XM puts all mass on m0, rho_C on the planner: s = 0
    law = initial_epoch_law(load_example("tiny-handoff")).reshape(-1)
    assert law.tolist() == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_oversized_model_is_refused_with_count_and_limit():
    model = random_icsmdp(5, num_agents=3, num_latent=2, num_interface=3, num_private=(2, 3, 1))
    n = model.num_epoch_states
    assert n == 2 * 3 * 6 * 3 == 108
    with pytest.raises(StateSpaceTooLargeError) as info:
        EpochSpace(model, max_epoch_states=n - 1)
    msg = str(info.value)
    assert "107" in msg and "108" in msg, msg
    assert "at most 107 epoch states" in msg and "has 108" in msg, msg
    with pytest.raises(StateSpaceTooLargeError, match=r"at most 10 epoch states.*has 108"):
        EpochSpace(model, max_epoch_states=10)
    # the limit itself is allowed
    assert EpochSpace(model, max_epoch_states=n).num_epoch_states == n


def test_oversized_message_formats_large_counts():
    model = random_icsmdp(6, num_agents=2, num_interface=2, num_private=(40, 50), nnz_per_row=2)
    n = model.num_epoch_states
    assert n == 2 * 40 * 50 * 2 == 8000
    with pytest.raises(StateSpaceTooLargeError, match=r"at most 1,000 epoch states.*has 8,000"):
        EpochSpace(model, max_epoch_states=1000)
