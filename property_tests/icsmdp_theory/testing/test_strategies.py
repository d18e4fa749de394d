"""The strategies' own tests: drawn instances validate and have the requested shape."""
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from icsmdp_theory.errors import InvalidInstanceError
from icsmdp_theory.io import instance_from_dict, instance_to_dict
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.testing import strategies as S


@given(S.icsmdps(agents=(1, 3), latent=(1, 2), interface=(1, 3), private=(1, 2), actions=(1, 2)))
def test_drawn_instances_validate_and_replay(model):
    assert isinstance(model, ICSMDP)
    doc = instance_to_dict(model)
    # re-validation from the printed JSON gives the same instance (numbers print exactly)
    again = instance_from_dict(json.loads(json.dumps(doc)))
    assert instance_to_dict(again) == doc


@given(S.icsmdps(agents=2, latent=1, interface=3, private=1, actions=2))
def test_fixed_sizes_are_respected(model):
    assert model.num_agents == 2 and model.num_latent == 1 and model.num_interface == 3
    assert all(a.num_actions == 2 and a.num_private == 1 for a in model.agents)


@given(S.exact_ais_icsmdps(agents=(1, 3)))
def test_exact_ais_family(model):
    assert model.num_latent == 1 and set(model.num_private) == {1}
    for a in model.agents:
        assert sorted(a.observation.ravel().tolist()) == list(range(a.observation.size))


@given(S.mdp_icsmdps())
def test_tau_one_family(model):
    assert all(np.all(a.end_probability == 1.0) for a in model.agents)


@given(S.single_agent_icsmdps())
def test_single_agent_family(model):
    assert model.num_agents == 1


@given(S.icsmdps(sparse=True, graph=True))
def test_sparse_and_graph_instances_validate(model):
    assert all(a.kernel_is_sparse for a in model.agents)


@given(st.integers(1, 5).flatmap(lambda n: st.tuples(st.just(n), S.probability_vectors(n))))
def test_probability_vectors(args):
    n, p = args
    assert p.shape == (n,) and np.all(p >= 0) and abs(p.sum() - 1) < 1e-12


@given(st.integers(1, 4), st.integers(1, 4), st.booleans(), st.data())
def test_stochastic_matrices(rows, cols, sparse, data):
    m = data.draw(S.stochastic_matrices(rows, cols, sparse=sparse))
    assert m.shape == (rows, cols) and np.all(m >= 0)
    assert np.allclose(m.sum(axis=1), 1, atol=1e-12)


@given(st.integers(1, 5), st.integers(1, 3), st.sampled_from(["injective", "surjective", "mod"]),
       st.data())
def test_observation_maps_are_surjective(nM, nL, kind, data):
    obs = data.draw(S.observation_maps(nM, nL, kind=kind))
    assert obs.shape == (nM, nL)
    assert set(obs.ravel().tolist()) == set(range(obs.max() + 1))
    if kind == "injective":
        assert len(set(obs.ravel().tolist())) == nM * nL


@given(st.integers(1, 4), st.data())
def test_handoff_graphs_give_valid_masks(n, data):
    g = data.draw(S.handoff_graphs(n))
    masks = S.successor_masks(g, n)
    assert masks.shape == (n, n + 1) and masks.any(axis=1).all()
    for u, v in g.edges:
        assert masks[u, n if v == "STOP" else v]


@given(S.invalid_instances())
def test_invalid_instances_are_rejected_with_located_messages(case):
    doc, kind, pattern = case
    with pytest.raises(InvalidInstanceError, match=pattern):
        instance_from_dict(doc)


@pytest.mark.parametrize("kind", sorted(S.INVALID_KINDS))
def test_every_invalid_kind_is_reachable(kind):
    @settings(max_examples=3, database=None)
    @given(S.invalid_instances(kinds=(kind,)))
    def check(case):
        doc, k, pattern = case
        assert k == kind
        with pytest.raises(InvalidInstanceError, match=pattern):
            instance_from_dict(doc)
    check()
