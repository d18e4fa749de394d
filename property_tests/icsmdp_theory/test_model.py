"""Tests of :mod:`icsmdp_theory.model`: one test per failure mode of SPEC section 9
(exact located messages), immutability, indexing and the per-agent averages
(checked against brute-force loops written here, not against the model's code)."""
from __future__ import annotations

import copy
import dataclasses
import itertools
import re

import numpy as np
import pytest
import scipy.sparse as sp

from icsmdp_theory.errors import InvalidInstanceError, InvalidObservationMapError
from icsmdp_theory.examples import load_example
from icsmdp_theory.generators import random_icsmdp
from icsmdp_theory.io import instance_from_dict, instance_to_dict
from icsmdp_theory.model import ICSMDP

TOP = ("format, name, gamma, horizon, n_latent, n_interface, rho_latent_interface, "
       "rho_agent, agents")
AGENT = ("name, n_private, n_actions, rho_private, internal_policy, kernel, reward, "
         "end_probability, observation, successors")
P0 = "of agent 0 (`planner`)"
C1 = "of agent 1 (`checker`)"
SPARSE_PLANNER = {"shape": [1, 3, 3],
                  "entries": [[0, 0, 1, 1.0], [0, 1, 1, 0.5], [0, 1, 2, 0.5], [0, 2, 2, 1.0]]}

_TINY = instance_to_dict(load_example("tiny-handoff"))


def tiny() -> dict:
    """A fresh deep copy of the tiny-handoff document."""
    return copy.deepcopy(_TINY)


def rejects(doc, message, error=InvalidInstanceError):
    """``doc`` is rejected with exactly ``message``."""
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        instance_from_dict(doc)


def mutated(edit):
    d = tiny()
    edit(d)
    return d


def setitem(path, value):
    """An edit that sets ``d[path[0]][path[1]]... = value``."""
    def edit(d):
        target = d
        for k in path[:-1]:
            target = target[k]
        target[path[-1]] = value
    return edit


# ------------------------------------------------------------- top level
def test_tiny_document_is_valid():
    model = instance_from_dict(tiny())
    assert model.num_agents == 2 and model.num_epoch_states == 6


def test_unknown_top_level_key():
    rejects(mutated(setitem(["colour"], "red")),
            f"unknown key `colour` (allowed: {TOP}).")


@pytest.mark.parametrize("key", TOP.split(", "))
def test_missing_top_level_key(key):
    d = tiny()
    del d[key]
    rejects(d, f"missing key `{key}`.")


def test_wrong_format_tag():
    rejects(mutated(setitem(["format"], "icsmdp/2")),
            "`format` must be 'icsmdp/1', got 'icsmdp/2'.")


@pytest.mark.parametrize("gamma, message", [
    (0, "`gamma` must lie in (0, 1), got 0.0."),
    (1, "`gamma` must lie in (0, 1), got 1.0."),
    (1.5, "`gamma` must lie in (0, 1), got 1.5."),
    (-0.5, "`gamma` must lie in (0, 1), got -0.5."),
    (float("nan"), "`gamma` must lie in (0, 1), got nan."),
    ("0.9", "`gamma` must be a number in (0, 1), got '0.9'."),
    (True, "`gamma` must be a number in (0, 1), got True."),
    (None, "`gamma` must be a number in (0, 1), got None."),
])
def test_gamma_outside_open_unit_interval(gamma, message):
    rejects(mutated(setitem(["gamma"], gamma)), message)


@pytest.mark.parametrize("gamma", [1e-12, 0.5, 1 - 1e-12])
def test_gamma_inside_open_unit_interval(gamma):
    assert instance_from_dict(mutated(setitem(["gamma"], gamma))).gamma == gamma


@pytest.mark.parametrize("key, value, message", [
    ("horizon", 0, "`horizon` must be an integer >= 1, got 0."),
    ("horizon", 2.0, "`horizon` must be an integer >= 1, got 2.0."),
    ("n_latent", "1", "`n_latent` must be an integer >= 1, got '1'."),
    ("n_interface", True, "`n_interface` must be an integer >= 1, got True."),
    ("name", 7, "`name` must be a string, got int."),
])
def test_bad_scalar(key, value, message):
    rejects(mutated(setitem([key], value)), message)


def test_agents_not_a_list():
    rejects(mutated(setitem(["agents"], {})), "`agents` must be a non-empty list of agent objects.")
    rejects(mutated(setitem(["agents"], [])), "`agents` must be a non-empty list of agent objects.")


def test_initial_laws():
    rejects(mutated(setitem(["rho_latent_interface"], [[0.9, 0.0, 0.0]])),
            "`rho_latent_interface` must sum to 1, sums to 0.9.")
    rejects(mutated(setitem(["rho_agent"], [1.5, -0.5])),
            "`rho_agent` must be non-negative: entry [1] is -0.5.")
    rejects(mutated(setitem(["rho_agent"], [0.5, 0.4])), "`rho_agent` must sum to 1, sums to 0.9.")


# ---------------------------------------------------------------- shapes
@pytest.mark.parametrize("path, value, message", [
    (["rho_latent_interface"], [[1.0, 0.0]],
     "`rho_latent_interface` must have shape [1, 3], got [1, 2]."),
    (["rho_agent"], [1.0], "`rho_agent` must have shape [2], got [1]."),
    (["agents", 0, "rho_private"], [1.0, 0.0],
     f"`rho_private` {P0} must have shape [1], got [2]."),
    (["agents", 0, "internal_policy"], [[[1.0]], [[1.0]]],
     f"`internal_policy` {P0} must have shape [3, 1, 1], got [2, 1, 1]."),
    (["agents", 1, "kernel"], [[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]],
     f"`kernel` {C1} must have shape [1, 3, 3], got [1, 2, 3]."),
    (["agents", 0, "reward"], [[[[0.0, 0.0]], [[0.0, 0.0]], [[0.0, 1.0]]]],
     f"`reward` {P0} must have shape [1, 3, 1, 3], got [1, 3, 1, 2]."),
    (["agents", 0, "end_probability"], [[1.0, 0.5, 1.0]],
     f"`end_probability` {P0} must have shape [1, 3, 1], got [1, 3]."),
    (["agents", 0, "observation"], [[0], [1]],
     f"`observation` {P0} must have shape [3, 1], got [2, 1]."),
    (["agents", 0, "successors"], [False, True],
     f"`successors` {P0} must be a list of 3 booleans (agents then STOP), got [False, True]."),
    (["agents", 0, "internal_policy"], [[[1.0]], [[1.0, 0.0]], [[1.0]]],
     f"`internal_policy` {P0} must have shape [3, 1, 1]: entry [1, 0] has 2 entries, expected 1."),
    (["agents", 0, "reward"], "zero",
     f"`reward` {P0} must be an array of shape [1, 3, 1, 3], got the string 'zero'."),
    (["agents", 1, "successors"], [True, False, [[[]]]],
     f"`successors` {C1}: entry [2] is a list of 1 entries, expected a boolean (true or false)."),
    (["agents", 0, "end_probability"], [[[1.0], [0.5], 1.0]],
     f"`end_probability` {P0} must have shape [1, 3, 1]: entry [0, 2] is the number 1.0, "
     f"expected a list of 1 entries."),
    (["agents", 0, "end_probability"], [[[1.0], [0.5], [[1.0]]]],
     f"`end_probability` {P0} must have shape [1, 3, 1]: entry [0, 2, 0] is a list of 1 entries, "
     f"expected a single value."),
])
def test_wrong_shape(path, value, message):
    rejects(mutated(setitem(path, value)), message)


def test_sizes_of_an_agent():
    rejects(mutated(setitem(["agents", 0, "n_private"], 0)),
            f"`n_private` {P0} must be an integer >= 1, got 0.")
    rejects(mutated(setitem(["agents", 1, "n_actions"], 1.5)),
            f"`n_actions` {C1} must be an integer >= 1, got 1.5.")
    # n_private = 2 makes every per-agent array the wrong size; the first checked one is named
    rejects(mutated(setitem(["agents", 0, "n_private"], 2)),
            f"`rho_private` {P0} must have shape [2], got [1].")
    rejects(mutated(setitem(["agents", 0, "name"], 3)), "`agents[0].name` must be a string, got 3.")


# ------------------------------------------------------ numbers and laws
def test_nan_in_reward():
    rejects(mutated(setitem(["agents", 0, "reward", 0, 2, 0, 2], float("nan"))),
            f"`reward` {P0} must be finite: entry [0, 2, 0, 2] is nan.")


def test_inf_in_kernel():
    rejects(mutated(setitem(["agents", 1, "kernel", 0, 1, 1], float("inf"))),
            f"`kernel` {C1} must be finite: entry [0, 1, 1] is inf.")


def test_nan_in_end_probability():
    rejects(mutated(setitem(["agents", 1, "end_probability", 0, 2, 0], float("-inf"))),
            f"`end_probability` {C1} must be finite: entry [0, 2, 0] is -inf.")


def test_negative_probability():
    rejects(mutated(setitem(["agents", 0, "kernel", 0, 1], [0.0, 1.5, -0.5])),
            f"`kernel` {P0} must be non-negative: entry [0, 1, 2] is -0.5.")
    rejects(mutated(setitem(["agents", 1, "internal_policy", 2, 0], [-1.0])),
            f"`internal_policy` {C1} must be non-negative: entry [2, 0, 0] is -1.0.")
    rejects(mutated(setitem(["agents", 1, "rho_private"], [-1.0])),
            f"`rho_private` {C1} must be non-negative: entry [0] is -1.0.")


def test_kernel_row_not_summing_to_one():
    rejects(mutated(setitem(["agents", 1, "kernel", 0, 1], [0.0, 0.0, 0.9])),
            "rows of `kernel` must sum to 1: agent 1 (`checker`), action 0, row y=1 sums to 0.9.")


def test_kernel_row_sum_tolerance_is_1e_9():
    ok = instance_from_dict(mutated(setitem(["agents", 1, "kernel", 0, 1], [0.0, 0.0, 1 + 5e-10])))
    assert ok.agents[1].kernel[0][1, 2] == 1 + 5e-10
    rejects(mutated(setitem(["agents", 1, "kernel", 0, 1], [0.0, 0.0, 1 + 4e-9])),
            "rows of `kernel` must sum to 1: agent 1 (`checker`), action 0, "
            f"row y=1 sums to {1 + 4e-9!r}.")


def test_kernel_row_of_a_later_action_is_named():
    d = tiny()
    a = d["agents"][1]
    a["n_actions"] = 2
    a["internal_policy"] = [[[0.5, 0.5]]] * 3
    a["kernel"] = [a["kernel"][0], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.2, 0.2, 0.2]]]
    a["reward"] = [[[r[0], r[0]] for r in a["reward"][0]]]
    rejects(d, "rows of `kernel` must sum to 1: agent 1 (`checker`), action 1, row y=2 "
               f"sums to {0.2 + 0.2 + 0.2!r}.")


def test_internal_policy_row_not_summing_to_one():
    rejects(mutated(setitem(["agents", 0, "internal_policy", 1], [[0.5]])),
            f"rows of `internal_policy` {P0} must sum to 1: row [1, 0] sums to 0.5.")


@pytest.mark.parametrize("value", [1.5, -0.1])
def test_end_probability_outside_unit_interval(value):
    rejects(mutated(setitem(["agents", 0, "end_probability", 0, 1, 0], value)),
            f"`end_probability` {P0} must lie in [0, 1]: entry [0, 1, 0] is {value!r}.")


# ------------------------------------------------------------ observation
def test_observation_with_unused_label():
    rejects(mutated(setitem(["agents", 1, "observation"], [[0], [2], [2]])),
            f"`observation` {C1}: labels must be 0..2 with every label used; label 1 is unused.")


def test_observation_negative_label():
    rejects(mutated(setitem(["agents", 0, "observation"], [[0], [-1], [1]])),
            f"`observation` {P0}: label at m=1, l=0 is -1, must be >= 0.")


@pytest.mark.parametrize("value, at, given", [
    ([[0], [0.5], [1]], "m=1, l=0", "the number 0.5"),
    ([["a"], ["b"], ["a"]], "m=0, l=0", "the string 'a'"),
    ([[0], [True], [1]], "m=1, l=0", "the boolean True"),
    ([[0], ["1"], [1]], "m=1, l=0", "the string '1'"),
    ([[0], [None], [1]], "m=1, l=0", "null"),
    (np.array([[0], [1], [1]], dtype=complex), "m=0, l=0", "the complex number 0j")])
def test_observation_non_integer_label(value, at, given):
    rejects(mutated(setitem(["agents", 0, "observation"], value)),
            f"`observation` {P0}: label at {at} is {given}, expected an integer label.")


@pytest.mark.parametrize("label, shown", [(1e308, "1e+308"), (2**63, "9223372036854775808"),
                                          (-(2**63) - 1, "-9223372036854775809"),
                                          (10**400, "1000000000000...0000 (401 digits)")])
def test_huge_label_is_reported_as_given(label, shown):
    # before: cast to int64 with a RuntimeWarning and reported as -9223372036854775808
    message = f"label at m=1, l=0 is {shown}, must be >= 0." if label < 0 else \
        f"labels must be 0..2 with every label used (nM*nL = 3 cells); label at m=1, l=0 is {shown}."
    rejects(mutated(setitem(["agents", 0, "observation"], [[0], [label], [1]])),
            f"`observation` {P0}: {message}")


def test_observation_integral_floats_are_labels():
    model = instance_from_dict(mutated(setitem(["agents", 0, "observation"], [[1.0], [0.0], [0.0]])))
    assert model.agents[0].observation.dtype.kind == "i"
    assert model.agents[0].observation.ravel().tolist() == [1, 0, 0]


# ------------------------------------------------------------- successors
def test_successors_all_false():
    rejects(mutated(setitem(["agents", 0, "successors"], [False, False, False])),
            f"`successors` {P0} must admit at least one successor; all 3 are false.")


def test_successors_must_be_booleans():
    rejects(mutated(setitem(["agents", 0, "successors"], [0, 1, 1])),
            f"`successors` {P0}: entry [0] is the integer 0, expected a boolean (true or false).")
    rejects(mutated(setitem(["agents", 0, "successors"], [False, "true", True])),
            f"`successors` {P0}: entry [1] is the string 'true', expected a boolean (true or false).")


@pytest.mark.parametrize("value", [[False, True, True, True], [False, True], True])
def test_successors_wrong_length_or_type(value):
    rejects(mutated(setitem(["agents", 0, "successors"], value)),
            f"`successors` {P0} must be a list of 3 booleans (agents then STOP), got {value!r}.")


# ------------------------------------------------------------ termination
def test_non_terminating_invocation_is_rejected():
    # planner: m=2 loops to itself with probability 1; beta(m=2) = 0 traps it there
    rejects(mutated(setitem(["agents", 0, "end_probability"], [[[1.0], [0.5], [0.0]]])),
            "`end_probability`/`kernel` of agent 0 (`planner`): the invocation never ends from "
            "local state y=2 (x=0, m=2, l=0); Assumption 1(ii) requires it to end with "
            "probability 1.")


def test_trap_in_a_larger_instance_names_the_decoded_state():
    nX, nM, nL = 2, 3, 2
    d = instance_to_dict(random_icsmdp(5, num_agents=2, num_latent=nX, num_interface=nM,
                                       num_private=nL, num_actions=2))
    x, m, l = 1, 2, 0
    y = (x * nM + m) * nL + l
    agent = d["agents"][1]
    for a in range(2):
        agent["kernel"][a][y] = [1.0 if j == y else 0.0 for j in range(nX * nM * nL)]
    agent["end_probability"][x][m][l] = 0.0
    rejects(d, f"`end_probability`/`kernel` of agent 1 (`agent1`): the invocation never ends "
               f"from local state y={y} (x={x}, m={m}, l={l}); Assumption 1(ii) requires it to "
               f"end with probability 1.")


def test_two_state_trap():
    # checker: y=1 -> y=2 -> y=1 with beta = 0 on both; y=0 ends at once
    d = tiny()
    d["agents"][1]["kernel"] = [[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]]
    d["agents"][1]["end_probability"] = [[[1.0], [0.0], [0.0]]]
    rejects(d, "`end_probability`/`kernel` of agent 1 (`checker`): the invocation never ends "
               "from local state y=1 (x=0, m=1, l=0); Assumption 1(ii) requires it to end with "
               "probability 1.")


def test_beta_zero_states_that_reach_a_leak_are_accepted():
    # planner: beta(m=0) = 0 but m=0 -> m=1 which ends w.p. 0.5; checker: beta = 0 at m=0
    # and m=1, m=1 -> m=2 which ends; m=0 -> m=0 only would trap, so send it to m=1
    d = tiny()
    d["agents"][0]["end_probability"] = [[[0.0], [0.5], [1.0]]]
    d["agents"][1]["kernel"] = [[[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]]
    d["agents"][1]["end_probability"] = [[[0.0], [0.0], [1.0]]]
    model = instance_from_dict(d)
    for i in range(2):
        cont = model.mean_kernel(i).toarray() * (1 - model.end_probability_local(i))[None, :]
        assert max(abs(np.linalg.eigvals(cont))) < 1 - 1e-6


def _spectral_radius_of_continue_matrix(doc, i):
    a = doc["agents"][i]
    nX, nM, nL, nA = doc["n_latent"], doc["n_interface"], a["n_private"], a["n_actions"]
    pol = np.asarray(a["internal_policy"])
    kbar = np.zeros((nX * nM * nL,) * 2)
    for (x, m, l), act in itertools.product(itertools.product(range(nX), range(nM), range(nL)),
                                            range(nA)):
        y = (x * nM + m) * nL + l
        kbar[y] += pol[m, l, act] * np.asarray(a["kernel"][act][y])
    beta = np.asarray(a["end_probability"]).ravel()
    cont = kbar * (1 - beta)[None, :]
    return max(abs(np.linalg.eigvals(cont))), cont


def _sparse_beta_draw(seed):
    """A document with sparse rows and mostly-zero end probabilities (traps are common)."""
    rng = np.random.default_rng(seed)
    model = random_icsmdp(seed, num_agents=2, num_latent=2, num_interface=3, num_private=2,
                          num_actions=2, nnz_per_row=int(rng.integers(1, 3)))
    d = instance_to_dict(model)
    d["agents"] = [dict(a, kernel=[k.toarray().tolist() for k in ag.kernel])
                   for a, ag in zip(d["agents"], model.agents)]
    for a in d["agents"]:
        a["end_probability"] = rng.choice([0.0, 0.5, 1.0], p=[0.9, 0.05, 0.05],
                                          size=np.shape(a["end_probability"])).tolist()
    return d


SEEDS = range(40)


def test_termination_sweep_holds_both_outcomes():
    trapped = [max(_spectral_radius_of_continue_matrix(_sparse_beta_draw(s), i)[0]
                   for i in range(2)) > 1 - 1e-9 for s in SEEDS]
    assert 10 <= sum(trapped) <= 30


@pytest.mark.parametrize("seed", SEEDS)
def test_termination_check_agrees_with_spectral_radius(seed):
    """Accept iff the undiscounted continue matrix has spectral radius < 1."""
    d = _sparse_beta_draw(seed)
    radii = [_spectral_radius_of_continue_matrix(d, i) for i in range(2)]
    trapped = [r > 1 - 1e-9 for r, _ in radii]
    assert all(r > 1 - 1e-9 or r < 1 - 1e-7 for r, _ in radii), "ambiguous draw"
    if not any(trapped):
        instance_from_dict(d)
        return
    with pytest.raises(InvalidInstanceError) as info:
        instance_from_dict(d)
    i = trapped.index(True)
    found = re.fullmatch(r"`end_probability`/`kernel` of agent (\d) \(`agent\d`\): the invocation "
                         r"never ends from local state y=(\d+) \(x=(\d), m=(\d), l=(\d)\); "
                         r"Assumption 1\(ii\) requires it to end with probability 1\.",
                         str(info.value))
    assert found, str(info.value)
    assert int(found[1]) == i
    y, x, m, l = (int(found[k]) for k in range(2, 6))
    assert y == (x * 3 + m) * 2 + l
    # from the named state no mass ever leaks: the row of M^64 still sums to 1
    cont = radii[i][1]
    assert np.linalg.matrix_power(cont, 64)[y].sum() > 1 - 1e-6


# ----------------------------------------------------------- sparse form
def sparse_tiny() -> dict:
    d = tiny()
    d["agents"][0]["kernel"] = copy.deepcopy(SPARSE_PLANNER)
    return d


def test_sparse_kernel_form_is_accepted_and_equals_dense():
    sparse_model, dense_model = instance_from_dict(sparse_tiny()), instance_from_dict(tiny())
    assert sparse_model.agents[0].kernel_is_sparse and not dense_model.agents[0].kernel_is_sparse
    np.testing.assert_array_equal(sparse_model.agents[0].kernel[0].toarray(),
                                  dense_model.agents[0].kernel[0].toarray())


def _sparse(edit):
    d = sparse_tiny()
    edit(d["agents"][0]["kernel"])
    return d


@pytest.mark.parametrize("edit, message", [
    (lambda k: k["entries"].append([0, 1, 1, 0.25]),
     f"`kernel.entries` {P0}: (a=0, y=1, y2=1) is repeated."),
    (lambda k: k["entries"].__setitem__(2, [0, 1, 3, 0.5]),
     f"`kernel.entries` {P0}: entry 2 has y2=3 outside 0..2."),
    (lambda k: k["entries"].__setitem__(1, [0, -1, 1, 0.5]),
     f"`kernel.entries` {P0}: entry 1 has y=-1 outside 0..2."),
    (lambda k: k["entries"].__setitem__(3, [1, 2, 2, 1.0]),
     f"`kernel.entries` {P0}: entry 3 has a=1 outside 0..0."),
    (lambda k: k.__setitem__("shape", [1, 3, 4]),
     f"`kernel.shape` {P0} must be [1, 3, 3], got [1, 3, 4]."),
    (lambda k: k.__setitem__("shape", 3),
     f"`kernel.shape` {P0} must be [1, 3, 3], got 3."),
    (lambda k: k.pop("shape"),
     f"`kernel.shape` {P0} must be [1, 3, 3], got None."),
    (lambda k: k.__setitem__("format", "coo"),
     f"`kernel` {P0}: unknown key `format` in the sparse form (allowed: shape, entries)."),
    (lambda k: k["entries"].__setitem__(1, [0, 1, 1, -0.5]),
     f"`kernel.entries` {P0}: entry 1 has negative probability -0.5."),
    (lambda k: k["entries"].__setitem__(1, [0, 1.5, 1, 0.5]),
     f"`kernel.entries` {P0}: entry 1 has a non-integer index y=1.5."),
    (lambda k: k["entries"].__setitem__(1, [0, 1e308, 1, 0.5]),
     f"`kernel.entries` {P0}: entry 1 has y=1e+308 outside 0..2."),
    (lambda k: k["entries"].__setitem__(1, [0, 1, 2**63, 0.5]),
     f"`kernel.entries` {P0}: entry 1 has y2=9223372036854775808 outside 0..2."),
    (lambda k: k["entries"].__setitem__(1, [0, 1, 10**400, 0.5]),
     f"`kernel.entries` {P0}: entry 1 has y2=1000000000000...0000 (401 digits), beyond the "
     f"double-precision range."),
    (lambda k: k["entries"].__setitem__(1, [0, 1, 1, "0.5"]),
     f"`kernel.entries` {P0}: entry 1 has p = the string '0.5', expected a number."),
    (lambda k: k["entries"].__setitem__(1, [False, 1, 1, 0.5]),
     f"`kernel.entries` {P0}: entry 1 has a = the boolean False, expected a number."),
    (lambda k: k["entries"].__setitem__(1, [0, 1, 1, float("nan")]),
     f"`kernel.entries` {P0}: entry 1 is not finite."),
    (lambda k: k["entries"].__setitem__(1, [0, 1, 1]),
     f"`kernel.entries` {P0}: entry 1 must be a quadruple [a, y, y2, p], got a list of 3 entries."),
    (lambda k: k.__setitem__("entries", [0, 0, 1, 1.0, 0, 1, 1, 0.5, 0, 1, 2, 0.5, 0, 2, 2, 1.0]),
     f"`kernel.entries` {P0}: entry 0 must be a quadruple [a, y, y2, p], got the integer 0."),
    (lambda k: k.__setitem__("entries", [[0, 0, 1, 1.0, 0, 1, 1, 0.5], [0, 1, 2, 0.5, 0, 2, 2, 1.0]]),
     f"`kernel.entries` {P0}: entry 0 must be a quadruple [a, y, y2, p], got a list of 8 entries."),
    (lambda k: k.__setitem__("entries", "none"),
     f"`kernel.entries` {P0} must be a list of [a, y, y2, p] quadruples, got the string 'none'."),
    (lambda k: k["entries"].pop(2),
     "rows of `kernel` must sum to 1: agent 0 (`planner`), action 0, row y=1 sums to 0.5."),
    (lambda k: k.__setitem__("entries", []),
     "rows of `kernel` must sum to 1: agent 0 (`planner`), action 0, row y=0 sums to 0.0."),
])
def test_sparse_kernel_failure(edit, message):
    rejects(_sparse(edit), message)


def test_scipy_sparse_kernel_input_is_copied():
    d = tiny()
    mine = sp.csr_array(np.array(d["agents"][0]["kernel"][0]))
    d["agents"][0]["kernel"] = [mine]
    model = instance_from_dict(d)
    assert model.agents[0].kernel_is_sparse
    assert mine.data.flags.writeable            # the caller's matrix is left alone
    mine.data[:] = 0.0
    assert model.agents[0].kernel[0].sum() == 3.0


# ------------------------------------------------------------ agent keys
def test_unknown_agent_key():
    rejects(mutated(setitem(["agents", 1, "colour"], "red")),
            f"`agents[1]`: unknown key `colour` (allowed: {AGENT}, modes).")


@pytest.mark.parametrize("key", AGENT.split(", "))
def test_missing_agent_key(key):
    d = tiny()
    del d["agents"][0][key]
    rejects(d, f"`agents[0]`: missing key `{key}`.")


def test_agent_not_an_object():
    rejects(mutated(setitem(["agents", 1], [1, 2])),
            f"`agents[1]` must be an object with keys {AGENT.split(', ')!r}.")


def test_first_violation_in_validation_order_is_reported():
    d = tiny()
    d["agents"][1]["kernel"][0][0] = [0.5, 0.0, 0.0]          # agent 1 kernel
    d["agents"][0]["observation"] = [[0], [2], [2]]            # agent 0 observation
    d["agents"][0]["reward"][0][0][0][0] = float("nan")        # agent 0 reward (before obs)
    rejects(d, f"`reward` {P0} must be finite: entry [0, 0, 0, 0] is nan.")


# ----------------------------------------------------------- immutability
def _all_arrays(model):
    yield "rho_latent_interface", model.rho_latent_interface
    yield "rho_agent", model.rho_agent
    for i, a in enumerate(model.agents):
        for f in dataclasses.fields(a):
            v = getattr(a, f.name)
            if isinstance(v, np.ndarray):
                yield f"agents[{i}].{f.name}", v
        for j, k in enumerate(a.kernel):
            for part in ("data", "indices", "indptr"):
                yield f"agents[{i}].kernel[{j}].{part}", getattr(k, part)
        for part in ("data", "indices", "indptr"):
            yield f"mean_kernel({i}).{part}", getattr(model.mean_kernel(i), part)


@pytest.mark.parametrize("name", ["tiny-handoff", "workflow"])
def test_model_is_immutable(name):
    model = load_example(name)
    with pytest.raises(AttributeError, match="immutable"):
        model.gamma = 0.5
    with pytest.raises(AttributeError, match="immutable"):
        model.agents = ()
    with pytest.raises(AttributeError, match="immutable"):
        del model.gamma
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.agents[0].name = "x"
    assert isinstance(model.agents, tuple) and isinstance(model.agents[0].kernel, tuple)
    count = 0
    for where, arr in _all_arrays(model):
        assert not arr.flags.writeable, where
        with pytest.raises(ValueError):
            arr[(0,) * arr.ndim] = 7
        count += 1
    assert count >= 2 + model.num_agents * 8
    assert model.gamma == load_example(name).gamma


def test_model_does_not_alias_its_inputs():
    d = tiny()
    rew = np.array(d["agents"][0]["reward"])
    beta = np.array(d["agents"][0]["end_probability"])
    d["agents"][0]["reward"], d["agents"][0]["end_probability"] = rew, beta
    model = instance_from_dict(d)
    rew[...] = 99.0
    beta[...] = 0.0
    assert model.agents[0].reward.max() == 1.0
    assert model.agents[0].end_probability.min() == 0.5


# --------------------------------------------------------------- indexing
def _models():
    yield load_example("tiny-handoff")
    yield load_example("workflow")
    yield random_icsmdp(3, num_agents=3, num_latent=2, num_interface=3, num_private=(1, 2, 3),
                        num_actions=(1, 2, 3), nnz_per_row=2)


@pytest.mark.parametrize("model", list(_models()), ids=lambda m: m.name)
def test_local_index_and_decode_are_inverse(model):
    nX, nM = model.num_latent, model.num_interface
    for i, agent in enumerate(model.agents):
        nL = agent.num_private
        assert agent.num_local_states == nX * nM * nL
        # C order over (x, m, l) enumerates y = 0, 1, 2, ...
        triples = list(itertools.product(range(nX), range(nM), range(nL)))
        assert [model.local_index(i, *t) for t in triples] == list(range(len(triples)))
        for y, t in enumerate(triples):
            assert tuple(int(v) for v in model.local_decode(i, y)) == t
        ys = np.arange(len(triples))
        x, m, l = model.local_decode(i, ys)
        np.testing.assert_array_equal(model.local_index(i, x, m, l), ys)


@pytest.mark.parametrize("model", list(_models()), ids=lambda m: m.name)
def test_mean_kernel_reward_and_beta_by_brute_force(model):
    nX, nM, N = model.num_latent, model.num_interface, model.num_agents
    for i, agent in enumerate(model.agents):
        nL, nA = agent.num_private, agent.num_actions
        nY = nX * nM * nL
        dense = [k.toarray() for k in agent.kernel]
        kbar = np.zeros((nY, nY))
        rbar = np.zeros((nY, N + 1))
        beta = np.zeros(nY)
        for x in range(nX):
            for m in range(nM):
                for l in range(nL):
                    y = (x * nM + m) * nL + l
                    beta[y] = agent.end_probability[x, m, l]
                    for a in range(nA):
                        p = agent.internal_policy[m, l, a]
                        kbar[y] += p * dense[a][y]
                        for c in range(N + 1):
                            rbar[y, c] += p * agent.reward[x, m, a, c]
        got = model.mean_kernel(i)
        assert sp.issparse(got) and got.shape == (nY, nY)
        np.testing.assert_allclose(got.toarray(), kbar, rtol=0, atol=1e-15)
        np.testing.assert_allclose(model.mean_reward(i), rbar, rtol=0, atol=1e-14)
        np.testing.assert_array_equal(model.end_probability_local(i), beta)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-12)
        pol = model.policy_on_local_states(i)
        for y in range(nY):
            x, m, l = (int(v) for v in model.local_decode(i, y))
            np.testing.assert_array_equal(pol[y], agent.internal_policy[m, l])


def test_sizes_and_counts():
    model = random_icsmdp(0, num_agents=3, num_latent=2, num_interface=5, num_private=(1, 2, 3))
    assert model.num_full_states == 2 * 5 * 1 * 2 * 3
    assert model.num_epoch_states == 2 * 5 * 6 * 3
    assert model.num_successors == 4 and model.stop == 3
    assert model.num_private == (1, 2, 3)
    assert model.agent_names() == ["agent0", "agent1", "agent2"]


# ------------------------------------------------------- with_observation
def test_with_observation_replaces_maps():
    model = load_example("tiny-handoff")
    new = model.with_observation([[[0], [0], [0]], [[1], [0], [1]]])
    assert new is not model and isinstance(new, ICSMDP)
    assert new.agents[0].observation.ravel().tolist() == [0, 0, 0]
    assert new.agents[1].observation.ravel().tolist() == [1, 0, 1]
    assert new.num_observations == (1, 2)
    assert model.num_observations == (2, 3)                     # the original is untouched
    assert model.agents[0].observation.ravel().tolist() == [0, 1, 1]
    for a, b in zip(model.agents, new.agents):
        assert a.name == b.name and a.kernel is b.kernel
        np.testing.assert_array_equal(a.reward, b.reward)
    assert new.gamma == model.gamma and new.summary().startswith("tiny-handoff")
    assert not new.agents[1].observation.flags.writeable
    with pytest.raises(AttributeError, match="immutable"):
        new.gamma = 0.3
    np.testing.assert_array_equal(new.mean_kernel(0).toarray(), model.mean_kernel(0).toarray())


@pytest.mark.parametrize("maps, message", [
    ([[[0], [1], [1]]], "`maps` must hold one observation map per agent: expected 2, got 1."),
    ("maps", "`maps` must hold one observation map per agent: expected 2, got str."),
    ([[[0], [1], [1]], [[0], [1]]],
     f"`maps[1]` {C1} must have shape [3, 1], got [2, 1]."),
    ([[[0], [2], [2]], [[0], [1], [2]]],
     f"`maps[0]` {P0}: labels must be 0..2 with every label used; label 1 is unused."),
    ([[[0], [1], [1]], [[0], [-2], [1]]],
     f"`maps[1]` {C1}: label at m=1, l=0 is -2, must be >= 0."),
    ([[[0], [1], [1]], [[0], [0.5], [1]]],
     f"`maps[1]` {C1}: label at m=1, l=0 is the number 0.5, expected an integer label."),
    ([[[0], [1], [1]], [[0], [1e308], [1]]],
     f"`maps[1]` {C1}: labels must be 0..2 with every label used (nM*nL = 3 cells); label at "
     f"m=1, l=0 is 1e+308."),
])
def test_with_observation_rejects_bad_maps(maps, message):
    model = load_example("tiny-handoff")
    with pytest.raises(InvalidObservationMapError, match=f"^{re.escape(message)}$"):
        model.with_observation(maps)
