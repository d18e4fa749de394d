"""The experiment families (icsmdp_theory.families): synthetic IC-SMDP and routing."""
import math

import networkx as nx
import numpy as np
import scipy.sparse as sp
import pytest

from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.families import (GRAPH_KINDS, routing_accuracy, routing_graph,
                                    routing_instance, synthetic_bins, synthetic_instance,
                                    synthetic_map)
from icsmdp_theory.model import ICSMDP
from solvers.oracle import centralized_oracle
from solvers.records import cells_from_epoch_q

SMALL = dict(num_agents=3, num_latent=4, num_interface=10)


@pytest.mark.parametrize("rho", [1.0, 0.9, 0.55, 0.3, 0.1, 0.05])
def test_synthetic_map_is_m_mod_bins(rho):
    model = synthetic_instance(rho=rho, **SMALL)
    nb = max(1, math.ceil(round(rho * 10, 9)))
    assert synthetic_bins(rho, 10) == nb
    for a in model.agents:
        assert a.observation.ravel().tolist() == [m % nb for m in range(10)]
    maps = synthetic_map(model, rho)
    assert all(np.array_equal(m, a.observation) for m, a in zip(maps, model.agents))
    assert model.num_observations == (nb,) * 3


def test_synthetic_bins_paper_grid():
    assert [synthetic_bins(r, 50) for r in (1.0, 0.9, 0.3, 0.1, 0.05)] == [50, 45, 15, 5, 3]


def test_synthetic_validates_and_is_fixed_across_rho_and_p():
    a = synthetic_instance(rho=1.0, p_handoff=0.3, **SMALL)
    b = synthetic_instance(rho=0.2, p_handoff=0.5, **SMALL)
    assert isinstance(a, ICSMDP)
    for x, y in zip(a.agents, b.agents):
        assert np.array_equal(x.reward, y.reward)
        assert (x.kernel[0] != y.kernel[0]).nnz == 0
        assert np.all(x.end_probability == 0.3) and np.all(y.end_probability == 0.5)
    k = a.agents[0].kernel[0]
    assert np.allclose(k.sum(axis=1), 1.0)
    assert np.diff(k.indptr).max() <= 2 * 8
    # a different seed draws a different instance
    c = synthetic_instance(rho=1.0, seed=1, **SMALL)
    assert not np.array_equal(a.agents[0].reward, c.agents[0].reward)


def test_synthetic_aliasing_hurts():
    from estimators.gaps import gap_report
    model = synthetic_instance(rho=1.0, **SMALL)
    full = gap_report(model, minimax=False)
    half = gap_report(model.with_observation(synthetic_map(model, 0.5)), minimax=False)
    assert half.epsilon_phi > full.epsilon_phi
    assert half.alpha_tight > full.alpha_tight


def test_synthetic_ring_variant_moves_latent_state_locally():
    """latent_moves='ring': from (x, m) the kernel reaches only x' in {x-1, x, x+1} mod nX."""
    model = synthetic_instance(rho=1.0, latent_moves="ring", **SMALL)
    nX, nM = model.num_latent, model.num_interface
    for ag in model.agents:
        k = sp.coo_array(ag.kernel[0])
        x, x2 = k.row // nM, k.col // nM
        step = (x2 - x) % nX
        assert set(step.tolist()) <= {nX - 1, 0, 1}
        assert np.allclose(ag.kernel[0].sum(axis=1), 1.0)


@pytest.mark.parametrize("bad", [dict(rho=0.0), dict(rho=1.5), dict(rho=0.5, p_handoff=0.0),
                                 dict(rho=0.5, num_agents=0), dict(rho=0.5, gamma=1.0),
                                 dict(rho=0.5, latent_moves="torus")])
def test_synthetic_rejects_bad_arguments(bad):
    with pytest.raises(InvalidArgumentError):
        synthetic_instance(**bad)


@pytest.mark.parametrize("kind", GRAPH_KINDS)
@pytest.mark.parametrize("n", [2, 5, 12, 30])
def test_routing_graphs_connected(kind, n):
    for seed in range(4):
        g = routing_graph(kind, n, seed=seed)
        assert nx.is_connected(g)
        assert sorted(g.nodes) == list(range(n))
    assert nx.utils.graphs_equal(routing_graph(kind, n, seed=7), routing_graph(kind, n, seed=7))


def test_routing_graph_rejects_bad_input():
    with pytest.raises(InvalidArgumentError):
        routing_graph("grid", 5)
    with pytest.raises(InvalidArgumentError):
        routing_graph("chain", 1)
    with pytest.raises(InvalidArgumentError):
        routing_instance(nx.Graph([(0, 1), (2, 3)]))


def test_routing_instance_structure():
    g = routing_graph("erdos_renyi", 8, seed=2)
    model = routing_instance(g)
    n = 8
    assert model.num_agents == n and model.num_interface == 2 * n and model.num_latent == 1
    for i, a in enumerate(model.agents):
        expect = np.zeros(n + 1, bool)
        expect[list(g.neighbors(i))] = True
        expect[n] = True
        assert np.array_equal(a.successors, expect)
        assert np.all(a.end_probability == 1.0)
        assert a.observation.ravel().tolist() == list(range(2 * n))  # exact observation


@pytest.mark.parametrize("kind", GRAPH_KINDS)
@pytest.mark.parametrize("seed", [0, 1])
def test_oracle_routes_perfectly_on_shortest_paths(kind, seed):
    g = routing_graph(kind, 10, seed=seed)
    model = routing_instance(g, seed=seed)
    q = cells_from_epoch_q(model, centralized_oracle(model).solution.q)
    acc = routing_accuracy(model, g, q)
    assert acc.accuracy == 1.0 and acc.pairs == 90 and not acc.failures
    assert acc.mean_length_ratio == pytest.approx(1.0) and acc.max_length_ratio == pytest.approx(1.0)


def test_oracle_gaps_vanish_for_routing():
    from estimators.gaps import gap_report
    g = routing_graph("watts_strogatz", 6, seed=0)
    rep = gap_report(routing_instance(g), minimax=False)
    assert rep.epsilon_phi == pytest.approx(0.0, abs=1e-9)
    assert rep.delta_phi == pytest.approx(0.0, abs=1e-9)


def test_routing_accuracy_detects_bad_policies():
    g = routing_graph("chain", 4, seed=0)
    model = routing_instance(g)
    n = 4
    q = np.zeros((sum(model.num_observations), n + 1))
    q[:, n] = 1.0  # always STOP: fails every pair
    acc = routing_accuracy(model, g, q)
    assert acc.accuracy == 0.0 and all(r == "stop" for _, _, r in acc.failures)
    q = np.zeros((sum(model.num_observations), n + 1))  # lowest neighbour forever: ping-pong
    acc = routing_accuracy(model, g, q)
    assert acc.accuracy < 1.0 and any(r == "loop" for _, _, r in acc.failures)


@pytest.mark.parametrize("kind", GRAPH_KINDS)
def test_routing_q_star_matches_oracle(kind):
    from icsmdp_theory.families import routing_q_star
    g = routing_graph(kind, 7, seed=1)
    model = routing_instance(g)
    ref = cells_from_epoch_q(model, centralized_oracle(model).solution.q)
    q = routing_q_star(model)
    assert np.array_equal(np.isnan(q), np.isnan(ref))
    assert np.nanmax(np.abs(q - ref)) < 1e-6


def test_routing_q_star_routes_large_graph():
    from icsmdp_theory.families import routing_q_star
    g = routing_graph("barabasi_albert", 70, seed=0)  # beyond the epoch solvers' 64-axis limit
    model = routing_instance(g)
    acc = routing_accuracy(model, g, routing_q_star(model))
    assert acc.accuracy == 1.0 and acc.mean_length_ratio == pytest.approx(1.0)
