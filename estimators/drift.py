r"""Drift between two traces of one workflow: which ``(k, i, c')`` laws changed, and the policy (SPEC section 10).

Two traces of the same workflow (the same agents, in the same order, and the
same ``gamma``), each fitted by :func:`estimators.fit.fit_epoch_model`, are
compared through the counts the fits keep (:data:`estimators.fit.COUNTS_FORMAT`):
labels are matched by their canonical text, agents and successors by index.

**Per-triple tests.** For every triple ``(k, i, c')`` seen in both traces
(with ``n_new`` and ``n_old`` kept invocations):

- *outcome law*: ``H0: P_new(k', tau | k, i, c') = P_old(k', tau | k, i, c')``,
  a test of independence in the ``2 x C`` table ``n[trace, (k', tau)]``.
  When the table has enough data (the rule of the fit's assumption checks,
  :func:`estimators.fit.grouped_g_test`: outcomes seen fewer than
  :data:`~estimators.fit.MIN_COUNT` times pooled into one rare column, a trace
  with fewer invocations of the triple than that dropped, every expected
  count at least :data:`~estimators.fit.MIN_EXPECTED`), the G-test with
  Williams' correction, ``p = chi2.sf(G / q, C - 1)``. Otherwise (a *sparse*
  table) the exact conditional test by Monte Carlo: given the margins, the
  new trace's row is multivariate hypergeometric; ``permutations`` tables
  ``x_b`` are drawn and ``p = (1 + #{G(x_b) >= G(x_obs)}) / (permutations + 1)``,
  a valid p-value for any sample size, never below ``1 / (permutations + 1)``;
- *reward mean*: ``H0: E_new[R | k, i, c'] = E_old[R | k, i, c']``, on the
  observed ``R`` (the counts keep every distinct value with its multiplicity).
  Both samples constant: the exact permutation p-value
  ``(1 + [n_new = n_old]) / binom(n_new + n_old, n_new)`` when the constants
  differ (beyond :data:`REWARD_TOL`, relative); both samples of at least
  :data:`WELCH_MIN` invocations: Welch's t-test (the unequal-variance ``t``
  with Welch-Satterthwaite degrees of freedom); otherwise the permutation test
  of ``|mean_new - mean_old|``, exact by enumeration when
  ``binom(n, n_new) <= permutations``, else Monte Carlo as above.

The *start law* ``rho0`` (episode starts per epoch state ``(k, i)``) is tested
the same way as an outcome law (one ``2 x (start states)`` table): a change
of the mix of incoming work is drift although no ``(k, i, c')`` law changed.

A test is *degenerate* when its conditional null law is a point mass, so it
can never reject: one outcome ``(k', tau)`` in both traces together, or the
same constant reward in both. Degenerate tests get ``p = 1`` and are left out
of the family (the choice depends on the pooled data only, which the
permutation null leaves unchanged).

**Multiple testing.** The non-degenerate tests (at most two per triple, and
the start law) form one family of ``m`` p-values ``p_(1) <= ... <= p_(m)``, adjusted by
(:func:`adjusted_p_values`)::

    Holm (default, family-wise error <= level):  p~_(j) = min(1, max_{l<=j} (m - l + 1) p_(l))
    Benjamini-Hochberg ("bh", false discovery rate <= level under independence or positive
    dependence):                                  p~_(j) = min(1, min_{l>=j} m p_(l) / l)

A triple *changed* when one of its tests has ``p~ <= level``; its adjusted p
is the smaller of its two. *Drift is found* when a triple or the start law changed. Effect sizes: the total variation distance
``TV = 1/2 sum_{(k', tau)} |P_hat_new - P_hat_old|`` of the two empirical
laws and the reward difference ``R_hat_new - R_hat_old``. Triples seen in one
trace only are listed apart (nothing to test).

**Recommended policy.** The greedy full-information policy of each fitted
model (``solve(PolicyIteration(), model)``) is compared on the epoch states
``(k, i)`` both models have. A state's recommended set is
``{c': Q*(s, c') >= V*(s) - tie_tol}``; the recommendation *changed* at ``s``
when the two sets are disjoint (so an exact tie in one model is no change).
Every change is listed; it is *on the path* when ``s`` is reachable from
``rho0`` under the new model's greedy policy (in the new model) or under the
old one's (in the old model). **The recommended policy changed** when some
change is on the path. What a change is worth: ``loss_new = rho0 . (V*_new -
V_new^sigma)``, the value the new model loses when the old recommendations are
kept (``sigma``: the old greedy choice at every shared state where it is
admissible in the new model, the new one elsewhere), and ``loss_old`` the
same the other way. The comparison is of point estimates: where two
successors are nearly tied, or at rarely visited states, the greedy choice of
a fitted model changes with the sampling noise, so a change with a negligible
loss is not evidence of drift (the per-triple tests are). With an
observation map ``obs`` (a parsed
``icsmdp-obs/1`` document over labels, ``by_label`` or ``fields``), the
AIS-greedy policies (``Q_hat*`` on the cells, :func:`estimators.ais.ais_solution`,
reference law ``reference``) are compared the same way on the cells ``(i, o)``
both models have; a cell is on the path when the decentralized greedy policy
visits one of its states. Cells are matched by observation value: the map is
applied once to the union of the two models' labels, so a ``fields`` rule
gives the same code to the same observed tuple in both models.

**Recommended workflow** (with ``obs``). The policy a designer would deploy is
the exact optimum over deterministic decentralized policies on the map's cells
(:func:`estimators.decentralized.best_decentralized_policy`, one successor per
cell), computed for each fitted model when it has at most ``max_policies``
such policies (:func:`~estimators.decentralized.count_decentralized_policies`,
counted first; otherwise skipped with the reason). The objective is the
*accuracy*, the undiscounted total of the component ``correct``, when both
fitted models have that component (the math-reasoning traces), else the
discounted value of ``reward`` (the decentralized module's default objective).
A fitted model knows the law of ``(k, i, c')`` only where the trace shows it,
so a cell admits the successors any of its states was seen to use (the union
rule of fitted models) and a policy is *evaluable* when every state it reaches
has data for its choice; the optimum is taken over the evaluable policies: a
choice without data leads to a sentinel state (label :data:`NO_DATA_LABEL`)
that loops forever with reward ``-penalty`` in every column (undiscounted: no
total, so the policy is ineligible), a STOP without data pays ``-penalty``,
``penalty = 1 + max |R| / (1 - gamma)``; the optimum found is then checked to
reach no choice without data (for a discounted objective the penalty only
steers, the check makes the result exact: the best of all policies, if
evaluable, is the best evaluable one); otherwise the comparison is skipped with
the reason. Reported per model: the optimum's objective and values of every
reward column, its cells (successor, reached from ``rho0`` or not), and, for
a math-reasoning trace (agents :data:`icsmdp_theory.math_reasoning.AGENTS`,
labels carrying the four bit keys), the named workflows
(:data:`icsmdp_theory.math_reasoning.WORKFLOWS`) it equals on the states it
reaches (read from each label's four bits, whatever the map) and each named
workflow's objective in the fitted model (``None`` where not evaluable). The
recommendation *changed* when the two optima choose different successors at a
cell both models have that one of them reaches (an unreached cell holds the
default successor, STOP when admissible). ``loss_new = J_new(optimum_new) -
J_new(sigma)``, ``sigma`` the old optimum's successor at every cell where the
new model admits it and the new one's elsewhere (``None`` when ``sigma``
reaches a choice without data), and ``loss_old`` the other way. Equal true
accuracies are not equal fitted ones: the fit estimates each ``(k, i, c')``
on its own, so two workflows that differ only by a step that changes nothing
(a check whose verdict is never acted on) get different fitted values and
either may be the fitted optimum; ``loss_new`` near 0 says so.

Examples
--------
Holm and Benjamini-Hochberg on four p-values:

>>> adjusted_p_values([0.01, 0.04, 0.03, 0.005]).round(4).tolist()
[0.03, 0.06, 0.06, 0.02]
>>> adjusted_p_values([0.01, 0.04, 0.03, 0.005], correction="bh").round(4).tolist()
[0.02, 0.04, 0.04, 0.02]
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import time
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from scipy.special import gammaln, xlogy
from scipy.stats import t as t_dist

from estimators.ais import REFERENCES, ais_smdp, ais_solution
from estimators.decentralized import best_decentralized_policy, count_decentralized_policies
from estimators.fit import COUNTS_FORMAT, FitResult, grouped_g_test
from estimators.policy_value import policy_value
from icsmdp_theory.cells import cell_admissible
from icsmdp_theory.epoch_io import label_maps_from_dict
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError, StateSpaceTooLargeError
from icsmdp_theory.math_reasoning import (AGENTS as MATH_AGENTS, OBSERVATION_BITS, WORKFLOW_NAMES,
                                          workflow_cells)
from icsmdp_theory.results import Result, to_jsonable
from icsmdp_theory.validation import positive_int, unit_interval
from solvers.api import PolicyIteration, solve
from solvers.epoch_smdp import evaluate_epoch_policy  # (also registers the solvers on EpochModel)

__all__ = ["DriftResult", "trace_drift", "adjusted_p_values", "CORRECTIONS", "DEFAULT_PERMUTATIONS",
           "WELCH_MIN", "REWARD_TOL", "POLICY_TIE_TOL", "DRIFT_REFERENCE", "GAMMA_TOL",
           "DRIFT_MAX_POLICIES", "NO_DATA_LABEL"]

#: The multiple-testing corrections: Holm (family-wise error) and Benjamini-Hochberg (false discovery rate).
CORRECTIONS = ("holm", "bh")
#: Monte Carlo tables / permutations per sparse test (p-values are at least ``1 / (this + 1)``).
DEFAULT_PERMUTATIONS = 9999
#: Welch's t-test for the reward mean when both traces have at least this many invocations of the triple.
WELCH_MIN = 30
#: Two constant rewards within this relative tolerance are equal.
REWARD_TOL = 1e-12
#: Successors within this of a state's (cell's) optimum are recommended (absolute).
POLICY_TIE_TOL = 1e-9
#: The default reference law of the AIS-greedy comparison (as for a fitted model in ``icsmdp gaps``).
DRIFT_REFERENCE = "stationary"
#: Two traces whose ``gamma`` differ by more than this are not comparable.
GAMMA_TOL = 1e-12
#: Default largest number of decentralized policies enumerated per fitted model (the exact
#: decentralized optimum on the map's cells is skipped above it).
DRIFT_MAX_POLICIES = 20_000
#: The label of the sentinel states that stand for a successor the trace never showed at a state.
NO_DATA_LABEL = "<no data>"
#: Largest number of entries of one block of Monte Carlo tables (memory bound).
_BLOCK = 2_000_000


@dataclass(frozen=True, kw_only=True, repr=False)
class DriftResult(Result):
    """Drift between two traces: changed triples and the recommended policy (SPEC section 10).

    Attributes
    ----------
    level : float
        The level of the corrected tests.
    correction : str
        ``"holm"`` or ``"bh"``.
    permutations : int
        Monte Carlo tables / permutations per sparse test.
    num_shared : int
        Triples ``(k, i, c')`` seen in both traces.
    num_tests : int
        Non-degenerate tests in the corrected family (at most ``2 num_shared``).
    tests : dict
        How many law and reward tests of each kind (``g_test``, ``monte_carlo``,
        ``degenerate``; ``exact``, ``welch``, ``permutation``, ``degenerate``).
    triples : list of dict
        Every shared triple: ``label, agent, successor, n_new, n_old``, ``law``
        and ``reward`` (``test``, ``statistic``, ``p_value``, ``adjusted``,
        ``rejected``), ``p_value`` and ``adjusted`` (the smaller of the two),
        ``tv``, ``reward_new``, ``reward_old``, ``reward_difference``, ``changed``.
    changed : list of dict
        The changed triples (as in ``triples``), by adjusted p, then larger TV first.
    only_new, only_old : list of dict
        ``label, agent, successor, count`` of the triples seen in one trace only.
    start : dict
        The start law test: ``test``, ``statistic``, ``dof``, ``p_value``,
        ``adjusted``, ``rejected``, ``tv``, ``starts_new``, ``starts_old``, ``states``.
    policy : dict
        Full-information greedy policies: ``shared_states``, ``states_only_new``,
        ``states_only_old``, ``changed`` (``label, agent, new, old``,
        ``new_advantage`` = ``Q_new(s, new) - Q_new(s, old)`` and
        ``old_advantage`` = ``Q_old(s, old) - Q_old(s, new)``, ``None`` where
        inadmissible; ``on_path``), ``changed_on_path``, ``policy_changed``
        (some change on the path), ``loss_new`` and ``loss_old`` (what keeping
        the other trace's recommendations loses, from ``rho0``).
    ais_policy : dict or None
        The same on the cells of ``obs`` (``shared_cells``, ``cells_only_new``,
        ``cells_only_old``, ``changed`` with ``agent, observation, example_label,
        fields, new, old, on_path``, ``changed_on_path``, ``policy_changed``,
        ``reference``); ``None`` without a map.
    decentralized : dict or None
        With ``obs``: the exact decentralized optima of the two fitted models on the
        map's cells (module docstring, "Recommended workflow"): ``computed``,
        ``reason`` (why not, else ``None``), ``objective``, ``discounted``,
        ``max_policies``; when computed, ``new`` and ``old`` (``value``, ``values``
        of every reward column, ``num_policies``, ``reached_cells``, ``cells``
        (``agent, observation, successor, reached``), ``workflows`` and
        ``workflow``: the math-reasoning workflows it equals on its reached
        states, ``None`` for another workflow), ``changed`` (``agent,
        observation, example_label, fields, new, old, reached_new,
        reached_old``), ``policy_changed``, ``loss_new`` and ``loss_old``
        (``None`` when the kept policy reaches states without data),
        ``states_without_data_new`` / ``_old``. ``None`` without a map.
    drift_found, policy_changed : bool
        Some triple or the start law changed; the full-information recommendation
        changed on the path.
    verdict : str
        One line.
    """

    level: float
    correction: str
    permutations: int
    num_shared: int
    num_tests: int
    tests: dict
    triples: list
    changed: list
    only_new: list
    only_old: list
    start: dict
    policy: dict
    ais_policy: dict | None
    decentralized: dict | None
    drift_found: bool
    policy_changed: bool
    verdict: str

    def to_dict(self) -> dict:
        """The drift report as JSON-ready data (non-finite numbers become ``None``)."""
        return {f.name: to_jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}


# ---------------------------------------------------------------- multiple testing
def _adjusted_p_values_iv(p, correction):
    if correction not in CORRECTIONS:
        raise InvalidArgumentError(f"`correction` must be one of {', '.join(CORRECTIONS)}, "
                                   f"got {correction!r}.")
    p = np.asarray(p, dtype=float)
    if p.ndim != 1 or (p.size and (not np.isfinite(p).all() or p.min() < 0 or p.max() > 1)):
        raise InvalidArgumentError(f"`p` must be a 1-d array of p-values in [0, 1], got shape "
                                   f"{list(p.shape)}.")
    return p


def adjusted_p_values(p: Any, *, correction: str = "holm") -> np.ndarray:
    r"""Holm or Benjamini-Hochberg adjusted p-values, in the order given.

    With ``p_(1) <= ... <= p_(m)`` sorted::

        holm: p~_(j) = min(1, max_{l <= j} (m - l + 1) p_(l))
        bh:   p~_(j) = min(1, min_{l >= j} m p_(l) / l)

    Rejecting ``p~ <= level`` is Holm's step-down procedure (family-wise error
    ``<= level``), respectively the Benjamini-Hochberg step-up procedure
    (false discovery rate ``<= level`` for independent or positively dependent tests).

    Parameters
    ----------
    p : array_like, shape (m,)
        P-values in ``[0, 1]``.
    correction : {"holm", "bh"}

    Returns
    -------
    ndarray, shape (m,)
    """
    p = _adjusted_p_values_iv(p, correction)
    m = p.size
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    ps = p[order]
    rank = np.arange(1, m + 1)
    if correction == "holm":
        adj = np.maximum.accumulate((m - rank + 1) * ps)
    else:
        adj = np.minimum.accumulate((m * ps / rank)[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


# ---------------------------------------------------------------- evidence of one fit
def _fitted_model(name: str, value: Any) -> EpochModel:
    model = value.model if isinstance(value, FitResult) else value
    counts = getattr(model, "counts", None) if isinstance(model, EpochModel) else None
    if not isinstance(counts, Mapping) or counts.get("format") != COUNTS_FORMAT:
        raise InvalidArgumentError(
            f"`{name}` must be a FitResult (estimators.fit.fit_epoch_model) or an epoch model "
            f"written by `icsmdp fit` (it carries the fit counts), got "
            f"{type(value).__name__}{'' if not isinstance(value, EpochModel) else ' without fit counts'}.")
    return model


def _trace_drift_iv(new_fit, old_fit, level, correction, permutations, obs, reference, tie_tol,
                    max_policies):
    new = _fitted_model("new_fit", new_fit)
    old = _fitted_model("old_fit", old_fit)
    if new.agent_names != old.agent_names:
        raise InvalidArgumentError(
            f"the two traces have different agents: new {list(new.agent_names)}, old "
            f"{list(old.agent_names)}; drift compares two traces of one workflow (same agents, same order).")
    if abs(new.gamma - old.gamma) > GAMMA_TOL:
        raise InvalidArgumentError(
            f"the two traces have different gamma: new {new.gamma:g}, old {old.gamma:g}; drift "
            f"compares two traces of one workflow (same gamma).")
    level = unit_interval("level", level, open_low=True, open_high=True)
    if correction not in CORRECTIONS:
        raise InvalidArgumentError(f"`correction` must be one of {', '.join(CORRECTIONS)}, "
                                   f"got {correction!r}.")
    permutations = positive_int("permutations", permutations, low=99)
    if obs is not None and not isinstance(obs, Mapping):
        raise InvalidArgumentError(f"`obs` must be a parsed icsmdp-obs/1 document (a mapping), "
                                   f"got {type(obs).__name__}.")
    if not (isinstance(reference, str) and reference in REFERENCES):
        raise InvalidArgumentError(f"`reference` must be one of {', '.join(REFERENCES)}, got "
                                   f"{reference!r}.")
    if not (isinstance(tie_tol, (int, float)) and 0 <= tie_tol < np.inf):
        raise InvalidArgumentError(f"`tie_tol` must be a finite number >= 0, got {tie_tol!r}.")
    max_policies = positive_int("max_policies", max_policies)
    return new, old, level, permutations, float(tie_tol), max_policies


def _evidence(model: EpochModel, label_code: np.ndarray, N: int) -> dict:
    """The fit counts with labels recoded to the union, and triple codes ``(k * N + i) * (N + 1) + c'``."""
    c = model.counts

    def arr(key, dtype=np.int64):
        return np.asarray(c[key], dtype=dtype)

    def code(prefix):
        return (label_code[arr(prefix + "_label")] * N + arr(prefix + "_agent")) * (N + 1) \
            + arr(prefix + "_successor")

    nl = arr("outcome_next_label")
    return {"triple": code("triple"), "triple_count": arr("triple_count"),
            "outcome": code("outcome"), "next": np.where(nl >= 0, label_code[np.maximum(nl, 0)], -1),
            "tau": arr("outcome_tau"), "outcome_count": arr("outcome_count"),
            "reward": code("reward"), "reward_value": arr("reward_value", float),
            "reward_count": arr("reward_count"),
            "start": label_code[arr("start_label")] * N + arr("start_agent"),
            "start_count": arr("start_count")}


# ---------------------------------------------------------------- the law tests
def _g_two_rows(x: np.ndarray, col: np.ndarray, n1: int) -> np.ndarray:
    """G of the ``2 x C`` tables with first rows ``x[b]`` and column totals ``col`` (rows of ``x``)."""
    n = float(col.sum())
    y = col - x
    n2 = n - n1
    const = -xlogy(col, col).sum() - xlogy(n1, n1) - xlogy(n2, n2) + xlogy(n, n)
    return np.maximum(2.0 * ((xlogy(x, x) + xlogy(y, y)).sum(axis=-1) + const), 0.0)


def _monte_carlo_law(col: np.ndarray, x_obs: np.ndarray, B: int, rng: np.random.Generator
                     ) -> tuple[float, float]:
    """Conditional (exact) test of a ``2 x C`` table by ``B`` multivariate hypergeometric draws."""
    n1 = int(x_obs.sum())
    g_obs = float(_g_two_rows(x_obs.astype(float), col.astype(float), n1))
    thresh = g_obs - 1e-9 * max(1.0, g_obs)
    hits, done = 0, 0
    block = max(1, _BLOCK // max(1, col.size))
    while done < B:
        size = min(block, B - done)
        draws = rng.multivariate_hypergeometric(col, n1, size=size).astype(float)
        hits += int((_g_two_rows(draws, col.astype(float), n1) >= thresh).sum())
        done += size
    return g_obs, (1 + hits) / (B + 1)


def _law_tests(shared, ev_new, ev_old, B, rng) -> dict:
    """Outcome-law tests of the shared triples (see the module docstring)."""
    m = shared.size
    tables = []
    for row, ev in ((0, ev_new), (1, ev_old)):
        pos = np.minimum(np.searchsorted(shared, ev["outcome"]), max(m - 1, 0))
        keep = (shared[pos] == ev["outcome"]) if m else np.zeros(ev["outcome"].size, bool)
        tables.append((pos[keep], np.full(int(keep.sum()), row), ev["next"][keep], ev["tau"][keep],
                       ev["outcome_count"][keep]))
    g = np.concatenate([t[0] for t in tables])
    r = np.concatenate([t[1] for t in tables])
    nxt = np.concatenate([t[2] for t in tables])
    tau = np.concatenate([t[3] for t in tables])
    cnt = np.concatenate([t[4] for t in tables])
    _, col = np.unique(np.stack([nxt, tau], axis=1), axis=0, return_inverse=True) if g.size \
        else (None, np.zeros(0, np.int64))
    col = np.asarray(col, np.int64).ravel()
    n_row = np.zeros((2, m), np.int64)
    np.add.at(n_row, (r, g), cnt)
    # cells (triple, outcome) with the count of each trace
    cell_keys, cell_of = np.unique(np.stack([g, col], axis=1), axis=0, return_inverse=True) if g.size \
        else (np.zeros((0, 2), np.int64), np.zeros(0, np.int64))
    cell_of = np.asarray(cell_of, np.int64).ravel()
    cell_cnt = np.zeros((2, len(cell_keys)), np.int64)
    np.add.at(cell_cnt, (r, cell_of), cnt)
    cg = cell_keys[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        diff = np.abs(cell_cnt[0] / n_row[0, cg] - cell_cnt[1] / n_row[1, cg])
    tv = 0.5 * np.bincount(cg, weights=diff, minlength=m)
    num_outcomes = np.bincount(cg, minlength=m)
    # the G-test with Williams' correction where the table has enough data
    gt = grouped_g_test(np.repeat(g, cnt), np.repeat(r, cnt), np.repeat(col, cnt))
    kind = np.full(m, "monte_carlo", dtype=object)
    stat = np.full(m, np.nan)
    dof = np.full(m, np.nan)
    p = np.ones(m)
    tested = gt["group"][gt["tested"]]
    kind[tested] = "g_test"
    stat[tested] = gt["adjusted"][gt["tested"]]
    dof[tested] = gt["dof"][gt["tested"]]
    p[tested] = gt["p_value"][gt["tested"]]
    degenerate = num_outcomes <= 1
    kind[degenerate] = "degenerate"
    starts = np.searchsorted(cg, np.arange(m + 1))
    for j in np.flatnonzero(kind == "monte_carlo"):
        sl = slice(starts[j], starts[j + 1])
        stat[j], p[j] = _monte_carlo_law(cell_cnt[0, sl] + cell_cnt[1, sl], cell_cnt[0, sl], B, rng)
        dof[j] = starts[j + 1] - starts[j] - 1
    return {"kind": kind, "statistic": stat, "dof": dof, "p": p, "tv": tv, "n": n_row,
            "num_outcomes": num_outcomes}


def _start_test(ev_new, ev_old, B, rng) -> dict:
    """The start law ``rho0``: the ``2 x (start states)`` table, tested as an outcome law."""
    keys = np.union1d(ev_new["start"], ev_old["start"])
    table = np.zeros((2, keys.size), np.int64)
    for row, ev in ((0, ev_new), (1, ev_old)):
        table[row, np.searchsorted(keys, ev["start"])] += ev["start_count"]
    n = table.sum(axis=1)
    tv = 0.5 * float(np.abs(table[0] / n[0] - table[1] / n[1]).sum())
    out = {"starts_new": int(n[0]), "starts_old": int(n[1]), "states": int(keys.size), "tv": tv}
    if keys.size <= 1:
        return {**out, "test": "degenerate", "statistic": None, "dof": None, "p_value": 1.0}
    col = np.arange(keys.size)
    gt = grouped_g_test(np.zeros(int(table.sum()), np.int64),
                        np.repeat([0, 1], n), np.concatenate([np.repeat(col, table[0]),
                                                              np.repeat(col, table[1])]))
    if gt["tested"].size and gt["tested"][0]:
        return {**out, "test": "g_test", "statistic": float(gt["adjusted"][0]),
                "dof": int(gt["dof"][0]), "p_value": float(gt["p_value"][0])}
    stat, p = _monte_carlo_law(table.sum(axis=0), table[0], B, rng)
    return {**out, "test": "monte_carlo", "statistic": stat, "dof": int(keys.size - 1), "p_value": p}


# ---------------------------------------------------------------- the reward tests
def _reward_samples(shared, ev) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(triple index, value, count)`` of the distinct rewards of the shared triples."""
    m = shared.size
    pos = np.minimum(np.searchsorted(shared, ev["reward"]), max(m - 1, 0))
    keep = shared[pos] == ev["reward"] if m else np.zeros(ev["reward"].size, bool)
    return pos[keep], ev["reward_value"][keep], ev["reward_count"][keep]


def _moments(g, v, c, m) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per triple: ``n``, mean, sample variance (``ddof=1``; 0 for ``n = 1``), distinct values."""
    n = np.bincount(g, weights=c, minlength=m)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.bincount(g, weights=c * v, minlength=m) / n
        ss = np.bincount(g, weights=c * (v - mean[g]) ** 2, minlength=m)
        var = np.where(n > 1, ss / np.maximum(n - 1, 1), 0.0)
    return n.astype(np.int64), mean, var, np.bincount(g, minlength=m)


def _permutation_reward(a: np.ndarray, b: np.ndarray, B: int, rng: np.random.Generator) -> tuple[float, float]:
    """Permutation test of ``|mean(a) - mean(b)|``: exact by enumeration when small, else Monte Carlo."""
    pooled = np.concatenate([a, b])
    n, n1 = pooled.size, a.size
    total = pooled.sum()
    d_obs = abs(a.mean() - b.mean())
    thresh = d_obs - 1e-12 * max(1.0, float(np.abs(pooled).max()))
    num_subsets = np.exp(gammaln(n + 1) - gammaln(n1 + 1) - gammaln(n - n1 + 1))
    if num_subsets <= B:
        sums = np.array([pooled[list(idx)].sum() for idx in itertools.combinations(range(n), n1)])
        d = np.abs(sums / n1 - (total - sums) / (n - n1))
        return float(d_obs), float((d >= thresh).mean())
    hits = 0
    done = 0
    block = max(1, _BLOCK // n)
    while done < B:
        size = min(block, B - done)
        perm = rng.permuted(np.broadcast_to(pooled, (size, n)), axis=1)
        sums = perm[:, :n1].sum(axis=1)
        hits += int((np.abs(sums / n1 - (total - sums) / (n - n1)) >= thresh).sum())
        done += size
    return float(d_obs), (1 + hits) / (B + 1)


def _reward_tests(shared, ev_new, ev_old, B, rng) -> dict:
    m = shared.size
    gn, vn, cn = _reward_samples(shared, ev_new)
    go, vo, co = _reward_samples(shared, ev_old)
    n1, mean1, var1, k1 = _moments(gn, vn, cn, m)
    n2, mean2, var2, k2 = _moments(go, vo, co, m)
    kind = np.full(m, "permutation", dtype=object)
    stat = np.full(m, np.nan)
    p = np.ones(m)
    const = (k1 == 1) & (k2 == 1)
    equal = np.abs(mean1 - mean2) <= REWARD_TOL * np.maximum(1.0, np.maximum(np.abs(mean1), np.abs(mean2)))
    kind[const & equal] = "degenerate"
    exact = const & ~equal
    kind[exact] = "exact"
    stat[exact] = np.abs(mean1 - mean2)[exact]
    # (1 + [n1 = n2]) / binom(n1 + n2, n1): the observed split and, when n1 = n2, its mirror
    log_binom = gammaln(n1 + n2 + 1.0) - gammaln(n1 + 1.0) - gammaln(n2 + 1.0)
    p[exact] = np.minimum(1.0, (1.0 + (n1 == n2)) * np.exp(-log_binom))[exact]
    welch = ~const & (n1 >= WELCH_MIN) & (n2 >= WELCH_MIN)
    kind[welch] = "welch"
    if welch.any():
        s1, s2 = var1[welch] / n1[welch], var2[welch] / n2[welch]
        se = np.sqrt(s1 + s2)
        tt = (mean1 - mean2)[welch] / se
        df = (s1 + s2) ** 2 / (s1 ** 2 / (n1[welch] - 1) + s2 ** 2 / (n2[welch] - 1))
        stat[welch] = tt
        p[welch] = np.minimum(1.0, 2.0 * t_dist.sf(np.abs(tt), df))
    perm = np.flatnonzero(kind == "permutation")
    if perm.size:
        sn, so = np.searchsorted(gn, np.arange(m + 1)), np.searchsorted(go, np.arange(m + 1))
        for j in perm:
            a = np.repeat(vn[sn[j]:sn[j + 1]], cn[sn[j]:sn[j + 1]])
            b = np.repeat(vo[so[j]:so[j + 1]], co[so[j]:so[j + 1]])
            stat[j], p[j] = _permutation_reward(a, b, B, rng)
    return {"kind": kind, "statistic": stat, "p": p, "mean_new": mean1, "mean_old": mean2}


# ---------------------------------------------------------------- policies
def _recommended(q: np.ndarray, admissible: np.ndarray, tol: float) -> np.ndarray:
    qm = np.where(admissible, q, -np.inf)
    return admissible & (qm >= qm.max(axis=-1, keepdims=True) - tol)


def _advantage(q: np.ndarray, admissible: np.ndarray, row: int, a: int, b: int) -> float | None:
    if not (admissible[row, a] and admissible[row, b]):
        return None
    return float(q[row, a] - q[row, b])


def _compare(q_new, adm_new, pol_new, q_old, adm_old, pol_old, rows_new, rows_old, tol, names):
    """Rows (states or cells) whose recommended sets are disjoint, with both greedy choices."""
    rec_new = _recommended(q_new[rows_new], adm_new[rows_new], tol)
    rec_old = _recommended(q_old[rows_old], adm_old[rows_old], tol)
    changed = np.flatnonzero(~(rec_new & rec_old).any(axis=1))
    out = []
    for j in changed.tolist():
        rn, ro = int(rows_new[j]), int(rows_old[j])
        a, b = int(pol_new[rn]), int(pol_old[ro])
        out.append({"j": j, "row_new": rn, "row_old": ro, "new": names[a], "old": names[b],
                    "new_advantage": _advantage(q_new, adm_new, rn, a, b),
                    "old_advantage": _advantage(q_old, adm_old, ro, b, a)})
    return out


def _on_path(model: EpochModel, policy: np.ndarray) -> np.ndarray:
    """Bool ``(S,)``: the epoch states reachable from ``rho0`` when every state ``s`` commits to ``policy[s]``."""
    return model.reachable_states(policy)


def _switch_loss(model: EpochModel, sol, rows: np.ndarray, other: np.ndarray) -> float:
    """``rho0 . (V* - V^sigma)`` in ``model``, ``sigma`` = the other model's choices where admissible here."""
    sigma = np.array(sol.policy, dtype=np.int64)
    ok = model.admissible[rows, other]
    sigma[rows[ok]] = other[ok]
    v = evaluate_epoch_policy(model, sigma).x
    return float(np.asarray(model.rho0) @ (np.asarray(sol.v) - v))


def _full_information(new: EpochModel, old: EpochModel, label_code_new, label_code_old,
                      labels: list, names: list, tol: float) -> dict:
    N = new.num_agents
    sol_new = solve(PolicyIteration(), new)
    sol_old = solve(PolicyIteration(), old)
    key_new = label_code_new[new.state_label] * N + new.state_agent
    key_old = label_code_old[old.state_label] * N + old.state_agent
    shared, rows_new, rows_old = np.intersect1d(key_new, key_old, return_indices=True)
    changed = _compare(sol_new.q, new.admissible, sol_new.policy, sol_old.q, old.admissible,
                       sol_old.policy, rows_new, rows_old, tol, names)
    path_new, path_old = _on_path(new, sol_new.policy), _on_path(old, sol_old.policy)
    loss_new = _switch_loss(new, sol_new, rows_new, np.asarray(sol_old.policy)[rows_old])
    loss_old = _switch_loss(old, sol_old, rows_old, np.asarray(sol_new.policy)[rows_new])
    out = []
    for c in changed:
        key = int(shared[c["j"]])
        out.append({"label": labels[key // N], "agent": names[key % N],
                    "on_path": bool(path_new[c["row_new"]] or path_old[c["row_old"]]),
                    **{k: c[k] for k in ("new", "old", "new_advantage", "old_advantage")}})
    on_path = sum(c["on_path"] for c in out)
    return {"shared_states": int(shared.size), "states_only_new": int(key_new.size - shared.size),
            "states_only_old": int(key_old.size - shared.size), "changed": out,
            "changed_on_path": int(on_path), "policy_changed": bool(on_path),
            "loss_new": loss_new, "loss_old": loss_old}


def _union_maps(new: EpochModel, old: EpochModel, obs: Mapping, labels: list,
                label_code_new, label_code_old) -> tuple[list, list]:
    """The map applied once to the union of the labels, then restricted to each model's labels."""
    N = new.num_agents
    keys = np.union1d(label_code_new[new.state_label] * N + new.state_agent,
                      label_code_old[old.state_label] * N + old.state_agent)
    S = keys.size
    probe = EpochModel(name="drift labels", gamma=new.gamma, agents=new.agent_names, labels=labels,
                       states=np.stack([keys // N, keys % N], axis=1),
                       admissible=np.eye(N + 1, dtype=bool)[np.full(S, N)],
                       rho0=np.full(S, 1.0 / S), reward=np.zeros((S, N + 1)),
                       transitions={"state": np.arange(S), "successor": np.full(S, N),
                                    "next_label": np.full(S, -1), "tau": np.ones(S, np.int64),
                                    "prob": np.ones(S)})
    maps = label_maps_from_dict(dict(obs), probe).observation
    return ([np.asarray(o)[label_code_new] for o in maps], [np.asarray(o)[label_code_old] for o in maps])


def _observed_fields(label: str, fields: Any) -> Any:
    """The fields of a ``fields`` rule seen in ``label`` (for naming a cell), or ``None``."""
    try:
        state = json.loads(label)
        if isinstance(state, dict):
            return {f: state[f] for f in fields}
        if isinstance(state, list):
            return [state[f] for f in fields]
    except (ValueError, KeyError, IndexError, TypeError):
        pass
    return None


def _ais_policies(new: EpochModel, old: EpochModel, obs: Mapping, labels: list, label_code_new,
                  label_code_old, names: list, reference: str, tol: float) -> dict:
    N = new.num_agents
    maps_new, maps_old = _union_maps(new, old, obs, labels, label_code_new, label_code_old)
    sides = []
    for model, maps in ((new, maps_new), (old, maps_old)):
        mm = model.with_observation(maps)
        ais = ais_smdp(mm, reference=reference)
        sol = ais_solution(ais)
        raw = np.concatenate([np.asarray(v) for v in mm.observation_values])
        agent = np.repeat(np.arange(N), mm.num_observations)
        # the cells the decentralized greedy policy visits (its states' cells)
        cell_of = np.asarray(ais.cell_offsets)[mm.state_agent] + mm.state_observation
        path = np.zeros(ais.num_cells, bool)
        path[cell_of[_on_path(mm, np.asarray(sol.policy)[cell_of])]] = True
        sides.append((mm, ais, sol, raw, agent, path))
    width = 1 + max(int(side[3].max(initial=0)) for side in sides)
    (mn, ais_n, sol_n, raw_n, agent_n, path_n), (_, ais_o, sol_o, raw_o, agent_o, path_o) = sides
    key_new, key_old = agent_n * width + raw_n, agent_o * width + raw_o
    shared, rows_new, rows_old = np.intersect1d(key_new, key_old, return_indices=True)
    changed = _compare(sol_n.q, ais_n.admissible, sol_n.policy, sol_o.q, ais_o.admissible,
                       sol_o.policy, rows_new, rows_old, tol, names)
    fields = obs.get("fields") if isinstance(obs.get("fields"), list) else None
    out = []
    for c in changed:
        key = int(shared[c.pop("j")])
        i, o = divmod(key, width)
        in_cell = np.flatnonzero((mn.state_agent == i)
                                 & (np.asarray(mn.observation[i])[mn.state_label] == o))
        example = mn.labels[int(mn.state_label[in_cell[0]])] if in_cell.size else None
        out.append({"agent": names[i], "observation": o, "example_label": example,
                    "fields": None if fields is None or example is None
                    else _observed_fields(example, fields[i]),
                    "on_path": bool(path_n[c["row_new"]] or path_o[c["row_old"]]),
                    **{k: c[k] for k in ("new", "old", "new_advantage", "old_advantage")}})
    on_path = sum(c["on_path"] for c in out)
    return {"reference": reference, "shared_cells": int(shared.size),
            "cells_only_new": int(key_new.size - shared.size),
            "cells_only_old": int(key_old.size - shared.size), "changed": out,
            "changed_on_path": int(on_path), "policy_changed": bool(on_path)}


def _with_no_data(model: EpochModel, maps: list) -> tuple[EpochModel, np.ndarray]:
    """``model`` on ``maps``, every state admitting every successor its cell admits (union rule).

    A pair ``(s, c')`` the trace never showed although another state of the cell
    did leads to the sentinel epoch state ``(NO_DATA_LABEL, c')`` (one step, reward
    0), which hands to itself forever with reward ``-penalty`` in every column; a
    missing STOP pays ``-penalty``. Returns the model and ``missing[s, c']`` over
    the original states (which keep their indices: the sentinel label sorts last).
    """
    mm = model.with_observation(maps)
    S, N, K = mm.num_epoch_states, mm.num_agents, mm.num_labels
    offsets = np.concatenate([[0], np.cumsum(mm.num_observations)]).astype(np.int64)
    cell = offsets[np.asarray(mm.state_agent)] + np.asarray(mm.state_observation)
    adm = np.asarray(mm.admissible, bool)
    missing = cell_admissible(mm, rule="union")[cell] & ~adm
    ms, mc = np.nonzero(missing)
    traps = np.unique(mc[mc < N])
    J = len(mm.component_names)
    columns = [np.asarray(mm.reward)] + ([np.asarray(mm.components)] if J else [])
    scale = max(float(np.nanmax(np.abs(c[adm]))) if adm.any() else 0.0 for c in columns)
    penalty = 1.0 + scale / (1.0 - mm.gamma)
    T = traps.size
    states = np.concatenate([np.stack([mm.state_label, mm.state_agent], axis=1),
                             np.stack([np.full(T, K), traps], axis=1)]).astype(np.int64)
    admissible = np.concatenate([adm | missing, np.eye(N + 1, dtype=bool)[traps]])
    reward = np.concatenate([np.where(adm, np.nan_to_num(mm.reward), 0.0), np.zeros((T, N + 1))])
    reward[ms[mc == N], N] = -penalty
    reward[S + np.arange(T), traps] = -penalty
    components = None
    if J:
        components = np.concatenate([np.where(adm[:, :, None], np.nan_to_num(mm.components), 0.0),
                                     np.zeros((T, N + 1, J))])
        components[ms[mc == N], N, :] = -penalty
        components[S + np.arange(T), traps, :] = -penalty
    trap_of = np.full(N + 1, -1, np.int64)
    trap_of[traps] = S + np.arange(T)
    stop = mc == N
    transitions = {
        "state": np.concatenate([mm.trans_state, ms, S + np.arange(T)]),
        "successor": np.concatenate([mm.trans_successor, mc, traps]),
        "next_label": np.concatenate([mm.trans_next_label, np.where(stop, -1, K), np.full(T, K)]),
        "tau": np.concatenate([mm.trans_tau, np.ones(ms.size + T, np.int64)]),
        "prob": np.concatenate([mm.trans_prob, np.ones(ms.size + T)])}
    label = NO_DATA_LABEL
    while label in mm.labels:
        label += "'"
    observation = [np.append(np.asarray(o, np.int64), int(np.max(o, initial=-1)) + 1)
                   for o in mm.observation]
    out = EpochModel(name=f"{mm.name} (no-data sentinel)", gamma=mm.gamma, agents=mm.agent_names,
                     labels=list(mm.labels) + [label], states=states, admissible=admissible,
                     rho0=np.concatenate([mm.rho0, np.zeros(T)]), transitions=transitions,
                     reward=reward, observation=observation, component_names=mm.component_names,
                     components=components)
    return out, missing


def _workflow_names(model: EpochModel, sigma: np.ndarray, reached: np.ndarray) -> list | None:
    """The math-reasoning workflows equal to ``sigma`` on the ``reached`` states (by their four bits).

    ``None`` when ``model`` is not a math-reasoning trace (other agents, or a label
    without the four bit keys).
    """
    if tuple(model.agent_names) != tuple(MATH_AGENTS):
        return None
    names = list(model.agent_names) + ["STOP"]
    tables = {w: workflow_cells(w) for w in WORKFLOW_NAMES}
    match = set(WORKFLOW_NAMES)
    for s in np.flatnonzero(reached).tolist():
        try:
            state = json.loads(model.labels[int(model.state_label[s])])
            bits = "".join(str(int(state[b])) for b in OBSERVATION_BITS)
        except (ValueError, KeyError, TypeError):
            return None
        agent = names[int(model.state_agent[s])]
        match = {w for w in match if tables[w][(agent, bits)] == names[int(sigma[s])]}
    return [w for w in WORKFLOW_NAMES if w in match]


def _decentralized(new: EpochModel, old: EpochModel, obs: Mapping, labels: list, label_code_new,
                   label_code_old, names: list, max_policies: int) -> dict:
    """The exact decentralized optima of the two fitted models on the map's cells, compared."""
    N = new.num_agents
    both = "correct" in new.component_names and "correct" in old.component_names
    objective, discounted = ("correct", False) if both else ("reward", True)
    out = {"computed": False, "reason": None, "objective": objective, "discounted": discounted,
           "max_policies": max_policies}
    maps_new, maps_old = _union_maps(new, old, obs, labels, label_code_new, label_code_old)
    sides = []
    for which, model, maps in (("new", new, maps_new), ("old", old, maps_old)):
        comp, missing = _with_no_data(model, maps)
        S = model.num_epoch_states
        try:
            count = count_decentralized_policies(comp, limit=max_policies)
            best = best_decentralized_policy(comp, objective=objective, discounted=discounted,
                                             max_policies=None)
        except StateSpaceTooLargeError:
            return {**out, "reason": f"more than {max_policies} decentralized policies on the "
                                     f"{which} model's cells (raise max_policies)"}
        except InvalidArgumentError:
            return {**out, "reason": f"no decentralized policy of the {which} model reaches only "
                                     f"states where the trace showed its choice"}
        sigma = np.asarray(best.policy)
        reached = _on_path(comp, sigma)
        if reached[S:].any() or missing[np.flatnonzero(reached[:S]), sigma[:S][reached[:S]]].any():
            return {**out, "reason": f"the best decentralized policy of the {which} model uses "
                                     f"successors the trace never showed at some states it reaches"}
        offsets = np.concatenate([[0], np.cumsum(comp.num_observations)]).astype(np.int64)
        cell = offsets[np.asarray(comp.state_agent)] + np.asarray(comp.state_observation)
        key_of = {}                                 # flat cell -> (agent, raw observation)
        for i in range(N):
            fresh = int(comp.observation[i][-1])    # the sentinel label's own value
            for o, raw in enumerate(comp.observation_values[i].tolist()):
                if raw != fresh:
                    key_of[int(offsets[i] + o)] = (i, int(raw))
        cell_pol = np.asarray(best.cell_policy)
        reached_cells = np.zeros(cell_pol.size, bool)
        reached_cells[cell[:S][reached[:S]]] = True
        choice = {key_of[x]: int(cell_pol[x]) for x in key_of}
        on = {key_of[x] for x in np.flatnonzero(reached_cells).tolist()}
        cell_fields = {}
        if isinstance(obs.get("fields"), list):
            for x, (i, o) in key_of.items():
                st = np.flatnonzero(cell[:S] == x)
                if st.size:
                    cell_fields[(i, o)] = _observed_fields(comp.labels[int(comp.state_label[st[0]])],
                                                           obs["fields"][i])
        sides.append({"model": model, "comp": comp, "fields": cell_fields, "missing": missing, "best": best,
                      "sigma": sigma, "reached": reached[:S], "cell": cell, "key_of": key_of,
                      "choice": choice, "on": on, "count": count,
                      "workflows": _workflow_names(model, sigma[:S], reached[:S])})
    sn, so = sides
    fields = obs.get("fields") if isinstance(obs.get("fields"), list) else None
    changed = []
    for key in sorted((sn["on"] | so["on"]) & set(sn["choice"]) & set(so["choice"])):
        a, b = sn["choice"][key], so["choice"][key]
        if a == b:
            continue
        i, o = key
        mm = sn["comp"]
        x = next(x for x, k in sn["key_of"].items() if k == key)
        st = np.flatnonzero(sn["cell"][:sn["model"].num_epoch_states] == x)
        example = mm.labels[int(mm.state_label[st[0]])] if st.size else None
        changed.append({"agent": names[i], "observation": o, "example_label": example,
                        "fields": None if fields is None or example is None
                        else _observed_fields(example, fields[i]),
                        "new": names[a], "old": names[b], "reached_new": key in sn["on"],
                        "reached_old": key in so["on"]})

    def kept(side, other) -> float | None:
        """``J(side's optimum) - J(other's recommendations kept)`` in side's fitted model."""
        comp, S = side["comp"], side["model"].num_epoch_states
        cadm = cell_admissible(comp)
        full = np.asarray(side["best"].cell_policy).copy()
        for x, key in side["key_of"].items():
            c = other["choice"].get(key)
            if c is not None and cadm[x, c]:
                full[x] = c
        sigma = np.asarray(side["sigma"]).copy()
        sigma[:S] = full[side["cell"][:S]]
        reached = _on_path(comp, sigma)
        if reached[S:].any() or side["missing"][np.flatnonzero(reached[:S]),
                                                sigma[:S][reached[:S]]].any():
            return None
        value = policy_value(comp, sigma, discounted=discounted).values[objective]
        return float(side["best"].value - value) if np.isfinite(value) else None

    def workflow_values(side) -> dict | None:
        """The objective of every named workflow in side's fitted model (``None``: not evaluable)."""
        if side["workflows"] is None:
            return None
        comp, S = side["comp"], side["model"].num_epoch_states
        out = {}
        for w in WORKFLOW_NAMES:
            table = workflow_cells(w)
            sigma = np.asarray(side["sigma"]).copy()
            for s in range(S):
                state = json.loads(comp.labels[int(comp.state_label[s])])
                bits = "".join(str(int(state[b])) for b in OBSERVATION_BITS)
                sigma[s] = names.index(table[(names[int(comp.state_agent[s])], bits)])
            ok = np.asarray(comp.admissible, bool)[np.arange(S), sigma[:S]]
            sigma[:S] = np.where(ok, sigma[:S], side["sigma"][:S])
            reached = _on_path(comp, sigma)
            if (~ok[reached[:S]]).any() or reached[S:].any() or \
                    side["missing"][np.flatnonzero(reached[:S]), sigma[:S][reached[:S]]].any():
                out[w] = None
                continue
            v = policy_value(comp, sigma, discounted=discounted).values[objective]
            out[w] = float(v) if np.isfinite(v) else None
        return out

    def summary(side) -> dict:
        best = side["best"]
        wf = side["workflows"]
        wv = workflow_values(side)
        closest = None if not wv or all(v is None for v in wv.values()) else \
            max((w for w in wv if wv[w] is not None), key=lambda w: wv[w])
        return {"value": float(best.value), "values": {k: float(v) for k, v in best.values.items()},
                "num_policies": int(side["count"]), "reached_cells": len(side["on"]),
                "workflows": wf, "workflow": None if not wf else wf[0], "workflow_values": wv,
                "best_workflow": closest,
                "best_workflow_gap": None if closest is None else float(best.value - wv[closest]),
                "cells": [{"agent": names[i], "observation": o, "fields": side["fields"].get((i, o)),
                           "successor": names[c], "reached": (i, o) in side["on"]}
                          for (i, o), c in sorted(side["choice"].items())]}

    return {**out, "computed": True, "new": summary(sn), "old": summary(so), "changed": changed,
            "policy_changed": bool(changed), "loss_new": kept(sn, so), "loss_old": kept(so, sn),
            "states_without_data_new": int(sn["missing"].any(axis=1).sum()),
            "states_without_data_old": int(so["missing"].any(axis=1).sum())}


# ---------------------------------------------------------------- the report
def trace_drift(new_fit: FitResult | EpochModel, old_fit: FitResult | EpochModel, *,
                level: float = 0.05, correction: str = "holm",
                permutations: int = DEFAULT_PERMUTATIONS, obs: Mapping | None = None,
                reference: str = DRIFT_REFERENCE, tie_tol: float = POLICY_TIE_TOL,
                max_policies: int = DRIFT_MAX_POLICIES, rng: Any = None) -> DriftResult:
    r"""Which ``(k, i, c')`` laws changed between two traces, and whether the recommended policy did.

    Per shared triple a test of the outcome law ``P(k', tau | k, i, c')`` (G-test
    with Williams' correction, or the exact conditional test by Monte Carlo on
    a sparse table) and of the reward mean (exact, Welch or permutation), the
    family corrected by Holm or Benjamini-Hochberg; then the greedy
    full-information policies (and with ``obs`` the AIS-greedy policies on the
    map's cells) of the two fitted models compared where both are defined. See
    the module docstring for every rule (SPEC section 10).

    Parameters
    ----------
    new_fit, old_fit : FitResult or EpochModel
        :func:`estimators.fit.fit_epoch_model` results of the two traces (or fitted
        models read back from ``icsmdp fit`` files): the same agents and ``gamma``.
    level : float in (0, 1)
        Level of the corrected tests (default 0.05).
    correction : {"holm", "bh"}
        Holm's step-down (family-wise error, default) or Benjamini-Hochberg (false discovery rate).
    permutations : int >= 99
        Monte Carlo tables / permutations per sparse test (default :data:`DEFAULT_PERMUTATIONS`).
    obs : mapping, optional
        A parsed ``icsmdp-obs/1`` document over labels (``by_label`` or ``fields``):
        also compare the AIS-greedy policies on its cells.
    reference : {"uniform", "stationary"}
        Reference law of the AIS-induced SMDPs (default :data:`DRIFT_REFERENCE`).
    tie_tol : float >= 0
        Successors within this of the optimum are recommended (default :data:`POLICY_TIE_TOL`).
    max_policies : int >= 1
        With ``obs``: the exact decentralized optima are computed when each fitted
        model has at most this many decentralized policies on the map's cells
        (default :data:`DRIFT_MAX_POLICIES`; counted first), else skipped with the reason.
    rng : None, int or numpy Generator
        The Monte Carlo stream, normalized once with ``numpy.random.default_rng``.

    Returns
    -------
    DriftResult
        ``status="computed"``.

    Raises
    ------
    InvalidArgumentError
        Not fitted models, different agents or ``gamma``, or a bad option.
    InvalidObservationMapError
        ``obs`` does not apply to the labels of the two traces, or a cell has no
        successor admissible at all its states in one of the fitted models.
    """
    new, old, level, permutations, tie_tol, max_policies = _trace_drift_iv(
        new_fit, old_fit, level, correction, permutations, obs, reference, tie_tol, max_policies)
    t0 = time.perf_counter()
    rng = np.random.default_rng(rng)
    N = new.num_agents
    names = list(new.agent_names) + ["STOP"]
    labels = sorted(set(new.labels) | set(old.labels))
    index = {lab: j for j, lab in enumerate(labels)}
    code_new = np.array([index[lab] for lab in new.labels], np.int64)
    code_old = np.array([index[lab] for lab in old.labels], np.int64)
    ev_new, ev_old = _evidence(new, code_new, N), _evidence(old, code_old, N)

    def name(code: int) -> dict:
        pair, c = divmod(int(code), N + 1)
        return {"label": labels[pair // N], "agent": names[pair % N], "successor": names[c]}

    shared = np.intersect1d(ev_new["triple"], ev_old["triple"])
    m = shared.size
    only = []
    for ev, other in ((ev_new, ev_old), (ev_old, ev_new)):
        lone = ~np.isin(ev["triple"], other["triple"])
        only.append([{**name(t), "count": int(n)} for t, n in zip(ev["triple"][lone].tolist(),
                                                                 ev["triple_count"][lone].tolist())])
    law = _law_tests(shared, ev_new, ev_old, permutations, rng)
    rew = _reward_tests(shared, ev_new, ev_old, permutations, rng)
    start = _start_test(ev_new, ev_old, permutations, rng)

    # one family: the non-degenerate tests of every kind (laws, rewards, the start law last)
    p_all = np.concatenate([law["p"], rew["p"], [start["p_value"]]])
    in_family = np.concatenate([law["kind"] != "degenerate", rew["kind"] != "degenerate",
                                [start["test"] != "degenerate"]])
    adj_all = np.ones(2 * m + 1)
    adj_all[in_family] = adjusted_p_values(p_all[in_family], correction=correction)
    adj_law, adj_rew = adj_all[:m], adj_all[m:2 * m]
    rej_law = (adj_law <= level) & in_family[:m]
    rej_rew = (adj_rew <= level) & in_family[m:2 * m]
    start.update(adjusted=float(adj_all[-1]), rejected=bool(in_family[-1] and adj_all[-1] <= level))

    def num(x):
        x = float(x)
        return x if np.isfinite(x) else None

    triples = []
    for j, code in enumerate(shared.tolist()):
        triples.append({
            **name(code), "n_new": int(law["n"][0, j]), "n_old": int(law["n"][1, j]),
            "law": {"test": law["kind"][j], "statistic": num(law["statistic"][j]),
                    "dof": None if not np.isfinite(law["dof"][j]) else int(law["dof"][j]),
                    "outcomes": int(law["num_outcomes"][j]), "p_value": float(law["p"][j]),
                    "adjusted": float(adj_law[j]), "rejected": bool(rej_law[j])},
            "reward": {"test": rew["kind"][j], "statistic": num(rew["statistic"][j]),
                       "p_value": float(rew["p"][j]), "adjusted": float(adj_rew[j]),
                       "rejected": bool(rej_rew[j])},
            "p_value": float(min(law["p"][j], rew["p"][j])),
            "adjusted": float(min(adj_law[j], adj_rew[j])),
            "tv": float(law["tv"][j]), "reward_new": float(rew["mean_new"][j]),
            "reward_old": float(rew["mean_old"][j]),
            "reward_difference": float(rew["mean_new"][j] - rew["mean_old"][j]),
            "changed": bool(rej_law[j] or rej_rew[j])})
    changed = sorted((t for t in triples if t["changed"]), key=lambda t: (t["adjusted"], -t["tv"]))
    tests = {"law": {k: int((law["kind"] == k).sum()) for k in ("g_test", "monte_carlo", "degenerate")},
             "reward": {k: int((rew["kind"] == k).sum())
                        for k in ("exact", "welch", "permutation", "degenerate")}}

    policy = _full_information(new, old, code_new, code_old, labels, names, tie_tol)
    ais_policy = decentralized = None
    if obs is not None:
        ais_policy = _ais_policies(new, old, obs, labels, code_new, code_old, names, reference, tie_tol)
        decentralized = _decentralized(new, old, obs, labels, code_new, code_old, names, max_policies)

    what = "family-wise error" if correction == "holm" else "false discovery rate"
    pol = (f"recommended policy {'changed' if policy['policy_changed'] else 'unchanged'} "
           f"({policy['changed_on_path']} changes on its path, {len(policy['changed'])} in all, of "
           f"{policy['shared_states']} shared states)")
    if ais_policy is not None:
        pol += (f"; AIS-greedy on the map {'changed' if ais_policy['policy_changed'] else 'unchanged'} "
                f"({ais_policy['changed_on_path']} on its path, {len(ais_policy['changed'])} in all, of "
                f"{ais_policy['shared_cells']} shared cells)")
    if decentralized is not None and decentralized["computed"]:
        dn, do = decentralized["new"], decentralized["old"]
        pol += (f"; decentralized optimum on the map {'changed' if decentralized['policy_changed'] else 'unchanged'}"
                f" ({dn['workflow'] or 'unnamed'} new, {do['workflow'] or 'unnamed'} old; "
                f"{len(decentralized['changed'])} cells differ")
        if decentralized["loss_new"] is not None:
            pol += f", keeping the old one loses {decentralized['loss_new']:.3g} in the new model"
        pol += ")"
    elif decentralized is not None:
        pol += f"; decentralized optimum on the map not computed ({decentralized['reason']})"
    st = (f"start law {'changed' if start['rejected'] else 'unchanged'} (TV {start['tv']:.3g}, "
          f"adjusted p {start['adjusted']:.3g})")
    verdict = (f"drift: {len(changed)} of {m} shared triples changed, {st} ({correction}, {what} <= "
               f"{level:g}, {int(in_family.sum())} tests); {len(only[0])} triples only in the new "
               f"trace, {len(only[1])} only in the old; {pol}.")
    return DriftResult(
        success=True, status="computed", message=verdict, iterations=0,
        settings={"level": level, "correction": correction, "permutations": permutations,
                  "welch_min": WELCH_MIN, "reference": reference, "tie_tol": tie_tol,
                  "max_policies": max_policies},
        elapsed=time.perf_counter() - t0, level=level, correction=correction,
        permutations=permutations, num_shared=int(m), num_tests=int(in_family.sum()), tests=tests,
        triples=triples, changed=changed, only_new=only[0], only_old=only[1], start=start,
        policy=policy, ais_policy=ais_policy, decentralized=decentralized, drift_found=bool(changed) or start["rejected"],
        policy_changed=bool(policy["policy_changed"]), verdict=verdict)
