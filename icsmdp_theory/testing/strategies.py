"""Hypothesis strategies for random IC-SMDPs (a public, documented module).

Built from small parts with keyword-only size knobs, valid by construction:
sizes are drawn first, then integer weights that are normalized (never
filtered), so every drawn instance passes the model's own validation and
prints exactly (a shrunk counterexample replays from its JSON). The composed
strategy :func:`icsmdps` drives the same generator as ``icsmdp verify``
(:func:`icsmdp_theory.generators.draw_icsmdp`) through a Hypothesis choice
source, so Hypothesis shrinks an instance choice by choice.

Examples
--------
>>> from hypothesis import given, settings
>>> @settings(max_examples=5, database=None)
... @given(icsmdps(agents=2, interface=(1, 3)))
... def check(model):
...     assert model.num_agents == 2
>>> check()
"""
from __future__ import annotations

import networkx as nx
import numpy as np
from hypothesis import strategies as st

from icsmdp_theory.conformance import BREAKAGES, break_document
from icsmdp_theory.generators import OBSERVATION_KINDS, draw_icsmdp, observation_mod
from icsmdp_theory.io import instance_from_dict, instance_to_dict
from icsmdp_theory.model import ICSMDP

__all__ = ["HypothesisChoices", "probability_vectors", "stochastic_matrices", "sparse_supports",
           "observation_maps", "handoff_graphs", "successor_masks", "icsmdps",
           "exact_ais_icsmdps", "mdp_icsmdps", "single_agent_icsmdps", "invalid_instances",
           "INVALID_KINDS", "icsmdps_with_modes"]


class HypothesisChoices:
    """The choice-source interface of :class:`icsmdp_theory.generators.NumpyChoices` over ``draw``."""

    def __init__(self, draw):
        self.draw = draw

    def integers(self, lo: int, hi: int, size=None):
        if size is None:
            return self.draw(st.integers(lo, hi))
        n = int(np.prod(size))
        vals = self.draw(st.lists(st.integers(lo, hi), min_size=n, max_size=n))
        return np.asarray(vals, dtype=np.int64).reshape(size)

    def boolean(self) -> bool:
        return self.draw(st.booleans())


@st.composite
def probability_vectors(draw, n: int, *, max_weight: int = 4) -> np.ndarray:
    """A probability vector of length ``n`` from integer weights ``0..max_weight``."""
    w = np.asarray(draw(st.lists(st.integers(0, max_weight), min_size=n, max_size=n)), float)
    if w.sum() == 0:
        w[0] = 1.0
    return w / w.sum()


@st.composite
def sparse_supports(draw, rows: int, cols: int, *, max_nnz: int | None = None) -> np.ndarray:
    """A boolean ``[rows, cols]`` support with 1..max_nnz entries in every row."""
    max_nnz = cols if max_nnz is None else min(max_nnz, cols)
    out = np.zeros((rows, cols), bool)
    for r in range(rows):
        idx = draw(st.lists(st.integers(0, cols - 1), min_size=1, max_size=max_nnz, unique=True))
        out[r, idx] = True
    return out


@st.composite
def stochastic_matrices(draw, rows: int, cols: int, *, max_weight: int = 4,
                        sparse: bool = False) -> np.ndarray:
    """A row-stochastic ``[rows, cols]`` matrix from integer weights (optionally on a sparse support)."""
    w = np.asarray(draw(st.lists(st.integers(0, max_weight), min_size=rows * cols,
                                 max_size=rows * cols)), float).reshape(rows, cols)
    if sparse:
        w = w * draw(sparse_supports(rows, cols))
    zero = w.sum(axis=1) == 0
    w[zero, 0] = 1.0
    return w / w.sum(axis=1, keepdims=True)


@st.composite
def observation_maps(draw, num_interface: int, num_private: int, *,
                     kind: str = "surjective") -> np.ndarray:
    """An observation map ``[nM, nL]``: injective, surjective onto drawn labels, or ``m mod k``."""
    if kind == "injective":
        return np.arange(num_interface * num_private).reshape(num_interface, num_private)
    if kind == "mod":
        return observation_mod(num_interface, num_private,
                               draw(st.integers(1, num_interface)))
    n = num_interface * num_private
    k = draw(st.integers(1, n))
    rest = draw(st.lists(st.integers(0, k - 1), min_size=n - k, max_size=n - k))
    labels = draw(st.permutations(list(range(k)) + rest))
    return np.asarray(labels, dtype=np.int64).reshape(num_interface, num_private)


@st.composite
def handoff_graphs(draw, num_agents: int, *, allow_stop: bool = True) -> nx.DiGraph:
    """A directed handoff graph on agents ``0..N-1`` plus ``"STOP"``; every agent has an out-edge."""
    g = nx.DiGraph()
    g.add_nodes_from(range(num_agents))
    g.add_node("STOP")
    targets = list(range(num_agents)) + (["STOP"] if allow_stop else [])
    for i in range(num_agents):
        out = draw(st.lists(st.sampled_from(targets), min_size=1, max_size=len(targets), unique=True))
        g.add_edges_from((i, t) for t in out)
    return g


def successor_masks(graph: nx.DiGraph, num_agents: int) -> np.ndarray:
    """``[N, N+1]`` admissible-successor masks of a handoff graph (STOP last).

    >>> g = nx.DiGraph([(0, 1), (1, "STOP")])
    >>> successor_masks(g, 2).astype(int).tolist()
    [[0, 1, 0], [0, 0, 1]]
    """
    mask = np.zeros((num_agents, num_agents + 1), bool)
    for u, v in graph.edges:
        mask[u, num_agents if v == "STOP" else v] = True
    return mask


@st.composite
def icsmdps(draw, *, agents=(1, 3), latent=(1, 2), interface=(1, 4), private=(1, 2),
            actions=(1, 2), observation: str = "surjective", tau_one: bool = False,
            sparse: bool = False, graph: bool = False) -> ICSMDP:
    """A valid random IC-SMDP (sizes: an int or an inclusive ``(lo, hi)`` range).

    With ``graph=True`` the successors come from :func:`handoff_graphs`.
    """
    if observation not in OBSERVATION_KINDS:
        raise ValueError(f"`observation` must be one of {OBSERVATION_KINDS}, got {observation!r}.")
    model = draw_icsmdp(HypothesisChoices(draw), agents=agents, latent=latent,
                        interface=interface, private=private, actions=actions,
                        observation=observation, tau_one=tau_one, sparse=sparse)
    if graph:
        masks = successor_masks(draw(handoff_graphs(model.num_agents)), model.num_agents)
        doc = instance_to_dict(model)
        for a, m in zip(doc["agents"], masks):
            a["successors"] = m.tolist()
        model = instance_from_dict(doc)
    return model


def exact_ais_icsmdps(**kw):
    """Instances where injective maps are exact (``nX = 1``, no private states; SPEC section 5)."""
    kw.update(latent=1, private=1, observation="injective")
    return icsmdps(**kw)


def mdp_icsmdps(**kw):
    """``tau == 1`` instances: every invocation is one primitive step."""
    kw["tau_one"] = True
    return icsmdps(**kw)


def single_agent_icsmdps(**kw):
    """``N = 1`` instances."""
    kw["agents"] = 1
    return icsmdps(**kw)


#: Kinds of deliberate breakage drawn by :func:`invalid_instances` (from the
#: library's conformance module, shared with ``icsmdp verify``).
INVALID_KINDS = BREAKAGES


@st.composite
def invalid_instances(draw, *, kinds=tuple(BREAKAGES)):
    """``(document, kind, pattern)``: a valid instance document broken in one drawn way.

    ``pattern`` is a regex the rejection message must match (it names key, agent, index).
    """
    model = draw(icsmdps(agents=(1, 2), interface=(1, 3)))
    kind = draw(st.sampled_from(list(kinds)))
    agent = draw(st.integers(0, model.num_agents - 1))
    gamma = draw(st.sampled_from([0.0, 1.0, 1.5, -0.2]))
    doc, pattern = break_document(instance_to_dict(model), kind, agent, gamma=gamma)
    return doc, kind, pattern


@st.composite
def icsmdps_with_modes(draw, *, modes=(1, 3), named: bool | None = None, **kw) -> ICSMDP:
    """A valid random IC-SMDP whose agents are adaptable (issue 15): ``K_i`` modes each.

    An instance of :func:`icsmdps` (``**kw`` are its size knobs), then per agent
    ``K_i`` in ``modes`` (an int or an inclusive ``(lo, hi)`` range) and one
    internal policy per mode (rows from integer weights, normalized). When
    ``hi > 1`` and every drawn ``K_i`` is 1, agent 0 gets 2 modes
    (normalized, not filtered), so the model has modes. Mode names are
    ``"m0", "m1", ...``; with ``named=None`` each agent with one mode is drawn
    with or without the ``modes`` key (``False``: never; ``True``: always).
    Every end probability is positive (:func:`icsmdps`), so every mode's
    invocation ends (Assumption 1(ii)).

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5, database=None)
    ... @given(icsmdps_with_modes(agents=2, modes=(2, 2)))
    ... def check(model):
    ...     assert model.num_modes == (2, 2) and model.num_choices == 6
    >>> check()
    """
    lo, hi = (modes, modes) if isinstance(modes, int) else modes
    if not 1 <= lo <= hi:
        raise ValueError(f"`modes` must be an int >= 1 or a range (lo, hi) with 1 <= lo <= hi, "
                         f"got {modes!r}.")
    base = draw(icsmdps(**kw))
    doc = instance_to_dict(base)
    counts = [draw(st.integers(lo, hi)) for _ in doc["agents"]]
    if hi > 1 and max(counts) == 1:
        counts[0] = 2
    agents = []
    for a, k in zip(doc["agents"], counts):
        if k == 1 and not (draw(st.booleans()) if named is None else named):
            agents.append(a)
            continue
        nM, nL, nA = np.asarray(a["internal_policy"]).shape
        policies = [draw(stochastic_matrices(nM * nL, nA)).reshape(nM, nL, nA).tolist()
                    for _ in range(k)]
        out = {key: a[key] for key in ("name", "n_private", "n_actions")}
        out["modes"] = [f"m{t}" for t in range(k)]
        out.update({key: val for key, val in a.items() if key not in out})
        out["internal_policy"] = policies
        agents.append(out)
    doc["agents"] = agents
    return instance_from_dict(doc)
