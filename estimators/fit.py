r"""Maximum-likelihood epoch models from traces, and the assumption checks (SPEC section 10 "Estimation").

A trace (:class:`icsmdp_theory.traces.TraceData`, SPEC 10 "Traces") lists
invocations ``(episode, agent i, label k, successor c', tau, R)``; the next
label ``k'`` of an invocation is the label of the next line of its episode
(``-1`` after ``STOP`` and after the last line of a truncated episode).

**Estimable invocations and epoch states.** An invocation *has an outcome*
when it ends with ``STOP`` or has a next line in its episode; the last line of
a truncated episode has none and gives neither a transition nor a reward
sample, so rewards and laws are estimated from the same sample. The epoch
states are the pairs ``(k, i)`` with at least one invocation that has an
outcome. An invocation whose outcome ``(k', c')`` is not an epoch state (the
pair ``(k', c')`` was only ever seen as the last line of truncated episodes)
is **dangling**: the model could not continue from ``(k', c')``, so the
invocation is dropped from every estimate and counted in ``dangling``.
Dropping can leave a state without any outcome, which makes the invocations
leading into it dangling in turn; the rule is applied until nothing changes
(a handful of vectorized rounds, never a loop over invocations).

**Maximum likelihood.** With ``n(k, i, c')`` the kept invocations of the
triple and ``n(k, i, c' -> k', tau)`` those with outcome ``(k', tau)``
(``k' = -1`` for ``STOP``)::

    P_hat(k', tau | k, i, c') = n(k, i, c' -> k', tau) / n(k, i, c')
    R_hat(k, i, c')           = mean of the kept invocations' R
    R_hat_j(k, i, c')         = mean of component j (section 11)
    rho0_hat(k, i)            = (episodes starting at (k, i)) / (episodes starting at an epoch state)

Every episode start counts for ``rho0_hat``, truncated episodes included; a
start at a pair that is not an epoch state is dropped and counted in
``starts_dropped``. The model's labels are the labels of its epoch states
(sorted, as in the trace).

**Admissible sets.** ``"observed"`` (default): ``adm(k, i)`` = the successors
with data at ``(k, i)``. ``"declared"``: the header's per-agent sets
(``TraceData.declared_admissible``) intersected with the triples with data; a
declared triple of an epoch state without data cannot be estimated: it is
listed in ``unvisited_declared`` and excluded. A kept invocation whose
successor is not declared for its agent is an error naming its line.

**Evidence.** The model carries ``counts`` (:data:`COUNTS_FORMAT`), columnar
arrays indexed by the model's label and agent indices, enough to rebuild the
posterior (:mod:`estimators.posterior`) from a saved fitted model:

- ``triple_label, triple_agent, triple_successor, triple_count``: ``n(k, i, c')``;
- ``outcome_label, outcome_agent, outcome_successor, outcome_next_label
  (-1 STOP), outcome_tau, outcome_count``: ``n(k, i, c' -> k', tau)``;
- ``start_label, start_agent, start_count``: the episode starts;
- ``reward_label, reward_agent, reward_successor, reward_value,
  reward_count``: per triple the distinct observed ``R`` (ascending) with
  their multiplicities (the Bayesian bootstrap of the posterior needs them);
- ``declared_agent, declared_successor`` (only when the trace declares
  admissible sets, whatever ``admissible``): the header's per-agent sets as
  pairs ``(i, c')``; the posterior borrows the declared triples a state never
  visited (:class:`estimators.posterior.PosteriorSampler`, ``borrow``);
- scalars ``alpha0`` (the posterior's prior concentration) and ``invocations``.

**Assumption checks** (G-tests of independence, :func:`grouped_g_test`):

- *Markov*: per triple ``(k, i, c')``, is the outcome ``(k', tau)``
  independent of the previous epoch's label (the label of the previous line
  of the episode; ``"start"`` for an episode's first line)? The statistics
  (Williams-corrected, see :func:`grouped_g_test`) and degrees of freedom of
  the triples with enough data are summed (under
  the Markov property the per-triple statistics are asymptotically
  independent chi-square variables) and the p-value is
  ``chi2.sf(sum G, sum dof)``; the smallest per-triple p-value is reported
  with its Bonferroni adjustment ``min(1, m * p_min)`` over the ``m``
  tested triples.
- *Successor dependence*: per epoch state ``(k, i)`` with at least two
  committed successors ``c' != STOP`` with data, does the law of the
  outcome depend on ``c'``? The main test compares the joint outcome
  ``(k', tau)``: labels are one set shared by all agents, so ``k'`` is
  comparable across successors, and under commit-at-start semantics with
  agent-independent labels (section 1, the export of section 10) the
  invocation's dynamics do not depend on ``c'``. When labels carry the
  successor's private state, ``k'`` differs by construction; the
  ``tau_only`` entry tests the law of ``tau`` alone, which is comparable in
  every case.

*Enough data* (the rule of both tests, per table): previous labels (rows)
and outcomes (columns) seen fewer than ``min_count = 5`` times in the table
are pooled into one "rare" row, respectively column; a pooled row or column
still below 5 is dropped; the table is tested when it then has at least two
rows and two columns and every expected count ``n_r n_c / n`` is at least 5
(the classical rule for the chi-square approximation of G).

Examples
--------
The G statistic of one 2 x 2 table (the group, row and column of each
observation), equal to ``2 sum n log(n n_total / (n_row n_col))``:

>>> import numpy as np
>>> rows = np.repeat([0, 0, 1, 1], [10, 20, 20, 10]); cols = np.repeat([0, 1, 0, 1], [10, 20, 20, 10])
>>> out = grouped_g_test(np.zeros(60, dtype=np.int64), rows, cols)
>>> round(float(out["statistic"][0]), 6), int(out["dof"][0]), bool(out["tested"][0])
(6.795961, 1, True)
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import chi2

from icsmdp_theory.epoch_level import FITTED_COUNTS
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError, InvalidTraceError
from icsmdp_theory.results import Result, to_jsonable
from icsmdp_theory.traces import TraceData
from icsmdp_theory.validation import positive_real

__all__ = ["FitResult", "fit_epoch_model", "grouped_g_test", "COUNTS_FORMAT", "ADMISSIBLE_CHOICES",
           "MIN_COUNT", "MIN_EXPECTED", "TEST_LEVEL"]

#: The ``format`` word of the ``counts`` mapping a fitted model carries.
COUNTS_FORMAT = FITTED_COUNTS
#: The choices of ``admissible``.
ADMISSIBLE_CHOICES = ("observed", "declared")
#: Rows/columns seen fewer times than this in a G-test table are pooled (then dropped if still rare).
MIN_COUNT = 5
#: A G-test table is tested only when every expected count is at least this.
MIN_EXPECTED = 5.0
#: The level of the one-line verdicts of the assumption checks.
TEST_LEVEL = 0.05


@dataclass(frozen=True, kw_only=True, repr=False)
class FitResult(Result):
    """The maximum-likelihood epoch model of a trace and its fit report (SPEC section 10).

    Attributes
    ----------
    model : EpochModel
        The maximum-likelihood model, with ``counts`` (:data:`COUNTS_FORMAT`).
    invocations : int
        Lines of the trace.
    invocations_used : int
        Invocations behind the estimates (with an outcome, not dangling).
    episodes, truncated_episodes : int
        Episodes of the trace, and those that end without ``STOP``.
    states_seen : int
        Epoch states of the model (pairs ``(k, i)`` with an outcome).
    pairs_without_outcome : int
        Pairs ``(k, i)`` seen only on the last line of truncated episodes (or only dangling).
    labels_seen : int
        Distinct labels on the trace's lines.
    triples_seen : int
        Admissible triples ``(k, i, c')`` of the model (each with data).
    unvisited_declared : list of dict
        ``{"label", "agent", "successor"}`` (names) of the declared triples of
        epoch states without data (empty for ``admissible="observed"``).
    dangling : int
        Invocations dropped because their next pair ``(k', c')`` is not an epoch state.
    starts_dropped : int
        Episode starts at a pair that is not an epoch state (left out of ``rho0``).
    markov_test, successor_test : dict
        ``statistic, dof, p_value, min_p_value, min_p_bonferroni, worst``, the
        number of tables tested and in all, ``verdict`` (one line); the
        successor test also has ``tau_only`` (the same for the law of ``tau``).
    alpha0 : float
        The posterior's prior concentration (stored in ``model.counts``).
    admissible : str
        ``"observed"`` or ``"declared"``.
    """

    model: EpochModel
    invocations: int
    invocations_used: int
    episodes: int
    truncated_episodes: int
    states_seen: int
    pairs_without_outcome: int
    labels_seen: int
    triples_seen: int
    unvisited_declared: list
    dangling: int
    starts_dropped: int
    markov_test: dict
    successor_test: dict
    alpha0: float
    admissible: str

    def to_dict(self) -> dict:
        """The fit report as JSON-ready data (``--json``): every field, the model summarized."""
        out = {}
        for f in dataclasses.fields(self):
            if f.name == "model":
                m = self.model
                out["model"] = {"name": m.name, "gamma": float(m.gamma),
                                "agents": list(m.agent_names), "num_labels": int(m.num_labels),
                                "num_epoch_states": int(m.num_epoch_states),
                                "num_triples": int(np.count_nonzero(m.admissible)),
                                "num_transitions": int(len(m.trans_prob))}
            else:
                out[f.name] = to_jsonable(getattr(self, f.name))
        return out


# ---------------------------------------------------------------- grouping helpers
def _group(*cols: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group equal rows of the columns ``cols`` (keys ordered by ``cols[0]``, then ``cols[1]``, ...).

    Returns ``(inverse, counts, first)``: the group of each row (0-based, in
    sorted order of the keys), the size of each group, and one row index of
    each group (``cols[j][first]`` are the keys). Integer columns are combined
    into one int64 key (mixed radix); a key range up to ``8 n + 2^20`` is
    grouped by counting (``bincount``, no sort), a larger one by one sort; a
    float column or a range beyond int64 falls back to ``np.lexsort``.
    """
    n = len(cols[0])
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    key = None
    if all(np.issubdtype(c.dtype, np.integer) for c in cols):
        key = np.zeros(n, dtype=np.int64)
        span = 1
        for c in cols:
            lo, hi = int(c.min()), int(c.max())
            width = hi - lo + 1
            if span * width >= 2 ** 62:
                key = None
                break
            key = key * width + (c - lo)
            span *= width
    if key is not None and span <= 8 * n + 2 ** 20:
        full = np.bincount(key, minlength=span)
        present = full > 0
        rank = np.cumsum(present) - 1
        first_full = np.empty(span, dtype=np.int64)
        first_full[key] = np.arange(n)         # any member of each group will do
        return rank[key], full[present], first_full[present]
    if key is not None:
        order = np.argsort(key, kind="stable")
        ks = key[order]
        change = np.empty(n, dtype=bool)
        change[0] = True
        change[1:] = ks[1:] != ks[:-1]
    else:
        order = np.lexsort(cols[::-1])
        change = np.zeros(n, dtype=bool)
        change[0] = True
        for c in cols:
            cs = c[order]
            change[1:] |= cs[1:] != cs[:-1]
    inverse = np.empty(n, dtype=np.int64)
    inverse[order] = np.cumsum(change) - 1
    starts = np.flatnonzero(change)
    counts = np.diff(np.append(starts, n))
    return inverse, counts, order[starts]


def _g_test_iv(group, row, col, min_count, min_expected):
    arrays = []
    for name, a in (("group", group), ("row", row), ("col", col)):
        a = np.asarray(a)
        if a.ndim != 1 or not np.issubdtype(a.dtype, np.integer):
            raise InvalidArgumentError(f"`{name}` must be a 1-d integer array, got dtype {a.dtype}, "
                                       f"shape {list(a.shape)}.")
        arrays.append(a.astype(np.int64, copy=True))   # pooled in place below
    if not len(arrays[0]) == len(arrays[1]) == len(arrays[2]):
        raise InvalidArgumentError(f"`group`, `row` and `col` must have the same length, got "
                                   f"{len(arrays[0])}, {len(arrays[1])}, {len(arrays[2])}.")
    if (len(arrays[1]) and arrays[1].min() < 0) or (len(arrays[2]) and arrays[2].min() < 0):
        raise InvalidArgumentError("`row` and `col` codes must be >= 0.")
    return (*arrays, positive_real("min_count", min_count), positive_real("min_expected", min_expected))


def grouped_g_test(group: np.ndarray, row: np.ndarray, col: np.ndarray, *,
                   min_count: float = MIN_COUNT, min_expected: float = MIN_EXPECTED) -> dict:
    r"""G-tests of independence of ``row`` and ``col`` within each ``group``, all groups at once.

    For the table ``n[r, c]`` of one group (``n_r``, ``n_c``, ``n`` its margins)::

        G = 2 sum_{r, c: n[r, c] > 0} n[r, c] log(n[r, c] n / (n_r n_c)),   dof = (R - 1)(C - 1)

    after pooling the rows, then columns, seen fewer than ``min_count`` times
    into one rare row/column (dropped if still below ``min_count``). A group is
    *tested* when its table has ``R >= 2`` rows, ``C >= 2`` columns and every
    expected count ``n_r n_c / n >= min_expected``; its p-value is
    ``chi2.sf(G / q, dof)`` with Williams' correction (Williams 1976; Sokal and Rohlf)
    ``q = 1 + (n sum_r 1/n_r - 1)(n sum_c 1/n_c - 1) / (6 n (R - 1)(C - 1))``, which
    removes the O(1/n) excess of ``E[G]`` over ``dof`` (uncorrected G is liberal
    on tables with many cells and expected counts near 5) (SPEC section 10, assumption checks).

    Parameters
    ----------
    group, row, col : ndarray of int, shape (n,)
        One entry per observation; ``row`` and ``col`` codes ``>= 0``.
    min_count, min_expected : float
        The pooling and testing thresholds (default 5 and 5).

    Returns
    -------
    dict of ndarray, one entry per group that keeps an observation
        ``group`` (its code), ``n``, ``rows``, ``cols``, ``statistic`` (G,
        uncorrected), ``williams`` (q), ``adjusted`` (G / q), ``dof``, ``min_expected``, ``tested`` (bool), ``p_value`` (``nan``
        where not tested).
    """
    group, row, col, min_count, min_expected = _g_test_iv(group, row, col, min_count, min_expected)
    rare = -1
    # pool rare rows and columns of each group's table into one code
    for codes in (row, col):
        inv, cnt, _ = _group(group, codes)
        codes[...] = np.where(cnt[inv] < min_count, rare, codes) if len(inv) else codes
    keep = np.ones(len(group), dtype=bool)
    for codes in (row, col):
        inv, cnt, _ = _group(group, codes)
        if len(inv):
            keep &= ~((codes == rare) & (cnt[inv] < min_count))
    group, row, col = group[keep], row[keep], col[keep]
    gi, gcount, gfirst = _group(group)
    ri, rcount, rfirst = _group(group, row)
    ci, ccount, cfirst = _group(group, col)
    _, cellcount, cellfirst = _group(group, row, col)
    num_groups = len(gcount)
    n_g = gcount.astype(float)
    if num_groups:
        cg = gi[cellfirst]
        ratio = (cellcount * n_g[cg]) / (rcount[ri[cellfirst]].astype(float) * ccount[ci[cellfirst]])
        stat = 2.0 * np.bincount(cg, weights=cellcount * np.log(ratio), minlength=num_groups)
        stat = np.maximum(stat, 0.0)   # rounding may leave -1e-15 on an independent table
        nrows = np.bincount(gi[rfirst], minlength=num_groups)
        ncols = np.bincount(gi[cfirst], minlength=num_groups)
        minr = np.full(num_groups, np.inf)
        minc = np.full(num_groups, np.inf)
        np.minimum.at(minr, gi[rfirst], rcount.astype(float))
        np.minimum.at(minc, gi[cfirst], ccount.astype(float))
        min_exp = minr * minc / n_g
        inv_r = np.bincount(gi[rfirst], weights=1.0 / rcount, minlength=num_groups)
        inv_c = np.bincount(gi[cfirst], weights=1.0 / ccount, minlength=num_groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            q = 1.0 + (n_g * inv_r - 1.0) * (n_g * inv_c - 1.0) / (6.0 * n_g * (nrows - 1) * (ncols - 1))
        q = np.where((nrows >= 2) & (ncols >= 2), q, 1.0)
    else:
        q = np.zeros(0)
        stat = np.zeros(0)
        nrows = ncols = np.zeros(0, dtype=np.int64)
        min_exp = np.zeros(0)
    dof = (nrows - 1) * (ncols - 1)
    tested = (nrows >= 2) & (ncols >= 2) & (min_exp >= min_expected)
    adjusted = stat / q
    p = np.full(num_groups, np.nan)
    if tested.any():
        p[tested] = chi2.sf(adjusted[tested], dof[tested])
    return {"group": group[gfirst] if num_groups else np.zeros(0, dtype=np.int64),
            "n": gcount, "rows": nrows, "cols": ncols, "statistic": stat, "williams": q,
            "adjusted": adjusted, "dof": dof,
            "min_expected": min_exp, "tested": tested, "p_value": p}


def _summarize_test(out: dict, what: str, name_group) -> dict:
    """The summed test of the tested groups of :func:`grouped_g_test`, with its verdict line."""
    tested = out["tested"]
    m = int(tested.sum())
    summary = {"statistic": float(out["adjusted"][tested].sum()),
               "raw_statistic": float(out["statistic"][tested].sum()),
               "dof": int(out["dof"][tested].sum()), "p_value": float("nan"),
               "tested": m, "candidates": int(len(tested)),
               "min_p_value": float("nan"), "min_p_bonferroni": float("nan"), "worst": None,
               "rule": (f"rows/columns seen < {MIN_COUNT} times pooled (dropped if still rare); "
                        f"tested when >= 2 rows, >= 2 columns, every expected count >= {MIN_EXPECTED:g}; "
                        f"G divided by Williams' correction q per table")}
    if m == 0:
        summary["verdict"] = (f"{what}: not tested (no table has enough data: "
                              f"every expected count >= {MIN_EXPECTED:g} after pooling).")
        return summary
    p = float(chi2.sf(summary["statistic"], summary["dof"]))
    idx = np.flatnonzero(tested)
    j = idx[np.argmin(out["p_value"][idx])]
    pmin = float(out["p_value"][j])
    summary.update(p_value=p, min_p_value=pmin, min_p_bonferroni=min(1.0, m * pmin),
                   worst=name_group(int(out["group"][j])))
    ok = p >= TEST_LEVEL
    summary["verdict"] = (
        f"{what}: {'no evidence against it' if ok else 'rejected'} at {TEST_LEVEL:.0%} "
        f"(G = {summary['statistic']:.4g}, dof = {summary['dof']}, p = {p:.3g}, {m} tables; "
        f"smallest per-table p = {pmin:.3g}, Bonferroni {min(1.0, m * pmin):.3g}).")
    return summary


# ---------------------------------------------------------------- the fit
def _fit_epoch_model_iv(trace, admissible, alpha0):
    if not isinstance(trace, TraceData):
        raise InvalidArgumentError(f"`trace` must be a TraceData (icsmdp_theory.traces.read_trace), "
                                   f"got {type(trace).__name__}.")
    if admissible not in ADMISSIBLE_CHOICES:
        raise InvalidArgumentError(f"`admissible` must be one of {', '.join(ADMISSIBLE_CHOICES)}, "
                                   f"got {admissible!r}.")
    if admissible == "declared" and trace.declared_admissible is None:
        raise InvalidArgumentError(f"`admissible='declared'` needs the header key `admissible`, "
                                   f"which the trace {trace.path} does not have; use "
                                   f"admissible='observed'.")
    if trace.num_invocations == 0:
        raise InvalidTraceError(f"{trace.path}: the trace has no invocation line to fit.")
    return positive_real("alpha0", alpha0)


def _declared_matrix(trace: TraceData, num_agents: int) -> np.ndarray:
    """``declared[i, c']``: the header's admissible sets (keys: agent names or indices)."""
    declared = np.zeros((num_agents, num_agents + 1), dtype=bool)
    names = list(trace.agent_names)
    for key, successors in trace.declared_admissible.items():
        i = names.index(key) if isinstance(key, str) else int(key)
        declared[i, np.asarray(list(successors), dtype=np.int64)] = True
    return declared


def _previous_labels(trace: TraceData, start_code: int) -> tuple[np.ndarray, np.ndarray]:
    """The previous line's label of every line (``start_code`` for an episode's first line), and the first lines."""
    n = trace.num_invocations
    order = np.lexsort((np.asarray(trace.line), np.asarray(trace.episode)))
    ep = np.asarray(trace.episode)[order]
    first = np.ones(n, dtype=bool)
    first[1:] = ep[1:] != ep[:-1]
    prev_sorted = np.empty(n, dtype=np.int64)
    prev_sorted[0] = start_code
    prev_sorted[1:] = np.asarray(trace.label)[order][:-1]
    prev_sorted[first] = start_code
    prev = np.empty(n, dtype=np.int64)
    prev[order] = prev_sorted
    return prev, order[first]


def fit_epoch_model(trace: TraceData, *, admissible: str = "observed", alpha0: float = 0.5) -> FitResult:
    r"""The maximum-likelihood epoch model of a trace, with counts and assumption checks (SPEC section 10).

    ``P_hat(k', tau | k, i, c') = n(k, i, c' -> k', tau) / n(k, i, c')``,
    ``R_hat`` the mean observed ``R``, ``rho0_hat`` the share of episode starts;
    see the module docstring for what is kept, dropped and tested.

    Parameters
    ----------
    trace : TraceData
        A trace read by :func:`icsmdp_theory.traces.read_trace`.
    admissible : {"observed", "declared"}
        The admissible sets: successors with data, or the header's sets
        intersected with the triples with data.
    alpha0 : float
        The posterior's prior concentration per outcome, stored in the counts (> 0).

    Returns
    -------
    FitResult
        ``status="computed"``; ``model.counts`` holds the evidence.

    Raises
    ------
    InvalidArgumentError
        Bad ``admissible``/``alpha0``, or ``"declared"`` on a trace without declared sets.
    InvalidTraceError
        An empty trace, no invocation with an outcome, no episode starting at an
        epoch state, or (``"declared"``) a successor outside its agent's declared set.
    """
    alpha0 = _fit_epoch_model_iv(trace, admissible, alpha0)
    t0 = time.perf_counter()
    agents = tuple(trace.agent_names)
    N = len(agents)
    stop = N
    K_trace = len(trace.labels)
    label = np.asarray(trace.label, dtype=np.int64)
    agent = np.asarray(trace.agent, dtype=np.int64)
    succ = np.asarray(trace.successor, dtype=np.int64)
    tau = np.asarray(trace.tau, dtype=np.int64)
    reward = np.asarray(trace.reward, dtype=float)
    next_label = np.asarray(trace.next_label, dtype=np.int64)
    n = len(label)
    is_stop = succ == stop
    with_outcome = is_stop | (next_label >= 0)

    # ---- epoch states and dangling invocations (fixpoint over vectorized rounds)
    key = label * N + agent
    next_key = np.where(is_stop | (next_label < 0), 0, next_label * N + np.minimum(succ, N - 1))
    kept = with_outcome.copy()
    is_state = np.zeros(K_trace * N, dtype=bool)
    while True:
        is_state[:] = False
        is_state[key[kept]] = True
        new = kept & (is_stop | is_state[next_key])
        if new.sum() == kept.sum():
            break
        kept = new
    if not kept.any():
        raise InvalidTraceError(
            f"{trace.path}: no invocation has an outcome (every episode is truncated after its "
            f"first line, or every outcome leads to a pair never seen with an outcome); nothing "
            f"can be estimated.")
    dangling = int(with_outcome.sum() - kept.sum())
    seen_pairs = np.unique(key)
    pairs_without_outcome = int(len(seen_pairs) - is_state.sum())

    if admissible == "declared":
        declared = _declared_matrix(trace, N)
        bad = kept & ~declared[agent, succ]
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            sname = "STOP" if succ[j] == stop else agents[succ[j]]
            raise InvalidTraceError(
                f"{trace.path}: line {int(trace.line[j])}: key `successor`: {sname!r} is not in the "
                f"declared admissible set of agent {agents[agent[j]]!r} (header key `admissible`).")

    # ---- compact labels and epoch states of the model
    model_labels = np.unique(label[kept])                     # trace label indices used by states
    new_label = np.full(K_trace, -1, dtype=np.int64)
    new_label[model_labels] = np.arange(len(model_labels))
    labels = tuple(trace.labels[k] for k in model_labels.tolist())
    K = len(labels)
    L, A, C = new_label[label[kept]], agent[kept], succ[kept]
    T = tau[kept]
    Rk = reward[kept]
    NL = np.where(is_stop[kept], -1, new_label[np.maximum(next_label[kept], 0)])
    skey = L * N + A
    state_keys = np.unique(skey)
    S = len(state_keys)
    state_label, state_agent = state_keys // N, state_keys % N
    s = np.searchsorted(state_keys, skey)
    triple = s * (N + 1) + C
    tcount = np.bincount(triple, minlength=S * (N + 1))
    adm = (tcount > 0).reshape(S, N + 1)

    # ---- transitions: outcomes per triple
    out_inv, out_count, out_first = _group(triple, NL, T)
    t_of = triple[out_first]
    prob = out_count / tcount[t_of]
    transitions = {"state": t_of // (N + 1), "successor": t_of % (N + 1),
                   "next_label": NL[out_first], "tau": T[out_first], "prob": prob}

    # ---- rewards, components
    rsum = np.bincount(triple, weights=Rk, minlength=S * (N + 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        R_hat = np.where(tcount > 0, rsum / np.maximum(tcount, 1), np.nan).reshape(S, N + 1)
    components = None
    component_names = tuple(trace.component_names or ())
    if trace.components is not None and len(component_names):
        comp = np.asarray(trace.components, dtype=float)[kept]
        components = np.full((S, N + 1, len(component_names)), np.nan)
        for j in range(len(component_names)):
            csum = np.bincount(triple, weights=comp[:, j], minlength=S * (N + 1))
            components[:, :, j] = np.where(adm, (csum / np.maximum(tcount, 1)).reshape(S, N + 1), np.nan)
    _, rv_count, rv_first = _group(triple, Rk)      # distinct R per triple, ascending, exact equality

    # ---- episode starts
    prev, first_lines = _previous_labels(trace, K_trace)
    start_key = np.where(new_label[label[first_lines]] >= 0,
                         new_label[label[first_lines]] * N + agent[first_lines], -1)
    pos = np.minimum(np.searchsorted(state_keys, start_key), S - 1)
    start_in = state_keys[pos] == start_key
    starts_dropped = int((~start_in).sum())
    if not start_in.any():
        raise InvalidTraceError(f"{trace.path}: no episode starts at an epoch state, so rho0 cannot "
                                f"be estimated.")
    start_count = np.bincount(pos[start_in], minlength=S)
    rho0 = start_count / start_count.sum()
    st = np.flatnonzero(start_count)

    counts = {
        "format": COUNTS_FORMAT, "alpha0": alpha0, "invocations": int(kept.sum()),
        "triple_label": state_label[np.flatnonzero(adm.ravel()) // (N + 1)],
        "triple_agent": state_agent[np.flatnonzero(adm.ravel()) // (N + 1)],
        "triple_successor": np.flatnonzero(adm.ravel()) % (N + 1),
        "triple_count": tcount[adm.ravel()],
        "outcome_label": state_label[t_of // (N + 1)], "outcome_agent": state_agent[t_of // (N + 1)],
        "outcome_successor": t_of % (N + 1), "outcome_next_label": NL[out_first],
        "outcome_tau": T[out_first], "outcome_count": out_count,
        "start_label": state_label[st], "start_agent": state_agent[st], "start_count": start_count[st],
        "reward_label": state_label[triple[rv_first] // (N + 1)],
        "reward_agent": state_agent[triple[rv_first] // (N + 1)],
        "reward_successor": triple[rv_first] % (N + 1),
        "reward_value": Rk[rv_first], "reward_count": rv_count,
    }
    if trace.declared_admissible is not None:
        di, dc = np.nonzero(_declared_matrix(trace, N))
        counts["declared_agent"], counts["declared_successor"] = di, dc
    # JSON-compatible values (EpochModel keeps counts as given and writes them to files)
    counts = {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in counts.items()}
    name = f"fit of {Path(str(trace.path)).name}" if trace.path is not None else "fitted epoch model"
    model = EpochModel(name=name, gamma=float(trace.gamma), agents=agents, labels=labels,
                       states=np.stack([state_label, state_agent], axis=1), admissible=adm,
                       rho0=rho0, transitions=transitions, reward=R_hat,
                       component_names=component_names, components=components, counts=counts)

    # ---- unvisited declared triples
    unvisited = []
    if admissible == "declared":
        missing = declared[state_agent] & ~adm
        for s_, c_ in zip(*np.nonzero(missing)):
            unvisited.append({"label": labels[state_label[s_]], "agent": agents[state_agent[s_]],
                              "successor": "STOP" if c_ == stop else agents[c_]})

    # ---- assumption checks
    def name_triple(t: int) -> dict:
        s_, c_ = divmod(t, N + 1)
        return {"label": labels[state_label[s_]], "agent": agents[state_agent[s_]],
                "successor": "STOP" if c_ == stop else agents[c_]}

    def name_state(s_: int) -> dict:
        return {"label": labels[state_label[s_]], "agent": agents[state_agent[s_]]}

    outcome_code = out_inv                                   # (triple, k', tau) ids; within a triple = (k', tau)
    markov = _summarize_test(grouped_g_test(triple, prev[kept], outcome_code),
                             "Markov property of the labels", name_triple)
    markov["previous"] = "label of the previous line of the episode ('start' for the first line)"
    nonstop = C != stop
    joint_inv, _, _ = _group(NL[nonstop], T[nonstop])
    successor = _summarize_test(grouped_g_test(s[nonstop], C[nonstop], joint_inv),
                                "outcome law (k', tau) independent of the committed successor",
                                name_state)
    successor["outcome"] = "(k', tau)"
    successor["tau_only"] = _summarize_test(grouped_g_test(s[nonstop], C[nonstop], T[nonstop]),
                                            "law of tau independent of the committed successor",
                                            name_state)

    n_ep = int(trace.num_episodes)
    message = (f"fit: {S} epoch states, {int(adm.sum())} triples, {len(prob)} transitions from "
               f"{int(kept.sum())} of {n} invocations ({dangling} dangling dropped, "
               f"{n - int(with_outcome.sum())} without outcome).")
    return FitResult(success=True, status="computed", message=message, iterations=0,
                     settings={"admissible": admissible, "alpha0": alpha0,
                               "min_count": MIN_COUNT, "min_expected": MIN_EXPECTED},
                     elapsed=time.perf_counter() - t0, model=model, invocations=n,
                     invocations_used=int(kept.sum()), episodes=n_ep,
                     truncated_episodes=int(trace.num_truncated_episodes), states_seen=S,
                     pairs_without_outcome=pairs_without_outcome,
                     labels_seen=int(len(np.unique(label))), triples_seen=int(adm.sum()),
                     unvisited_declared=unvisited, dangling=dangling, starts_dropped=starts_dropped,
                     markov_test=markov, successor_test=successor, alpha0=alpha0,
                     admissible=admissible)
