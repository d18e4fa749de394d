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
  itself (not the SPEC prior: much smaller on large models; offered for speed).
  With ``support="state"`` (the default) the prior is the ``"pooled"`` one plus
  ``alpha0`` on every outcome ``(k', tau)`` seen at the *same epoch state* ``s``
  after any successor ``c'' != STOP`` whose next state ``(k', c')`` is a state of
  the model: under commit-at-start semantics the invocation's dynamics do not
  depend on the successor (the fit's successor-dependence check tests this), so
  those are the outcomes ``(s, c')`` plausibly has; a plausible outcome that
  ``(s, c')`` never produced keeps a Jeffreys-like ``alpha0`` instead of a
  vanishing share, which is what gives rare transitions an honest upper tail
  (README, "How far to trust the intervals": coverage measured with each support);
- **declared triples never visited** (``borrow=True``, the default, when the
  counts carry the trace's declared sets ``declared_agent, declared_successor``):
  the maximum-likelihood model excludes them (SPEC 10: they cannot be estimated),
  but leaving them out of every draw biases whatever depends on them (``v0``
  loses the successors a rare state never tried). Each draw therefore completes
  them, under the same successor-independence: a missing ``(s, c' != STOP)`` takes
  the mixture of the drawn laws of the successors seen at ``s``, weighted by their
  counts ``n(s, c'')`` and restricted to outcomes whose next state ``(k', c')``
  exists (renormalized), and the same count-weighted mean of their drawn rewards;
  a missing ``(s, STOP)`` of agent ``i`` takes a duration law
  ``~ Dirichlet(alpha0 * share)`` over the STOP durations of agent ``i`` (share:
  how often each was seen) and the drawn STOP reward of one of agent ``i``'s
  states with STOP data, chosen uniformly (rewards are attributes of states, so a
  state is drawn like another *state*, not like another visit). A triple with
  nothing to borrow from stays excluded and :attr:`PosteriorSampler.notes` says
  how many;
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
SUPPORT_CHOICES = ("state", "pooled", "successor", "observed")
#: The default ``support``: ``"state"`` (see the module docstring and the README: with the
#: SPEC's ``"successor"`` prior the 90 % intervals covered the truth in 0 of 50 workflow traces).
DEFAULT_SUPPORT = "state"
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
    keys = _state_keys(model)                  # sorted (the model stores states sorted)
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
    support : {"state", "pooled", "successor", "observed"}
        The Dirichlet prior of each ``(s, c')`` (module docstring; default ``"state"``).
    max_outcomes : int or None
        ``"state"`` and ``"pooled"``: the pooled component covers the outcomes seen at
        ``(s, c')`` and the ``max_outcomes`` most frequent outcomes of ``c'`` (default 16;
        ``None``: every outcome of ``c'``).
    borrow : bool
        Complete each draw with the declared triples the trace never visited (module
        docstring); needs the counts' ``declared_agent, declared_successor``.

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
    borrowed : int
        Declared triples never visited that every draw completes (0 without ``borrow``).
    not_borrowed : int
        Declared triples never visited with nothing to borrow from (they stay excluded).
    notes : tuple of str
        Fallbacks taken, one sentence each.

    Examples
    --------
    See ``property_tests/estimators/test_posterior.py``: a draw's law per
    ``(s, c')`` has the closed-form Dirichlet mean ``(alpha0 + n) / (M alpha0 + n_total)``.
    """

    def __init__(self, source: FitResult | EpochModel, *, alpha0: float | None = None,
                 rng: Any = None, support: str = DEFAULT_SUPPORT,
                 max_outcomes: int | None = DEFAULT_MAX_OUTCOMES, borrow: bool = True):
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
        if support in ("successor", "pooled", "state"):
            # O_{c'}: distinct (c', k', tau) seen anywhere, sorted; how often each was seen
            okey, oinv = np.unique(np.stack([c, nl, tau], axis=1), axis=0, return_inverse=True)
            o_tot = np.bincount(oinv.ravel(), weights=cnt, minlength=len(okey))
            if support in ("pooled", "state") and max_outcomes is not None:
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
            entry = _segment_index(c_start[pc], sizes)
            gen = (np.repeat(adm_pairs, sizes) * span_nl + (o_nl[entry] + 1)) * span_tau + o_tau[entry]
            if not np.isin(pair, adm_pairs).all():
                raise InvalidArgumentError(f"`counts` of {where}: an outcome row lies on a pair that "
                                           f"is not admissible in the model.")
            ekey = _sorted_unique(np.concatenate([gen, wkey]))  # every observed row stays an entry
            e_pair = ekey // (span_nl * span_tau)
            e_nl = (ekey // span_tau) % span_nl - 1
            e_tau = ekey % span_tau
            if support in ("pooled", "state"):
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
            if support == "state":
                lkey = _state_local_keys(model, s, c, nl, tau, cnt, adm_pairs, span_nl, span_tau,
                                         max_outcomes)
                pool_key, pool_prior = ekey, prior
                ekey = _sorted_unique(np.concatenate([pool_key, lkey]))
                prior = np.zeros(len(ekey))
                prior[np.searchsorted(ekey, pool_key)] = pool_prior
                prior[np.searchsorted(ekey, lkey)] += alpha0
                e_pair = ekey // (span_nl * span_tau)
                e_nl = (ekey // span_tau) % span_nl - 1
                e_tau = ekey % span_tau
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

        # ---- declared triples never visited, completed in every draw
        self._borrow = None
        self.borrowed = self.not_borrowed = 0
        if borrow:
            declared = _declared_pairs(counts, N, where)
            if declared is None:
                notes.append("the counts carry no declared admissible sets (declared_agent, "
                             "declared_successor): no unvisited triple is borrowed.")
            else:
                self._borrow = _Borrow(model, declared, e_pair, e_nl, e_tau, e_count, alpha0)
                self.borrowed, self.not_borrowed = self._borrow.num_pairs, self._borrow.num_skipped
                if self.not_borrowed:
                    notes.append(f"{self.not_borrowed} declared triples never visited have nothing "
                                 f"to borrow from (no successor seen at their state, no next state "
                                 f"of theirs in the model, or no STOP data of their agent) and "
                                 f"stay excluded.")
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
        admissible = m.admissible
        if self._borrow is not None and self._borrow.num_pairs:
            transitions, reward, admissible = self._borrow.complete(self, prob, reward, rng)
        return EpochModel(name=f"posterior draw of {m.name}", gamma=m.gamma, agents=m.agent_names,
                          labels=m.labels, states=np.stack([m.state_label, m.state_agent], axis=1),
                          admissible=admissible, rho0=rho0, transitions=transitions,
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
                f"{self.num_entries} Dirichlet entries per draw, reward_bootstrap={self.reward_bootstrap}, "
                f"borrowed={self.borrowed})")


def _segment_index(first: np.ndarray, size: np.ndarray) -> np.ndarray:
    """The indices ``first[j], first[j] + 1, ..., first[j] + size[j] - 1`` for every ``j``,
    concatenated (the rows of consecutive segments, in one vectorized pass)."""
    size = np.asarray(size, dtype=np.int64)
    return (np.repeat(first, size) + np.arange(size.sum())
            - np.repeat(np.cumsum(size) - size, size))


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    """``np.unique`` of a 1-d integer array by one sort (numpy's hash-based unique is several
    times slower on the million-entry key arrays of a large posterior)."""
    a = np.sort(a, kind="stable")
    return a[np.concatenate([[True], a[1:] != a[:-1]])] if len(a) else a


def _state_keys(model: EpochModel) -> np.ndarray:
    """``label * N + agent`` of the model's epoch states, sorted."""
    return np.asarray(model.state_label, dtype=np.int64) * model.num_agents + np.asarray(model.state_agent)


def _is_state(model: EpochModel, label: np.ndarray, agent: np.ndarray) -> np.ndarray:
    """Whether each ``(label, agent)`` is an epoch state of the model."""
    keys = _state_keys(model)
    want = np.asarray(label, dtype=np.int64) * model.num_agents + np.asarray(agent, dtype=np.int64)
    pos = np.minimum(np.searchsorted(keys, want), len(keys) - 1)
    return keys[pos] == want


def _state_local_keys(model, s, c, nl, tau, cnt, adm_pairs, span_nl, span_tau,
                      max_outcomes) -> np.ndarray:
    """Entry keys ``(s, c', k', tau)`` of the ``"state"`` prior: for every admissible
    ``(s, c' != STOP)``, each of the ``max_outcomes`` most frequent outcomes ``(k', tau)`` seen
    at ``s`` after any ``c'' != STOP`` (all with ``None``; ties by ``(k', tau)``) whose next
    state ``(k', c')`` is a state of the model."""
    N = model.num_agents
    ns = c != N
    local, inv = np.unique((s[ns] * span_nl + (nl[ns] + 1)) * span_tau + tau[ns],
                           return_inverse=True)                            # (s, k', tau)
    l_s = local // (span_nl * span_tau)
    if max_outcomes is not None:
        tot = np.bincount(inv.ravel(), weights=cnt[ns], minlength=len(local))
        rank = np.lexsort((local, -tot, l_s))             # by state, most frequent first
        first = np.searchsorted(l_s[rank], l_s[rank], side="left")
        keep = np.zeros(len(local), dtype=bool)
        keep[rank[np.arange(len(local)) - first < max_outcomes]] = True
        local, l_s = local[keep], l_s[keep]
    pairs = adm_pairs[adm_pairs % (N + 1) != N]
    p_s = pairs // (N + 1)
    lo = np.searchsorted(l_s, p_s, side="left")
    hi = np.searchsorted(l_s, p_s, side="right")
    size = hi - lo
    idx = _segment_index(lo, size)
    pair = np.repeat(pairs, size)
    k_next = (local[idx] // span_tau) % span_nl - 1
    t = local[idx] % span_tau
    ok = _is_state(model, k_next, pair % (N + 1))
    return _sorted_unique((pair[ok] * span_nl + (k_next[ok] + 1)) * span_tau + t[ok])


def _declared_pairs(counts: dict, N: int, where: str) -> np.ndarray | None:
    """``declared[i, c']`` from the counts' ``declared_agent, declared_successor`` (or ``None``)."""
    if "declared_agent" not in counts and "declared_successor" not in counts:
        return None
    da = _column(counts, "declared_agent", np.int64, where) if "declared_agent" in counts else None
    dc = _column(counts, "declared_successor", np.int64, where) if "declared_successor" in counts else None
    if da is None or dc is None or len(da) != len(dc):
        raise InvalidArgumentError(f"`counts` of {where}: `declared_agent` and `declared_successor` "
                                   f"must be given together, with equal lengths.")
    bad = (da < 0) | (da >= N) | (dc < 0) | (dc > N)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise InvalidArgumentError(f"`counts` declared entry {j} of {where}: (agent {int(da[j])}, "
                                   f"successor {int(dc[j])}) is out of range for {N} agents.")
    declared = np.zeros((N, N + 1), dtype=bool)
    declared[da, dc] = True
    return declared


class _Borrow:
    """The completion of a draw with the declared triples never visited (module docstring).

    Everything that does not depend on the draw is laid out once: the new transition rows,
    where each takes its mass from (entries of the drawn laws, weights ``n(s, c'')``), the
    final row order (sorted by ``(s, c', k', tau)`` like the fitted rows), and for STOP the
    duration entries and the agent's STOP states to draw a reward from.
    """

    def __init__(self, model, declared, e_pair, e_nl, e_tau, e_count, alpha0):
        N, S = model.num_agents, model.num_epoch_states
        adm = np.asarray(model.admissible, dtype=bool)
        agent = np.asarray(model.state_agent, dtype=np.int64)
        missing = declared[agent] & ~adm                         # (S, N+1)
        n_pair = np.zeros(S * (N + 1))
        np.add.at(n_pair, e_pair, e_count)                        # n(s, c'') per admissible pair
        self.num_skipped = 0
        # -- non-STOP: rows (s, c', k', tau) from the entries of the seen non-STOP pairs at s
        ms, mc = np.nonzero(missing[:, :N])
        src_e = np.flatnonzero(e_pair % (N + 1) != N)             # entries of non-STOP pairs
        src_s = e_pair[src_e] // (N + 1)
        order = np.argsort(src_s, kind="stable")
        src_e, src_s = src_e[order], src_s[order]
        lo, hi = np.searchsorted(src_s, ms, "left"), np.searchsorted(src_s, ms, "right")
        size = hi - lo
        idx = _segment_index(lo, size)
        cand_e = src_e[idx]
        cand_pair = np.repeat(ms * (N + 1) + mc, size)
        ok = _is_state(model, e_nl[cand_e], cand_pair % (N + 1))
        cand_e, cand_pair = cand_e[ok], cand_pair[ok]
        span_nl, span_tau = int(max(e_nl.max(initial=0), 0)) + 2, int(e_tau.max(initial=1)) + 1
        key = (cand_pair * span_nl + (e_nl[cand_e] + 1)) * span_tau + e_tau[cand_e]
        new_keys, dst = np.unique(key, return_inverse=True)
        self._src_e, self._dst = cand_e, dst.ravel()
        self._w = n_pair[e_pair[cand_e]]
        done_ns = np.unique(cand_pair)
        self.num_skipped += len(ms) - len(done_ns)
        # rewards of borrowed non-STOP pairs: count-weighted mean over the seen non-STOP pairs at s
        pr_s, pr_c = np.nonzero(adm[:, :N])
        pr = pr_s * (N + 1) + pr_c
        d_s = done_ns // (N + 1)
        lo, hi = np.searchsorted(pr_s, d_s, "left"), np.searchsorted(pr_s, d_s, "right")
        size = hi - lo
        idx = _segment_index(lo, size)
        self._rw_src = pr[idx]
        self._rw_dst = np.repeat(np.arange(len(done_ns)), size)
        self._rw_w = n_pair[self._rw_src]
        self._ns_pairs = done_ns
        # -- STOP: duration entries per missing STOP pair, reward from a STOP state of the agent
        ss = np.flatnonzero(missing[:, N])
        stop_e = np.flatnonzero(e_pair % (N + 1) == N)
        stop_agent = agent[e_pair[stop_e] // (N + 1)]
        st_rows, st_conc, st_pairs, st_choices = [], [], [], []
        for i in np.unique(agent[ss]):
            sel = (stop_agent == i) & (e_count[stop_e] > 0)      # durations the agent's STOPs took
            taus, inv = np.unique(e_tau[stop_e[sel]], return_inverse=True)
            tot = np.bincount(inv.ravel(), weights=e_count[stop_e[sel]], minlength=len(taus))
            states_i = np.flatnonzero(adm[:, N] & (agent == i))
            targets = ss[agent[ss] == i]
            if tot.sum() <= 0 or len(states_i) == 0:
                self.num_skipped += len(targets)
                continue
            for s_ in targets:
                st_pairs.append(s_ * (N + 1) + N)
                st_rows.append(np.stack([np.full(len(taus), s_), taus], axis=1))
                st_conc.append(alpha0 * tot / tot.sum())
                st_choices.append(states_i)
        self._stop_pairs = np.asarray(st_pairs, dtype=np.int64)
        self._stop_len = np.array([len(r) for r in st_rows], dtype=np.int64)
        self._stop_start = np.concatenate([[0], np.cumsum(self._stop_len)[:-1]]).astype(np.int64)
        self._stop_conc = np.concatenate(st_conc) if st_conc else np.zeros(0)
        self._choice_len = np.array([len(ch) for ch in st_choices], dtype=np.int64)
        self._choice_flat = (np.concatenate(st_choices) if st_choices
                             else np.zeros(0, dtype=np.int64))
        self._choice_start = np.cumsum(self._choice_len) - self._choice_len
        stop_rows = np.concatenate(st_rows) if st_rows else np.zeros((0, 2), dtype=np.int64)
        # -- the final layout
        n_pair_new = new_keys // (span_nl * span_tau)
        self._new_len = np.bincount(np.searchsorted(done_ns, n_pair_new), minlength=len(done_ns))
        self._new_start = np.concatenate([[0], np.cumsum(self._new_len)[:-1]]).astype(np.int64)
        state = np.concatenate([e_pair // (N + 1), n_pair_new // (N + 1), stop_rows[:, 0]])
        succ = np.concatenate([e_pair % (N + 1), n_pair_new % (N + 1), np.full(len(stop_rows), N)])
        nl = np.concatenate([e_nl, (new_keys // span_tau) % span_nl - 1, np.full(len(stop_rows), -1)])
        tau = np.concatenate([e_tau, new_keys % span_tau, stop_rows[:, 1]])
        self._order = np.lexsort((tau, nl, succ, state))
        self._transitions = {"state": state[self._order], "successor": succ[self._order],
                             "next_label": nl[self._order], "tau": tau[self._order]}
        self._admissible = adm.copy()
        self._admissible.ravel()[done_ns] = True
        self._admissible.ravel()[self._stop_pairs] = True
        self.num_pairs = int(len(done_ns) + len(self._stop_pairs))

    def complete(self, sampler, prob, reward, rng):
        """``(transitions, reward, admissible)`` of a draw with laws ``prob`` and rewards ``reward``."""
        N = sampler.model.num_agents
        flat_r = reward.ravel()
        # non-STOP: count-weighted mixtures of the drawn laws, renormalized per borrowed pair
        mass = np.bincount(self._dst, weights=self._w * prob[self._src_e],
                           minlength=int(self._new_len.sum()))
        sums = np.add.reduceat(mass, self._new_start) if len(mass) else np.zeros(0)
        # every weight underflowed (tiny prior-only entries): the pair's entries share equally
        zero = np.repeat(sums <= 0, self._new_len)
        new_p = np.where(zero, 1.0 / np.repeat(self._new_len, self._new_len),
                         mass / np.repeat(np.where(sums > 0, sums, 1.0), self._new_len))
        num = np.bincount(self._rw_dst, weights=self._rw_w * flat_r[self._rw_src],
                          minlength=len(self._ns_pairs))
        den = np.bincount(self._rw_dst, weights=self._rw_w, minlength=len(self._ns_pairs))
        flat_r[self._ns_pairs] = num / den
        # STOP: a duration law from the agent's pooled STOP durations, a STOP state's reward
        if len(self._stop_pairs):
            stop_p = sampler._dirichlet(self._stop_conc, self._stop_start, rng)
            pick = self._choice_flat[self._choice_start + rng.integers(0, self._choice_len)]
            flat_r[self._stop_pairs] = flat_r[pick * (N + 1) + N]
        else:
            stop_p = np.zeros(0)
        p = np.concatenate([prob, new_p, stop_p])[self._order]
        return dict(self._transitions, prob=p), flat_r.reshape(reward.shape), self._admissible


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
