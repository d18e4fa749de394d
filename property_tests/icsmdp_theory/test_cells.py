"""Observation cells: the layout ``cell = offsets[i] + o``, against explicit loops over full states."""
import itertools

import numpy as np
from hypothesis import given, settings

from icsmdp_theory.cells import cell_admissible, cell_of_epoch_states, cell_offsets, epoch_observations
from icsmdp_theory.testing.strategies import icsmdps


@settings(max_examples=30)
@given(icsmdps(agents=(1, 3), latent=(1, 2), interface=(1, 4), private=(1, 3)))
def test_cells_match_an_explicit_loop(model):
    N = model.num_agents
    nO = model.num_observations
    offsets = cell_offsets(nO)
    assert offsets.tolist() == [sum(nO[:i]) for i in range(N + 1)]
    obs, cells = epoch_observations(model), cell_of_epoch_states(model)
    shape = (model.num_latent, model.num_interface) + tuple(model.num_private)
    for f, idx in enumerate(itertools.product(*map(range, shape))):   # C order, as SPEC 3
        m, ls = idx[1], idx[2:]
        for i, a in enumerate(model.agents):
            o = a.observation[m, ls[i]]
            assert obs[f, i] == o
            assert cells[f, i] == sum(nO[:i]) + o
    adm = cell_admissible(model)
    assert adm.shape == (offsets[-1], N + 1)
    for i, a in enumerate(model.agents):
        assert np.array_equal(adm[offsets[i]:offsets[i + 1]],
                              np.tile(a.successors, (nO[i], 1)))
    assert np.array_equal(model.admissible, np.array([a.successors for a in model.agents]))
    assert not model.admissible.flags.writeable
