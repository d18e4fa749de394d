"""Tests of :class:`solvers.smdp.FiniteSMDP`: layout, immutability and every validation error.

Also home of the independent reference used by the solver tests: brute-force
enumeration of all deterministic policies with dense ``numpy.linalg.solve``.
"""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from icsmdp_theory.errors import InvalidArgumentError
from solvers.smdp import FiniteSMDP


# --------------------------------------------------------------------------
# Independent reference (used by test_value_iteration / test_policy_iteration)
# --------------------------------------------------------------------------

def _dense_parts(reward, kernel, admissible):
    """Dense ``D[s, a, s']`` built from the raw inputs, not from the model."""
    r = np.asarray(reward, float)
    S, A = r.shape
    K = kernel.toarray() if sp.issparse(kernel) else np.asarray(kernel, float)
    adm = np.ones((S, A), bool) if admissible is None else np.asarray(admissible, bool)
    return r, K.reshape(S, A, S), adm


def _policy_value(r, D, sigma):
    """``(I - D_sigma)^-1 r_sigma`` by dense ``numpy.linalg.solve``."""
    S = r.shape[0]
    idx = np.arange(S)
    return np.linalg.solve(np.eye(S) - D[idx, sigma], r[idx, sigma])


def _brute_force(reward, kernel, admissible=None):
    """``(v*, q*, optimal policies)`` by enumerating every deterministic admissible policy."""
    r, D, adm = _dense_parts(reward, kernel, admissible)
    S = r.shape[0]
    choices = [np.flatnonzero(adm[s]) for s in range(S)]
    values = {sig: _policy_value(r, D, np.array(sig)) for sig in itertools.product(*choices)}
    v_star = np.max(np.stack(list(values.values())), axis=0)
    q_star = r + D @ v_star
    q_star = np.where(adm, q_star, np.nan)
    return v_star, q_star


def _random_instance(rng, *, smdp: bool, terminal: bool = False):
    """A tiny random MDP (``smdp=False``: rows sum to gamma) or SMDP (row sums 0.3 / 0.9)."""
    S = int(rng.integers(1, 5))
    A = int(rng.integers(1, 4))
    adm = rng.random((S, A)) < 0.7
    adm[np.arange(S), rng.integers(0, A, S)] = True
    P = rng.random((S * A, S)) * (rng.random((S * A, S)) < 0.7)
    P[np.arange(S * A), rng.integers(0, S, S * A)] += 0.1
    P /= P.sum(axis=1, keepdims=True)
    if smdp:
        g = rng.choice([0.3, 0.9], size=S * A)
        g[rng.integers(0, S * A)] = 0.9
    else:
        g = np.full(S * A, float(rng.choice([0.5, 0.9, 0.95])))
    if terminal:
        g[rng.random(S * A) < 0.3] = 0.0
    kernel = P * g[:, None]
    reward = rng.normal(size=(S, A)) * 3.0
    return reward, kernel, adm


def _tiny_instances(n: int, seed: int, *, smdp: bool, terminal: bool = False):
    rng = np.random.default_rng(seed)
    return [_random_instance(rng, smdp=smdp, terminal=terminal) for _ in range(n)]


def test_brute_force_reference_on_closed_form():
    # The reference itself: stay (reward 1, discount 0.9 on itself) is worth 10;
    # move (reward 0, discount 0.9 to state 1 worth 2/(1-0.9)=20) is worth 18.
    kernel = np.array([[0.9, 0.0], [0.0, 0.9], [0.0, 0.9], [0.0, 0.0]])
    v, q = _brute_force([[1.0, 0.0], [2.0, 0.0]], kernel, [[True, True], [True, False]])
    np.testing.assert_allclose(v, [18.0, 20.0])
    np.testing.assert_allclose(q, [[1.0 + 0.9 * 18.0, 18.0], [20.0, np.nan]])


# --------------------------------------------------------------------------
# Layout and derived facts
# --------------------------------------------------------------------------

def test_sizes_discounts_and_layout():
    reward = np.array([[1.0, 2.0], [3.0, -np.inf]])
    kernel = np.array([[0.5, 0.0], [0.0, 0.0], [0.2, 0.7], [5.0, 5.0]])  # last row inadmissible
    m = FiniteSMDP(reward=reward, kernel=kernel, admissible=[[True, True], [True, False]])
    assert (m.num_states, m.num_actions) == (2, 2)
    assert m.discount_range == pytest.approx((0.0, 0.9), abs=1e-15)
    np.testing.assert_allclose(m.effective_discount, [[0.5, 0.0], [0.9, np.nan]])
    assert sp.issparse(m.kernel) and m.kernel.format == "csr"
    np.testing.assert_array_equal(m.kernel.toarray(), kernel)


def test_sparse_and_dense_kernels_agree_and_duplicates_are_summed():
    dense = np.array([[0.2, 0.3], [0.0, 0.0], [0.4, 0.4], [0.0, 0.1]])
    coo = sp.coo_matrix(([0.1, 0.1, 0.3, 0.4, 0.4, 0.1], ([0, 0, 0, 2, 2, 3], [0, 0, 1, 0, 1, 1])),
                        shape=(4, 2))
    a = FiniteSMDP(reward=np.zeros((2, 2)), kernel=dense)
    b = FiniteSMDP(reward=np.zeros((2, 2)), kernel=coo)
    np.testing.assert_array_equal(a.kernel.toarray(), b.kernel.toarray())


def test_from_mdp_orders_rows_state_major_and_discounts():
    P = np.array([[[1.0, 0.0], [0.5, 0.5]],      # action 0
                  [[0.0, 1.0], [0.0, 0.0]]])     # action 1 (terminal in state 1)
    R = np.array([[1.0, 2.0], [3.0, 4.0]])
    m = FiniteSMDP.from_mdp(P, R, 0.9)
    expected = 0.9 * np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5], [0.0, 0.0]])
    np.testing.assert_allclose(m.kernel.toarray(), expected)
    m2 = FiniteSMDP.from_mdp([sp.csr_matrix(P[0]), sp.csr_array(P[1])], R, 0.9)
    np.testing.assert_allclose(m2.kernel.toarray(), expected)
    assert m.discount_range == (0.0, 0.9)


def test_immutable_and_owns_its_arrays():
    reward = np.array([[1.0, 2.0]])
    kernel = np.array([[0.5], [0.25]])
    m = FiniteSMDP(reward=reward, kernel=kernel)
    reward[0, 0] = 99.0
    kernel[0, 0] = 0.99
    assert m.reward[0, 0] == 1.0 and m.kernel[0, 0] == 0.5
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.reward = np.zeros((1, 2))
    with pytest.raises(ValueError):
        m.reward[0, 0] = 5.0
    with pytest.raises(ValueError):
        m.kernel.data[0] = 0.9
    with pytest.raises(ValueError):
        m.admissible[0, 0] = False


# --------------------------------------------------------------------------
# Validation errors: each names the field and the index
# --------------------------------------------------------------------------

def _ok_kernel(S, A, g=0.5):
    return np.full((S * A, S), g / S)


@pytest.mark.parametrize("kwargs, match", [
    (dict(reward=[1.0, 2.0], kernel=[[0.5]]), r"`reward` must be a 2-D array.*got shape \(2,\)"),
    (dict(reward=np.zeros((0, 2)), kernel=np.zeros((0, 0))), r"`reward`.*sizes >= 1"),
    (dict(reward=[["a"]], kernel=[[0.5]]), r"`reward` must be a real array"),
    (dict(reward=[[1.0, np.nan], [0.0, 0.0]], kernel=_ok_kernel(2, 2)),
     r"`reward` must be finite at admissible pairs: state 0, action 1"),
    (dict(reward=np.zeros((3, 2)), kernel=_ok_kernel(3, 2),
          admissible=[[1, 0], [1, 1], [0, 1]]), r"`admissible` must be a boolean array"),
    (dict(reward=np.zeros((3, 2)), kernel=_ok_kernel(3, 2), admissible=np.ones((2, 3), bool)),
     r"`admissible` must have shape .*\(3, 2\); got \(2, 3\)"),
    (dict(reward=np.zeros((3, 2)), kernel=_ok_kernel(3, 2),
          admissible=[[True, False], [True, True], [False, False]]),
     r"`admissible`: state 2 has no admissible action"),
    (dict(reward=np.zeros((3, 2)), kernel=np.zeros((5, 3))),
     r"`kernel` must have shape .* = \(6, 3\) .*got \(5, 3\)"),
    (dict(reward=np.zeros((2, 2)), kernel=np.zeros((2, 2, 2))), r"`kernel`.*use `FiniteSMDP.from_mdp`"),
    (dict(reward=np.zeros((2, 2)), kernel=[[0.1, 0.1], [0.1, 0.1], [0.1, -0.2], [0.0, 0.0]]),
     r"`kernel` must be nonnegative: row for state 1, action 0 has -0.2 at next state 1"),
    (dict(reward=np.zeros((2, 2)), kernel=[[0.1, 0.1], [0.1, 0.1], [0.1, 0.1], [np.inf, 0.0]]),
     r"`kernel` must be finite: row for state 1, action 1 has inf at next state 0"),
    (dict(reward=np.zeros((4, 2)), kernel=np.vstack([_ok_kernel(4, 2)[:7], [[0.3, 0.3, 0.3, 0.3]]])),
     r"`kernel`: the discounted row for state 3, action 1 sums to 1.2;"),
    (dict(reward=np.zeros((1, 1)), kernel=[[1.0]]), r"state 0, action 0 sums to 1;"),
])
def test_constructor_errors(kwargs, match):
    with pytest.raises(InvalidArgumentError, match=match):
        FiniteSMDP(**kwargs)


def test_inadmissible_pairs_are_not_checked_for_reward_or_row_sum():
    m = FiniteSMDP(reward=[[1.0, -np.inf]], kernel=[[0.5], [3.0]], admissible=[[True, False]])
    assert m.discount_range == (0.5, 0.5)


@pytest.mark.parametrize("args, match", [
    ((np.ones((1, 2, 2)) / 2, np.zeros((2, 1)), 1.0), r"`gamma` must satisfy 0 <= gamma < 1, got 1.0"),
    ((np.ones((1, 2, 2)) / 2, np.zeros((2, 1)), True), r"`gamma` must be a real number"),
    ((np.ones((1, 2, 2)) / 2, np.zeros((2, 2)), 0.9), r"`P` must hold one matrix per action: 2 .*got 1"),
    ((np.ones((2, 3, 3)) / 3, np.zeros((2, 2)), 0.9), r"`P\[0\]` must have shape .*\(2, 2\).*got \(3, 3\)"),
    ((np.ones((2, 2)) / 2, np.zeros((2, 1)), 0.9), r"`P` must be a 3-D array"),
    ((np.array([[[1.0, 0.0], [0.5, 0.5]], [[1.0, 0.0], [0.25, 0.25]]]), np.zeros((2, 2)), 0.9),
     r"`P`: row for state 1, action 1 sums to 0.5"),
    ((np.array([[[1.0, 0.0], [1.5, -0.5]]]), np.zeros((2, 1)), 0.9),
     r"`P\[0\]` must be nonnegative: row for state 1, action 0 has -0.5 at next state 1"),
])
def test_from_mdp_errors(args, match):
    with pytest.raises(InvalidArgumentError, match=match):
        FiniteSMDP.from_mdp(*args)


def test_from_mdp_accepts_terminal_rows_and_masks_inadmissible_rows():
    P = np.array([[[0.0, 0.0], [0.0, 1.0]], [[0.3, 0.3], [0.0, 1.0]]])
    m = FiniteSMDP.from_mdp(P, np.zeros((2, 2)), 0.9, admissible=[[True, False], [True, True]])
    assert m.discount_range == (0.0, 0.9)
    with pytest.raises(InvalidArgumentError, match=r"state 0, action 1 sums to 0.6"):
        FiniteSMDP.from_mdp(P, np.zeros((2, 2)), 0.9)
