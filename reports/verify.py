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
"""
from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from estimators.gaps import gap_report
from icsmdp_theory.conformance import BREAKAGES, check_rejection
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.generators import NumpyChoices, draw_icsmdp
from icsmdp_theory.io import instance_to_dict, load_instance, save_instance
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.options import gamma_bar
from icsmdp_theory.results import Result, to_jsonable
from solvers.api import PolicyIteration, ValueIteration, solve
from solvers.oracle import bellman_operator

try:  # optional: the `test` extra (Hypothesis) powers `--search`
    from hypothesis import HealthCheck, find, settings, target
    from hypothesis.errors import NoSuchExample

    from icsmdp_theory.testing.strategies import icsmdps
except ImportError:  # pragma: no cover - depends on the environment
    find = None

__all__ = ["FAMILIES", "PROPERTIES", "SLACK", "VerifyResult", "draw_verification_instance",
           "check_instance", "verify", "alpha_paper_ratio", "alpha_paper_violated",
           "search_alpha_paper_counterexample"]

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
#: Numerical slack on every comparison.
SLACK = 1e-9
#: Solver tolerance used by the checks.
TOL = 1e-10


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


def alpha_paper_violated(report) -> bool:
    """``max_q_gap`` or ``max_value_gap`` exceeds ``alpha_paper`` by more than :data:`SLACK`."""
    return (report.max_q_gap > report.alpha_paper + SLACK
            or report.max_value_gap > report.alpha_paper + SLACK)


def _exact_ais(model: ICSMDP) -> bool:
    injective = all(len(np.unique(a.observation)) == a.observation.size for a in model.agents)
    no_private = model.num_latent == 1 and all(n == 1 for n in model.num_private)
    return injective and (no_private or (model.num_agents == 1 and model.num_latent == 1))


def alpha_paper_ratio(report) -> float:
    """``max(max_q_gap, max_value_gap) / alpha_paper`` (> 1: the paper's form fails)."""
    return max(_ratio(report.max_q_gap, report.alpha_paper),
               _ratio(report.max_value_gap, report.alpha_paper))


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
    """

    instances: int
    seed: int
    max_states: int
    properties: dict
    alpha_paper: dict
    counterexamples: list = field(default_factory=list)


def _save_case(model: ICSMDP, report, out: Path, stem: str, extra: dict) -> str:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{stem}.json"
    save_instance(model, path)
    gaps = {k: v for k, v in to_jsonable(report).items()
            if not isinstance(v, list) or k in ("fallback_cells",)}
    (out / f"{stem}.gaps.json").write_text(json.dumps({**extra, "gaps": gaps}, indent=1,
                                                      allow_nan=False) + "\n", encoding="utf-8")
    return str(path)


def verify(instances: int = 200, *, seed: int = 0, max_states: int = 64, out: str | Path | None = None,
           search: bool = False, search_examples: int = 300, progress: bool = False) -> VerifyResult:
    """Check :data:`PROPERTIES` and the ``alpha_paper`` question on random instances.

    Parameters
    ----------
    instances : int
        How many instances to draw.
    seed : int
        Stream seed: the same seed gives the same instances and the same numbers.
    max_states : int
        Largest epoch-state count drawn.
    out : path or None
        Where counterexamples are saved (default ``reports/out/verify``); nothing
        is written when there is none.
    search : bool
        Also run ``hypothesis.find`` (with ``target`` on the violation ratio) to
        shrink to the smallest instance where ``alpha_paper`` fails; needs
        Hypothesis (the ``test`` extra), checked before any work.
    progress : bool
        A tqdm bar on stderr, drawn only when stderr is a terminal.
    """
    if search and find is None:  # up front, not after the whole verification
        raise InvalidArgumentError(
            "`--search` needs Hypothesis (the `test` extra): pip install -e '.[test]'.")
    if instances < 1:
        raise InvalidArgumentError(f"`instances` must be >= 1, got {instances}.")
    if max_states < 2:
        raise InvalidArgumentError(f"`max_states` must be >= 2, got {max_states}.")
    t0 = time.perf_counter()
    out = Path("reports/out/verify") if out is None else Path(out)
    tally = {p: {"checked": 0, "violations": 0, "worst_ratio": 0.0, "worst_instance": None}
             for p in PROPERTIES}
    ap = {"checked": 0, "violations_q": 0, "violations_value": 0, "worst_ratio": 0.0,
          "worst_instance": None, "counterexample": None}
    saved, worst_ap = [], None
    it = range(instances)
    if progress:  # never into a redirected log: only when stderr is a terminal
        it = tqdm(it, desc="verify", unit="instance", file=sys.stderr,
                  disable=not sys.stderr.isatty())
    for k in it:
        model = draw_verification_instance(seed, k, max_states=max_states)
        props, rep = check_instance(model, index=k, rng=[seed, k, 1])
        failed = []
        for name, val in props.items():
            if val is None:
                continue
            lhs, rhs = val
            t = tally[name]
            t["checked"] += 1
            r = _ratio(lhs, rhs)
            if r > t["worst_ratio"] or t["worst_instance"] is None:
                t["worst_ratio"], t["worst_instance"] = r, k
            if lhs > rhs + SLACK:
                t["violations"] += 1
                failed.append(name)
        if failed:
            saved.append(_save_case(model, rep, out, f"violation-{seed}-{k}",
                                    {"violated": failed, "seed": seed, "index": k}))
        ap["checked"] += 1
        ap["violations_q"] += int(rep.max_q_gap > rep.alpha_paper + SLACK)
        ap["violations_value"] += int(rep.max_value_gap > rep.alpha_paper + SLACK)
        r = alpha_paper_ratio(rep)
        if r > ap["worst_ratio"] or ap["worst_instance"] is None:
            ap["worst_ratio"], ap["worst_instance"] = r, k
            if alpha_paper_violated(rep):
                worst_ap = (model, rep, k)
    if worst_ap is not None:
        model, rep, k = worst_ap
        ap["counterexample"] = _save_case(model, rep, out, f"alpha-paper-{seed}-{k}",
                                          {"alpha_paper_ratio": alpha_paper_ratio(rep),
                                           "seed": seed, "index": k})
        saved.append(ap["counterexample"])
    if search:
        found = search_alpha_paper_counterexample(max_examples=search_examples, seed=seed)
        if found is not None:
            model, rep = found
            ap["counterexample"] = _save_case(model, rep, out, f"alpha-paper-shrunk-{seed}",
                                              {"alpha_paper_ratio": alpha_paper_ratio(rep),
                                               "seed": seed, "search": "hypothesis.find"})
            saved.append(ap["counterexample"])
    bad = [p for p, t in tally.items() if t["violations"]]
    msg = ("all provable properties held" if not bad else
           f"provable properties violated: {', '.join(bad)}")
    return VerifyResult(success=not bad, status="ok" if not bad else "violated", message=msg,
                        iterations=instances, settings={"instances": instances, "seed": seed,
                                                        "max_states": max_states},
                        elapsed=time.perf_counter() - t0, instances=instances, seed=seed,
                        max_states=max_states, properties=tally, alpha_paper=ap,
                        counterexamples=saved)


def search_alpha_paper_counterexample(*, max_examples: int = 300, seed: int = 0):
    """Shrink to the smallest instance where ``alpha_paper`` fails (``hypothesis.find``).

    Uses ``hypothesis.target`` on the violation ratio to steer the search.
    Returns ``(model, gap_report)`` or ``None`` when no violation was found.
    Requires Hypothesis (the ``test`` extra).
    """
    if find is None:
        raise InvalidArgumentError(
            "`--search` needs Hypothesis: pip install -e '.[test]'.")

    def violates(model):
        rep = gap_report(model, tol=TOL, minimax=False)
        r = alpha_paper_ratio(rep)
        target(float(min(r, 1e6)), label="alpha_paper ratio")
        return alpha_paper_violated(rep)

    strategy = icsmdps(agents=(1, 2), latent=(1, 2), interface=(1, 3), private=(1, 2),
                       actions=(1, 2))
    try:
        model = find(strategy, violates,
                     settings=settings(max_examples=max_examples, database=None, deadline=None,
                                       suppress_health_check=list(HealthCheck)),
                     random=random.Random(seed))
    except NoSuchExample:
        return None
    return model, gap_report(model, tol=TOL)
