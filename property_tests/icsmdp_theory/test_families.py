"""The experiment families (icsmdp_theory.families): synthetic IC-SMDP and routing.

The routing study's exact Q* and scoring are tested in property_tests/reports/studies.
"""
import ast
import inspect

import math

import networkx as nx
import numpy as np
import scipy.sparse as sp
import pytest

from icsmdp_theory.errors import InvalidArgumentError
import icsmdp_theory.families as families
from icsmdp_theory.families import (GRAPH_KINDS, check_routing_graph, routing_graph,
                                    routing_instance, synthetic_bins, synthetic_instance,
                                    synthetic_map)
from icsmdp_theory.model import ICSMDP

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


def test_oracle_gaps_vanish_for_routing():
    from estimators.gaps import gap_report
    g = routing_graph("watts_strogatz", 6, seed=0)
    rep = gap_report(routing_instance(g), minimax=False)
    assert rep.epsilon_phi == pytest.approx(0.0, abs=1e-9)
    assert rep.delta_phi == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("call, message", [
    (lambda: synthetic_instance(rho=0.0), "`rho` must lie in (0, 1], got 0.0."),
    (lambda: synthetic_instance(rho=0.5, num_agents=0), "`num_agents` must be an integer >= 1, got 0."),
    (lambda: synthetic_instance(rho=0.5, seed=-1), "`seed` must be an integer >= 0, got -1."),
    (lambda: synthetic_instance(rho=0.5, gamma=1.0), "`gamma` must lie in (0, 1), got 1.0."),
    (lambda: synthetic_instance(rho=0.5, p_handoff=True), "`p_handoff` must lie in (0, 1], got True."),
    (lambda: synthetic_bins(1.5, 10), "`rho` must lie in (0, 1], got 1.5."),
    (lambda: routing_graph("chain", 1), "`n` must be an integer >= 2, got 1."),
    (lambda: routing_graph("chain", 4, seed=2.0), "`seed` must be an integer >= 0, got 2.0."),
    (lambda: routing_instance(routing_graph("chain", 3), p_detain=1.0),
     "`p_detain` must lie in [0, 1), got 1.0."),
    (lambda: routing_instance(routing_graph("chain", 3), goal_reward=-1.0),
     "`goal_reward` must be a finite number >= 0, got -1.0."),
    (lambda: routing_instance(routing_graph("chain", 3), horizon=0),
     "`horizon` must be an integer >= 1, got 0."),
])
def test_validation_messages_name_the_argument_and_the_requirement(call, message):
    with pytest.raises(InvalidArgumentError) as err:
        call()
    assert str(err.value) == message


def test_check_routing_graph():
    assert check_routing_graph(routing_graph("watts_strogatz", 6)) == 6
    with pytest.raises(InvalidArgumentError, match="undirected"):
        check_routing_graph(nx.DiGraph([(0, 1)]))
    with pytest.raises(InvalidArgumentError, match="0..n-1"):
        check_routing_graph(nx.Graph([(1, 2)]))


def test_families_builds_instances_only():
    """Regression: the module imported the solvers (inside functions) for Q* and scoring.
    It is model layer: no import of solvers/estimators/reports, no import in a function."""
    tree = ast.parse(inspect.getsource(families))
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inner = [n for n in ast.walk(node) if isinstance(n, (ast.Import, ast.ImportFrom))]
            assert not inner, f"import inside {node.name}()"
        if isinstance(node, ast.ImportFrom):
            assert not (node.module or "").split(".")[0] in ("solvers", "estimators", "reports")
        if isinstance(node, ast.Import):
            assert not any(a.name.split(".")[0] in ("solvers", "estimators", "reports")
                           for a in node.names)
    for name in ("routing_q_star", "routing_accuracy", "RoutingAccuracy", "_is_int", "_pos_int",
                 "_unit"):
        assert not hasattr(families, name), name
