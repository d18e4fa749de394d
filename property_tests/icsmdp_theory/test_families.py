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
from hypothesis import given, settings
from hypothesis import strategies as st

from estimators.gaps import gap_report
from estimators.stationary import stationary_law

from icsmdp_theory.errors import InvalidArgumentError
import icsmdp_theory.families as families
from icsmdp_theory.families import (DEFAULT_SYNTHETIC_FAMILY, GRAPH_KINDS, SYNTHETIC_FAMILIES,
                                    check_routing_graph, nested_boundaries, nested_observation,
                                    routing_graph, routing_instance, synthetic_bins,
                                    synthetic_instance, synthetic_map)
from icsmdp_theory.model import ICSMDP

SMALL = dict(num_agents=3, num_latent=4, num_interface=10)


@pytest.mark.parametrize("rho", [1.0, 0.9, 0.55, 0.3, 0.1, 0.05])
def test_synthetic_map_is_m_mod_bins(rho):
    model = synthetic_instance(rho=rho, family="cos-mod", **SMALL)
    nb = max(1, math.ceil(round(rho * 10, 9)))
    assert synthetic_bins(rho, 10) == nb
    for a in model.agents:
        assert a.observation.ravel().tolist() == [m % nb for m in range(10)]
    maps = synthetic_map(model, rho, family="cos-mod")
    assert all(np.array_equal(m, a.observation) for m, a in zip(maps, model.agents))
    assert model.num_observations == (nb,) * 3


@pytest.mark.parametrize("rho", [1.0, 0.9, 0.55, 0.3, 0.1, 0.05])
def test_default_family_map_is_nested_cells(rho):
    """The default family's map: ceil(rho |M|) contiguous cells, numbered left to right."""
    assert DEFAULT_SYNTHETIC_FAMILY == SYNTHETIC_FAMILIES[0] == "nested"
    model = synthetic_instance(rho=rho, **SMALL)
    nb = max(1, math.ceil(round(rho * 10, 9)))
    for a in model.agents:
        cells = a.observation.ravel().tolist()
        assert cells[0] == 0 and sorted(set(cells)) == list(range(nb))
        assert all(0 <= c2 - c1 <= 1 for c1, c2 in zip(cells, cells[1:]))  # contiguous
    maps = synthetic_map(model, rho)
    assert all(np.array_equal(m, a.observation) for m, a in zip(maps, model.agents))
    assert model.num_observations == (nb,) * 3


@pytest.mark.parametrize("nM", list(range(1, 41)) + [50, 64, 97])
def test_nested_maps_are_coarsenings_of_every_finer_one(nM):
    """Brute force over every pair k < k': each cell of the k'-cell map lies in one cell of
    the k-cell map, and the longest cell never shrinks as cells are removed."""
    b = nested_boundaries(nM)
    assert sorted(b.tolist()) == list(range(1, nM))  # every boundary once
    maps = [nested_observation(nM, 1, k).ravel() for k in range(1, nM + 1)]
    longest = [np.bincount(phi).max() for phi in maps]
    assert longest[-1] == 1 and longest[0] == nM
    assert all(l1 >= l2 for l1, l2 in zip(longest, longest[1:]))
    # near-equal cells: the longest is at most twice the ideal ceil(nM / k)
    assert all(longest[k - 1] <= 2 * math.ceil(nM / k) for k in range(1, nM + 1))
    for k in range(1, nM + 1):
        for k2 in range(k + 1, nM + 1):
            coarse, fine = maps[k - 1], maps[k2 - 1]
            for c in range(k2):
                assert len(set(coarse[fine == c].tolist())) == 1, (nM, k, k2, c)


def test_nested_family_kernel_keeps_or_redraws_the_artifact():
    """From (x, m), agent i keeps m (the latent state moves by Kx_i) or redraws m uniformly
    with x kept: the m-marginal of every row is (1 - q_i) delta_m + q_i / nM, independent of x,
    so uniform m stays uniform (the stationary reference is uniform within each cell)."""
    model = synthetic_instance(rho=1.0, num_agents=3, num_latent=5, num_interface=7, seed=4)
    nX, nM = 5, 7
    for ag in model.agents:
        K = ag.kernel[0].toarray().reshape(nX, nM, nX, nM)
        marg = K.sum(axis=2)                                     # [x, m, m']
        q = 1 - (marg[0, 0, 0] - marg[0, 0, 1])
        assert 0.1 <= q <= 0.5
        want = (1 - q) * np.eye(nM) + q / nM
        assert np.allclose(marg, want[None], atol=1e-12)
        # the redraw keeps x: for m'' != m all the mass (q / nM) sits on x' = x
        for m in range(nM):
            for m2 in range(nM):
                if m2 != m:
                    want_x = np.zeros((nX, nX))
                    np.fill_diagonal(want_x, q / nM)
                    assert np.allclose(K[:, m, :, m2], want_x, atol=1e-12)
        # rewards: a[c'] u(m) + b[c'] + 0.2 z(x): affine in m for every (x, c')
        r = ag.reward[:, :, 0, :]
        assert np.allclose(np.diff(r, n=2, axis=1), 0.0, atol=1e-12)


def test_synthetic_bins_paper_grid():
    assert [synthetic_bins(r, 50) for r in (1.0, 0.9, 0.3, 0.1, 0.05)] == [50, 45, 15, 5, 3]


@pytest.mark.parametrize("family, row_nnz", [("nested", 8 + 10), ("cos-mod", 2 * 8)])
def test_synthetic_validates_and_is_fixed_across_rho_and_p(family, row_nnz):
    a = synthetic_instance(rho=1.0, p_handoff=0.3, family=family, **SMALL)
    b = synthetic_instance(rho=0.2, p_handoff=0.5, family=family, **SMALL)
    assert isinstance(a, ICSMDP)
    for x, y in zip(a.agents, b.agents):
        assert np.array_equal(x.reward, y.reward)
        assert (x.kernel[0] != y.kernel[0]).nnz == 0
        assert np.all(x.end_probability == 0.3) and np.all(y.end_probability == 0.5)
    k = a.agents[0].kernel[0]
    assert np.allclose(k.sum(axis=1), 1.0)
    assert np.diff(k.indptr).max() <= row_nnz
    # a different seed draws a different instance
    c = synthetic_instance(rho=1.0, seed=1, family=family, **SMALL)
    assert not np.array_equal(a.agents[0].reward, c.agents[0].reward)


@pytest.mark.parametrize("family", SYNTHETIC_FAMILIES)
def test_synthetic_aliasing_hurts(family):
    model = synthetic_instance(rho=1.0, family=family, **SMALL)
    full = gap_report(model, minimax=False)
    half = gap_report(model.with_observation(synthetic_map(model, 0.5, family)), minimax=False)
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
                                 dict(rho=0.5, latent_moves="torus"),
                                 dict(rho=0.5, family="cos")])
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
    (lambda: synthetic_instance(rho=0.5, family="mod"),
     "`family` must be one of 'nested', 'cos-mod', got 'mod'."),
    (lambda: nested_observation(4, 1, 5), "`num_bins` must lie in 1..4, got 5."),
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


_GAP_KEYS = ("alpha_tight", "epsilon_phi", "delta_phi")


def _gaps_along_rho(model, family: str, reference: str) -> list:
    """(rho, alpha_tight, epsilon_phi, delta_phi) for every bin count, rho falling."""
    nM = model.num_interface
    law = stationary_law(model).law if reference == "stationary" else None
    out = []
    for k in range(nM, 0, -1):
        rho = k / nM
        mapped = model.with_observation(synthetic_map(model, rho, family))
        rep = gap_report(mapped, reference=reference, stationary_law=law, minimax=False) \
            if law is not None else gap_report(mapped, reference=reference, minimax=False)
        out.append((rho, *(float(getattr(rep, key)) for key in _GAP_KEYS)))
    return out


@settings(max_examples=8)
@given(seed=st.integers(0, 10_000), nM=st.integers(2, 8), nX=st.integers(1, 3),
       N=st.integers(1, 3), p=st.sampled_from([0.3, 0.6, 1.0]),
       reference=st.sampled_from(["uniform", "stationary"]))
def test_nested_family_gaps_are_non_decreasing_as_rho_falls(seed, nM, nX, N, p, reference):
    """Issue 15, item 4: on the default family alpha_tight, epsilon_phi and delta_phi never
    fall as rho falls (every bin count nM, ..., 1), under both references; delta_phi is 0
    (module docstring: the successor's observation law depends on m only through its cell)."""
    model = synthetic_instance(rho=1.0, p_handoff=p, num_agents=N, num_latent=nX,
                               num_interface=nM, seed=seed, nnz_per_row=2)
    rows = _gaps_along_rho(model, "nested", reference)
    for prev, cur in zip(rows, rows[1:]):
        for j, key in enumerate(_GAP_KEYS, start=1):
            assert cur[j] >= prev[j] - 1e-9, (key, prev[0], cur[0], prev[j], cur[j])
    assert all(r[3] <= 1e-9 for r in rows)
    assert rows[-1][1] > rows[0][1] or nM == 1  # the knob turns: 1 cell is worse than nM


def test_nested_family_epsilon_is_the_closed_form_of_the_longest_cell():
    """Independent of the gap report: epsilon_phi (uniform reference) is the largest
    deviation of the option reward R_i(y, c') = [(I - G)^-1 r](y) (dense solve here, beta
    constant) from its mean over the cell (x any, m in the cell), at every bin count."""
    model = synthetic_instance(rho=1.0, num_agents=2, num_latent=3, num_interface=8, seed=5,
                               p_handoff=0.4)
    nX, nM, N = 3, 8, 2
    gamma, beta = model.gamma, 0.4
    R = []
    for ag in model.agents:
        K = ag.kernel[0].toarray()
        G = gamma * K * (1 - beta)                       # continue matrix (beta constant)
        r = ag.reward[:, :, 0, :].reshape(nX * nM, N + 1)
        R.append(np.linalg.solve(np.eye(nX * nM) - G, r).reshape(nX, nM, N + 1))
    R = np.asarray(R)                                    # [i, x, m, c']
    for k in range(nM, 0, -1):
        phi = nested_observation(nM, 1, k).ravel()
        # uniform reference: the cell mean over (x, m in cell) for each (i, c')
        eps = 0.0
        for c in range(k):
            cell = R[:, :, phi == c, :]
            eps = max(eps, float(np.abs(cell - cell.mean(axis=(1, 2), keepdims=True)).max()))
        got = gap_report(model.with_observation(synthetic_map(model, k / nM)), minimax=False)
        assert got.epsilon_phi == pytest.approx(eps, rel=1e-9, abs=1e-12), k


def test_cos_mod_family_is_kept_by_name_with_its_non_monotone_gaps():
    """The family before issue 15 by name: the same numbers as then (quick T1 instance,
    seed 0, stationary reference, measured at git HEAD 3052575 with `synthetic_instance(rho=1,
    num_agents=4, num_latent=20, num_interface=20)` re-mapped m mod ceil(rho |M|)), and its
    knob does not turn one way: rho 0.5 and 0.1 give the same alpha_tight (7.2098) and
    delta_phi falls from 0.456 (rho 0.9) to 0 (rho 0.5)."""
    base = synthetic_instance(rho=1.0, num_agents=4, num_latent=20, num_interface=20, seed=0,
                              family="cos-mod")
    assert base.name == "synthetic-N4-X20-M20-rho1-p0.3-s0"
    law = stationary_law(base).law
    rep = {rho: gap_report(base.with_observation(synthetic_map(base, rho, "cos-mod")),
                           reference="stationary", stationary_law=law, minimax=False)
           for rho in (1.0, 0.9, 0.75, 0.5, 0.1)}
    assert rep[1.0].alpha_tight == pytest.approx(1.6780179237921504, rel=1e-12)
    assert rep[0.75].alpha_tight == pytest.approx(6.492576051336833, rel=1e-12)
    assert rep[0.1].alpha_tight == pytest.approx(7.20975181216668, rel=1e-12)
    assert rep[0.5].alpha_tight == pytest.approx(rep[0.1].alpha_tight, rel=1e-12)
    assert rep[0.5].epsilon_phi == pytest.approx(rep[0.1].epsilon_phi, rel=1e-12)
    assert rep[0.9].delta_phi == pytest.approx(0.45567072836881917, rel=1e-9)
    assert rep[0.5].delta_phi < 1e-9 < rep[0.9].delta_phi   # delta falls as rho falls
    # the default family on the same sizes and seed: strictly larger at 0.1 than at 0.5
    nested = synthetic_instance(rho=1.0, num_agents=4, num_latent=20, num_interface=20, seed=0)
    law_n = stationary_law(nested).law
    a = [gap_report(nested.with_observation(synthetic_map(nested, rho)), reference="stationary",
                    stationary_law=law_n, minimax=False).alpha_tight for rho in (0.5, 0.1)]
    assert a[1] > a[0] + 1.0
