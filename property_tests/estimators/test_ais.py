"""The AIS-induced SMDP (SPEC section 4) against brute-force loops over each cell's states."""
from __future__ import annotations

import numpy as np
import pytest

from estimators.ais import AISModel, ais_smdp, ais_solution
from icsmdp_theory.cells import cell_of_epoch_states
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.examples import load_example
from icsmdp_theory.generators import random_icsmdp
from property_tests.estimators import brute_cell_statistics, dense_reduction, full_epoch_states
from solvers import PolicyIteration, ValueIteration, solve


def _instances():
    yield "private", random_icsmdp(3, num_agents=3, num_latent=2, num_interface=3,
                                   num_private=(2, 1, 3), num_actions=2, observation="random",
                                   end_probability=(0.3, 0.9), successor_density=0.8)
    yield "mod", random_icsmdp(5, num_agents=2, num_latent=2, num_interface=4, num_private=2,
                               num_actions=(1, 2), observation=2, end_probability=(0.4, 1.0))
    yield "single", random_icsmdp(8, num_agents=1, num_latent=3, num_interface=3, num_private=2,
                                  observation="random", end_probability=(0.3, 0.7),
                                  successor_density=1.0)


INSTANCES = dict(_instances())


def _check_against_brute(model, ais, R_hat, D_hat, P_hat):
    N = model.num_agents
    D = ais.end_kernel_dense
    for (i, o), r in R_hat.items():
        c = ais.cell_index(i, o)
        adm = model.agents[i].successors
        np.testing.assert_allclose(ais.reward[c, adm], r[adm], rtol=0, atol=1e-12)
        assert np.all(np.isnan(ais.reward[c, ~adm]))
        for j in range(N):
            row = D[c, j, ais.cell_offsets[j]:ais.cell_offsets[j + 1]]
            if adm[j]:
                np.testing.assert_allclose(row, D_hat[(i, o)][j], rtol=0, atol=1e-12)
                law = ais.duration_law[i][j][o]             # [o', tau-1]
                T = min(law.shape[1], P_hat[(i, o)][j].shape[1])
                np.testing.assert_allclose(law[:, :T], P_hat[(i, o)][j][:, :T], rtol=0, atol=1e-12)
            else:
                assert not row.any() and ais.duration_law[i][j] is None
        assert not D[c, N].any()  # STOP rows are zero


@pytest.mark.parametrize("name", list(INSTANCES))
def test_uniform_reference_matches_brute_force(name):
    model = INSTANCES[name]
    ais = ais_smdp(model)
    assert isinstance(ais, AISModel) and ais.reference == "uniform" and ais.fallback_cells == ()
    R_hat, D_hat, P_hat = brute_cell_statistics(model)
    _check_against_brute(model, ais, R_hat, D_hat, P_hat)
    # cell sizes count full epoch states
    sizes = {}
    for x, m, ls in full_epoch_states(model):
        for i, a in enumerate(model.agents):
            key = ais.cell_index(i, a.observation[m, ls[i]])
            sizes[key] = sizes.get(key, 0) + 1
    assert [sizes[c] for c in range(ais.num_cells)] == ais.cell_size.tolist()
    assert ais.duration_tail_bound <= 1e-12


def test_duration_law_sums_to_discounted_kernel():
    model = INSTANCES["private"]
    ais = ais_smdp(model)
    g = model.gamma
    D = ais.end_kernel_dense
    for i in range(model.num_agents):
        for j, law in enumerate(ais.duration_law[i]):
            if law is None:
                continue
            disc = (law * g ** np.arange(1, law.shape[2] + 1)).sum(axis=2)
            for o in range(law.shape[0]):
                c = ais.cell_index(i, o)
                np.testing.assert_allclose(disc[o], D[c, j, ais.cell_offsets[j]:ais.cell_offsets[j + 1]],
                                           atol=1e-11)
            np.testing.assert_allclose(law.sum(axis=(1, 2)), 1.0, atol=1e-11)


def _one_state_per_cell(model, rng, skip=None):
    """A reference concentrated on one random epoch state per cell (none on cell ``skip``)."""
    F, N = model.num_full_states, model.num_agents
    cells = cell_of_epoch_states(model)
    d = np.zeros((F, N))
    chosen = {}
    for c in np.unique(cells):
        if c == skip:
            continue
        f, i = rng.choice(np.argwhere(cells == c))
        d[f, i] = 1.0
        chosen[int(c)] = (int(f), int(i))
    return d, chosen


@pytest.mark.parametrize("name", ["private", "mod"])
def test_concentrated_reference_gives_that_state(name):
    model = INSTANCES[name]
    rng = np.random.default_rng(0)
    d, chosen = _one_state_per_cell(model, rng)
    states = list(full_epoch_states(model))
    ais = ais_smdp(model, reference=d.reshape(-1))          # flat vector over s = f*N + i
    assert ais.reference == "explicit" and ais.fallback_cells == ()
    dense = [dense_reduction(model, i) for i in range(model.num_agents)]

    def weight(i, x, m, ls):
        f = states.index((x, m, ls))
        return d[f, i]
    R_hat, D_hat, P_hat = brute_cell_statistics(model, weight)
    _check_against_brute(model, ais, R_hat, D_hat, P_hat)
    for c, (f, i) in chosen.items():
        x, m, ls = states[f]
        y = (x * model.num_interface + m) * model.num_private[i] + ls[i]
        adm = model.agents[i].successors
        np.testing.assert_allclose(ais.reward[c, adm], dense[i]["R"][y, adm], atol=1e-12)


def test_zero_mass_cell_falls_back_to_uniform():
    model = INSTANCES["private"]
    rng = np.random.default_rng(1)
    skip = 2
    d, _ = _one_state_per_cell(model, rng, skip=skip)
    ais = ais_smdp(model, reference=d)
    uniform = ais_smdp(model)
    i, o = ais.cell_label(skip)
    assert ais.fallback_cells == ((i, o),)
    assert ais.cell_mass[skip] == 0.0
    np.testing.assert_allclose(ais.reward[skip], uniform.reward[skip], atol=1e-14)
    np.testing.assert_allclose(ais.end_kernel_dense[skip], uniform.end_kernel_dense[skip], atol=1e-14)
    others = [c for c in range(ais.num_cells) if c != skip]
    assert not np.allclose(np.nan_to_num(ais.reward[others]), np.nan_to_num(uniform.reward[others]))


def test_stationary_reference_uses_the_given_law():
    model = INSTANCES["mod"]
    law = np.random.default_rng(2).random((model.num_full_states, model.num_agents))
    a = ais_smdp(model, reference="stationary", stationary_law=law)
    b = ais_smdp(model, reference=law)
    assert a.reference == "stationary"
    np.testing.assert_array_equal(a.reward, b.reward)
    np.testing.assert_array_equal(a.end_kernel.toarray(), b.end_kernel.toarray())


@pytest.mark.parametrize("reference, match", [
    ("occupancy", "must be one of"),
    (np.ones(5), "must have shape"),
    (-np.ones(6), "non-negative"),
    (np.zeros((3, 2)), "positive total mass"),
    (np.full(6, np.nan), "finite"),
])
def test_bad_reference_is_rejected(reference, match):
    model = load_example("tiny-handoff")      # 3 full states x 2 agents = 6 epoch states
    with pytest.raises(InvalidArgumentError, match=match):
        ais_smdp(model, reference=reference)


def test_ais_solution_solves_the_cell_smdp():
    model = INSTANCES["private"]
    ais = ais_smdp(model)
    sol = ais_solution(ais)
    assert sol.success
    # Bellman equation on cells, written out from R_hat and D_hat
    D = ais.end_kernel_dense
    q = np.where(ais.admissible, ais.reward + np.einsum("csk,k->cs", D, sol.v), np.nan)
    np.testing.assert_allclose(q[ais.admissible], sol.q[ais.admissible], atol=1e-9)
    np.testing.assert_allclose(np.nanmax(q, axis=1), sol.v, atol=1e-9)
    # every registered solver agrees
    for solver in (ValueIteration(tol=1e-11), PolicyIteration(tol=1e-11)):
        np.testing.assert_allclose(solve(solver, ais).v, sol.v, atol=1e-9)
