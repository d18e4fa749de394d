"""Tests of the exact oracle ``Q*_lat`` (:mod:`solvers.committed_chain`, SPEC sections 2-3).

Every expected value is computed independently of the committed-successor chain:

- ``tiny-handoff``: ``Q*_lat`` derived by hand;
- ``beta == 1`` everywhere: the decision-epoch SMDP is an ordinary MDP on epoch
  states; all deterministic policies are enumerated and evaluated by
  ``numpy.linalg.solve``;
- general instances: the explicit epoch SMDP, with ``D_i = inv(I - G_i) E_i``
  from dense numpy inverses lifted to full states, solved by plain value
  iteration to ``1e-13``.

Epoch states are ``s = f*N + i`` with ``f`` the C-order index of
``(x, m, l_0, ..., l_{N-1})`` (SPEC section 3).
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.sparse as sp

from icsmdp_theory.errors import StateSpaceTooLargeError
from icsmdp_theory.examples import load_example
from icsmdp_theory.generators import random_icsmdp
from icsmdp_theory.model import ICSMDP
from solvers import ModifiedPolicyIteration, PolicyIteration, ValueIteration, solve
from solvers.committed_chain import committed_chain

TOL = 1e-8
SOLVERS = {
    "vi-sup": ValueIteration(tol=TOL, rule="sup"),
    "vi-span": ValueIteration(tol=TOL, rule="span"),
    "pi": PolicyIteration(tol=TOL),
    "mpi-span": ModifiedPolicyIteration(tol=TOL, rule="span"),
    "mpi-sup": ModifiedPolicyIteration(k=5, tol=TOL, rule="sup"),
}


# --------------------------------------------------------------------------- independent model
class _Dense:
    """The epoch SMDP of a model, built densely from the raw arrays (no library reduction).

    Attributes
    ----------
    R : (F, N, N+1)   option reward ``R_i(y(f), c')``
    D, PG, PE, PK : list over agents of (F, F)
        ``D_i``, ``G_i``, ``E_i`` and ``Kbar_i`` lifted to full states
        (``f -> f'`` replaces ``(x, m, l_i)`` and keeps the other ``l_j``).
    rbar : (F, N, N+1)  mean primitive reward at ``y(f)``
    adm : (N, N+1) bool
    """

    def __init__(self, model):
        self.model = model
        self.N = N = model.num_agents
        self.gamma = g = model.gamma
        nX, nM, nL = model.num_latent, model.num_interface, model.num_private
        self.shape = shape = (nX, nM) + tuple(nL)
        self.F = F = int(np.prod(shape))
        self.adm = np.array([a.successors for a in model.agents], bool)
        self.R = np.zeros((F, N, N + 1))
        self.rbar = np.zeros((F, N, N + 1))
        self.D, self.PG, self.PE, self.PK = [], [], [], []
        for i, ag in enumerate(model.agents):
            nY = nX * nM * nL[i]
            K = np.stack([sp.csr_array(k).toarray() for k in ag.kernel])
            pol = np.empty((nY, K.shape[0]))
            rew = np.empty((nY, K.shape[0], N + 1))
            beta = np.empty(nY)
            for x, m, l in itertools.product(range(nX), range(nM), range(nL[i])):
                y = (x * nM + m) * nL[i] + l
                pol[y], rew[y], beta[y] = ag.internal_policy[m, l], ag.reward[x, m], ag.end_probability[x, m, l]
            kbar = np.einsum("ya,ayz->yz", pol, K)
            rbar = np.einsum("ya,yac->yc", pol, rew)
            G = g * kbar * (1 - beta)[None, :]
            E = g * kbar * beta[None, :]
            inv = np.linalg.inv(np.eye(nY) - G)
            Dloc, Rloc = inv @ E, inv @ rbar
            lifted = [np.zeros((F, F)) for _ in range(4)]
            for f, idx in enumerate(np.ndindex(*shape)):
                x, m, ls = idx[0], idx[1], list(idx[2:])
                y = (x * nM + m) * nL[i] + ls[i]
                self.R[f, i] = Rloc[y]
                self.rbar[f, i] = rbar[y]
                for y2 in range(nY):
                    xm2, l2 = divmod(y2, nL[i])
                    x2, m2 = divmod(xm2, nM)
                    ls2 = list(ls)
                    ls2[i] = l2
                    f2 = np.ravel_multi_index((x2, m2, *ls2), shape)
                    for mat, loc in zip(lifted, (Dloc, G, E, kbar)):
                        mat[f, f2] += loc[y, y2]
            for lst, mat in zip((self.D, self.PG, self.PE, self.PK), lifted):
                lst.append(mat)
        self.gamma_bar = max(d.sum(axis=1).max() for d in self.D)

    def values(self, Q):
        """``V[f, j] = max over admissible c'' of Q[f, j, c'']``."""
        return np.where(self.adm[None], Q, -np.inf).max(axis=2)

    def bellman(self, Q):
        V = self.values(Q)
        out = self.R.copy()
        for i in range(self.N):
            out[:, i, :self.N] += self.D[i] @ V
        return out

    def solve(self):
        """Plain value iteration on the epoch SMDP until the error bound is below 1e-13."""
        Q = np.zeros_like(self.R)
        gb = self.gamma_bar
        for _ in range(100_000):
            new = self.bellman(Q)
            step = np.abs(new - Q).max()
            Q = new
            if step * gb / (1 - gb) <= 1e-13:
                break
        return self.epoch(Q)

    def epoch(self, Q):
        """``(F, N, N+1)`` -> ``q[s = f*N + i, c']`` with nan where inadmissible."""
        q = np.where(self.adm[None], Q, np.nan)
        return q.reshape(self.F * self.N, self.N + 1)

    def chain_residual(self, q):
        """``max |T W - W|`` of the committed-successor chain operator at ``W = q`` (admissible)."""
        W = q.reshape(self.F, self.N, self.N + 1)
        V = np.where(self.adm[None], W, -np.inf).max(axis=2)
        res = 0.0
        for i in range(self.N):
            for c in np.flatnonzero(self.adm[i]):
                tw = self.rbar[:, i, c] + self.PG[i] @ W[:, i, c]
                if c < self.N:
                    tw = tw + self.PE[i] @ V[:, c]
                res = max(res, float(np.abs(tw - W[:, i, c]).max()))
        return res


def _adm_mask(model):
    adm = np.array([a.successors for a in model.agents])
    return np.tile(adm, (model.num_full_states, 1))


def _check_against_exact(res, q_exact, model, solver, name):
    mask = _adm_mask(model)
    assert res.success and res.status == "converged", (name, res.status, res.message)
    assert res.q.shape == q_exact.shape
    assert np.array_equal(np.isnan(res.q), ~mask), name
    err_q = np.abs(res.q[mask] - q_exact[mask]).max()
    v_exact = np.nanmax(q_exact, axis=1)
    err_v = np.abs(res.v - v_exact).max()
    # the promised accuracy, and the bound is honest (exact is known to 1e-13)
    assert res.error_bound <= solver.tol, (name, res.error_bound)
    assert err_q <= res.error_bound + 1e-12, (name, err_q, res.error_bound)
    assert err_v <= res.error_bound + 1e-12, (name, err_v, res.error_bound)
    assert np.allclose(res.v, np.nanmax(res.q, axis=1), rtol=0, atol=1e-14)


# --------------------------------------------------------------------------- tiny-handoff
def _tiny_handoff_q():
    """``Q*_lat`` of tiny-handoff by hand; ``s = m*2 + i`` (nX = 1, no private states).

    Planner (i=0): kernel m0 -> m1; m1 -> m1 or m2 (1/2 each); m2 -> m2; beta = 1, 1/2, 1
    at m0, m1, m2; successors {checker, STOP}; reward 1 only at m2 for c' = STOP.
    Checker (i=1): m0 -> m0, m1 -> m2, m2 -> m2; beta = 1; successors {planner, STOP};
    reward 1 only at m2 for c' = STOP. gamma = 0.9.

    Planner's discounted end law from m1: one step reaches m1 (1/2, ends w.p. 1/2) or m2
    (1/2, ends), so d1 := D(m1|m1) = 0.9*0.25 + 0.9*0.25*d1 = 0.225/0.775 and
    d2 := D(m2|m1) = 0.9*0.5 + 0.225*d2 = 0.45/0.775. From m0 the first step reaches m1:
    D(m1|m0) = 0.45 + 0.45*d1 = 0.45 + 0.45*0.9*0.25/0.775,
    D(m2|m0) = 0.45*d2 = 0.45*0.9*0.5/0.775.
    The planner collects no reward inside an invocation (reaching m2 ends it), except at m2
    itself with STOP: R(m2, STOP) = 1. The checker collects 1 at m2 with STOP only.

    V(m2, planner) = max(1, 0.9 V(m2, checker)), V(m2, checker) = max(1, 0.9 V(m2, planner))
    -> both 1. V(m1, checker) = max(STOP: 0, planner: 0.9 V(m2, planner)) = 0.9.
    Q(m1, planner, checker) = d1*0.9 + d2*1; Q(m0, planner, checker) = D(m1|m0)*0.9 + D(m2|m0)*1;
    both beat STOP (0). Q(m0, checker, planner) = 0.9 V(m0, planner).
    """
    nan = np.nan
    d1, d2 = 0.225 / 0.775, 0.45 / 0.775
    D_m1, D_m2 = 0.45 + 0.45 * 0.9 * 0.25 / 0.775, 0.45 * 0.9 * 0.5 / 0.775
    assert abs(D_m1 - (0.45 + 0.45 * d1)) < 1e-15 and abs(D_m2 - 0.45 * d2) < 1e-15
    V_m0_planner = D_m1 * 0.9 + D_m2 * 1.0
    return np.array([
        [nan, V_m0_planner, 0.0],           # s=0: m0, planner
        [0.9 * V_m0_planner, nan, 0.0],     # s=1: m0, checker
        [nan, d1 * 0.9 + d2 * 1.0, 0.0],    # s=2: m1, planner
        [0.9 * 1.0, nan, 0.0],              # s=3: m1, checker
        [nan, 0.9 * 1.0, 1.0],              # s=4: m2, planner
        [0.9 * 1.0, nan, 1.0],              # s=5: m2, checker
    ])


@pytest.mark.parametrize("name", SOLVERS)
def test_tiny_handoff_by_hand(name):
    model = load_example("tiny-handoff")
    q = _tiny_handoff_q()
    solver = SOLVERS[name]
    res = solve(solver, model)
    _check_against_exact(res, q, model, solver, name)
    # greedy: planner hands to the checker at m0, m1 and stops at m2; the checker hands
    # back at m0, m1 and stops at m2
    assert res.policy.tolist() == [1, 0, 1, 0, 2, 2]
    assert abs(res.v[0] - 0.783871) < 1e-6  # V*(rho0): planner at m0


def test_independent_solver_reproduces_tiny_handoff():
    """The dense epoch solver used below agrees with the hand derivation."""
    q = _Dense(load_example("tiny-handoff")).solve()
    expected = _tiny_handoff_q()
    assert np.array_equal(np.isnan(q), np.isnan(expected))
    assert np.nanmax(np.abs(q - expected)) <= 1e-12


# --------------------------------------------------------------------------- tau == 1: an MDP
def _brute_force_mdp(model):
    """All deterministic epoch policies of the ``beta == 1`` model, evaluated exactly.

    With ``beta == 1`` every invocation is one primitive step: from epoch state
    ``(f, i)`` with action ``c'`` the reward is ``rbar_i(y, c')`` and the next state is
    ``(f', c')`` with ``f'`` drawn by ``Kbar_i`` (``STOP`` is terminal), discount gamma.
    Returns the componentwise maximum value, the value of every policy and the policies.
    """
    d = _Dense(model)
    N, F, g = d.N, d.F, d.gamma
    S = F * N
    choices = [np.flatnonzero(d.adm[s % N]) for s in range(S)]
    policies = np.array(list(itertools.product(*choices)), dtype=np.int64)  # (P, S)
    # dense transition and reward of every (s, c')
    P = np.zeros((S, N + 1, S))
    r = np.zeros((S, N + 1))
    for f in range(F):
        for i in range(N):
            s = f * N + i
            r[s] = d.rbar[f, i]
            for c in range(N):
                P[s, c, c::N] = d.PK[i][f]  # next epoch state f2*N + c
    ar = np.arange(S)
    P_pol = P[ar[None, :], policies]  # (P, S, S)
    r_pol = r[ar[None, :], policies]  # (P, S)
    vals = np.linalg.solve(np.eye(S)[None] - g * P_pol, r_pol[..., None])[..., 0]
    return vals.max(axis=0), vals, policies, (P, r)


TAU1_INSTANCES = [
    (0, dict(num_agents=2, num_interface=2, num_private=(1, 2))),
    (1, dict(num_agents=2, num_interface=2, num_private=(1, 2))),
    (2, dict(num_agents=2, num_latent=2, num_interface=2, num_private=1)),
    (3, dict(num_agents=3, num_interface=2, num_private=1, successor_density=0.9)),
    (4, dict(num_agents=2, num_interface=2, num_private=(2, 1), stop_admissible=False)),
]


@pytest.mark.parametrize("seed,kwargs", TAU1_INSTANCES)
def test_tau_one_is_an_ordinary_mdp(seed, kwargs):
    model = random_icsmdp(seed, num_actions=2, end_probability=1.0, gamma=0.9, **kwargs)
    v_star, vals, policies, (P, r) = _brute_force_mdp(model)
    # some policy attains the componentwise max (sanity of the brute force)
    assert np.isclose(vals, v_star[None], rtol=0, atol=1e-12).all(axis=1).any()
    assert len(policies) >= 2
    g = model.gamma
    for name, solver in SOLVERS.items():
        res = solve(solver, model)
        assert res.success, (name, res.message)
        assert np.abs(res.v - v_star).max() <= solver.tol, name
        # the oracle's greedy policy attains the optimum
        S = v_star.size
        ar = np.arange(S)
        v_pol = np.linalg.solve(np.eye(S) - g * P[ar, res.policy], r[ar, res.policy])
        assert np.abs(v_pol - v_star).max() <= 2 * solver.tol / (1 - g) + 1e-12, name
        # q of the MDP: r + gamma P v*
        q_mdp = r + g * P @ v_star
        mask = _adm_mask(model)
        assert np.abs(res.q[mask] - q_mdp[mask]).max() <= solver.tol, name


# --------------------------------------------------------------------------- general instances
def _general(seed):
    rng = np.random.default_rng(seed)
    N = int(rng.integers(2, 4))
    kwargs = dict(num_agents=N, num_latent=int(rng.integers(1, 3)),
                  num_interface=int(rng.integers(2, 4)),
                  num_private=tuple(int(t) for t in rng.integers(1, 3, size=N)),
                  num_actions=2, gamma=float(rng.choice([0.8, 0.9, 0.95])),
                  end_probability=[(0.2, 1.0), (0.05, 0.5), (0.5, 1.0)][seed % 3],
                  nnz_per_row=[None, 2, 3][seed % 3], successor_density=0.6)
    return random_icsmdp(seed, **kwargs)


GENERAL_SEEDS = list(range(30))


@pytest.fixture(scope="module")
def general_cases():
    out = {}
    for seed in GENERAL_SEEDS:
        model = _general(seed)
        dense = _Dense(model)
        out[seed] = (model, dense, dense.solve())
    return out


@pytest.mark.parametrize("seed", GENERAL_SEEDS)
def test_solvers_match_independent_epoch_solve(general_cases, seed):
    model, dense, q_exact = general_cases[seed]
    assert np.isclose(dense.gamma_bar, max(d.sum(axis=1).max() for d in dense.D))
    results = {}
    for name, solver in SOLVERS.items():
        res = solve(solver, model)
        _check_against_exact(res, q_exact, model, solver, name)
        # the reported residual is the committed-chain residual of the returned q
        residual = dense.chain_residual(res.q)
        assert abs(res.bellman_residual - residual) <= 1e-12 * max(1.0, np.nanmax(np.abs(q_exact)))
        assert res.bellman_residual <= (1 + model.gamma) * res.error_bound + 1e-13
        if name == "vi-sup":
            # last step <= tol (1-gamma)/gamma, so ||T W - W|| <= gamma * that
            assert res.bellman_residual <= solver.tol * (1 - model.gamma) * (1 + 1e-9) + 1e-14
        results[name] = res
    names = list(results)
    for a, b in itertools.combinations(names, 2):
        assert np.nanmax(np.abs(results[a].q - results[b].q)) <= 2 * TOL, (a, b)


@pytest.mark.parametrize("seed", GENERAL_SEEDS[:6])
def test_pi_gmres_branch_equals_lu_branch(general_cases, seed):
    model, _, q_exact = general_cases[seed]
    lu = solve(PolicyIteration(tol=TOL, evaluation="lu"), model)
    gm = solve(PolicyIteration(tol=TOL, evaluation="krylov"), model)
    assert "sparse LU" in lu.message and "BiCGSTAB" in gm.message, (lu.message, gm.message)
    assert lu.success and gm.success, gm.message
    assert np.nanmax(np.abs(lu.q - gm.q)) <= 1e-9
    assert np.array_equal(lu.policy, gm.policy)
    assert np.nanmax(np.abs(gm.q - q_exact)) <= gm.error_bound + 1e-12


def test_evaluation_falls_back_to_gmres_when_bicgstab_fails(general_cases, monkeypatch):
    import scipy.sparse.linalg as spl
    model, _, q_exact = general_cases[GENERAL_SEEDS[0]]
    monkeypatch.setattr(spl, "bicgstab", lambda op, b, x0=None, **kw: (np.full_like(b, np.nan), 1))
    gm = solve(PolicyIteration(tol=TOL, evaluation="krylov"), model)
    assert "GMRES" in gm.message and gm.success, gm.message
    assert np.nanmax(np.abs(gm.q - q_exact)) <= gm.error_bound + 1e-12


@pytest.mark.parametrize("name", SOLVERS)
def test_max_iter_is_data_not_an_exception(general_cases, name):
    solver = SOLVERS[name]
    # an instance on which PI needs more than one improvement step
    chosen = None
    for seed in GENERAL_SEEDS:
        if solve(PolicyIteration(tol=TOL), general_cases[seed][0]).iterations >= 2:
            chosen = seed
            break
    assert chosen is not None
    model, _, q_exact = general_cases[chosen]
    res = solve(type(solver)(**{**solver.__dict__, "max_iter": 1}), model)
    assert res.success is False and res.status == "max_iter", (res.status, res.message)
    assert res.iterations == 1
    assert "max_iter = 1 " in res.message
    # even then the error bound is honest
    assert np.nanmax(np.abs(res.q - q_exact)) <= res.error_bound + 1e-12


def _tie_model(eps):
    """Three identical agents (no private states): V(f, j) is the same for every j, so
    Q(s, 1) - Q(s, 2) = R(y, 1) - R(y, 2), which is ``-eps/(1 - gamma) < 1e-10`` at most.
    Successor 0 pays nothing, 1 pays 1, 2 pays 1 + eps; STOP pays nothing."""
    rng = np.random.default_rng(0)
    nM, N = 3, 3
    kernel = rng.exponential(size=(1, nM, nM))
    kernel /= kernel.sum(axis=-1, keepdims=True)
    reward = np.zeros((1, nM, 1, N + 1))
    reward[..., 1] = 1.0
    reward[..., 2] = 1.0 + eps
    beta = np.array([[[0.5], [0.7], [1.0]]])
    agent = dict(n_private=1, n_actions=1, rho_private=[1.0],
                 internal_policy=np.ones((nM, 1, 1)), kernel=kernel, reward=reward,
                 end_probability=beta, observation=np.arange(nM)[:, None],
                 successors=[True, True, True, True])
    return ICSMDP(name="ties", gamma=0.9, horizon=10, n_latent=1, n_interface=nM,
                  rho_latent_interface=[[1.0, 0.0, 0.0]], rho_agent=[1.0, 0.0, 0.0],
                  agents=[dict(agent, name=f"a{i}") for i in range(N)])


@pytest.mark.parametrize("eps", [0.0, 5e-12])
@pytest.mark.parametrize("name", SOLVERS)
def test_greedy_takes_lowest_index_among_ties(name, eps):
    model = _tie_model(eps)
    q_exact = _Dense(model).solve()
    gap = q_exact[:, 2] - q_exact[:, 1]
    if eps:
        assert np.all(gap > 0) and np.all(gap < 1e-10)  # 2 is the argmax, within the tie tolerance
    else:
        assert np.all(np.abs(gap) < 1e-13)
    assert np.all(q_exact[:, 1] - q_exact[:, 0] > 0.5)
    res = solve(SOLVERS[name], model)
    assert res.policy.tolist() == [1] * 9


# --------------------------------------------------------------------------- guard
def test_guard_names_count_and_limit():
    model = random_icsmdp(0, num_agents=3, num_latent=2, num_interface=3, num_private=(2, 2, 1))
    n = model.num_epoch_states
    assert n == 2 * 3 * 4 * 3 == 72
    with pytest.raises(StateSpaceTooLargeError, match=r"at most 50 epoch states.*has 72"):
        committed_chain(model, max_epoch_states=50)
    assert committed_chain(model, max_epoch_states=72).space.num_epoch_states == 72


def test_solve_refuses_model_above_default_limit():
    # 2 agents x 1,500 x 1,500 private states: 4,500,000 epoch states > 2,000,000
    model = random_icsmdp(0, num_agents=2, num_interface=1, num_private=1500, nnz_per_row=2)
    assert model.num_epoch_states == 4_500_000
    for solver in SOLVERS.values():
        with pytest.raises(StateSpaceTooLargeError, match=r"at most 2,000,000 epoch states.*has 4,500,000"):
            solve(solver, model)
