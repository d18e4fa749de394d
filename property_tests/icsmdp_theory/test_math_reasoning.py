"""The calibrated math-reasoning workflow model (issue 14) against independent computations.

- Table 1 (the paper's numbers) for the shipped parameters, with exact policy evaluation;
- a Monte Carlo simulator written here from the module docstring's rules (not from the
  model builder, not from policy_value), with a 99 % family-wise bound;
- a second exact method (forward propagation of the episode law) against policy_value;
- the handoff sequences of the docstrings against every positive-probability path of the model.
"""
from __future__ import annotations

import json
import random
from itertools import product

import numpy as np
import pytest
from scipy.stats import norm

from estimators.decentralized import best_decentralized_policy, enumerate_decentralized_policies
from estimators.policy_value import policy_value
from icsmdp_theory.cells import cell_offsets
from icsmdp_theory.epoch_model import STOP_NAME
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.families import math_reasoning as family_math_reasoning
from icsmdp_theory.labels import canonical_label
from icsmdp_theory.math_reasoning import (AGENTS, CALIBRATED, COMPONENTS, DATASETS, LEVELS,
                                          NOMINAL, OBSERVATION_BITS, PAPER_LEARNED, PAPER_TABLE1,
                                          WORKFLOW_NAMES, WORKFLOWS, MathParams, math_reasoning,
                                          observation_bits, workflow_cells, workflow_policy,
                                          workflow_totals)

ALL_NAMES = list(AGENTS) + [STOP_NAME]


@pytest.fixture(scope="module")
def models():
    return {ds: math_reasoning(ds) for ds in DATASETS}


def _accuracy(model, name):
    return policy_value(model, workflow_policy(model, name), discounted=False).values["correct"]


# ------------------------------------------------------------------ Table 1
@pytest.mark.parametrize("dataset", DATASETS)
def test_shipped_parameters_reproduce_table1_within_0005(models, dataset):
    m = models[dataset]
    for name in WORKFLOW_NAMES:
        acc = _accuracy(m, name)
        assert abs(acc - PAPER_TABLE1[dataset][name]) <= 0.005, (dataset, name, acc)
        assert abs(acc - PAPER_TABLE1[dataset][name]) <= 0.0005   # the fit is much closer


@pytest.mark.parametrize("dataset,best", [("MathQA", "Comb-E"), ("MMLU-HS", "Comb-E"),
                                          ("MMLU-Elem", "CoT")])
def test_best_predefined_workflow_is_the_papers(models, dataset, best):
    accs = {name: _accuracy(models[dataset], name) for name in WORKFLOW_NAMES}
    assert max(accs, key=accs.get) == best
    assert max(PAPER_TABLE1[dataset], key=PAPER_TABLE1[dataset].get) == best
    assert PAPER_LEARNED[dataset][1] == best
    # Comb-T is dominated by Comb-E everywhere, as in the paper
    assert accs["Comb-T"] < accs["Comb-E"]


@pytest.mark.parametrize("dataset", DATASETS)
def test_forward_propagation_agrees_with_policy_evaluation(models, dataset):
    m = models[dataset]
    for name in WORKFLOW_NAMES:
        pv = policy_value(m, workflow_policy(m, name), discounted=False)
        fw = workflow_totals(CALIBRATED[dataset], name)
        assert pv.terminates
        for comp in COMPONENTS:
            assert pv.values[comp] == pytest.approx(fw[comp], abs=1e-12), (name, comp)


# ------------------------------------------------------------------ Monte Carlo
def _simulate(p: MathParams, name: str, n: int, seed: int, *, round_cap=1, length_cap=9):
    """Episodes of a workflow from the module docstring's rules; per-episode (correct, tokens, calls)."""
    rnd = random.Random(seed)
    cells = workflow_cells(name)
    out = np.empty((n, 3))
    for e in range(n):
        u, h = rnd.random(), 0
        while h < 2 and u >= sum(p.mix[:h + 1]):
            h += 1
        right = g = mod = chk = jdg = rounds = length = 0
        rationale = feedback = None
        agent, tokens, calls = "commissioner", 0.0, 0
        while True:
            succ = cells[(agent, f"{g}{mod}{chk}{jdg}")]
            calls += 1
            tokens += p.tokens_base[AGENTS.index(agent)] + p.tokens_context * min(length, length_cap)
            if succ == STOP_NAME:
                break
            if agent == "thinker":
                if chk and not jdg and feedback == "critique":
                    feedback = "relay"                  # a new, unchecked rationale: 1100
                    mod, chk, jdg = 1, 0, 0
                else:
                    rationale = "sound" if rnd.random() < p.rationale[h] else "unsound"
                    if not g:                           # it proposes the first answer
                        g, right = 1, int(rationale == "sound")
            elif agent == "checker":
                says_wrong = rnd.random() < (p.detect[h] if not right else p.false_alarm[h])
                mod, chk, jdg = 0, 1, 0 if says_wrong else 1
                feedback = "critique" if says_wrong else None
            elif agent == "editor":
                follow = {"sound": p.follow_sound, "unsound": p.follow_unsound}
                if not g:                               # a direct answer
                    right = int(rnd.random() < p.direct[h])
                    g = 1
                elif feedback == "relay" or chk:        # a revision (relayed or with the critique)
                    if rounds < round_cap:
                        if feedback in ("critique", "relay"):
                            rep = p.repair[h] * (p.relay if feedback == "relay" else 1.0)
                            right = int(rnd.random() >= p.breakage[h]) if right \
                                else int(rnd.random() < rep)
                        elif rationale is not None:
                            right = int(rnd.random() < follow[rationale])
                    if feedback == "relay":
                        chk, jdg = 1, 1                 # 1111: only the relayed revision
                    mod, rounds = 1, min(rounds + 1, round_cap)
                else:                                   # the final answer after a proposal
                    if rationale is not None:
                        right = int(rnd.random() < follow[rationale])
                    mod = 1
                rationale = feedback = None
            length += 1
            agent = succ
        out[e] = (right if succ == STOP_NAME else 0, -tokens, -calls)
    return out


def test_monte_carlo_episodes_match_exact_values_mathqa(models):
    m = models["MathQA"]
    n, checks = 20_000, len(WORKFLOW_NAMES) * len(COMPONENTS)
    z = norm.ppf(1 - 0.01 / (2 * checks))            # 99 % family-wise (Bonferroni)
    for j, name in enumerate(WORKFLOW_NAMES):
        draws = _simulate(CALIBRATED["MathQA"], name, n, seed=100 + j)
        exact = policy_value(m, workflow_policy(m, name), discounted=False).values
        for c, comp in enumerate(COMPONENTS):
            mean, se = draws[:, c].mean(), draws[:, c].std(ddof=1) / np.sqrt(n)
            assert abs(mean - exact[comp]) <= z * se + 1e-12, (name, comp, mean, exact[comp], se)


def test_monte_carlo_check_has_power():
    """The same check rejects a model whose relay differs (Comb-T's accuracy moves by ~0.05)."""
    base = CALIBRATED["MathQA"]
    exact = workflow_totals(base, "Comb-T")["correct"]
    draws = _simulate(base.replace(relay=0.05, repair=(0.2, 0.2, 0.2)), "Comb-T", 20_000, seed=7)
    se = draws[:, 0].std(ddof=1) / np.sqrt(len(draws))
    assert abs(draws[:, 0].mean() - exact) > norm.ppf(1 - 0.01 / 30) * se


# ------------------------------------------------------------------ structure
def test_labels_observation_and_start_law(models):
    m = models["MathQA"]
    p = CALIBRATED["MathQA"]
    assert m.agent_names == AGENTS and m.component_names == COMPONENTS
    assert 100 <= m.num_epoch_states <= 1000
    assert m.reachable_states().all()
    for k, label in enumerate(m.labels):
        state = json.loads(label)
        assert canonical_label(state) == label
        assert set(state) == {"difficulty", "right", "given", "modified", "checked", "judged",
                              "round", "length", "rationale", "feedback"}
        obs = 8 * state["given"] + 4 * state["modified"] + 2 * state["checked"] + state["judged"]
        assert all(int(m.observation[i][k]) == obs for i in range(4))
    starts = np.flatnonzero(m.rho0 > 0)
    for s in starts:
        d = m.describe_state(int(s))
        state = json.loads(d["label"])
        assert d["agent_name"] == "commissioner" and state["given"] == 0 and state["length"] == 0
        assert m.rho0[s] == pytest.approx(p.mix[LEVELS.index(state["difficulty"])])
    # the tokens component: minus (base + context * length) of the active agent, every successor
    for s in range(m.num_epoch_states):
        state = json.loads(m.labels[m.state_label[s]])
        cost = p.tokens_base[m.state_agent[s]] + p.tokens_context * state["length"]
        adm = m.admissible[s]
        assert np.allclose(m.components[s, adm, 1], -cost)
        assert np.allclose(m.components[s, adm, 2], -1.0)
        stop = m.num_agents
        assert np.all(m.components[s, :stop][adm[:stop], 0] == 0.0)
        if adm[stop]:
            assert m.components[s, stop, 0] == state["right"]
    assert np.array_equal(m.reward, m.components[:, :, 0], equal_nan=True)


def test_weights_give_the_scalar_reward():
    m = math_reasoning("MMLU-HS", weights={"correct": 1.0, "tokens": 0.02})
    assert np.allclose(m.reward, m.components[:, :, 0] + 0.02 * m.components[:, :, 1],
                       equal_nan=True)
    m2 = math_reasoning("MMLU-HS", weights=[1.0, 0.02, 0.0])
    assert np.array_equal(m2.reward, m.reward, equal_nan=True)


def test_family_is_reexported():
    assert family_math_reasoning is math_reasoning


def _cells_of(model):
    bits = [observation_bits(int(model.observation[0][k])) for k in range(model.num_labels)]
    return [(model.agent_names[model.state_agent[s]], bits[model.state_label[s]])
            for s in range(model.num_epoch_states)]


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_workflows_are_decentralized_and_admissible(models, name):
    m = models["MMLU-Elem"]
    sigma = workflow_policy(m, name)
    seen = {}
    for s, cell in enumerate(_cells_of(m)):
        assert m.admissible[s, sigma[s]]
        assert seen.setdefault(cell, int(sigma[s])) == int(sigma[s]), cell
        assert ALL_NAMES[sigma[s]] == workflow_cells(name)[cell]
    for (agent, bits), succ in WORKFLOWS[name].table.items():
        assert (agent, bits) in seen and ALL_NAMES[seen[(agent, bits)]] == succ


def _documented_sequences(text):
    """``"a -> b -> [if judged wrong: c ->] STOP"`` -> {(a, b, STOP), (a, b, c, STOP)}."""
    head, _, rest = text.partition("[")
    inner, _, tail = rest.partition("]")
    inner = inner.split(":", 1)[-1]
    split = lambda t: [x.strip() for x in t.split("->") if x.strip()]
    out = {tuple(split(head) + split(tail))}
    if inner:
        out.add(tuple(split(head) + split(inner) + split(tail)))
    return out


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_handoff_sequences_match_the_documentation(models, name):
    """Every positive-probability path of the workflow on the model, as a sequence of agents."""
    m = models["MathQA"]
    sigma = workflow_policy(m, name)
    nxt = {}
    for t in range(m.num_transitions):
        nxt.setdefault(int(m.trans_state[t]), {}).setdefault(int(m.trans_successor[t]), []) \
            .append(int(m.trans_next[t]))
    paths, stack = set(), [(int(s), (m.agent_names[m.state_agent[s]],))
                           for s in np.flatnonzero(m.rho0 > 0)]
    while stack:
        s, seq = stack.pop()
        c = int(sigma[s])
        if c == m.num_agents:
            paths.add(seq + (STOP_NAME,))
            continue
        for s2 in set(nxt[s][c]):
            stack.append((s2, seq + (m.agent_names[c],)))
    assert paths == _documented_sequences(WORKFLOWS[name].sequence)


def test_every_decentralized_policy_stops_and_the_optimum_is_the_papers(models):
    for dataset, (_, learned) in PAPER_LEARNED.items():
        m = models[dataset]
        policies = list(enumerate_decentralized_policies(m))
        # by hand on the reachable cells: C(0000) -> E: E(0000) -> C: C(1000) STOP (1) or
        # K then C(1010) in {STOP, E, T} (3); E(0000) -> K: C(1010) (3); the same 7 after
        # C(0000) -> T (E(1000), C(1100) in place of E(0000), C(1000)): 14
        assert len(policies) == 14
        assert all(policy_value(m, s, discounted=False).terminates for s in policies)
        best = best_decentralized_policy(m)
        wf = workflow_policy(m, learned)
        reached = best.reached_cells[cell_offsets(m.num_observations)[m.state_agent]
                                     + m.state_observation]
        assert np.array_equal(best.policy[reached], wf[reached])
        assert best.value == pytest.approx(_accuracy(m, learned), abs=1e-12)


def test_every_policy_stops_within_nine_calls(models):
    """Longest path of the epoch-state graph over all admissible handoffs (any policy)."""
    m = models["MMLU-HS"]
    nxt = {}
    for t in range(m.num_transitions):
        nxt.setdefault(int(m.trans_state[t]), set()).add(int(m.trans_next[t]))
    longest, order = {}, []
    stack = [int(s) for s in np.flatnonzero(m.rho0 > 0)]
    state = {}                                      # DFS: 1 on the stack, 2 done
    while stack:
        s = stack.pop()
        if s >= 0 and state.get(s) != 2:
            if state.get(s) == 1:
                state[s] = 2
                longest[s] = 1 + max((longest[x] for x in nxt[s] if x >= 0), default=0)
                continue
            state[s] = 1
            stack.append(s)
            for x in nxt[s]:
                assert state.get(x) != 1, "a cycle: some policy would not stop"
                if x >= 0 and state.get(x) != 2:
                    stack.append(x)
    # C -> T -> E -> C -> K -> C -> T -> E -> C -> STOP: nine calls
    assert max(longest[int(s)] for s in np.flatnonzero(m.rho0 > 0)) == 9
    lengths = [json.loads(k)["length"] for k in m.labels]
    assert max(lengths) == 8                        # length_cap = 9: never saturated


def test_structural_assumptions_level_by_level():
    """Module docstring: the checker hurts on easy and hard, helps on medium; Comb-T <= Comb-E."""
    for dataset, p in CALIBRATED.items():
        total = 0.0
        for h in range(3):
            one = p.replace(mix=tuple(float(j == h) for j in range(3)))
            a = {w: workflow_totals(one, w)["correct"] for w in WORKFLOW_NAMES}
            gain = a["Comb-E"] - a["CoT"]
            assert (gain < 0) if LEVELS[h] in ("easy", "hard") else (gain > 0), (dataset, h)
            # the closed form of the docstring
            c = a["CoT"]
            assert gain == pytest.approx((1 - c) * p.detect[h] * p.repair[h]
                                         - c * p.false_alarm[h] * p.breakage[h], abs=1e-12)
            assert a["Comb-T"] - a["Comb-E"] == pytest.approx(
                -(1 - p.relay) * (1 - c) * p.detect[h] * p.repair[h], abs=1e-12)
            total += p.mix[h] * gain
        acc = {w: workflow_totals(p, w)["correct"] for w in WORKFLOW_NAMES}
        assert total == pytest.approx(acc["Comb-E"] - acc["CoT"], abs=1e-12)
    # the ordering of the three datasets' mixtures the docstring describes
    hard = {d: CALIBRATED[d].mix[2] for d in DATASETS}
    easy = {d: CALIBRATED[d].mix[0] for d in DATASETS}
    assert max(hard, key=hard.get) == "MathQA" and max(easy, key=easy.get) == "MMLU-Elem"


def test_round_cap_two_is_the_richer_variant():
    m = math_reasoning("MathQA", round_cap=2)
    assert m.num_epoch_states > math_reasoning("MathQA").num_epoch_states
    # the workflows are unchanged (one round), their accuracies too
    assert _accuracy(m, "Comb-E") == pytest.approx(workflow_totals(CALIBRATED["MathQA"],
                                                                   "Comb-E")["correct"], abs=1e-12)
    # a commissioner sending every revised answer to the checker and back to the editor
    # never STOPs once the answer is revised
    sigma = workflow_policy(m, "Reflect").copy()
    for s, (agent, bits) in enumerate(_cells_of(m)):
        if agent == "commissioner" and bits[1] == "1":
            sigma[s] = AGENTS.index("editor" if bits[2] == "1" else "checker")
        if agent == "editor" and bits[1] == "1":
            sigma[s] = AGENTS.index("commissioner")
    pv = policy_value(m, sigma, discounted=False)
    assert not pv.terminates and np.isnan(pv.values["tokens"])


# ------------------------------------------------------------------ errors
def test_errors_name_the_argument():
    with pytest.raises(InvalidArgumentError, match=r"`dataset` must be one of MathQA, MMLU-HS"):
        math_reasoning("GSM8K")
    with pytest.raises(InvalidArgumentError, match=r"MathParams `detect` entry 1 must be a number "
                                                   r"in \[0, 1\], got 1.5"):
        NOMINAL.replace(detect=(0.5, 1.5, 0.5))
    with pytest.raises(InvalidArgumentError, match=r"`mix` must sum to 1"):
        NOMINAL.replace(mix=(0.5, 0.5, 0.5))
    with pytest.raises(InvalidArgumentError, match=r"`name` must be one of Direct, CoT"):
        workflow_policy(math_reasoning(), "ToT")
    with pytest.raises(InvalidArgumentError, match=r"`weights`: unknown component 'latency'"):
        math_reasoning(weights={"latency": 1.0})
    with pytest.raises(InvalidArgumentError, match=r"`round_cap` must be an integer in 1..50"):
        math_reasoning(round_cap=0)


def test_every_table_entry_is_a_cell_with_an_admissible_successor():
    from icsmdp_theory.math_reasoning import admissible_successors
    for name, wf in WORKFLOWS.items():
        for (agent, bits), succ in workflow_cells(name).items():
            assert ALL_NAMES.index(succ) in admissible_successors(AGENTS.index(agent), bits), \
                (name, agent, bits)
    assert set(product(AGENTS, [observation_bits(o) for o in range(16)])) \
        == set(workflow_cells("CoT"))
    assert OBSERVATION_BITS == ("given", "modified", "checked", "judged")
