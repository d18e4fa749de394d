r"""Posterior epoch models of a fitted trace, credible intervals, trace subsamples (SPEC section 10).

Given the counts of a maximum-likelihood fit (:func:`estimators.fit.fit_epoch_model`,
``model.counts`` in the format :data:`estimators.fit.COUNTS_FORMAT`), a
posterior draw is an epoch model with the ML model's states, admissible sets,
labels, observation maps, ``gamma`` and components, and:

- **laws**: for each admissible ``(s, c')`` independently
  ``P(., . | s, c') ~ Dirichlet(alpha0 + n(s, c' -> k', tau))`` over the
  support ``O_{c'}`` = every outcome ``(k', tau)`` seen for successor ``c'``
  anywhere in the trace (``support="successor"``, SPEC 10; outcomes of
  ``O_{c'}`` not seen at ``s`` get the prior ``alpha0`` alone). With
  ``support="pooled"`` the support is the same but the prior's *total* mass per
  ``(s, c')`` is ``alpha0``, spread over ``O_{c'}`` in proportion to how often each
  outcome follows ``c'`` in the whole trace (an empirical-Bayes prior: with hundreds
  of outcomes the SPEC prior's ``0.5`` per outcome outweighs the data of a state seen a
  few times; see the README for the coverage measured with each). With
  ``support="observed"`` the support is the outcomes seen at ``(s, c')``
  itself (not the SPEC prior: much smaller on large models; offered for speed);
- **rewards**: ``R(s, c')`` by Bayesian bootstrap, the Dirichlet(1, ..., 1)-weighted
  mean of the triple's observed ``R`` values. Weights over ``n`` observations
  aggregated over the distinct values ``v_j`` with multiplicities ``m_j`` are
  ``Dirichlet(m_1, ..., m_d)`` (aggregation property), so the draw is
  ``sum_j w_j v_j`` with ``w ~ Dirichlet(m)``. A model whose counts lack the
  reward values (a model saved without them) keeps the ML mean ``R_hat``
  (``reward_bootstrap`` is then ``False`` and :attr:`PosteriorSampler.notes` says so).
  Reward components keep their ML means in every draw;
- **initial law**: ``rho0 ~ Dirichlet(alpha0 + starts(s))`` over the states
  seen at episode starts (other states keep probability 0).

Dirichlet vectors are drawn as normalized independent gammas, all entries of
a draw at once (one ``rng.standard_gamma`` call, sums per segment by
``np.add.reduceat``); draws are built with ``EpochModel(..., validate=False)``.

:func:`equal_tailed_interval` is the equal-tailed credible interval of
posterior values; :func:`subsample_trace` keeps a random share of whole
episodes (the evidence-needed study: interval width against trace size).

Examples
--------
The 50 % equal-tailed interval of 0, 1, ..., 100 (type-7 quantiles 0.25 and 0.75):

>>> import numpy as np
>>> lo, hi = equal_tailed_interval(np.arange(101.0), 0.5)
>>> float(lo), float(hi)
(25.0, 75.0)
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.traces import TraceData
from icsmdp_theory.validation import is_real, positive_int, positive_real, unit_interval
from estimators.fit import COUNTS_FORMAT, FitResult

__all__ = ["PosteriorSampler", "equal_tailed_interval", "subsample_trace", "SUPPORT_CHOICES",
           "DEFAULT_MAX_OUTCOMES", "DEFAULT_SUPPORT",
           "DEFAULT_ALPHA0"]

#: The choices of ``support`` of :class:`PosteriorSampler`.
SUPPORT_CHOICES = ("successor", "pooled", "observed")
#: The default ``support``: ``"pooled"`` (see the module docstring and the README: with the
#: SPEC's ``"successor"`` prior the 90 % intervals covered the truth in 0 of 50 workflow traces).
DEFAULT_SUPPORT = "pooled"
#: ``support="pooled"``: the prior of each ``(s, c')`` covers the outcomes seen at it and the
#: ``DEFAULT_MAX_OUTCOMES`` most frequent outcomes of ``c'`` in the trace (bounded cost per draw).
DEFAULT_MAX_OUTCOMES = 16
#: The prior concentration per outcome when neither the caller nor the counts give one (SPEC 10).
DEFAULT_ALPHA0 = 0.5

_OUTCOME_KEYS = ("outcome_label", "outcome_agent", "outcome_successor", "outcome_next_label",
                 "outcome_tau", "outcome_count")
_START_KEYS = ("start_label", "start_agent", "start_count")
_REWARD_KEYS = ("reward_label", "reward_agent", "reward_successor", "reward_value", "reward_count")


def _column(counts, key, dtype, where):
    try:
        a = np.asarray(counts[key], dtype=dtype)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"`counts` key `{key}` of {where} must be a list of numbers.") from None
    if a.ndim != 1:
        raise InvalidArgumentError(f"`counts` key `{key}` of {where} must be a flat list, got shape "
                                   f"{list(a.shape)}.")
    return a


def _state_of(model: EpochModel, label: np.ndarray, agent: np.ndarray, what: str) -> np.ndarray:
    """Epoch-state indices of the pairs ``(label, agent)``; an unknown pair is an error naming it."""
    N, S = model.num_agents, model.num_epoch_states
    keys = model.state_label * N + model.state_agent       # sorted (the model stores states sorted)
    want = label * N + agent
    pos = np.minimum(np.searchsorted(keys, want), S - 1)
    bad = keys[pos] != want
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise InvalidArgumentError(f"`counts` {what} entry {j}: (label {int(label[j])}, agent "
                                   f"{int(agent[j])}) is not an epoch state of the model.")
    return pos


def _posterior_sampler_iv(source, alpha0, support):
    if isinstance(source, FitResult):
        model = source.model
    elif isinstance(source, EpochModel):
        model = source
    else:
        raise InvalidArgumentError(f"`source` must be a FitResult or a fitted EpochModel, got "
                                   f"{type(source).__name__}.")
    counts = model.counts
    if not counts or counts.get("format") != COUNTS_FORMAT:
        raise InvalidArgumentError(
            f"the model {model.name!r} carries no fit counts (`counts` with format "
            f"{COUNTS_FORMAT!r}); a posterior needs the evidence of a fit "
            f"(estimators.fit.fit_epoch_model).")
    missing = [k for k in _OUTCOME_KEYS + _START_KEYS if k not in counts]
    if missing:
        raise InvalidArgumentError(f"`counts` of the model {model.name!r} lacks {', '.join(missing)}.")
    if alpha0 is None:
        alpha0 = counts.get("alpha0", DEFAULT_ALPHA0)
    alpha0 = positive_real("alpha0", alpha0)
    if support not in SUPPORT_CHOICES:
        raise InvalidArgumentError(f"`support` must be one of {', '.join(SUPPORT_CHOICES)}, got "
                                   f"{support!r}.")
    return model, alpha0


class PosteriorSampler:
    r"""Draw epoch models from the posterior of a fit (SPEC section 10, "Posterior").

    Parameters
    ----------
    source : FitResult or EpochModel
        A fit, or a fitted model carrying its counts (e.g. loaded from a file;
        its observation maps, if changed by ``with_observation``, are kept).
    alpha0 : float, optional
        Prior concentration per outcome; default: the fit's (``counts["alpha0"]``), else 0.5.
    rng : None, int or numpy Generator
        Normalized once with ``numpy.random.default_rng``.
    support : {"successor", "observed"}
        The Dirichlet support of each ``(s, c')``: the outcomes seen for ``c'``
        anywhere in the trace (SPEC 10, default), or those seen at ``(s, c')``.

    Attributes
    ----------
    model : EpochModel
        The maximum-likelihood model.
    alpha0 : float
    support : str
    num_entries : int
        Dirichlet entries per draw (transition rows of each drawn model).
    reward_bootstrap : bool
        Whether rewards are bootstrapped (``False``: the counts lack the ``R`` values).
    notes : tuple of str
        Fallbacks taken, one sentence each.

    Examples
    --------
    See ``property_tests/estimators/test_posterior.py``: a draw's law per
    ``(s, c')`` has the closed-form Dirichlet mean ``(alpha0 + n) / (M alpha0 + n_total)``.
    """

    def __init__(self, source: FitResult | EpochModel, *, alpha0: float | None = None,
                 rng: Any = None, support: str = DEFAULT_SUPPORT,
                 max_outcomes: int | None = DEFAULT_MAX_OUTCOMES):
        model, alpha0 = _posterior_sampler_iv(source, alpha0, support)
        if max_outcomes is not None:
            max_outcomes = positive_int("max_outcomes", max_outcomes)
        self.model, self.alpha0, self.support = model, alpha0, support
        self.rng = np.random.default_rng(rng)
        counts = model.counts
        where = f"the model {model.name!r}"
        N = model.num_agents
        notes = []

        # ---- observed outcomes per (s, c')
        lab, ag, c, nl, tau, cnt = (_column(counts, k, np.int64 if k != "outcome_count" else float, where)
                                    for k in _OUTCOME_KEYS)
        s = _state_of(model, lab, ag, "outcome")
        pair = s * (N + 1) + c
        adm_pairs = np.flatnonzero(model.admissible.ravel())          # sorted (s, c')
        span_nl = int(nl.max(initial=0)) + 2
        span_tau = int(tau.max(initial=1)) + 1
        wkey = (pair * span_nl + (nl + 1)) * span_tau + tau          # observed rows, encoded
        if support in ("successor", "pooled"):
            # O_{c'}: distinct (c', k', tau) seen anywhere, sorted; how often each was seen
            okey, oinv = np.unique(np.stack([c, nl, tau], axis=1), axis=0, return_inverse=True)
            o_tot = np.bincount(oinv.ravel(), weights=cnt, minlength=len(okey))
            if support == "pooled" and max_outcomes is not None:
                # keep the max_outcomes most frequent outcomes of each successor in the prior
                rank = np.lexsort((-o_tot, okey[:, 0]))           # by successor, most frequent first
                first = np.searchsorted(okey[rank, 0], okey[rank, 0], side="left")
                keep = np.zeros(len(okey), dtype=bool)
                keep[rank[np.arange(len(okey)) - first < max_outcomes]] = True
                okey_p = okey[keep]
            else:
                okey_p = okey
            o_c, o_nl, o_tau = okey_p[:, 0], okey_p[:, 1], okey_p[:, 2]
            per_c = np.bincount(o_c, minlength=N + 1)
            c_start = np.concatenate([[0], np.cumsum(per_c)[:-1]])
            pc = adm_pairs % (N + 1)
            sizes = per_c[pc]
            if (sizes == 0).any():
                j = adm_pairs[np.flatnonzero(sizes == 0)[0]]
                raise InvalidArgumentError(f"`counts` of {where}: the admissible pair (state "
                                           f"{j // (N + 1)}, successor {j % (N + 1)}) has no outcome "
                                           f"seen for its successor anywhere.")
            start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
            entry = np.repeat(c_start[pc], sizes) + np.arange(sizes.sum()) - np.repeat(start, sizes)
            gen = (np.repeat(adm_pairs, sizes) * span_nl + (o_nl[entry] + 1)) * span_tau + o_tau[entry]
            if not np.isin(pair, adm_pairs).all():
                raise InvalidArgumentError(f"`counts` of {where}: an outcome row lies on a pair that "
                                           f"is not admissible in the model.")
            ekey = np.union1d(gen, wkey)                      # every observed row stays an entry
            e_pair = ekey // (span_nl * span_tau)
            e_nl = (ekey // span_tau) % span_nl - 1
            e_tau = ekey % span_tau
            if support == "pooled":
                # empirical-Bayes prior: total mass alpha0 per (s, c') over its entries, in
                # proportion to how often each outcome follows c' anywhere in the trace
                ocode = (okey[:, 0] * span_nl + (okey[:, 1] + 1)) * span_tau + okey[:, 2]
                e_code = ((e_pair % (N + 1)) * span_nl + (e_nl + 1)) * span_tau + e_tau
                share = o_tot[np.searchsorted(ocode, e_code)]
                seg = np.searchsorted(adm_pairs, e_pair)
                share = share / np.bincount(seg, weights=share, minlength=len(adm_pairs))[seg]
                prior = alpha0 * share
            else:
                prior = np.full(len(ekey), alpha0)
        else:
            ekey = np.unique(wkey)
            e_pair = ekey // (span_nl * span_tau)
            e_nl = (ekey // span_tau) % span_nl - 1
            e_tau = ekey % span_tau
            if not np.isin(e_pair, adm_pairs).all():
                raise InvalidArgumentError(f"`counts` of {where}: the outcome rows do not cover "
                                           f"exactly the admissible pairs of the model.")
            prior = np.full(len(ekey), alpha0)
        sizes = np.bincount(np.searchsorted(adm_pairs, e_pair), minlength=len(adm_pairs))
        if (sizes == 0).any():
            j = adm_pairs[np.flatnonzero(sizes == 0)[0]]
            raise InvalidArgumentError(f"`counts` of {where}: the admissible pair (state "
                                       f"{j // (N + 1)}, successor {j % (N + 1)}) has no outcome.")
        seg_start = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        e_count = np.zeros(len(ekey))
        np.add.at(e_count, np.searchsorted(ekey, wkey), cnt)
        self._conc = e_count + prior
        self._seg_start = seg_start
        self._seg_len = sizes
        self._transitions = {"state": e_pair // (N + 1), "successor": e_pair % (N + 1),
                             "next_label": e_nl, "tau": e_tau}
        self.num_entries = int(len(e_pair))

        # ---- rewards: distinct observed values per triple with multiplicities
        self.reward_bootstrap = all(k in counts for k in _REWARD_KEYS)
        if self.reward_bootstrap:
            rl, ra, rc = (_column(counts, k, np.int64, where) for k in _REWARD_KEYS[:3])
            rv = _column(counts, "reward_value", float, where)
            rm = _column(counts, "reward_count", float, where)
            rpair = _state_of(model, rl, ra, "reward") * (N + 1) + rc
            order = np.argsort(rpair, kind="stable")
            rpair, rv, rm = rpair[order], rv[order], rm[order]
            self._r_pairs, first = np.unique(rpair, return_index=True)
            self._r_start, self._r_values, self._r_mult = first, rv, rm
        else:
            notes.append("the counts lack the observed rewards (reward_* keys): every draw keeps the "
                         "maximum-likelihood mean R_hat.")

        # ---- initial law
        sl, sa = (_column(counts, k, np.int64, where) for k in _START_KEYS[:2])
        sc = _column(counts, "start_count", float, where)
        self._start_states = _state_of(model, sl, sa, "start")
        self._start_conc = sc + alpha0
        self.notes = tuple(notes)

    def _dirichlet(self, conc: np.ndarray, start: np.ndarray, rng=None) -> np.ndarray:
        """Independent Dirichlet vectors on consecutive segments starting at ``start``."""
        rng = self.rng if rng is None else rng
        g = rng.standard_gamma(conc)
        sums = np.add.reduceat(g, start)
        if not (sums > 0).all():                 # all gammas underflowed (tiny alpha0): redo in logs
            lg = np.log(rng.standard_gamma(conc + 1.0)) + np.log(rng.random(len(conc))) / conc
            seg = np.repeat(np.arange(len(start)), np.diff(np.append(start, len(conc))))
            g = np.exp(lg - np.maximum.reduceat(lg, start)[seg])
            sums = np.add.reduceat(g, start)
        return g / np.repeat(sums, np.diff(np.append(start, len(conc))))

    def draw(self, rng: Any = None) -> EpochModel:
        """One posterior epoch model (``validate=False``; its counts only mark it as fitted,
        so its cells follow the fitted models' union rule, :class:`~icsmdp_theory.epoch_level.EpochLevel`).

        ``rng`` (optional): a seed or Generator for this draw alone (so a draw can be
        reproduced from its own seed whatever ran before); default the sampler's stream.
        """
        rng = self.rng if rng is None else np.random.default_rng(rng)
        m = self.model
        S = m.num_epoch_states
        prob = self._dirichlet(self._conc, self._seg_start, rng)
        reward = np.array(m.reward, dtype=float)
        if self.reward_bootstrap:
            w = self._dirichlet(self._r_mult, self._r_start, rng)
            mean = np.add.reduceat(w * self._r_values, self._r_start)
            reward.ravel()[self._r_pairs] = mean
        rho0 = np.zeros(S)
        rho0[self._start_states] = self._dirichlet(self._start_conc, np.zeros(1, dtype=np.int64), rng)
        transitions = dict(self._transitions, prob=prob)
        return EpochModel(name=f"posterior draw of {m.name}", gamma=m.gamma, agents=m.agent_names,
                          labels=m.labels, states=np.stack([m.state_label, m.state_agent], axis=1),
                          admissible=m.admissible, rho0=rho0, transitions=transitions,
                          reward=reward, observation=m.observation,
                          component_names=m.component_names, components=m.components,
                          counts={"format": COUNTS_FORMAT, "posterior_draw": True},
                          validate=False)

    def draws(self, n: int) -> list[EpochModel]:
        """``n`` independent posterior epoch models."""
        n = positive_int("n", n)
        return [self.draw() for _ in range(n)]

    def __repr__(self) -> str:
        return (f"PosteriorSampler({self.model.name!r}, alpha0={self.alpha0:g}, support={self.support!r}, "
                f"{self.num_entries} Dirichlet entries per draw, reward_bootstrap={self.reward_bootstrap})")


def _equal_tailed_interval_iv(values, level):
    level = unit_interval("level", level, open_low=True, open_high=True)
    try:
        x = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError):
        raise InvalidArgumentError("`values` must be numbers.") from None
    if x.size == 0:
        raise InvalidArgumentError("`values` must hold at least one number.")
    return x, level


def equal_tailed_interval(values: Any, level: float = 0.9) -> tuple[float, float]:
    r"""The equal-tailed credible interval ``[q_{(1-level)/2}, q_{(1+level)/2}]`` of ``values``.

    Quantiles by linear interpolation between order statistics (Hyndman-Fan
    type 7, numpy's ``method="linear"``): ``q_p = x_(j) + (h - j)(x_(j+1) - x_(j))``
    with ``h = (n - 1) p``, ``j = floor(h)`` on the sorted values; equal
    neighbours give that value exactly (so ``inf`` stays ``inf``). Any ``nan``
    gives ``(nan, nan)``.

    Parameters
    ----------
    values : array_like of float
        Posterior values of one quantity (at least one).
    level : float in (0, 1)
        Credible level (default 0.9).

    Returns
    -------
    (float, float)
    """
    x, level = _equal_tailed_interval_iv(values, level)
    if np.isnan(x).any():
        return float("nan"), float("nan")
    x = np.sort(x)
    h = (x.size - 1) * np.array([(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    j = np.floor(h).astype(np.int64)
    k = np.minimum(j + 1, x.size - 1)
    lo, hi = x[j], x[k]
    with np.errstate(invalid="ignore"):
        q = np.where(lo == hi, lo, lo + (h - j) * (hi - lo))
    return float(q[0]), float(q[1])


def _subsample_trace_iv(trace, fraction):
    if not isinstance(trace, TraceData):
        raise InvalidArgumentError(f"`trace` must be a TraceData, got {type(trace).__name__}.")
    if not is_real(fraction) or not 0.0 < float(fraction) <= 1.0:
        raise InvalidArgumentError(f"`fraction` must lie in (0, 1], got {fraction!r}.")
    return float(fraction)


def subsample_trace(trace: TraceData, fraction: float, rng: Any = None) -> TraceData:
    """A trace of ``round(fraction * episodes)`` (at least 1) whole episodes drawn without replacement.

    Lines keep their file order and line numbers; episodes are renumbered by
    first appearance; labels stay those of ``trace`` (some may be unused).

    Parameters
    ----------
    trace : TraceData
    fraction : float in (0, 1]
    rng : None, int or numpy Generator

    Returns
    -------
    TraceData
    """
    fraction = _subsample_trace_iv(trace, fraction)
    rng = np.random.default_rng(rng)
    E = int(trace.num_episodes)
    m = min(E, max(1, int(round(fraction * E))))
    chosen = np.zeros(E, dtype=bool)
    chosen[rng.choice(E, size=m, replace=False)] = True
    keep = chosen[np.asarray(trace.episode)]
    old = np.flatnonzero(chosen)
    new_id = np.full(E, -1, dtype=np.int64)
    new_id[old] = np.arange(m)

    def ro(a):
        a = np.ascontiguousarray(a)
        a.setflags(write=False)
        return a

    n_stop = int(np.count_nonzero(np.asarray(trace.successor)[keep] == trace.num_agents))
    ids = tuple(trace.episode_ids[j] for j in old.tolist())
    return dataclasses.replace(
        trace, episode_ids=ids, episode=ro(new_id[np.asarray(trace.episode)[keep]]),
        agent=ro(np.asarray(trace.agent)[keep]), label=ro(np.asarray(trace.label)[keep]),
        successor=ro(np.asarray(trace.successor)[keep]), tau=ro(np.asarray(trace.tau)[keep]),
        reward=ro(np.asarray(trace.reward)[keep]),
        components=None if trace.components is None else ro(np.asarray(trace.components)[keep]),
        next_label=ro(np.asarray(trace.next_label)[keep]), line=ro(np.asarray(trace.line)[keep]),
        num_invocations=int(keep.sum()), num_episodes=m, num_truncated_episodes=m - n_stop)
