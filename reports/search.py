"""A campaign of short, targeted searches for an ``alpha_paper`` counterexample (SPEC section 5).

Whether ``alpha_paper = (epsilon_phi + gamma_bar L_Q delta_phi) / (1 - gamma_bar)``
bounds ``max |Q* - Q_hat* o phi|`` (and the value gap) is the open question of
SPEC section 5. It fails on the shrunk example of the README: one agent that
hands to itself, a latent bit it cannot see that sets ``beta`` to 1/4 or 1/2.
There ``V_hat*`` is constant, so ``L_Q = 0`` and ``alpha_paper = epsilon_phi /
(1 - gamma_bar)``, while the two aliased states end their invocations with a
different total discount ``sum_tau gamma^tau P(tau | y)``, so
``eta = max |D_phi V_hat - D_hat V_hat| > 0`` and ``max_q_gap`` reaches
``alpha_tight = (epsilon_phi + eta) / (1 - gamma_bar) > alpha_paper``.

One long ``hypothesis.find`` over a broad strategy finds such an instance for
some seeds only. The search here is a campaign (:mod:`reports.campaign`) of
many short ``hypothesis.find`` runs (:func:`search_attempt`, one per task of
:func:`search_tasks`), most of them over strategies aimed at that mechanism
(:data:`SEARCH_KINDS`): latent states aliased by the observation map whose end
probabilities differ, a handoff cycle so that the continuation matters, one or
two agents and tiny sizes; a few attempts keep the broad strategy. Each attempt
that finds a violation lets Hypothesis shrink it; :func:`pick_counterexample`
keeps the smallest over all attempts, deterministically.

The criterion is :func:`alpha_paper_violated` (``max_q_gap`` or
``max_value_gap`` above ``alpha_paper + SLACK``) on
``gap_report(model, tol=TOL, minimax=False)``; :func:`alpha_paper_ratio`
steers each search through ``hypothesis.target``.

Requires Hypothesis (the ``test`` extra) to run an attempt; importing this
module does not.
"""
from __future__ import annotations

import json
import random
from typing import Any

import numpy as np

from estimators.gaps import GapReport, gap_report
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.io import instance_from_dict, instance_to_dict
from icsmdp_theory.model import ICSMDP
from reports.campaign import Campaign, Task, task_seed

try:  # optional: the `test` extra (Hypothesis) runs the searches
    from hypothesis import HealthCheck, Phase, find, settings, target
    from hypothesis import strategies as st
    from hypothesis.errors import NoSuchExample

    from icsmdp_theory.testing.strategies import icsmdps
except ImportError:  # pragma: no cover - depends on the environment
    find = None

__all__ = ["SLACK", "TOL", "SEARCH_KINDS", "SEARCH_CYCLE", "DEFAULT_SEARCH_BUDGET",
           "DEFAULT_SEARCH_EXAMPLES", "alpha_paper_ratio", "alpha_paper_violated",
           "search_strategy", "search_attempt", "search_params", "search_tasks",
           "search_campaign", "pick_counterexample"]

#: Numerical slack on the ``alpha_paper`` comparison (as in ``icsmdp verify``).
SLACK = 1e-9
#: Solver tolerance of the gap reports.
TOL = 1e-10

#: Search kinds: name -> (``icsmdps`` size knobs, targeting). Targeting
#: ``"cycle"`` forces agent ``i`` to admit successor ``i+1 mod N`` (itself when
#: ``N = 1``) and ``"no_stop"`` then forbids STOP, so every invocation has a
#: continuation; ``"beta"`` makes the end probabilities of latent states 0 and 1
#: differ in every cell ``(m, l)`` (they are aliased: no observation sees ``x``);
#: ``"fixed_latent"`` zeroes the kernel entries that change ``x`` (rows
#: renormalized; a row left empty stays put), so the hidden bit persists.
#: Measured on 1500 draws of ``draw_icsmdp`` with ``N = 1``, ``nX = 2``, ``nM =
#: nL = nA = 1``: ``alpha_paper`` fails on 3% untargeted, 9% with
#: cycle/no_stop/beta, 33% with fixed_latent as well.
SEARCH_KINDS: dict[str, tuple[dict, tuple[str, ...]]] = {
    "aliased-1-fixed": (dict(agents=1, latent=2, interface=1, private=1, actions=1),
                        ("cycle", "no_stop", "beta", "fixed_latent")),
    "aliased-1": (dict(agents=1, latent=2, interface=1, private=1, actions=1),
                  ("cycle", "no_stop", "beta")),
    "aliased-2": (dict(agents=2, latent=2, interface=1, private=1, actions=1),
                  ("cycle", "no_stop", "beta")),
    "broad": (dict(agents=(1, 2), latent=(1, 2), interface=(1, 3), private=(1, 2),
                   actions=(1, 2)), ()),
}
#: Kinds of attempts ``0, 1, 2, ...`` of a campaign (cycled), and whether each
#: adds Hypothesis's target phase (hill climbing on the ratio): off, since on
#: these small strategies it cost time and found less often (measured).
SEARCH_CYCLE: tuple[tuple[str, bool], ...] = (
    ("aliased-1-fixed", False), ("broad", False), ("aliased-1", False), ("aliased-2", False),
    ("aliased-1-fixed", False), ("broad", False), ("aliased-1", False),
    ("aliased-1-fixed", False))

#: Examples per attempt (``max_examples`` of each ``hypothesis.find``).
DEFAULT_SEARCH_EXAMPLES = 30
#: Attempts x examples of one search campaign (8 attempts of 30 examples).
DEFAULT_SEARCH_BUDGET = 8 * DEFAULT_SEARCH_EXAMPLES


def _ratio(lhs: float, rhs: float) -> float:
    """``lhs / rhs``; with ``rhs`` below ``1e-12`` the claim is judged absolutely."""
    if rhs > 1e-12:
        return lhs / rhs
    return 0.0 if lhs <= SLACK else float("inf")


def alpha_paper_violated(report: GapReport) -> bool:
    """``max_q_gap`` or ``max_value_gap`` exceeds ``alpha_paper`` by more than :data:`SLACK`."""
    return bool(report.max_q_gap > report.alpha_paper + SLACK
                or report.max_value_gap > report.alpha_paper + SLACK)


def alpha_paper_ratio(report: GapReport) -> float:
    """``max(max_q_gap, max_value_gap) / alpha_paper`` (> 1: the paper's form fails)."""
    return float(max(_ratio(report.max_q_gap, report.alpha_paper),
                     _ratio(report.max_value_gap, report.alpha_paper)))


def _canonical(instance: dict) -> str:
    """Canonical JSON of an instance document (sorted keys, no spaces)."""
    return json.dumps(instance, sort_keys=True, separators=(",", ":"))


def _targeted(model: ICSMDP, targeting: tuple[str, ...]) -> ICSMDP:
    """``model`` with the targeting of :data:`SEARCH_KINDS` applied (deterministic)."""
    if not targeting:
        return model
    doc = instance_to_dict(model)
    N = len(doc["agents"])
    for i, agent in enumerate(doc["agents"]):
        succ = agent["successors"]
        if "cycle" in targeting:
            succ[(i + 1) % N] = True
        if "no_stop" in targeting and any(succ[:N]):
            succ[N] = False
        if "beta" in targeting and doc["n_latent"] >= 2:
            beta = np.asarray(agent["end_probability"], dtype=float)
            same = beta[1] == beta[0]
            # end probabilities are k/4, k in 1..4: move latent state 1 to the next level
            beta[1][same] = (np.rint(beta[0][same] * 4) % 4 + 1) / 4
            agent["end_probability"] = beta.tolist()
        if "fixed_latent" in targeting:
            kern = np.asarray(agent["kernel"], dtype=float)          # [a, y, y_next]
            x = np.arange(kern.shape[1]) // (doc["n_interface"] * agent["n_private"])
            kern = kern * (x[:, None] == x[None, :])
            a_, y_ = np.nonzero(kern.sum(axis=-1) == 0)
            kern[a_, y_, y_] = 1.0
            agent["kernel"] = (kern / kern.sum(axis=-1, keepdims=True)).tolist()
    return instance_from_dict(doc)


def search_strategy(kind: str):
    """The Hypothesis strategy of search kind ``kind`` (see :data:`SEARCH_KINDS`)."""
    if find is None:
        raise InvalidArgumentError(
            "the alpha_paper search needs Hypothesis (the `test` extra): pip install -e '.[test]'.")
    if kind not in SEARCH_KINDS:
        raise InvalidArgumentError(
            f"`kind` must be one of {sorted(SEARCH_KINDS)}, got {kind!r}.")
    sizes, targeting = SEARCH_KINDS[kind]
    return icsmdps(**sizes).map(lambda m: _targeted(m, targeting))


def _search_attempt_iv(params: Any, seed: Any) -> tuple[str, int, bool]:
    if find is None:
        raise InvalidArgumentError(
            "the alpha_paper search needs Hypothesis (the `test` extra): pip install -e '.[test]'.")
    if not isinstance(params, dict):
        raise InvalidArgumentError(f"`params` must be a dict, got {type(params).__name__}.")
    kind = params.get("kind")
    if kind not in SEARCH_KINDS:
        raise InvalidArgumentError(
            f"`params['kind']` must be one of {sorted(SEARCH_KINDS)}, got {kind!r}.")
    examples = params.get("examples")
    if isinstance(examples, bool) or not isinstance(examples, (int, np.integer)) or examples < 1:
        raise InvalidArgumentError(
            f"`params['examples']` must be an integer >= 1, got {examples!r}.")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidArgumentError(f"`seed` must be an integer >= 0, got {seed!r}.")
    return kind, int(examples), bool(params.get("target", False))


def search_attempt(params: dict, seed: int) -> dict:
    """One short ``hypothesis.find`` for an instance where ``alpha_paper`` fails.

    Deterministic given its arguments (``database=None``, no deadline, every
    health check suppressed, ``random=random.Random(seed)``, settings built on
    Hypothesis's ``default`` profile so a loaded test profile does not change
    them). The found instance is shrunk by Hypothesis.

    Parameters
    ----------
    params : dict
        ``{"kind": name in SEARCH_KINDS, "examples": max_examples, "attempt": j}``,
        optionally ``"target": True`` to add Hypothesis's target phase (hill
        climbing on :func:`alpha_paper_ratio`, reported through ``hypothesis.target``).
    seed : int
        Seed of the attempt's random source.

    Returns
    -------
    dict
        ``{"found": bool, "instance": instance_to_dict(model) or None,
        "ratio": alpha_paper_ratio or None, "epoch_states": int or None,
        "num_agents": int or None}`` (JSON-able).
    """
    kind, examples, use_target = _search_attempt_iv(params, seed)

    seen: dict[str, tuple[float, bool]] = {}  # the targeting maps many draws to one instance

    def violates(model: ICSMDP) -> bool:
        key = _canonical(instance_to_dict(model))
        if key not in seen:
            rep = gap_report(model, tol=TOL, minimax=False)
            seen[key] = (alpha_paper_ratio(rep), alpha_paper_violated(rep))
        ratio, violated = seen[key]
        target(float(min(ratio, 1e6)), label="alpha_paper ratio")
        return violated

    phases = [Phase.generate, Phase.target, Phase.shrink] if use_target else \
        [Phase.generate, Phase.shrink]
    config = settings(settings.get_profile("default"), max_examples=examples, database=None,
                      deadline=None, derandomize=False, phases=phases,
                      suppress_health_check=list(HealthCheck))
    try:
        model = find(search_strategy(kind), violates, settings=config,
                     random=random.Random(int(seed)))
    except NoSuchExample:
        return {"found": False, "instance": None, "ratio": None, "epoch_states": None,
                "num_agents": None}
    rep = gap_report(model, tol=TOL, minimax=False)
    return {"found": True, "instance": instance_to_dict(model),
            "ratio": alpha_paper_ratio(rep), "epoch_states": int(model.num_epoch_states),
            "num_agents": int(model.num_agents)}


def _search_tasks_iv(seed: Any, budget: Any, examples: Any) -> tuple[int, int, int]:
    for name, v, low in (("seed", seed, 0), ("budget", budget, 1), ("examples", examples, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
            raise InvalidArgumentError(f"`{name}` must be an integer >= {low}, got {v!r}.")
    return int(seed), int(budget), int(examples)


def search_params(budget: int = DEFAULT_SEARCH_BUDGET, *,
                  examples: int = DEFAULT_SEARCH_EXAMPLES) -> list[dict]:
    """The parameters of the attempts of a search of ``budget`` examples in all.

    ``max(1, budget // examples)`` attempts of ``min(examples, budget)`` examples;
    attempt ``j`` has the kind and target setting ``SEARCH_CYCLE[j % len(SEARCH_CYCLE)]``.

    >>> [p["kind"] for p in search_params(90)]
    ['aliased-1-fixed', 'broad', 'aliased-1']
    """
    _, budget, examples = _search_tasks_iv(0, budget, examples)
    per = min(examples, budget)
    out = []
    for j in range(max(1, budget // per)):
        kind, use_target = SEARCH_CYCLE[j % len(SEARCH_CYCLE)]
        out.append({"attempt": j, "kind": kind, "examples": per, "target": use_target})
    return out


def search_tasks(seed: int, budget: int = DEFAULT_SEARCH_BUDGET) -> tuple[Task, ...]:
    """The attempts of the search campaign of ``seed``: ``Task("attempt-{j:04d}", params)``.

    Each task fixes its own seed, ``task_seed(seed, id)`` (what a campaign of
    seed ``seed`` would derive), so the attempts, and the counterexample found,
    depend on ``(seed, budget)`` only, whatever campaign runs them.
    """
    seed, budget, _ = _search_tasks_iv(seed, budget, DEFAULT_SEARCH_EXAMPLES)
    tasks = []
    for params in search_params(budget):
        task_id = f"attempt-{params['attempt']:04d}"
        tasks.append(Task(task_id, params, seed=task_seed(seed, task_id)))
    return tuple(tasks)


def search_campaign(seed: int, budget: int = DEFAULT_SEARCH_BUDGET) -> Campaign:
    """The search as a campaign named ``alpha-paper-search`` (run it with
    :func:`reports.campaign.run_campaign`, then :func:`pick_counterexample` on
    ``run.results``)."""
    tasks = search_tasks(seed, budget)
    return Campaign("alpha-paper-search", search_attempt, tasks, seed=int(seed),
                    settings={"seed": int(seed), "budget": int(budget)})


def pick_counterexample(results: dict) -> dict | None:
    """The smallest counterexample among the attempts' results, or ``None``.

    Among the results with ``found`` true, the first (in task order) minimizing
    ``(epoch states, number of agents, length of the canonical JSON)`` (sorted
    keys, no spaces); ties keep task order, so the choice depends on the results
    only, never on how they were run.

    Parameters
    ----------
    results : dict
        Task id -> the dict returned by :func:`search_attempt`, in task order
        (``CampaignRun.results``, read back from the results file).

    Returns
    -------
    dict or None
        The chosen result plus ``"task"``: its task id.
    """
    best, best_key = None, None
    for order, (task_id, res) in enumerate(results.items()):
        if not res.get("found"):
            continue
        inst = res["instance"]
        key = (int(res["epoch_states"]), len(inst["agents"]), len(_canonical(inst)), order)
        if best_key is None or key < best_key:
            best, best_key = {**res, "task": task_id}, key
    return best
