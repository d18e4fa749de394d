"""The Theorem 1 checker: hold IC-Q runs against each term of the bound (SPEC section 8).

For a run record (``solvers.records``: ours, or an external IC-Q written in the
documented format) with snapshots ``Q(o, c'; theta_T)`` at checkpoints ``T``:

    lhs(T) = E_seeds sum_{s, c'} mu(s, c') (Q(phi(s), c'; theta_T) - Q*(s, c'))^2,

``mu(s, c') = pi(s) b(c' | phi(s))`` with ``pi`` the stationary law of the epoch
chain under the behavior ``b`` (uniform over admissible successors by default,
the law a ``FixedBehavior`` run samples exactly). The checker reports, with a
bootstrap interval over seeds:

- the **interface term** ``2 alpha^2`` for ``alpha_paper``, ``alpha_tv`` and
  ``alpha_tight`` (gap report with the ``stationary`` reference), and the exact
  **floor** ``sum mu (Q_hat* o phi - Q*)^2`` where tabular IC-Q settles (its
  fixed point is ``Q_hat*``, SPEC sections 4 and 7);
- the **approximation term**'s computable parts: ``eps_app`` (0 for tabular;
  LP for linear features; tangent-space fit for an MLP), ``eps_0`` measured along
  the run, ``lambda_0`` and ``lambda_max`` of ``Sigma_mu`` (``C1`` is unknown);
- the **mixing term**: ``t_mix`` of the epoch chain, the smallest ``C0``
  consistent with the runs, and the fitted decay exponent of ``lhs(T) - floor``
  with its interval against the predicted ``log(T)/T`` slope.

Verdicts per term: ``holds`` / ``violated`` / ``inconclusive`` with the numbers
behind them (:mod:`estimators.theorem` holds the bound and the rules).

**Interrupted runs.** Only the checkpoints that every seed reached are used
(a seed's checkpoints are reached in order, so they are the first ones); the
result says so (``checkpoints_used``, ``checkpoints_dropped`` and the message).

**Explicit epoch models** (SPEC section 10). ``check_run(epoch_model, record)``
reads the same quantities through the epoch-level interface: ``Q*(s, c')`` by
modified policy iteration on the epoch SMDP, ``mu`` on the model's epoch states,
the cell of each state from :meth:`~icsmdp_theory.epoch_level.EpochLevel.epoch_cells`.
The sums over ``(s, c')`` run over the pairs admissible for the state's *cell*
(where ``Q(phi(s), c')`` exists; for a primitive model, every admissible pair).

**Adaptable agents** (issue 15). With modes every sum and term runs over the
choices ``j = a*(N+1) + c'`` where SPEC section 8 writes ``c'``: ``Q(phi(s), j)``
and ``Q*(s, j)`` (the oracle's ``Q*_lat``), ``mu(s, j) = pi(s) b(j | phi(s))``
with the behavior uniform over the admissible choices (the law a
``FixedBehavior`` run samples), the gaps over ``(s, j)``, ``Sigma_mu`` on the
cells' ``(o, j)`` pairs. A one-mode model has ``j = c'`` and is checked as before.

**Assumptions.** Theorem 1 assumes the paper's step size
``eta_k = 1/(2 nu lambda_0 (k+1))`` (``StepSize(rule="paper")``) and the fixed
behavior that defines ``mu`` (``FixedBehavior`` with the law the checker uses,
uniform by default). A run made otherwise is still checked, numerically;
``assumptions`` (and every verdict's ``assumptions_met``) says whether the
record states both, and which one fails. A record that does not state its
settings gives ``assumptions_met = None``.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np

from estimators import theorem as th
from estimators.gaps import gap_report
from estimators.mixing import mixing_report
from estimators.stationary import mu as mu_of, stationary_law
from estimators.tangent import mu_on_cells, run_tangent_report
from icsmdp_theory.cells import cell_offsets
from icsmdp_theory.epoch_level import epoch_level
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.results import Result
from solvers.api import ModifiedPolicyIteration, solve
from solvers.records import choice_cell_admissible, num_choices

__all__ = ["CheckResult", "check_run", "lhs_per_seed", "learning_floor", "epoch_pairs", "ALPHA_FORMS",
           "run_assumptions", "common_checkpoints"]

#: The three interface-gap forms reported (SPEC section 5).
ALPHA_FORMS = ("alpha_paper", "alpha_tv", "alpha_tight")
#: A run ending this far (relative) below the exact floor is flagged.
BELOW_FLOOR_MARGIN = 0.01


@dataclass(frozen=True, kw_only=True, repr=False)
class CheckResult(Result):
    """Theorem 1, term by term, for one run record.

    Attributes
    ----------
    checkpoints : ndarray (K,)
    lhs_per_seed : ndarray (S, K)
    lhs_mean, lhs_lower, lhs_upper : ndarray (K,)
        Seed mean and its percentile bootstrap interval (95 %).
    floor : float
        ``sum mu (Q_hat* o phi - Q*)^2``.
    alpha : dict
        The three forms of ``alpha`` (``stationary`` reference).
    interface_term : dict
        ``2 alpha^2`` per form.
    approximation : dict
        ``eps_app``, ``eps0_value``, ``eps0_grad``, ``lambda_0``, ``lambda_max``,
        ``term_computable_part`` (``6 eps_app + 6 eps_0``), ``c1_needed``.
    mixing : dict
        ``t_mix``, ``t_mix_is_exact``, ``c0_min`` per form, ``decay`` (exponent,
        interval, predicted slope, points).
    verdicts : dict
        term -> ``{"verdict", "reason", "assumptions_met", ...numbers}``; keys
        ``interface:<form>``, ``approximation``, ``mixing``, ``overall``.
    assumptions : dict
        ``{"met", "step_size", "behavior", "reasons"}`` (:func:`run_assumptions`).
    checkpoints_used, checkpoints_dropped : int
        Checkpoints every seed reached (used) and the rest (an interrupted run).
    """

    checkpoints: np.ndarray
    lhs_per_seed: np.ndarray
    lhs_mean: np.ndarray
    lhs_lower: np.ndarray
    lhs_upper: np.ndarray
    floor: float
    alpha: dict
    interface_term: dict
    approximation: dict
    mixing: dict
    verdicts: dict
    bound_latex: str
    assumptions: dict = field(default_factory=dict)
    checkpoints_used: int = 0
    checkpoints_dropped: int = 0


def epoch_pairs(model: ICSMDP | EpochModel) -> tuple[np.ndarray, np.ndarray]:
    """The cell of every epoch state and the pairs the sums of SPEC section 8 run over.

    Returns
    -------
    cells : ndarray (num_epoch_states,)
        Flat cell index of ``s`` (``s = f*N + i`` for a primitive model).
    pairs : bool ndarray (num_epoch_states, J)
        ``c'`` admissible at ``s`` and for its cell (the same for a primitive model);
        the choices ``j = a*(N+1) + c'`` (``J = max_i K_i (N+1)``) with adaptable agents.
    """
    offsets = cell_offsets(model.num_observations)
    cells = epoch_level(model).epoch_cells(offsets)
    cadm = choice_cell_admissible(model)[cells]
    if isinstance(model, EpochModel):
        return cells, np.asarray(model.admissible, bool) & cadm
    return cells, cadm


def lhs_per_seed(model: ICSMDP | EpochModel, record, q_star: np.ndarray,
                 mu_epoch: np.ndarray) -> np.ndarray:
    """``sum_{s,c'} mu (Q(phi(s), c') - Q*(s, c'))^2`` per seed and checkpoint: ``(S, K)``.

    The sum runs over the pairs of :func:`epoch_pairs` (``(s, j)`` with modes); ``nan``
    for a seed that did not reach a checkpoint.
    """
    cells, pairs = epoch_pairs(model)                         # [s], [s, c']
    C = num_choices(model)
    qs = np.asarray(q_star).reshape(cells.size, C)            # [s, c']
    w = np.where(pairs, np.asarray(mu_epoch).reshape(cells.size, C), 0.0)
    K, S = record.q.shape[:2]
    out = np.empty((S, K))
    for k in range(K):
        q = record.q[k][:, cells, :]                          # [S, s, c']
        d = np.where(pairs[None], q - qs[None], 0.0)
        out[:, k] = np.einsum("sjc,jc->s", d * d, w)
    if record.reached is not None:
        out[~np.asarray(record.reached, bool).T] = np.nan
    return out


def learning_floor(model: ICSMDP | EpochModel, q_hat: np.ndarray, q_star: np.ndarray,
                   mu_epoch: np.ndarray) -> float:
    """The exact learning floor ``sum_{s,c'} mu(s, c') (Q_hat*(phi(s), c') - Q*(s, c'))^2`` (SPEC 8).

    Where tabular IC-Q settles: ``lhs(T)`` of a run whose ``Q`` equals ``Q_hat*``.

    Parameters
    ----------
    q_hat : ndarray, shape (num_cells, J)
        ``Q_hat*[cell, c']`` (``nan`` where inadmissible); ``J = N+1``, or the choices
        ``j = a*(N+1) + c'`` with adaptable agents.
    q_star : ndarray, shape (num_epoch_states, J)
        ``Q*[s, c']``, ``s = f*N + i`` for a primitive model.
    mu_epoch : ndarray, ``num_epoch_states * J`` values
        ``mu(s, c')``, zero at inadmissible pairs.
    """
    cells, pairs = epoch_pairs(model)                           # [s], [s, c']
    C = num_choices(model)
    d = np.where(pairs, np.asarray(q_hat)[cells] - np.asarray(q_star).reshape(-1, C), 0.0)
    return float(np.sum(np.where(pairs, np.asarray(mu_epoch).reshape(-1, C), 0.0) * d * d))


def _check_record_matches(model: ICSMDP | EpochModel, record) -> None:
    text = {"icsmdp": "a primitive instance", "epoch": "an explicit epoch model"}
    kind = "epoch" if isinstance(model, EpochModel) else "icsmdp"
    rkind = getattr(record, "model_kind", "icsmdp")
    if rkind != kind:
        raise InvalidArgumentError(
            f"`record`: the run learned on {text.get(rkind, rkind)} (`model_kind` {rkind!r}); "
            f"the model given is {text[kind]}.")
    if tuple(record.num_observations) != tuple(model.num_observations):
        raise InvalidArgumentError(
            f"`record`: observation counts {list(record.num_observations)} do not match the "
            f"instance's maps {list(model.num_observations)} (pass the map the run used, --obs).")
    if record.num_agents != model.num_agents:
        raise InvalidArgumentError(f"`record`: {record.num_agents} agents, the instance has "
                                   f"{model.num_agents}.")
    adm = choice_cell_admissible(model)
    radm = np.asarray(record.cell_admissible, bool)
    if radm.shape != adm.shape and not isinstance(model, EpochModel):
        raise InvalidArgumentError(
            f"`record`: {radm.shape[1]} columns of `q` (choices), the instance has "
            f"{adm.shape[1]} (J = max_i K_i (N+1) = {adm.shape[1]} with modes {list(model.num_modes)}).")
    if not np.array_equal(radm, adm):
        raise InvalidArgumentError("`record`: admissible successors differ from the instance's.")


def run_assumptions(record, behavior=None) -> dict:
    """Whether a run meets Theorem 1's assumptions on the step size and the behavior.

    Reads the record's ``settings`` (``step`` and ``behavior``, as
    :class:`solvers.icq.ICQ` writes them).

    Parameters
    ----------
    record : RunRecord
    behavior : list of ndarray or None
        The law that defines ``mu`` in the check (``None``: uniform).

    Returns
    -------
    dict
        ``met`` (``True``, ``False``, or ``None`` when the record does not
        state its settings), ``step_size`` and ``behavior`` (short descriptions)
        and ``reasons`` (one phrase per unmet assumption).
    """
    settings = getattr(record, "settings", None) or {}
    step, beh = settings.get("step"), settings.get("behavior")
    if not isinstance(step, dict) or not isinstance(beh, dict):
        return {"met": None, "step_size": None, "behavior": None,
                "reasons": ["the record does not state its step size and behavior"]}
    reasons = []
    rule = step.get("rule")
    if rule != "paper":
        reasons.append(f"step size {rule!r}, not the paper's 1/(2 nu lambda_0 (k+1))")
    kind = beh.get("kind")
    if kind == "FixedBehavior":
        fixed_uniform = beh.get("probabilities") is None
        if fixed_uniform != (behavior is None):
            reasons.append("fixed behavior differs from the law that defines mu")
        beh_text = "fixed uniform" if fixed_uniform else "fixed (explicit law)"
    else:
        eps = beh.get("epsilon")
        beh_text = f"epsilon-greedy (epsilon {eps})" if kind == "EpsilonGreedy" else str(kind)
        reasons.append(f"behavior {beh_text}, not the fixed behavior that defines mu")
    return {"met": not reasons, "step_size": rule, "behavior": beh_text, "reasons": reasons}


def common_checkpoints(reached) -> np.ndarray:
    """Indices of the checkpoints that every seed reached (``reached[k, s]``)."""
    if reached is None:
        return None
    return np.flatnonzero(np.asarray(reached, bool).all(axis=1))


def check_run(model: ICSMDP | EpochModel, record, *, behavior=None, tol: float = 1e-10,
              rng=0) -> CheckResult:
    """Hold a run record against each term of Theorem 1 (see the module docstring).

    Parameters
    ----------
    model : ICSMDP or EpochModel
        With the observation maps the run used.
    record : RunRecord
        From ``solve(ICQ(...), model)`` or :func:`solvers.records.load_run`.
    behavior : list of ndarray (nO_i, J) or None
        Defines ``mu``; ``None`` is uniform over admissible successors (over the
        admissible choices ``j = a*(N+1) + c'`` with adaptable agents; ``J = N+1``
        without them).
    """
    t0 = time.perf_counter()
    _check_record_matches(model, record)
    oracle = solve(ModifiedPolicyIteration(tol=tol), model)
    law = stationary_law(model, behavior=behavior)
    mu_epoch = mu_of(model, law.law, behavior=behavior)
    rep = gap_report(model, reference="stationary", stationary_law=law, minimax=False,
                     oracle=oracle, tol=tol)
    T = np.asarray(record.checkpoints, float)
    L = lhs_per_seed(model, record, oracle.q, mu_epoch)
    cols = common_checkpoints(getattr(record, "reached", None))
    if cols is None:
        cols = np.flatnonzero(~np.isnan(L).any(axis=0))
    if cols.size == 0:
        raise InvalidArgumentError("`record`: no checkpoint was reached by every seed (the run "
                                   "stopped before its first checkpoint).")
    dropped = T.size - cols.size
    T, L = T[cols], L[:, cols]
    ok_seeds = ~np.isnan(L).any(axis=1)
    if not ok_seeds.any():
        raise InvalidArgumentError("`record`: no seed has a finite lhs at the checkpoints reached.")
    L = L[ok_seeds]
    mean, lower, upper = th.bootstrap_mean(L, rng=rng)

    floor = learning_floor(model, rep.q_hat, oracle.q, mu_epoch)
    alpha = {f: float(getattr(rep, f)) for f in ALPHA_FORMS}
    interface = {f: float(th.evaluate_terms(alpha=a)["interface"]) for f, a in alpha.items()}

    # approximation term
    mu_cells = mu_on_cells(model, mu_epoch)
    if record.learner == "tabular":
        positive = mu_cells[mu_cells > 0]
        approx = {"eps_app": 0.0, "eps0_value": 0.0, "eps0_grad": 0.0,
                  "lambda_0": float(positive.min()), "lambda_max": float(positive.max()),
                  "c1_needed": False, "note": "tabular: one-hot features, Q = Qbar exactly"}
    else:
        tr = run_tangent_report(model, record, q_target=rep.q_hat, mu=mu_cells)
        e0 = float(np.nan_to_num(tr.eps0_value))
        approx = {"eps_app": float(tr.approximation.eps_app), "eps0_value": e0,
                  "eps0_grad": float(np.nan_to_num(tr.eps0_grad)),
                  "lambda_0": float(tr.spectrum.lambda_0),
                  "lambda_max": float(tr.spectrum.lambda_max),
                  "c1_needed": e0 > 0, "note": tr.message}
    approx["term_computable_part"] = float(th.evaluate_terms(
        alpha=0.0, eps_app=approx["eps_app"], eps_0=approx["eps0_value"])["approximation"])

    # mixing term
    mix = mixing_report(model, behavior=behavior)
    t_mix = float(mix.t_mix) if mix.t_mix_is_exact else float(mix.t_mix_upper)
    fit = th.fit_decay(T, L, floor=floor, rng=rng)
    bound_floor = interface["alpha_tight"] + approx["term_computable_part"]
    fit_bound = th.fit_decay(T, L, floor=bound_floor, rng=rng)
    c0 = {}
    for f in ALPHA_FORMS:
        c0[f] = th.smallest_c0(T, mean, floor=interface[f] + approx["term_computable_part"],
                               lambda_max=approx["lambda_max"],
                               t_mix=t_mix if np.isfinite(t_mix) else 0.0)
    mixing = {"t_mix": t_mix, "t_mix_is_exact": bool(mix.t_mix_is_exact),
              "t_mix_message": mix.message, "c0_min": c0, "decay": asdict(fit),
              "decay_over_bound_floor": asdict(fit_bound), "bound_floor": bound_floor}

    verdicts = _verdicts(floor, interface, approx, mean, lower, upper, fit_bound, c0,
                         record.learner)
    assumptions = run_assumptions(record, behavior)
    for v in verdicts.values():
        v["assumptions_met"] = assumptions["met"]
    bad = [k for k, v in verdicts.items() if v["verdict"] == "violated"]
    message = (("violated terms: " + ", ".join(bad)) if bad else
               f"overall: {verdicts['overall']['verdict']}")
    if assumptions["met"] is False:
        message += (" (numerically; the run does not meet Theorem 1's assumptions: "
                    + "; ".join(assumptions["reasons"]) + ")")
    elif assumptions["met"] is None:
        message += " (the record does not state its step size and behavior)"
    if dropped:
        message += (f"; {cols.size} of {cols.size + dropped} checkpoints used (T <= "
                    f"{int(T[-1])}): the ones every seed reached, the run stopped early")
    return CheckResult(
        success=verdicts["overall"]["verdict"] != "violated",
        status=verdicts["overall"]["verdict"],
        message=message, assumptions=assumptions, checkpoints_used=int(cols.size),
        checkpoints_dropped=int(dropped),
        iterations=int(len(T)), settings={"tol": tol, "behavior": "uniform" if behavior is None
                                          else "explicit", "seeds_used": int(ok_seeds.sum())},
        elapsed=time.perf_counter() - t0, checkpoints=T, lhs_per_seed=L, lhs_mean=mean,
        lhs_lower=lower, lhs_upper=upper, floor=floor, alpha=alpha, interface_term=interface,
        approximation=approx, mixing=mixing, verdicts=verdicts, bound_latex=th.bound_latex())


def _verdicts(floor, interface, approx, mean, lower, upper, fit, c0, learner) -> dict:
    out = {}
    # below the floor IC-Q converges to: a violation only once the run has settled there
    # (tabular IC-Q may approach its floor from below at finite T)
    below = upper[-1] < floor * (1 - BELOW_FLOOR_MARGIN) - 1e-12
    settled_below = below and (len(mean) < 2 or abs(mean[-1] - mean[-2])
                               <= BELOW_FLOOR_MARGIN * max(floor, 1e-12))
    for f, term in interface.items():
        v = th.verdict_interface(floor, term)
        reason = (f"floor {floor:.6g} {'<=' if v == 'holds' else '>'} 2 alpha^2 = {term:.6g}")
        if settled_below:
            v = "violated"
            reason = (f"the run settles below the exact floor: lhs(T_max) <= {upper[-1]:.6g} < "
                      f"{floor:.6g}; IC-Q under the interface converges to Q_hat*, it cannot "
                      f"beat it")
        elif below and v == "holds":
            v = "inconclusive"
            reason = (f"lhs(T_max) = {mean[-1]:.6g} is below the floor {floor:.6g} and still "
                      f"moving: the run has not converged")
        if f == "alpha_paper" and v == "violated" and not settled_below:
            reason += " (the paper's form is not a proven bound)"
        out[f"interface:{f}"] = {"verdict": v, "reason": reason, "floor": floor, "term": term}
    settled = interface["alpha_tight"] + approx["term_computable_part"]
    if learner == "tabular":
        out["approximation"] = {"verdict": "holds", "reason": "tabular: the term is exactly 0",
                                "term": 0.0}
    elif lower[-1] <= settled:
        out["approximation"] = {"verdict": "holds", "reason": (
            f"lhs(T_max) >= {lower[-1]:.6g} already below 2 alpha_tight^2 + computable part "
            f"{settled:.6g}"), "term": approx["term_computable_part"]}
    else:
        out["approximation"] = {"verdict": "inconclusive", "reason": (
            "the excess over the computable terms may belong to the mixing term"
            + (" or to the unknown C1 lambda_max eps_0 part" if approx["c1_needed"] else "")),
            "term": approx["term_computable_part"]}
    if c0["alpha_tight"] == 0.0:
        out["mixing"] = {"verdict": "holds", "c0_min": 0.0, "reason": (
            "lhs <= 2 alpha_tight^2 + computable approximation terms at every checkpoint: "
            "the bound holds with C0 = 0")}
    else:
        mv = th.verdict_mixing(fit)
        out["mixing"] = {
            "verdict": mv, "c0_min": c0["alpha_tight"], "exponent": fit.exponent,
            "interval": [fit.lower, fit.upper], "predicted_slope": fit.predicted,
            "points": fit.points,
            "reason": {"holds": "the excess over 2 alpha_tight^2 + approximation decays at least "
                                "as fast as log(T)/T allows",
                       "violated": "the excess over 2 alpha_tight^2 + approximation decays "
                                   "significantly slower than log(T)/T: no fixed C0 covers it",
                       "inconclusive": "too few checkpoints above the bound's floor or too wide "
                                       "an interval"}[mv]}
    provable = [out["interface:alpha_tight"], out["interface:alpha_tv"], out["mixing"]]
    if any(v["verdict"] == "violated" for v in provable):
        overall = "violated"
    elif all(v["verdict"] == "holds" for v in provable + [out["approximation"]]):
        overall = "holds"
    else:
        overall = "inconclusive"
    out["overall"] = {"verdict": overall, "reason": "interface (provable forms), approximation "
                                                     "and mixing verdicts combined"}
    return out
