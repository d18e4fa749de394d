"""Export a primitive IC-SMDP as an explicit epoch model (SPEC sections 2 and 10).

Labels are the full states ``f = (x, m, l_0, ..., l_{N-1})`` (label index
``k = f``, in the C order of :class:`~icsmdp_theory.epoch.EpochSpace`, label text
``canonical_label([x, m, l_0, ..., l_{N-1}])``); every ``(f, i)`` is an epoch
state, so epoch state ``s = f*N + i`` is the primitive's index. For agent ``i``
at local state ``y = (x, m, l_i)`` the undiscounted law of the end state and
the duration is

    ``P(y', tau | y) = [(Kbar diag(1 - beta))^(tau-1) Kbar diag(beta)](y, y')``

(:attr:`~icsmdp_theory.options.OptionReduction.continue_matrix_undiscounted`,
:attr:`~icsmdp_theory.options.OptionReduction.end_matrix_undiscounted`); it does
not depend on the committed successor. The next full state carries ``y'`` into
``(x, m, l_i)`` and keeps the other ``l_j``; the next epoch state is ``(f', c')``.
For STOP the law is over ``tau`` alone (summed over ``y'``). The option reward is
``R(s, c') = R_i(y, c')`` (:meth:`~icsmdp_theory.options.OptionReduction.option_reward`),
``rho0`` the product law (:func:`~icsmdp_theory.epoch.initial_epoch_law`) and
``phi_i(f) = phi_i(m, l_i)``.

Durations run until the mass of ``tau > t``, ``max_y (M^t 1)(y)``, is at most
``tail_tol``. Probabilities are kept exact and each row's remaining mass (at most
``tail_tol``) is added to its largest entry, so every row sums to 1; the largest
remaining mass is reported as ``counts["truncation_remainder"]``
(:attr:`~icsmdp_theory.epoch_model.EpochModel.truncation_remainder`).

Examples
--------
>>> from icsmdp_theory.examples import load_example
>>> e = export_epoch(load_example("tiny-handoff"))
>>> e.num_epoch_states, e.labels          # labels [x, m, l_planner, l_checker]
(6, ('[0,0,0,0]', '[0,1,0,0]', '[0,2,0,0]'))
>>> # the checker at m1 moves to m2 and ends after one step: E[gamma^tau | s, STOP] = 0.9
>>> float(e.end_discount()[e.state_index("[0,1,0,0]", "checker"), 2])
0.9
"""
from __future__ import annotations

import numpy as np

from icsmdp_theory.epoch import EpochSpace, initial_epoch_law
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidArgumentError, StateSpaceTooLargeError
from icsmdp_theory.labels import canonical_label
from icsmdp_theory.model import ICSMDP, require_single_mode
from icsmdp_theory.options import option_reduction
from icsmdp_theory.validation import is_real, positive_int

__all__ = ["export_epoch", "EXPORT_TAIL_TOL", "EXPORT_MAX_EPOCH_STATES", "EXPORT_MAX_TRANSITIONS",
           "local_duration_law"]

#: Durations are summed until the remaining mass is at most this (SPEC section 10).
EXPORT_TAIL_TOL = 1e-13
#: Largest primitive instance exported (epoch states ``num_full_states * N``).
EXPORT_MAX_EPOCH_STATES = 200_000
#: Largest number of transition entries an export may hold (about 40 bytes each).
EXPORT_MAX_TRANSITIONS = 20_000_000


def local_duration_law(model: ICSMDP, i: int, *, tail_tol: float = EXPORT_TAIL_TOL,
                       max_duration: int = 100_000, max_entries: int | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Agent ``i``'s law ``P(y', tau | y)`` as entries, rows completed to 1 (SPEC section 2).

    Returns
    -------
    y, y_end, tau : int64 ndarrays (L,)
    prob : float ndarray (L,)
        ``P(y_end, tau | y) > 0``, the largest entry of each row ``y`` raised by
        the row's remaining mass.
    remainder : float ndarray (nY,)
        ``P(tau > t_max | y) = (M^t_max 1)(y) <= tail_tol``, the mass moved.
    """
    red = option_reduction(model, i)
    cont, end = red.continue_matrix_undiscounted, red.end_matrix_undiscounted
    nY = red.num_local_states
    term = end.tocsr()
    remaining = np.ones(nY)
    ys, ends, taus, probs = [], [], [], []
    total = 0
    for tau in range(1, max_duration + 1):
        coo = term.tocoo()
        keep = coo.data > 0
        ys.append(coo.row[keep].astype(np.int64))
        ends.append(coo.col[keep].astype(np.int64))
        taus.append(np.full(int(keep.sum()), tau, np.int64))
        probs.append(coo.data[keep])
        total += int(keep.sum())
        if max_entries is not None and total > max_entries:
            raise StateSpaceTooLargeError(
                f"the export of agent {i} (`{model.agents[i].name}`) needs more than "
                f"{max_entries:,} duration entries (reached at tau = {tau}); export a smaller "
                f"instance or raise the limit.")
        remaining = cont @ remaining          # P(tau > t | y) = (M^t 1)(y)
        if float(remaining.max(initial=0.0)) <= tail_tol:
            break
        term = (cont @ term).tocsr()
    else:
        raise StateSpaceTooLargeError(
            f"agent {i} (`{model.agents[i].name}`): P(tau > {max_duration}) is still "
            f"{float(remaining.max()):.3g} > tail_tol = {tail_tol:g}; raise `max_duration`.")
    y, y_end, tau_arr, prob = (np.concatenate(a) for a in (ys, ends, taus, probs))
    prob = prob.copy()
    # the largest entry of each row (ties: the first in (tau, y_end) order) takes the remainder
    order = np.lexsort((-prob, y))
    first = order[np.flatnonzero(np.r_[True, y[order][1:] != y[order][:-1]])]
    prob[first] += remaining[y[first]]
    return y, y_end, tau_arr, prob, remaining


def _export_epoch_iv(model, tail_tol, max_epoch_states, max_transitions):
    if not isinstance(model, ICSMDP):
        raise InvalidArgumentError(f"`model` must be an ICSMDP, got {type(model).__name__}.")
    require_single_mode(model, "the explicit epoch-model export (`export_epoch`)")
    if not is_real(tail_tol) or not 0.0 < float(tail_tol) < 1.0:
        raise InvalidArgumentError(f"`tail_tol` must be a number in (0, 1), got {tail_tol!r}.")
    return (float(tail_tol), positive_int("max_epoch_states", max_epoch_states),
            positive_int("max_transitions", max_transitions))


def export_epoch(model: ICSMDP, *, tail_tol: float = EXPORT_TAIL_TOL,
                 max_epoch_states: int = EXPORT_MAX_EPOCH_STATES,
                 max_transitions: int = EXPORT_MAX_TRANSITIONS) -> EpochModel:
    """The explicit epoch model of a primitive instance (SPEC section 10, conformance).

    Parameters
    ----------
    model : ICSMDP
    tail_tol : float
        Sum durations until ``max_y P(tau > t | y) <= tail_tol``.
    max_epoch_states, max_transitions : int
        Refuse larger exports (before the transition arrays are built).

    Returns
    -------
    EpochModel
        Labels ``f`` (``K = num_full_states``), states ``s = f*N + i``,
        ``counts = {"truncation_remainder": r, "tail_tol": tail_tol}``.

    Raises
    ------
    StateSpaceTooLargeError
        More than ``max_epoch_states`` epoch states or ``max_transitions`` entries
        (the message names the count).
    """
    tail_tol, max_epoch_states, max_transitions = _export_epoch_iv(
        model, tail_tol, max_epoch_states, max_transitions)
    space = EpochSpace(model, max_epoch_states=max_epoch_states)
    N, F, stop = model.num_agents, model.num_full_states, model.stop
    parts: list[tuple[np.ndarray, ...]] = []
    total, remainder = 0, 0.0
    reward = np.empty((F, N, N + 1))
    for i in range(N):
        n_rest = space.num_rest[i]
        targets = [c for c in range(N) if model.admissible[i, c]]
        per_entry = n_rest * max(len(targets), 1)
        y, y_end, tau, prob, rem = local_duration_law(
            model, i, tail_tol=tail_tol, max_entries=max(0, max_transitions - total) // per_entry)
        remainder = max(remainder, float(rem.max(initial=0.0)))
        full = space.full_of_view[i].reshape(-1, n_rest)       # full[y, r] = f
        f_from = full[y].ravel()
        f_to = full[y_end].ravel()
        tau_r = np.repeat(tau, n_rest)
        prob_r = np.repeat(prob, n_rest)
        for c in targets:
            parts.append((f_from * N + i, np.full(f_from.size, c, np.int64), f_to, tau_r, prob_r))
        total += f_from.size * len(targets)
        if model.admissible[i, stop]:
            # STOP: the law of tau alone, P(tau | y) = sum_y' P(y', tau | y)
            t_max = int(tau.max())
            key, inv = np.unique(y * t_max + (tau - 1), return_inverse=True)
            p_stop = np.bincount(inv.ravel(), weights=prob, minlength=key.size)
            fs = full[key // t_max].ravel()
            parts.append((fs * N + i, np.full(fs.size, stop, np.int64), np.full(fs.size, -1, np.int64),
                          np.repeat(key % t_max + 1, n_rest), np.repeat(p_stop, n_rest)))
            total += fs.size
        if total > max_transitions:
            raise StateSpaceTooLargeError(
                f"the export of {model.name!r} needs more than {max_transitions:,} transition "
                f"entries ({total:,} after agent {i}); export a smaller instance or raise "
                f"`max_transitions`.")
        y_of_f = space.view_of_full[i] // n_rest
        reward[:, i, :] = option_reduction(model, i).option_reward()[y_of_f]
    state, succ, nxt, tau, prob = (np.concatenate(cols) for cols in zip(*parts))
    idx = np.unravel_index(np.arange(F), space.full_shape)
    labels = [canonical_label(list(t)) for t in zip(*(a.tolist() for a in idx))]
    observation = [a.observation[idx[1], idx[2 + i]] for i, a in enumerate(model.agents)]
    states = np.column_stack([np.repeat(np.arange(F), N), np.tile(np.arange(N), F)])
    return EpochModel(
        name=model.name, gamma=model.gamma, agents=model.agent_names(), labels=labels,
        states=states, admissible=np.tile(model.admissible, (F, 1)),
        rho0=initial_epoch_law(model).ravel(),
        transitions={"state": state, "successor": succ, "next_label": nxt, "tau": tau, "prob": prob},
        reward=reward.reshape(F * N, N + 1), observation=observation,
        counts={"truncation_remainder": remainder, "tail_tol": tail_tol})
