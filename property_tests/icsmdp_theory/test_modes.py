"""Adaptable agents (modes, issue 15): the file key, the model, the option reduction, ``Q*_lat``.

The exact oracle with modes is checked against an explicit enumeration built
here from the file arrays alone (:func:`explicit_q`, each mode a separate agent
copy); refusals of the consumers that do not take modes yet are checked in
the library and on the command line (exit 2, one line).
"""
import copy
import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from icsmdp_theory.epoch_export import export_epoch
from icsmdp_theory.errors import InvalidArgumentError, InvalidInstanceError
from icsmdp_theory.examples import load_example
from icsmdp_theory.io import instance_from_dict, instance_to_dict, load_instance, save_instance
from icsmdp_theory.model import require_single_mode
from icsmdp_theory.options import gamma_bar, option_reduction
from icsmdp_theory.simulate import simulation_tables
from icsmdp_theory.testing.strategies import icsmdps_with_modes
from estimators.gaps import gap_report
from reports.cli import main
from solvers.api import ModifiedPolicyIteration, PolicyIteration, ValueIteration, solve
from solvers.icq import ICQ
from solvers.oracle import bellman_operator, centralized_oracle

C1 = "of agent 1 (`checker`)"


def modes_doc() -> dict:
    """tiny-handoff whose checker has two modes over two actions.

    Action 0 (mode ``careful``) is today's checker (m0 stays, m1 -> m2, m2
    stays); action 1 (mode ``fast``) jumps to m2 from anywhere at a cost 0.3
    except at m2. Every invocation is one step (``beta = 1``).
    """
    d = json.loads(json.dumps(instance_to_dict(load_example("tiny-handoff"))))
    c = d["agents"][1]
    c["n_actions"] = 2
    c["internal_policy"] = [[[[1.0, 0.0]]] * 3, [[[0.0, 1.0]]] * 3]
    c["kernel"] = [c["kernel"][0], [[0.0, 0.0, 1.0]] * 3]
    c["reward"] = [[[[0.0, 0.0, 0.0], [-0.3, -0.3, -0.3]],
                    [[0.0, 0.0, 0.0], [-0.3, -0.3, -0.3]],
                    [[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]]]
    out = {k: c[k] for k in ("name", "n_private", "n_actions")}
    out["modes"] = ["careful", "fast"]
    out.update({k: v for k, v in c.items() if k not in out})
    d["agents"][1] = out
    return json.loads(json.dumps(d))   # no shared sub-lists: tests mutate single entries


def rejects(doc, message):
    with pytest.raises(InvalidInstanceError) as exc:
        instance_from_dict(doc)
    assert str(exc.value) == message
    assert "\n" not in str(exc.value)


# --------------------------------------------------------------- the file key
def test_modes_document_builds_and_round_trips(tmp_path):
    model = instance_from_dict(modes_doc())
    assert model.num_modes == (1, 2) and model.has_modes
    assert model.num_choices == 2 * 3
    assert model.agents[1].modes == ("careful", "fast")
    assert model.agents[0].modes is None and model.agents[0].num_modes == 1
    assert model.agents[1].mode_policies.shape == (2, 3, 1, 2)
    # j = a*(N+1) + c': mode 1 of the checker admits planner (j=3) and STOP (j=5)
    assert model.choice_admissible.tolist() == [[False, True, True, False, False, False],
                                                [True, False, True, True, False, True]]
    assert model.choice(1, 2) == 5 and tuple(map(int, model.choice_decode(5))) == (1, 2)
    assert instance_to_dict(model) == modes_doc()
    for suffix in (".json", ".npz"):
        path = save_instance(model, tmp_path / f"m{suffix}")
        back = load_instance(path)
        assert back.agents[1].modes == ("careful", "fast")
        np.testing.assert_array_equal(back.agents[1].mode_policies, model.agents[1].mode_policies)
        assert instance_to_dict(back) == instance_to_dict(model)


def test_files_without_modes_are_unchanged():
    for name in ("tiny-handoff", "workflow"):
        model = load_example(name)
        assert model.num_modes == (1,) * model.num_agents and not model.has_modes
        assert model.num_choices == model.num_successors
        np.testing.assert_array_equal(model.choice_admissible, model.admissible)
        assert all("modes" not in a for a in instance_to_dict(model)["agents"])
        assert "K=" not in model.summary()


def test_one_named_mode_is_the_unnamed_agent():
    base = load_example("tiny-handoff")
    d = instance_to_dict(base)
    d["agents"][0] = {"modes": ["only"], **d["agents"][0]}
    d["agents"][0]["internal_policy"] = [d["agents"][0]["internal_policy"]]
    named = instance_from_dict(d)
    assert named.agents[0].modes == ("only",) and not named.has_modes
    np.testing.assert_array_equal(named.agents[0].internal_policy, base.agents[0].internal_policy)
    a, b = centralized_oracle(base).solution, centralized_oracle(named).solution
    np.testing.assert_array_equal(a.q, b.q)
    ga, gb = gap_report(base, minimax=False), gap_report(named, minimax=False)
    assert ga.alpha_tight == gb.alpha_tight


HOSTILE = [
    (["modes"], [], f"`modes` {C1} must be a non-empty list of mode names, got []."),
    (["modes"], "careful", f"`modes` {C1} must be a non-empty list of mode names, got 'careful'."),
    (["modes"], ["careful", 3], f"`modes` {C1}: entry [1] is the integer 3, expected a string."),
    (["modes"], ["careful", None], f"`modes` {C1}: entry [1] is null, expected a string."),
    (["modes"], ["careful", ""], f"`modes` {C1}: entry [1] is the empty string; mode names must "
                                 f"be non-empty."),
    (["modes"], ["fast", "fast"], f"`modes` {C1}: entry [1] repeats the name 'fast' of entry "
                                  f"[0]; mode names must be distinct."),
    (["modes"], ["a", "b", "c"], f"`internal_policy` {C1} must have shape [3, 3, 1, 2], got "
                                 f"[2, 3, 1, 2]."),
    (["internal_policy"], [[[1.0, 0.0]]] * 3, f"`internal_policy` {C1} must have shape "
                                              f"[2, 3, 1, 2], got [3, 1, 2]."),
    (["internal_policy", 1, 2, 0], [0.5, 0.4], f"rows of `internal_policy` {C1} must sum to 1: "
                                               f"row [1, 2, 0] sums to 0.9."),
    (["internal_policy", 0, 1, 0], [1.5, -0.5], f"`internal_policy` {C1} must be non-negative: "
                                                f"entry [0, 1, 0, 1] is -0.5."),
    (["internal_policy", 1, 0, 0, 1], "1", f"`internal_policy` {C1}: entry [1, 0, 0, 1] is the "
                                           f"string '1', expected a number."),
]


@pytest.mark.parametrize("path, value, message", HOSTILE)
def test_hostile_modes_are_rejected_with_a_located_line(path, value, message):
    doc = modes_doc()
    target = doc["agents"][1]
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    rejects(doc, message)


def test_unknown_agent_key_lists_modes():
    doc = modes_doc()
    doc["agents"][0]["mode"] = ["x"]
    rejects(doc, "`agents[0]`: unknown key `mode` (allowed: name, n_private, n_actions, "
                 "rho_private, internal_policy, kernel, reward, end_probability, observation, "
                 "successors, modes).")


def test_a_mode_that_never_ends_is_named():
    doc = modes_doc()
    c = doc["agents"][1]
    c["end_probability"] = [[[1.0], [1.0], [0.0]]]      # never ends once at m2 ...
    c["kernel"][0] = [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]  # careful: never at m2
    rejects(doc, "`end_probability`/`kernel` of agent 1 (`checker`): the invocation in mode 1 "
                 "(`fast`) never ends from local state y=0 (x=0, m=0, l=0); Assumption 1(ii) "
                 "requires it to end with probability 1.")


def test_npz_modes_are_validated_like_json(tmp_path):
    model = instance_from_dict(modes_doc())
    path = save_instance(model, tmp_path / "m.npz")
    arrays = dict(np.load(path))
    arrays["agent1.modes"] = np.array(["fast", "fast"])
    np.savez_compressed(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InvalidInstanceError, match=r"bad\.npz: `modes` of agent 1 \(`checker`\): "
                       r"entry \[1\] repeats the name 'fast'"):
        load_instance(tmp_path / "bad.npz")


# ----------------------------------------------------- per-mode arrays and refusals
def test_per_mode_reads_and_refusal_without_mode():
    model = instance_from_dict(modes_doc())
    np.testing.assert_array_equal(model.mode_policy(1, 1)[:, 0, :], [[0.0, 1.0]] * 3)
    assert model.mean_kernel(1, 1).toarray().tolist() == [[0.0, 0.0, 1.0]] * 3
    with pytest.raises(InvalidArgumentError, match=r"agent `checker` has 2 modes \(careful, "
                       r"fast\): its internal policy depends on the mode"):
        model.agents[1].internal_policy
    for call in (lambda: model.mean_kernel(1), lambda: model.mean_reward(1),
                 lambda: option_reduction(model, 1)):
        with pytest.raises(InvalidArgumentError, match="has 2 modes"):
            call()
    with pytest.raises(InvalidArgumentError, match=r"`mode` of agent 1 \(`checker`\) must lie "
                       r"in 0\.\.1, got 2\."):
        model.mean_kernel(1, 2)
    # planner (one mode) reads as before
    assert model.mean_kernel(0).shape == (3, 3)


def test_option_reduction_per_mode_by_hand():
    model = instance_from_dict(modes_doc())
    fast = option_reduction(model, 1, 1)
    careful = option_reduction(model, 1, 0)
    # one step each (beta = 1): R = r(m, a, c'), g = gamma
    np.testing.assert_allclose(fast.option_reward()[:, 0], [-0.3, -0.3, 0.0])
    np.testing.assert_allclose(careful.option_reward()[:, 2], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(fast.effective_discount(), [0.9] * 3)
    assert gamma_bar(model) == pytest.approx(0.9)


def test_oracle_with_modes_by_hand():
    """tiny-handoff's v0 = 0.783871 is kept: ``fast`` pays 0.3 for what ``careful`` gets free.

    Checker at m0: careful -> planner: 0.9 * V(m0, planner) = 0.9 * 0.783871 = 0.705484;
    fast -> planner: -0.3 + 0.9 * V(m2, planner) = -0.3 + 0.9 * 1 = 0.6; fast -> STOP: -0.3.
    """
    res = centralized_oracle(instance_from_dict(modes_doc()))
    q = res.solution.q
    assert q.shape == (6, 6) and res.v0 == pytest.approx(0.783871, abs=1e-6)
    np.testing.assert_allclose(q[1, [0, 2, 3, 5]], [0.705484, 0.0, 0.6, -0.3], atol=1e-6)
    assert np.isnan(q[0, 3:]).all()      # the planner has one mode: choices a = 1 inadmissible
    assert res.solution.policy[1] == 0   # careful -> planner


def test_require_single_mode_message():
    model = instance_from_dict(modes_doc())
    require_single_mode(load_example("workflow"), "IC-Q")
    with pytest.raises(InvalidArgumentError) as exc:
        require_single_mode(model, "IC-Q")
    assert str(exc.value).startswith("IC-Q does not support adaptable agents yet: agent 1 "
                                     "(`checker`) has 2 modes (careful, fast);")


def test_consumers_refuse_modes():
    model = instance_from_dict(modes_doc())
    # the AIS construction and gaps take modes (slice 2: property_tests/estimators/test_gaps_modes.py)
    # the checker and the greedy-policy evaluation take modes (slice 4:
    # property_tests/estimators/test_checker_modes.py)
    calls = {"the simulator": lambda: simulation_tables(model),
             "epoch-model export": lambda: export_epoch(model)}
    for what, call in calls.items():
        with pytest.raises(InvalidArgumentError) as exc:
            call()
        msg = str(exc.value)
        assert what in msg and "agent 1 (`checker`) has 2 modes" in msg and "\n" not in msg
    # IC-Q takes modes (slice 3, property_tests/solvers/test_icq_modes.py): Q over J = 6 choices
    rec = solve(ICQ(updates=10, seeds=1), model)
    assert rec.success and rec.q.shape[-1] == 6


def test_cli_solve_with_modes_and_refusals(tmp_path, capsys):
    path = tmp_path / "modes.json"
    path.write_text(json.dumps(modes_doc()))
    assert main(["solve", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["num_choices"] == 6 and doc["modes"] == [None, ["careful", "fast"]]
    assert doc["q_star"][1][3] == pytest.approx(0.6, abs=1e-7)
    assert doc["v0"] == pytest.approx(0.783871, abs=1e-6)
    run = tmp_path / "r"
    assert main(["run", "tiny-handoff", "--updates", "50", "--out", str(run)]) == 0
    capsys.readouterr()
    # IC-Q takes modes (slice 3): Q over the J = 6 choices j = a*(N+1) + c'
    assert main(["run", str(path), "--updates", "50", "--json"]) == 0
    assert np.shape(json.loads(capsys.readouterr().out)["q"])[-1] == 6
    # gaps with the stationary reference and mixing take modes (slice 2b)
    assert main(["gaps", str(path), "--reference", "stationary", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["t_mix"] == 2.0
    for argv in (["export-epoch", str(path), "--out", str(tmp_path / "e.json")],
                 ["simulate-trace", str(path), "--episodes", "2", "--out", str(tmp_path / "t.jsonl")],
                 ["simulate", str(path), "--policy", "greedy", "--episodes", "2"]):
        code = main(argv)
        out, err = capsys.readouterr()
        assert code == 2, argv
        assert out == "" and err.count("\n") == 1, (argv, err)
        assert "does not support adaptable agents yet: agent 1 (`checker`) has 2 modes" in err
    assert not (tmp_path / "e.json").exists() and not (tmp_path / "t.jsonl").exists()
    # `check` takes modes (slice 4), but not a record with the one-mode model's 3 columns
    assert main(["check", str(path), str(run) + ".npz"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert "3 columns of `q` (choices), the instance has 6" in err


# ------------------------------------------- Q* with modes against an explicit enumeration
def _dense_kernel(agent_doc, nY):
    k = agent_doc["kernel"]
    if isinstance(k, dict):
        out = np.zeros(k["shape"])
        for a, y, y2, p in k["entries"]:
            out[int(a), int(y), int(y2)] = p
        return out
    return np.asarray(k, dtype=float).reshape(-1, nY, nY)



def mode_averages(agent: dict, K: np.ndarray, nX: int, nM: int, nL_i: int, N: int) -> list:
    """Per mode of an agent (its ``icsmdp/1`` dict): ``(Kbar, rbar, beta)`` with
    ``Kbar[y] = sum_u pi^a(u|m,l) K[u, y]``, ``rbar[y] = sum_u pi^a(u|m,l) r[x, m, u]`` over the
    local states ``y = (x nM + m) nL_i + l`` and ``beta`` the end probabilities (by hand)."""
    pols = agent["internal_policy"] if "modes" in agent else [agent["internal_policy"]]
    r = np.asarray(agent["reward"], float)            # [x, m, u, c']
    beta = np.asarray(agent["end_probability"], float).reshape(-1)
    nY = nX * nM * nL_i
    out = []
    for pol in pols:
        pol = np.asarray(pol, float)                  # [m, l, u]
        kbar = np.zeros((nY, nY))
        rbar = np.zeros((nY, N + 1))
        for x, m, l in itertools.product(range(nX), range(nM), range(nL_i)):
            y = (x * nM + m) * nL_i + l
            for u in range(pol.shape[2]):
                kbar[y] += pol[m, l, u] * K[u, y]
                rbar[y] += pol[m, l, u] * r[x, m, u]
        out.append((kbar, rbar, beta))
    return out


def local_and_next(fulls: list, nX: int, nM: int, nL: list) -> tuple[np.ndarray, list]:
    """``local[k, i]``: agent ``i``'s local state in full state ``fulls[k]``; ``nxt[i][k, y']``:
    the index of ``fulls[k]`` with agent ``i``'s ``(x, m, l_i)`` replaced by ``y'`` (by hand)."""
    index = {f: k for k, f in enumerate(fulls)}
    N = len(nL)
    local = np.zeros((len(fulls), N), dtype=np.int64)
    nxt = []
    for i in range(N):
        nY = nX * nM * nL[i]
        table = np.zeros((len(fulls), nY), dtype=np.int64)
        for k, f in enumerate(fulls):
            x, m, ls = f[0], f[1], list(f[2:])
            local[k, i] = (x * nM + m) * nL[i] + ls[i]
            for y2 in range(nY):
                xm2, l2 = divmod(y2, nL[i])
                x2, m2 = divmod(xm2, nM)
                ls2 = list(ls)
                ls2[i] = l2
                table[k, y2] = index[(x2, m2, *ls2)]
        nxt.append(table)
    return local, nxt

def explicit_q(model):
    r"""``Q*`` of the modes model by explicit enumeration, each mode a separate agent copy.

    Construction (from the file arrays only; no library reduction or solver):

    1. *Copies.* Agent ``i`` with modes ``0..K_i-1`` becomes ``K_i`` one-mode
       agent copies ``(i, a)``: copy ``(i, a)`` has agent ``i``'s kernel, reward,
       end probability and successors and internal policy ``pi_i^a``. Its option
       reduction is computed densely: ``Kbar_a[y, y'] = sum_u pi^a(u|m, l) K[u, y, y']``,
       ``rbar_a[y, c'] = sum_u pi^a(u|m, l) r(x, m, u, c')``,
       ``G_a = gamma Kbar_a diag(1 - beta)``, ``E_a = gamma Kbar_a diag(beta)``,
       ``R_a = (I - G_a)^{-1} rbar_a``, ``D_a = (I - G_a)^{-1} E_a`` (``numpy.linalg.solve``).
    2. *Who decides.* In the modes model, at an epoch state ``s = (f, i)`` agent
       ``i`` picks ``(a, c')`` and then runs the invocation with ``pi_i^a``, which
       is by construction exactly an invocation of copy ``(i, a)`` committed to
       ``c'``: the same law of rewards, end state and duration. So
       ``Q(s, (a, c')) = R_a(y, c') + [c' != STOP] sum_{y'} D_a(y'|y) V(f[y -> y'], c')``.
    3. *Handing over.* Control then passes to agent ``c'``, whose private
       state (and everyone else's) is as it was left; at the next epoch ``c'``
       chooses afresh, after seeing the new state, among *all its copies* and
       their admissible successors: ``V(f', c') = max_{a' < K_{c'}, c'' adm} Q(f', c', (a', c''))``.
       (Committing to the successor's copy at hand-off time instead would put
       the max over ``a'`` outside the expectation ``D_a`` and give a smaller
       value; the modes semantics chooses the mode at the start of the
       invocation, from the observation then.)
    4. *Enumeration.* Every full state ``f = (x, m, l_0..l_{N-1})`` in C order
       (``itertools.product``), agent ``i``'s local state ``y = (x nM + m) nL_i + l_i``
       and the successor state ``f[y -> y']`` tabulated explicitly; value
       iteration on the equations of 2-3 from ``V = 0`` until the sup step is
       below ``1e-13`` (a ``gamma``-contraction, so ``Q`` is within
       ``1e-13 gamma/(1 - gamma)`` of the fixed point).

    Returns ``q[s, a*(N+1) + c']`` with ``s = f*N + i`` (nan where inadmissible).
    """
    doc = instance_to_dict(model)
    gamma, nX, nM = doc["gamma"], doc["n_latent"], doc["n_interface"]
    agents = doc["agents"]
    N = len(agents)
    nL = [a["n_private"] for a in agents]
    fulls = list(itertools.product(range(nX), range(nM), *[range(n) for n in nL]))
    F = len(fulls)
    copies = []   # copies[i] = list over modes of (R (nY, N+1), D (nY, nY))
    for i, a in enumerate(agents):
        nY = nX * nM * nL[i]
        K = _dense_kernel(a, nY)
        per_mode = []
        for kbar, rbar, beta in mode_averages(a, K, nX, nM, nL[i], N):   # copy (i, a)
            G = gamma * kbar * (1 - beta)[None, :]
            E = gamma * kbar * beta[None, :]
            A = np.eye(nY) - G
            per_mode.append((np.linalg.solve(A, rbar), np.linalg.solve(A, E)))
        copies.append(per_mode)
    local, nxt = local_and_next(fulls, nX, nM, nL)
    succ = np.array([a["successors"] for a in agents], bool)
    Kmax = max(len(c) for c in copies)
    J = Kmax * (N + 1)
    V = np.zeros((F, N))
    while True:
        Q = np.full((F, N, J), -np.inf)
        for i in range(N):
            Vn = V[nxt[i]]                            # (F, nY, N): V(f[y -> y'], c')
            for a, (R, D) in enumerate(copies[i]):
                Dy = D[local[:, i]]                   # (F, nY)
                cont = np.einsum("fy,fyc->fc", Dy, Vn)
                q = R[local[:, i]].copy()             # (F, N+1)
                q[:, :N] += cont
                q[:, ~succ[i]] = -np.inf
                Q[:, i, a * (N + 1):(a + 1) * (N + 1)] = q
        V_new = Q.max(axis=2)
        step = np.abs(V_new - V).max()
        V = V_new
        if step < 1e-13:
            break
    Q[~np.isfinite(Q)] = np.nan
    return Q.reshape(F * N, J)


@settings(max_examples=30, deadline=None, database=None)
@given(icsmdps_with_modes(agents=(1, 3), latent=(1, 2), interface=(1, 3), private=(1, 2),
                          actions=(1, 3), modes=(1, 3)),
       st.sampled_from(["vi", "pi", "mpi"]))
def test_oracle_with_modes_matches_copy_enumeration(model, method):
    solver = {"vi": ValueIteration(tol=1e-9), "pi": PolicyIteration(tol=1e-9),
              "mpi": ModifiedPolicyIteration(tol=1e-9)}[method]
    sol = solve(solver, model)
    expected = explicit_q(model)
    assert sol.q.shape == expected.shape == (model.num_epoch_states, model.num_choices)
    np.testing.assert_array_equal(np.isnan(sol.q), np.isnan(expected))
    ok = ~np.isnan(expected)
    np.testing.assert_allclose(sol.q[ok], expected[ok], atol=1e-7, rtol=0)
    # greedy policy: lowest admissible choice within the tie tolerance of the max
    best = np.nanmax(expected, axis=1)
    chosen = expected[np.arange(expected.shape[0]), sol.policy]
    assert np.all(chosen >= best - 1e-6)
    # the independent Bellman operator (sparse solves per mode) fixes Q*
    np.testing.assert_allclose(bellman_operator(model, sol.q)[ok], sol.q[ok], atol=1e-7)


def _restricted(model, mode_of):
    """The one-mode model in which every agent ``i`` always uses mode ``mode_of[i]``."""
    doc = instance_to_dict(model)
    for i, a in enumerate(doc["agents"]):
        if "modes" in a:
            a["internal_policy"] = a["internal_policy"][mode_of[i]]
            del a["modes"]
    return instance_from_dict(doc)


@settings(max_examples=20, deadline=None, database=None)
@given(icsmdps_with_modes(agents=(1, 3), interface=(1, 3), actions=(1, 3), modes=(2, 3)))
def test_choosing_modes_never_loses_to_a_fixed_mode(model):
    """``V*_modes >= V*`` of every one-mode restriction (the restriction's policies are
    policies of the modes model), with equality when the restriction's modes are optimal."""
    v = centralized_oracle(model).solution.v
    for combo in itertools.product(*[range(k) for k in model.num_modes]):
        fixed = centralized_oracle(_restricted(model, combo)).solution.v
        assert np.all(v >= fixed - 1e-7)


@settings(max_examples=15, deadline=None, database=None)
@given(icsmdps_with_modes(agents=(1, 3), interface=(1, 3), modes=(2, 3)))
def test_identical_modes_repeat_the_one_mode_optimum(model):
    """Every mode given mode 0's policy: ``Q*(s, (a, c')) = Q*_one-mode(s, c')`` for every ``a``."""
    doc = instance_to_dict(model)
    for a in doc["agents"]:
        if "modes" in a:
            a["internal_policy"] = [a["internal_policy"][0]] * len(a["modes"])
    same = instance_from_dict(doc)
    one = centralized_oracle(_restricted(model, [0] * model.num_agents)).solution.q
    q = centralized_oracle(same).solution.q
    S = model.num_successors
    for a in range(max(model.num_modes)):
        block = q[:, a * S:(a + 1) * S]
        ok = ~np.isnan(block)
        np.testing.assert_allclose(block[ok], one[ok], atol=1e-7)


@settings(max_examples=25, deadline=None, database=None)
@given(icsmdps_with_modes(agents=(1, 3), modes=(1, 3), sparse=True))
def test_strategy_instances_validate_and_round_trip(model):
    doc = instance_to_dict(model)
    back = instance_from_dict(copy.deepcopy(doc))
    assert instance_to_dict(back) == doc
    assert max(model.num_modes) >= 2 and model.has_modes
    for i, a in enumerate(model.agents):
        assert a.mode_policies.shape[0] == model.num_modes[i]
        np.testing.assert_allclose(a.mode_policies.sum(axis=-1), 1.0, atol=1e-12)
