"""The ``alpha_paper`` counterexample search (``reports.search``; SPEC section 5).

Every instance the search returns is checked independently of
``estimators.gaps``: :func:`brute_force_gaps` enumerates the full epoch states
``s = (x, m, l_0..l_{N-1}, i)``, reduces each invocation with dense linear
algebra (SPEC section 2: ``R = (I - G)^-1 rbar``, ``D = (I - G)^-1 E``), builds
the AIS-induced SMDP on cells ``(i, phi_i(m, l_i))`` under the uniform
reference, solves ``Q*`` and ``Q_hat*`` by plain value iteration, and forms
``epsilon_phi``, ``delta_phi`` (TV over ``(o', tau)``, summed until the mass
left is below ``1e-14``), ``L_Q``, ``gamma_bar`` and ``alpha_paper`` from the
SPEC's formulas. The saved instance is also reloaded from its JSON and
re-reported with the oracle from ``PolicyIteration``.
"""
from __future__ import annotations

import itertools
import json
import time

import numpy as np
import pytest

from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.generators import NumpyChoices, draw_icsmdp
from icsmdp_theory.io import instance_from_dict, load_instance, save_instance

hypothesis = pytest.importorskip("hypothesis")

from estimators.gaps import gap_report  # noqa: E402
from reports import search  # noqa: E402
from reports.campaign import Campaign, Task, run_campaign, task_seed  # noqa: E402
from solvers.api import PolicyIteration, solve  # noqa: E402


# ----------------------------------------------------------------- independent formulas
def _value_iteration(reward, cont, tol=1e-14, max_iter=100_000):
    """Fixed point of ``Q(u, c) = reward[u, c] + sum_w cont[c][u, w] V(w)``, ``V(w) = max_c Q(w, c)``
    over the admissible ``c`` (``reward`` is ``nan`` elsewhere; ``cont[STOP] = 0``)."""
    adm = ~np.isnan(reward)
    q = np.zeros(reward.shape)
    for _ in range(max_iter):
        v = np.where(adm, q, -np.inf).max(axis=1)
        new = np.where(adm, reward, 0.0) + np.stack([cont[c] @ v for c in range(q.shape[1])], axis=1)
        new = np.where(adm, new, 0.0)
        step = np.abs(new - q).max()
        q = new
        if step < tol:
            return np.where(adm, q, np.nan)
    raise AssertionError("value iteration did not converge")


def brute_force_gaps(model) -> dict:
    """``max_q_gap``, ``max_value_gap``, ``epsilon_phi``, ``delta_phi``, ``L_Q``,
    ``gamma_bar`` and ``alpha_paper`` of ``model`` under the uniform reference, by
    enumeration (SPEC sections 2, 4, 5; independent of ``estimators``)."""
    N, nX, nM, gamma = model.num_agents, model.num_latent, model.num_interface, model.gamma
    nL = [a.observation.shape[1] for a in model.agents]
    STOP = N
    # option reduction per agent (dense, exact)
    red = []
    for a in model.agents:
        nY = nX * nM * a.observation.shape[1]
        pol = np.asarray(a.internal_policy)            # [nM, nL, nA]
        K = np.stack([np.asarray(k.toarray() if hasattr(k, "toarray") else k) for k in a.kernel])
        beta = np.asarray(a.end_probability, float).reshape(nY)
        r = np.asarray(a.reward, float)                # [nX, nM, nA, N+1]
        pw = np.zeros((nY, K.shape[0]))                # pi(a | y)
        rbar = np.zeros((nY, N + 1))
        for x, m, l in itertools.product(range(nX), range(nM), range(len(pol[0]))):
            y = (x * nM + m) * len(pol[0]) + l
            pw[y] = pol[m, l]
            rbar[y] = pol[m, l] @ r[x, m]
        Kbar = np.einsum("ya,ayz->yz", pw, K)
        cont = Kbar * (1 - beta)[None, :]               # undiscounted continue
        end = Kbar * beta[None, :]
        inv = np.linalg.inv(np.eye(nY) - gamma * cont)
        R = inv @ rbar
        D = inv @ (gamma * end)
        red.append(dict(R=R, D=D, cont=cont, end=end, succ=np.asarray(a.successors, bool)))
    gamma_bar = max(float(r_["D"].sum(axis=1).max()) for r_ in red)

    states = [(x, m, ls, i) for x in range(nX) for m in range(nM)
              for ls in itertools.product(*[range(n) for n in nL]) for i in range(N)]
    index = {s: k for k, s in enumerate(states)}
    obs = [np.asarray(a.observation) for a in model.agents]
    cells = sorted({(i, int(obs[i][m, ls[i]])) for (x, m, ls, i) in states})
    cell_index = {c: k for k, c in enumerate(cells)}

    def y_of(s):
        x, m, ls, i = s
        return (x * nM + m) * nL[i] + ls[i]

    def split(i, y):
        l = y % nL[i]
        xm = y // nL[i]
        return xm // nM, xm % nM, l

    def cell_of(s):
        return cell_index[(s[3], int(obs[s[3]][s[1], s[2][s[3]]]))]

    # full-state SMDP
    S, C = len(states), N + 1
    Rfull = np.full((S, C), np.nan)
    Dfull = [np.zeros((S, S)) for _ in range(C)]
    for k, s in enumerate(states):
        i, y = s[3], y_of(s)
        for c in range(C):
            if not red[i]["succ"][c]:
                continue
            Rfull[k, c] = red[i]["R"][y, c]
            if c == STOP:
                continue
            for y2 in range(red[i]["D"].shape[1]):
                x2, m2, l2 = split(i, y2)
                ls2 = list(s[2])
                ls2[i] = l2
                Dfull[c][k, index[(x2, m2, tuple(ls2), c)]] += red[i]["D"][y, y2]
    adm = [np.asarray(model.agents[j].successors, bool) for j in range(N)]
    q_star = _value_iteration(Rfull, Dfull)

    # AIS SMDP under the uniform reference (uniform over the full states of each cell)
    members = [[k for k, s in enumerate(states) if cell_of(s) == ci] for ci in range(len(cells))]
    nC = len(cells)
    Rhat = np.full((nC, C), np.nan)
    Dhat = [np.zeros((nC, nC)) for _ in range(C)]
    cell_of_state = np.array([cell_of(s) for s in states])
    for ci, mem in enumerate(members):
        for c in range(C):
            if not np.isnan(Rfull[mem[0], c]):
                Rhat[ci, c] = Rfull[mem, c].mean()
                for k in mem:
                    np.add.at(Dhat[c][ci], cell_of_state, Dfull[c][k] / len(mem))
    adm_cell = [adm[cells[ci][0]] for ci in range(nC)]
    q_hat = _value_iteration(Rhat, Dhat)
    v_hat = np.array([np.max(q_hat[ci, adm_cell[ci]]) for ci in range(nC)])
    v_star = np.array([np.max(q_star[k, adm[s[3]]]) for k, s in enumerate(states)])

    ok = ~np.isnan(Rfull)
    q_gap = np.abs(q_star - q_hat[cell_of_state])[ok].max()
    value_gap = np.abs(v_star - v_hat[cell_of_state]).max()
    eps = np.abs(Rfull - Rhat[cell_of_state])[ok].max()

    # delta_phi: TV between laws of (o', tau), for admissible c' != STOP
    def law(s, c, taus):
        i, y = s[3], y_of(s)
        out = np.zeros((taus, nC))
        row = np.zeros(red[i]["cont"].shape[0])
        row[y] = 1.0
        for t in range(taus):
            ended = row @ red[i]["end"]
            for y2, p in enumerate(ended):
                x2, m2, l2 = split(i, y2)
                ls2 = list(s[2])
                ls2[i] = l2
                out[t, cell_index[(c, int(obs[c][m2, ls2[c]]))]] += p
            row = row @ red[i]["cont"]
        return out

    delta = 0.0
    for ci, mem in enumerate(members):
        i = cells[ci][0]
        for c in range(N):
            if not adm[i][c]:
                continue
            taus = 1
            while True:  # horizon until the mass left is negligible for every member
                taus *= 2
                laws = [law(states[k], c, taus) for k in mem]
                if all(1 - L.sum() < 1e-14 for L in laws):
                    break
            centre = np.mean(laws, axis=0)
            delta = max(delta, max(0.5 * np.abs(L - centre).sum() for L in laws))
    L_Q = float(v_hat.max() - v_hat.min())
    alpha_paper = (eps + gamma_bar * L_Q * delta) / (1 - gamma_bar)
    return dict(max_q_gap=float(q_gap), max_value_gap=float(value_gap), epsilon_phi=float(eps),
                delta_phi=float(delta), L_Q=L_Q, gamma_bar=gamma_bar,
                alpha_paper=float(alpha_paper))


def assert_violates_alpha_paper(doc: dict, tmp_path) -> None:
    """Independent check that the instance document ``doc`` violates ``alpha_paper``."""
    path = save_instance(instance_from_dict(doc), tmp_path / "found.json")
    model = load_instance(path)
    bf = brute_force_gaps(model)
    assert max(bf["max_q_gap"], bf["max_value_gap"]) > bf["alpha_paper"] + 1e-6, bf
    oracle = solve(PolicyIteration(tol=1e-12), model)
    rep = gap_report(model, tol=1e-12, minimax=False, oracle=oracle)
    assert max(rep.max_q_gap, rep.max_value_gap) > rep.alpha_paper + 1e-6
    for key in ("max_q_gap", "max_value_gap", "epsilon_phi", "L_Q", "gamma_bar", "alpha_paper"):
        assert getattr(rep, key) == pytest.approx(bf[key], abs=1e-8), key


# ----------------------------------------------------------------- the brute force itself
README_CASE = {  # the README's shrunk example, by hand (SPEC section 5)
    "format": "icsmdp/1", "name": "readme", "gamma": 0.5, "horizon": 60, "n_latent": 2,
    "n_interface": 1, "rho_latent_interface": [[1.0], [0.0]], "rho_agent": [1.0],
    "agents": [{"name": "agent0", "n_private": 1, "n_actions": 1, "rho_private": [1.0],
                "internal_policy": [[[1.0]]], "kernel": [[[1.0, 0.0], [0.0, 1.0]]],
                "reward": [[[[0.0, 0.0]]], [[[0.25, 0.0]]]],
                "end_probability": [[[0.25]], [[0.5]]], "observation": [[0]],
                "successors": [True, False]}]}


def test_brute_force_on_the_readme_case_by_hand():
    """Closed form: x stays put; g(x) = gamma beta / (1 - gamma (1 - beta)) = 1/5, 1/3;
    R(x) = r / (1 - gamma (1 - beta)) = 0, 1/3; Q*(x) = R(x) / (1 - g(x)) = 0, 1/2;
    Q_hat = mean R / (1 - mean g) = (1/6) / (1 - 4/15) = 5/22; epsilon_phi = 1/6,
    alpha_paper = (1/6) / (1 - 1/3) = 1/4 < max_q_gap = 1/2 - 5/22 = 3/11."""
    bf = brute_force_gaps(instance_from_dict(README_CASE))
    assert bf["gamma_bar"] == pytest.approx(1 / 3, abs=1e-12)
    assert bf["epsilon_phi"] == pytest.approx(1 / 6, abs=1e-12)
    assert bf["L_Q"] == 0.0
    assert bf["alpha_paper"] == pytest.approx((1 / 6) / (2 / 3), abs=1e-12)
    assert bf["max_q_gap"] == pytest.approx(3 / 11, abs=1e-12)
    assert bf["max_q_gap"] > bf["alpha_paper"]


@pytest.mark.parametrize("seed", range(6))
def test_brute_force_agrees_with_gap_report_on_random_instances(seed):
    """Two computations of the same SPEC quantities (so neither can drift unnoticed)."""
    src = NumpyChoices(seed)
    for kw in (dict(agents=1, latent=2, interface=2, private=2, actions=2),
               dict(agents=2, latent=2, interface=2, private=(1, 2), actions=(1, 2))):
        model = draw_icsmdp(src, **kw)
        bf = brute_force_gaps(model)
        rep = gap_report(model, tol=1e-12, minimax=False)
        for key in ("max_q_gap", "max_value_gap", "epsilon_phi", "delta_phi", "L_Q",
                    "gamma_bar", "alpha_paper"):
            assert getattr(rep, key) == pytest.approx(bf[key], abs=1e-7), (key, kw)


def test_independent_check_rejects_a_non_counterexample(tmp_path):
    """Equal end probabilities: eta = 0, so the bound holds and the check must fail."""
    doc = {**README_CASE, "agents": [{**README_CASE["agents"][0],
                                      "end_probability": [[[0.5]], [[0.5]]]}]}
    with pytest.raises(AssertionError):
        assert_violates_alpha_paper(doc, tmp_path)
    assert_violates_alpha_paper(README_CASE, tmp_path)


# ----------------------------------------------------------------- the targeted strategies
@pytest.mark.parametrize("kind", ["aliased-1-fixed", "aliased-1", "aliased-2"])
def test_targeted_strategies_draw_the_mechanism(kind):
    """Aliased latent states with different end probabilities, a handoff cycle, no STOP."""
    from hypothesis import given, settings

    @settings(max_examples=15, database=None, deadline=None)
    @given(search.search_strategy(kind))
    def check(model):
        N = model.num_agents
        assert model.num_latent == 2
        for i, a in enumerate(model.agents):
            beta = np.asarray(a.end_probability)
            assert np.all(beta[0] != beta[1])
            assert a.successors[(i + 1) % N] and not a.successors[N]
            per = model.num_interface * a.observation.shape[1]
            for k in a.kernel:
                k = k.toarray()
                x = np.arange(k.shape[0]) // per
                if kind.endswith("fixed"):
                    assert np.all(k[x[:, None] != x[None, :]] == 0)
    check()


def test_bad_arguments_are_refused_with_the_allowed_set():
    with pytest.raises(InvalidArgumentError,
                       match=r"`params\['kind'\]` must be one of .*aliased-1.*got 'nope'"):
        search.search_attempt({"kind": "nope", "examples": 5}, 0)
    with pytest.raises(InvalidArgumentError, match=r"`params\['examples'\]` must be an integer >= 1, got 0"):
        search.search_attempt({"kind": "broad", "examples": 0}, 0)
    with pytest.raises(InvalidArgumentError, match=r"`budget` must be an integer >= 1, got 0"):
        search.search_tasks(0, 0)


# ----------------------------------------------------------------- tasks and the pick
def test_search_tasks_split_the_budget_and_fix_their_seeds():
    tasks = search.search_tasks(3, budget=10 * search.DEFAULT_SEARCH_EXAMPLES + 7)
    assert [t.id for t in tasks] == [f"attempt-{j:04d}" for j in range(10)]
    assert all(t.params["examples"] == search.DEFAULT_SEARCH_EXAMPLES for t in tasks)
    assert {t.params["kind"] for t in tasks} == set(search.SEARCH_KINDS)
    # the seeds a campaign of seed 3 would derive, and different for another seed
    derived = Campaign("x", search.search_attempt, [Task(t.id, t.params) for t in tasks], seed=3)
    assert [t.seed for t in tasks] == [derived.seed_of(t) for t in derived.tasks]
    assert tasks[0].seed != search.search_tasks(4)[0].seed
    assert len(search.search_tasks(0, budget=5)) == 1
    assert search.search_tasks(0, budget=5)[0].params["examples"] == 5
    default = search.search_tasks(0)
    assert sum(t.params["examples"] for t in default) == search.DEFAULT_SEARCH_BUDGET


def _result(agents: int, states: int, pad: int = 0) -> dict:
    inst = {"agents": [{"name": "a" * (1 + pad)} for _ in range(agents)]}
    return {"found": True, "instance": inst, "ratio": 1.5, "epoch_states": states}


def test_pick_counterexample_orders_by_states_agents_length_then_task():
    miss = {"found": False, "instance": None, "ratio": None, "epoch_states": None}
    assert search.pick_counterexample({}) is None
    assert search.pick_counterexample({"attempt-0000": miss}) is None
    results = {"attempt-0000": _result(1, 4), "attempt-0001": miss,
               "attempt-0002": _result(2, 2), "attempt-0003": _result(1, 2, pad=3),
               "attempt-0004": _result(1, 2, pad=1), "attempt-0005": _result(1, 2, pad=1)}
    best = search.pick_counterexample(results)
    assert best["task"] == "attempt-0004"
    assert best["instance"] == results["attempt-0004"]["instance"]
    del results["attempt-0004"], results["attempt-0005"], results["attempt-0003"]
    assert search.pick_counterexample(results)["task"] == "attempt-0002"


def test_criterion_on_the_readme_case_by_hand():
    """max_q_gap = 3/11 against alpha_paper = 1/4 (closed form above): ratio 12/11."""
    rep = gap_report(instance_from_dict(README_CASE), tol=1e-12, minimax=False)
    assert search.alpha_paper_violated(rep)
    assert search.alpha_paper_ratio(rep) == pytest.approx(12 / 11, rel=1e-9)
    ok = instance_from_dict({**README_CASE, "agents": [{**README_CASE["agents"][0],
                                                        "end_probability": [[[0.5]], [[0.5]]]}]})
    rep_ok = gap_report(ok, tol=1e-12, minimax=False)  # equal beta: no eta, the bound holds
    assert not search.alpha_paper_violated(rep_ok)
    assert search.alpha_paper_ratio(rep_ok) <= 1 + 1e-9


# ----------------------------------------------------------------- the searches
def test_search_attempt_is_deterministic():
    params = search.search_params()[0]
    seed = task_seed(0, "attempt-0000")
    first = search.search_attempt(params, seed)
    second = search.search_attempt(dict(params), seed)
    assert first["found"]  # measured: this attempt finds one
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)
    assert set(first) >= {"found", "instance", "ratio", "epoch_states"}
    assert first["epoch_states"] == instance_from_dict(first["instance"]).num_epoch_states


def _run_search(seed: int, tmp_path) -> dict | None:
    run = run_campaign(search.search_campaign(seed), tmp_path / f"search-{seed}.jsonl", jobs=1)
    assert not run.failed and not run.interrupted and run.done == run.total
    return search.pick_counterexample(run.results)


def _check_found(best, tmp_path):
    assert best is not None
    assert best["epoch_states"] == 2  # the README's size: nothing smaller can alias
    assert best["ratio"] > 1
    assert_violates_alpha_paper(best["instance"], tmp_path)


@pytest.mark.parametrize("seed", [5])
def test_default_budget_finds_and_shrinks_a_counterexample(seed, tmp_path):
    """Seed 5 is one where the single broad ``hypothesis.find`` found none."""
    _check_found(_run_search(seed, tmp_path), tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(10))
def test_default_budget_finds_for_every_seed(seed, tmp_path):
    t0 = time.perf_counter()
    best = _run_search(seed, tmp_path)
    _check_found(best, tmp_path)
    assert time.perf_counter() - t0 < 300
