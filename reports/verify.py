"""``icsmdp verify``: check every provable fact of SPEC section 5 on random instances.

Instances are drawn by :func:`icsmdp_theory.generators.draw_icsmdp` (the same
generator the Hypothesis strategies drive) from a numpy source seeded with
``(seed, index)``, cycling through the families in :data:`FAMILIES`. Each
property is a pair ``(lhs, rhs)`` with the claim ``lhs <= rhs``; a property is
violated when ``lhs > rhs + SLACK`` and its ratio is ``lhs / rhs``.

Provable (a violation is a bug; the command exits 1 and saves the instance):

==========================  ====================================================
``vi_equals_pi``            ``max |q_vi - q_pi| <= err_vi + err_pi``
``residual_within_bound``   VI's residual ``<= tol (1 - gamma)`` (sup rule)
``error_bound_holds``       ``max |v_vi - v*| <=`` VI's reported error bound
``contraction``             ``||T q1 - T q2|| <= gamma_bar ||q1 - q2||`` (random pairs)
``zero_gaps_exact_ais``     ``nX = 1``, no private states, injective maps: all gaps 0
``q_gap_le_alpha_tight``    ``max |Q* - Q_hat* o phi| <= alpha_tight``
``alpha_tight_le_alpha_tv`` ``alpha_tight <= alpha_tv``
``value_gap_le_alpha_tight`` ``max |V* - V_hat* o phi| <= alpha_tight``
``policy_loss_le_2alpha``   ``policy_loss <= 2 alpha_tight``
``minimax_eps_le_eps``      ``minimax_epsilon <= epsilon_phi``
``minimax_delta_le_delta``  ``minimax_delta <= delta_phi``
``json_roundtrip``          JSON write/read is exact
``npz_roundtrip``           npz write/read is exact
``invalid_rejected``        a broken copy is rejected with a located message
==========================  ====================================================

Open question (counted, never a failure): does ``alpha_paper`` bound
``max_q_gap`` and ``max_value_gap``?

The verification is a campaign (:mod:`reports.campaign`): one task per
instance index ``k`` (id ``instance-{k:07d}``), run by the module-level
:func:`verify_task`, which redraws instance ``k`` from ``(seed, k)`` and returns
the numbers of every property. The summary (:func:`summarize_verification`) is
computed from the results file only, in task order, so it is the same for any
number of workers, a Dask cluster, and an interrupted-then-resumed run.
"""
from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from estimators.gaps import gap_report
from icsmdp_theory.conformance import BREAKAGES, check_rejection
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.generators import NumpyChoices, draw_icsmdp
from icsmdp_theory.io import instance_from_dict, instance_to_dict, load_instance, save_instance
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.options import gamma_bar
from icsmdp_theory.results import Result, to_jsonable
from reports import search as search_module
from reports.campaign import Campaign, Task, run_campaign
from reports.search import (DEFAULT_SEARCH_BUDGET, SLACK, TOL, alpha_paper_ratio,
                            alpha_paper_violated, pick_counterexample, search_campaign)
from solvers.api import PolicyIteration, ValueIteration, solve
from solvers.oracle import bellman_operator

__all__ = ["FAMILIES", "PROPERTIES", "SLACK", "VerifyResult", "draw_verification_instance",
           "check_instance", "verify", "alpha_paper_ratio", "alpha_paper_violated",
           "verify_task", "verify_campaign", "verify_results_path", "summarize_verification",
           "save_case", "search_results_path", "TOL"]

#: Instance families, cycled by index: (name, draw_icsmdp keyword arguments).
FAMILIES = (
    ("general", dict(observation="surjective")),
    ("aliased", dict(observation="mod", latent=1)),
    ("exact_ais", dict(latent=1, private=1, observation="injective")),
    ("private", dict(private=2, observation="injective")),
    ("tau_one", dict(tau_one=True, observation="surjective")),
)
#: Provable properties, in report order.
PROPERTIES = ("vi_equals_pi", "residual_within_bound", "error_bound_holds", "contraction",
              "zero_gaps_exact_ais", "q_gap_le_alpha_tight", "alpha_tight_le_alpha_tv",
              "value_gap_le_alpha_tight", "policy_loss_le_2alpha", "minimax_eps_le_eps",
              "minimax_delta_le_delta", "json_roundtrip", "npz_roundtrip", "invalid_rejected")
#: ``SLACK`` (numerical slack on every comparison) and ``TOL`` (solver tolerance of the
#: checks) are :mod:`reports.search`'s, so the stream and the search share one criterion.


def draw_verification_instance(seed: int, index: int, *, max_states: int = 64) -> ICSMDP:
    """Instance ``index`` of the verification stream of ``seed`` (deterministic).

    Sizes are redrawn (same stream) until the epoch-state count is at most
    ``max_states``.
    """
    name, kw = FAMILIES[index % len(FAMILIES)]
    source = NumpyChoices(np.random.default_rng([seed, index]))
    for _ in range(100):
        model = draw_icsmdp(source, name=f"verify-{seed}-{index}-{name}", **kw)
        if model.num_epoch_states <= max_states:
            return model
    raise InvalidArgumentError(f"`max_states`={max_states} is too small for family {name!r}.")


def _ratio(lhs: float, rhs: float) -> float:
    """``lhs / rhs``; with ``rhs`` below ``1e-12`` the claim is judged absolutely
    (0 when ``lhs <= SLACK``, else ``inf``), so round-off over a zero gap is no ratio."""
    if rhs > 1e-12:
        return lhs / rhs
    return 0.0 if lhs <= SLACK else np.inf


def _exact_ais(model: ICSMDP) -> bool:
    injective = all(len(np.unique(a.observation)) == a.observation.size for a in model.agents)
    no_private = model.num_latent == 1 and all(n == 1 for n in model.num_private)
    return injective and (no_private or (model.num_agents == 1 and model.num_latent == 1))


def check_instance(model: ICSMDP, *, index: int = 0, rng=None) -> tuple[dict, object]:
    """Evaluate every property on ``model``: ``{name: (lhs, rhs) or None}`` and the gap report.

    ``None`` marks a property that does not apply to this instance.
    """
    rng = np.random.default_rng(rng)
    out: dict = {}
    vi = solve(ValueIteration(tol=TOL), model)
    pi = solve(PolicyIteration(tol=TOL), model)
    adm = ~np.isnan(pi.q)
    out["vi_equals_pi"] = (float(np.max(np.abs(vi.q[adm] - pi.q[adm]))),
                           vi.error_bound + pi.error_bound + 1e-12)
    out["residual_within_bound"] = (vi.bellman_residual, TOL * (1 - model.gamma))
    out["error_bound_holds"] = (float(np.max(np.abs(vi.v - pi.v))),
                                vi.error_bound + pi.error_bound + 1e-12)  # + rounding
    q1, q2 = rng.normal(size=pi.q.shape), rng.normal(size=pi.q.shape)
    t1, t2 = bellman_operator(model, q1), bellman_operator(model, q2)
    out["contraction"] = (float(np.max(np.abs(t1 - t2)[adm])),
                          gamma_bar(model) * float(np.max(np.abs(q1 - q2)[adm])))
    rep = gap_report(model, tol=TOL)
    if _exact_ais(model):
        worst = max(rep.epsilon_phi, rep.delta_phi, rep.delta_phi_gamma, rep.max_q_gap)
        out["zero_gaps_exact_ais"] = (worst, 1e-8)
    else:
        out["zero_gaps_exact_ais"] = None
    out["q_gap_le_alpha_tight"] = (rep.max_q_gap, rep.alpha_tight + 2 * TOL)
    out["alpha_tight_le_alpha_tv"] = (rep.alpha_tight, rep.alpha_tv)
    out["value_gap_le_alpha_tight"] = (rep.max_value_gap, rep.alpha_tight + 2 * TOL)
    out["policy_loss_le_2alpha"] = (rep.policy_loss, 2 * rep.alpha_tight + 2 * TOL)
    out["minimax_eps_le_eps"] = (rep.minimax_epsilon, rep.epsilon_phi)
    out["minimax_delta_le_delta"] = (rep.minimax_delta, rep.delta_phi)
    doc = instance_to_dict(model)
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("json", "npz"):
            p = Path(tmp) / f"x.{kind}"
            save_instance(model, p)
            same = instance_to_dict(load_instance(p)) == doc
            out[f"{kind}_roundtrip"] = (0.0 if same else 1.0, 0.0)
    kinds = list(BREAKAGES)
    ok, _ = check_rejection(doc, kinds[index % len(kinds)], agent=index % model.num_agents)
    out["invalid_rejected"] = (0.0 if ok else 1.0, 0.0)
    return out, rep


def _number(x: Any) -> float:
    """A float read back from a results file (``to_jsonable`` writes ``inf`` as ``"inf"``
    and ``nan`` as ``null``)."""
    if x is None:
        return float("nan")
    return float(x)


def verify_task(params: dict, seed: int) -> dict:
    """The campaign task of instance ``params["index"]`` of the stream of ``seed``.

    Redraws the instance (:func:`draw_verification_instance`), runs
    :func:`check_instance` with the contraction pairs drawn from
    ``default_rng([seed, index, 1])``, and returns plain numbers::

        {"properties": {name: [lhs, rhs] or None}, "max_q_gap": ..., "max_value_gap": ...,
         "alpha_paper": ..., "ratio": alpha_paper_ratio}

    Parameters
    ----------
    params : dict
        ``{"index": k, "max_states": K}``.
    seed : int
        The stream seed (the campaign seed; every task of :func:`verify_campaign`
        carries it as its own seed).
    """
    k, max_states = int(params["index"]), int(params["max_states"])
    model = draw_verification_instance(seed, k, max_states=max_states)
    props, rep = check_instance(model, index=k, rng=[seed, k, 1])
    return {"properties": {name: None if val is None else [float(val[0]), float(val[1])]
                           for name, val in props.items()},
            "max_q_gap": float(rep.max_q_gap), "max_value_gap": float(rep.max_value_gap),
            "alpha_paper": float(rep.alpha_paper), "ratio": float(alpha_paper_ratio(rep))}


def _verify_iv(instances: Any, seed: Any, max_states: Any) -> tuple[int, int, int]:
    for name, v in (("instances", instances), ("seed", seed), ("max_states", max_states)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise InvalidArgumentError(f"`{name}` must be an integer, got {v!r}.")
    if instances < 1:
        raise InvalidArgumentError(f"`instances` must be >= 1, got {instances}.")
    if seed < 0:
        raise InvalidArgumentError(f"`seed` must be >= 0, got {seed}.")
    if max_states < 2:
        raise InvalidArgumentError(f"`max_states` must be >= 2, got {max_states}.")
    return int(instances), int(seed), int(max_states)


def verify_campaign(instances: int, *, seed: int = 0, max_states: int = 64) -> Campaign:
    """The verification as a campaign: task ``instance-{k:07d}`` checks instance ``k``.

    Every task carries ``seed`` as its own seed (the stream ``(seed, k)`` of
    :func:`draw_verification_instance`), so the instances and numbers do not
    depend on how the tasks are run.
    """
    instances, seed, max_states = _verify_iv(instances, seed, max_states)
    tasks = tuple(Task(f"instance-{k:07d}", {"index": k, "max_states": max_states}, seed=seed)
                  for k in range(instances))
    return Campaign("verify", verify_task, tasks, seed=seed,
                    settings={"instances": instances, "seed": seed, "max_states": max_states})


def verify_results_path(out: str | Path, *, instances: int, seed: int, max_states: int) -> Path:
    """The results file of a verification under ``out``:
    ``verify-seed{seed}-n{instances}-states{max_states}.jsonl``."""
    return Path(out) / f"verify-seed{seed}-n{instances}-states{max_states}.jsonl"


def summarize_verification(results: dict) -> dict:
    """The tallies of a verification from its task results (in task order).

    Parameters
    ----------
    results : dict
        Task id -> the dict returned by :func:`verify_task`, in task order
        (``CampaignRun.results``, read back from the results file).

    Returns
    -------
    dict
        ``properties``: name -> ``{"checked", "violations", "worst_ratio",
        "worst_instance"}``; ``alpha_paper``: ``{"checked", "violations_q",
        "violations_value", "worst_ratio", "worst_instance", "counterexample": None}``;
        ``violating``: ``[(index, [violated property names]), ...]``;
        ``worst_alpha_paper``: the index whose ``alpha_paper`` ratio is the
        worst, when that instance violates ``alpha_paper``, else ``None``.
    """
    tally = {p: {"checked": 0, "violations": 0, "worst_ratio": 0.0, "worst_instance": None}
             for p in PROPERTIES}
    ap = {"checked": 0, "violations_q": 0, "violations_value": 0, "worst_ratio": 0.0,
          "worst_instance": None, "counterexample": None}
    violating, worst_ap = [], None
    for task_id, res in results.items():
        k = int(task_id.rsplit("-", 1)[1])
        failed = []
        for name, val in res["properties"].items():
            if val is None:
                continue
            lhs, rhs = _number(val[0]), _number(val[1])
            t = tally[name]
            t["checked"] += 1
            r = _ratio(lhs, rhs)
            if r > t["worst_ratio"] or t["worst_instance"] is None:
                t["worst_ratio"], t["worst_instance"] = r, k
            if lhs > rhs + SLACK:
                t["violations"] += 1
                failed.append(name)
        if failed:
            violating.append((k, failed))
        q, v, a = (_number(res[key]) for key in ("max_q_gap", "max_value_gap", "alpha_paper"))
        ap["checked"] += 1
        ap["violations_q"] += int(q > a + SLACK)
        ap["violations_value"] += int(v > a + SLACK)
        r = _number(res["ratio"])
        if r > ap["worst_ratio"] or ap["worst_instance"] is None:
            ap["worst_ratio"], ap["worst_instance"] = r, k
            if q > a + SLACK or v > a + SLACK:
                worst_ap = k
    return {"properties": tally, "alpha_paper": ap, "violating": violating,
            "worst_alpha_paper": worst_ap}


@dataclass(frozen=True, kw_only=True, repr=False)
class VerifyResult(Result):
    """Outcome of :func:`verify`.

    Attributes
    ----------
    instances, seed, max_states : int
    properties : dict
        name -> ``{"checked", "violations", "worst_ratio", "worst_instance"}``.
    alpha_paper : dict
        ``checked``, ``violations_q``, ``violations_value``, ``worst_ratio``,
        ``worst_instance``, ``counterexample`` (path or None).
    counterexamples : list of str
        Saved instance files (provable failures and the alpha_paper case).
    failed_tasks : dict
        Task id -> error line of every instance whose check raised (not counted
        in ``properties``) and every search attempt that raised (``success=False``).
    results_file : str
        The campaign's results file (``--resume`` continues it).
    interrupted : bool
        The campaign stopped early (Ctrl-C, SIGTERM, a dead worker): the
        tallies cover the finished instances only and nothing was saved.
    done : int
        Instances whose results are in the results file.
    """

    instances: int
    seed: int
    max_states: int
    properties: dict
    alpha_paper: dict
    counterexamples: list = field(default_factory=list)
    failed_tasks: dict = field(default_factory=dict)
    results_file: str = ""
    interrupted: bool = False
    done: int = 0


def save_case(model: ICSMDP, report, out: str | Path, stem: str, extra: dict) -> str:
    """Save ``model`` as ``out/stem.json`` and its gap report (plus ``extra``) as
    ``out/stem.gaps.json``; return the instance's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{stem}.json"
    save_instance(model, path)
    gaps = {k: v for k, v in to_jsonable(report).items()
            if not isinstance(v, list) or k in ("fallback_cells",)}
    (out / f"{stem}.gaps.json").write_text(json.dumps({**extra, "gaps": gaps}, indent=1,
                                                      allow_nan=False) + "\n", encoding="utf-8")
    return str(path)


def search_results_path(out: str | Path, *, seed: int, budget: int) -> Path:
    """The results file of the ``alpha_paper`` search of ``seed`` under ``out``:
    ``search-seed{seed}-budget{budget}.jsonl``."""
    return Path(out) / f"search-seed{seed}-budget{budget}.jsonl"


def verify(instances: int = 200, *, seed: int = 0, max_states: int = 64,
           out: str | Path | None = None, search: bool = False,
           search_budget: int = DEFAULT_SEARCH_BUDGET, jobs: int | None = None,
           scheduler: Any = None, resume: bool = False, progress: bool = False) -> VerifyResult:
    """Check :data:`PROPERTIES` and the ``alpha_paper`` question on random instances.

    Runs :func:`verify_campaign` with :func:`reports.campaign.run_campaign`
    (results file :func:`verify_results_path` under ``out``), then summarizes
    the results read back from that file (:func:`summarize_verification`) and
    saves, by redrawing them from ``(seed, k)``, every instance violating a
    provable property (``violation-{seed}-{k}``) and the worst ``alpha_paper``
    case when it violates ``alpha_paper`` (``alpha-paper-{seed}-{k}``).

    Parameters
    ----------
    instances : int
        How many instances to draw.
    seed : int
        Stream seed: the same seed gives the same instances and the same numbers.
    max_states : int
        Largest epoch-state count drawn.
    out : path or None
        Where the results files and counterexamples are written (default
        ``reports/out/verify``).
    search : bool
        Then run the ``alpha_paper`` counterexample search of ``seed``, a second
        campaign (:func:`reports.search.search_campaign`, results file
        :func:`search_results_path`), and save the smallest instance found
        (:func:`reports.search.pick_counterexample`) as
        ``alpha-paper-shrunk-{seed}``; needs Hypothesis (the ``test`` extra),
        checked before any work.
    search_budget : int
        Hypothesis examples of the whole search (:func:`reports.search.search_tasks`).
    jobs, scheduler, resume, progress
        As in :func:`reports.campaign.run_campaign` (``progress``: its tqdm bar).

    Returns
    -------
    VerifyResult
        Status ``ok``, ``violated`` (a provable property failed), ``task_errors``
        (some instance's check or search attempt raised; listed in
        ``failed_tasks``) or ``interrupted`` (nothing saved; ``--resume`` finishes).
    """
    t0 = time.perf_counter()
    if search and search_module.find is None:  # up front, not after the whole verification
        raise InvalidArgumentError(
            "`--search` needs Hypothesis (the `test` extra): pip install -e '.[test]'.")
    campaign = verify_campaign(instances, seed=seed, max_states=max_states)
    searching = search_campaign(seed, search_budget) if search else None
    instances, seed, max_states = (campaign.settings[k] for k in ("instances", "seed", "max_states"))
    out = Path("reports/out/verify") if out is None else Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = verify_results_path(out, instances=instances, seed=seed, max_states=max_states)
    options = dict(jobs=jobs, scheduler=scheduler, resume=resume, progress=progress)
    run = run_campaign(campaign, path, **options)
    run_search = None
    if searching is not None and not run.interrupted:
        run_search = run_campaign(searching, search_results_path(out, seed=seed, budget=search_budget), **options)
    failed_tasks = {**run.failed, **(run_search.failed if run_search is not None else {})}
    stopped = next((r for r in (run, run_search) if r is not None and r.interrupted), None)
    interrupted = stopped is not None
    summary = summarize_verification(run.results)
    tally, ap = summary["properties"], summary["alpha_paper"]
    saved: list = []
    if not interrupted:
        for k, failed in summary["violating"]:
            model = draw_verification_instance(seed, k, max_states=max_states)
            saved.append(save_case(model, gap_report(model, tol=TOL), out,
                                   f"violation-{seed}-{k}",
                                   {"violated": failed, "seed": seed, "index": k}))
        k = summary["worst_alpha_paper"]
        if k is not None:
            model = draw_verification_instance(seed, k, max_states=max_states)
            rep = gap_report(model, tol=TOL)
            ap["counterexample"] = save_case(model, rep, out, f"alpha-paper-{seed}-{k}",
                                             {"alpha_paper_ratio": alpha_paper_ratio(rep),
                                              "seed": seed, "index": k})
            saved.append(ap["counterexample"])
        best = pick_counterexample(run_search.results) if run_search is not None else None
        if best is not None:
            model = instance_from_dict(best["instance"])
            rep = gap_report(model, tol=TOL)
            ap["counterexample"] = save_case(model, rep, out, f"alpha-paper-shrunk-{seed}",
                                             {"alpha_paper_ratio": alpha_paper_ratio(rep),
                                              "seed": seed, "search": "reports.search",
                                              "budget": int(search_budget),
                                              "attempt": best["task"]})
            saved.append(ap["counterexample"])
    bad = [p for p, t in tally.items() if t["violations"]]
    raised = f"{len(failed_tasks)} tasks raised (listed in failed_tasks)"
    if interrupted:
        status, msg = "interrupted", stopped.message.removeprefix(f"{campaign.name}: ")
    elif bad:
        status, msg = "violated", f"provable properties violated: {', '.join(bad)}"
        if failed_tasks:
            msg += f"; {raised}"
    elif failed_tasks:
        status, msg = "task_errors", (f"all provable properties held on the {run.done} checked "
                                      f"instances; {raised}")
    else:
        status, msg = "ok", "all provable properties held"
    return VerifyResult(success=status == "ok", status=status, message=msg,
                        iterations=run.done, settings=dict(campaign.settings),
                        elapsed=time.perf_counter() - t0, instances=instances, seed=seed,
                        max_states=max_states, properties=tally, alpha_paper=ap,
                        counterexamples=saved, failed_tasks=failed_tasks,
                        results_file=str(path), interrupted=interrupted, done=run.done)
