"""Minimax gaps of a map (SPEC section 5) against brute force over every cell's laws."""
from __future__ import annotations

import numpy as np
import pytest

from estimators.ais import ais_smdp
from estimators.chebyshev import tv_chebyshev_radius
from estimators.minimax import minimax_gaps
from icsmdp_theory.generators import random_icsmdp
from property_tests.estimators import dense_reduction, full_epoch_states, full_lp_radius


def test_minimax_gaps_against_brute_force():
    model = random_icsmdp(11, num_agents=2, num_latent=2, num_interface=3, num_private=(2, 1),
                          num_actions=2, observation="random", end_probability=(0.5, 1.0),
                          successor_density=1.0)
    mg = minimax_gaps(model, tol=1e-10)
    assert mg.success
    ais = ais_smdp(model)
    T = max(law.shape[2] for per in ais.duration_law for law in per if law is not None)
    dense = [dense_reduction(model, i, T) for i in range(model.num_agents)]
    states = list(full_epoch_states(model))
    nM = model.num_interface
    eps_cells, delta_cells = [], []
    for i, agent in enumerate(model.agents):
        nL = agent.num_private
        for o in range(agent.num_observations):
            members = [(x, m, ls) for x, m, ls in states if agent.observation[m, ls[i]] == o]
            ys = [(x * nM + m) * nL + ls[i] for x, m, ls in members]
            adm = np.flatnonzero(agent.successors)
            R = dense[i]["R"][ys][:, adm]
            eps_cells.append(0.5 * (R.max(axis=0) - R.min(axis=0)).max())
            radii = []
            for j in adm[adm < model.num_agents]:
                nOj = model.agents[j].num_observations
                laws = []
                for (x, m, ls), y in zip(members, ys):
                    law = np.zeros((nOj, T))
                    for y2 in range(dense[i]["D"].shape[1]):
                        xm2, l2 = divmod(y2, nL)
                        lj = l2 if j == i else ls[j]
                        law[model.agents[j].observation[xm2 % nM, lj]] += dense[i]["P"][:, y, y2]
                    laws.append(law.ravel())
                radii.append(full_lp_radius(np.array(laws)))
            delta_cells.append(max(radii, default=0.0))
    np.testing.assert_allclose(mg.cell_epsilon, eps_cells, atol=1e-12)
    np.testing.assert_allclose(mg.cell_delta, delta_cells, atol=1e-8)
    assert mg.epsilon == pytest.approx(max(eps_cells), abs=1e-12)
    assert mg.delta == pytest.approx(max(delta_cells), abs=1e-8)
    assert mg.delta_lower <= mg.delta <= mg.delta_lower + 1e-10
