"""The stationary reference law and the mixing quantities of SPEC 6 with adaptable agents (issue 15).

With modes the behavior ``b_i(j | o)`` is over the choices ``j = a*(N+1) + c'``
(default: uniform over agent ``i``'s admissible pairs ``(a, c')``), and the epoch
chain moves with the chosen mode's option reduction:

    T[(f, i), (f', c')] = sum_a b_i(a*(N+1) + c' | o) P_{i,a}(y' | y)   (c' != STOP, f' = f[y -> y'])
    T[(f, i), s0]      += sum_a b_i(a*(N+1) + STOP | o) rho0(s0).

Independent truths:

- :class:`DenseChain`, built here from the file arrays alone (``instance_to_dict``
  through :class:`property_tests.estimators.test_gaps_modes.Dense`: per ``(agent, mode)``
  ``Kbar diag(1-beta)`` and ``Kbar diag(beta)`` from the JSON arrays, every full state
  enumerated): the undiscounted end law ``P_{i,a} = (I - Kbar diag(1-beta))^{-1} Kbar
  diag(beta)`` by ``numpy.linalg.solve``, ``rho0`` from the ``rho_*`` keys, and ``T`` by
  the loop above;
- ``pi`` as the limit of the lazy chain's powers ``rho0 ((I + T)/2)^(2^k)`` (the
  lazy chain has the same Cesaro limit, and is aperiodic, so its powers converge:
  no GTH, no closed classes, no renewal solve);
- closed classes (strongly connected components without an exit, ``scipy.sparse.csgraph``)
  and their period (gcd of ``level(u) + 1 - level(v)`` over the class's edges, BFS levels);
- ``t_mix`` and the projected mixing time by stepping ``T^t`` one power at a time;
  the relaxation time from ``numpy.linalg.eigvals`` of ``T``;
- identical modes: every mode given the agent's one policy, any split of the
  behavior's mass among the modes gives the one-mode model's chain under the
  marginal over successors, so its stationary law, mixing report and
  stationary-reference gaps.
"""
import json
from math import gcd

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import breadth_first_order, connected_components

from estimators.behavior import epsilon_greedy_behavior, uniform_behavior, validate_behavior
from estimators.epoch_chain import EpochStepper, epoch_chain, epoch_chain_operator
from estimators.gaps import gap_report
from estimators.mixing import decision_projection, mixing_report, observation_projection
from estimators.stationary import mu, renewal_occupancy, stationary_law
from icsmdp_theory.errors import InvalidArgumentError, StateSpaceTooLargeError
from icsmdp_theory.io import instance_from_dict, instance_to_dict
from icsmdp_theory.testing.strategies import icsmdps, icsmdps_with_modes
from property_tests.estimators.test_gaps_modes import Dense, _same_policy_modes
from property_tests.icsmdp_theory.test_modes import modes_doc
from reports.cli import main

TOL = 1e-9
EPS = 0.25
T_MAX = 3000


class DenseChain(Dense):
    """The epoch chain with modes by explicit enumeration (module docstring), from the file arrays."""

    def __init__(self, model):
        super().__init__(model)
        doc = instance_to_dict(model)
        self.P = [[np.linalg.solve(np.eye(Pc.shape[0]) - Pc, Pe) for _, _, Pc, Pe in per]
                  for per in self.red]
        rho_xm = np.asarray(doc["rho_latent_interface"], float)
        rho_l = [np.asarray(a["rho_private"], float) for a in doc["agents"]]
        rho_c = np.asarray(doc["rho_agent"], float)
        self.rho0 = np.array([rho_xm[f[0], f[1]] * np.prod([rho_l[j][f[2 + j]] for j in range(self.N)])
                              * rho_c[i] for f in self.fulls for i in range(self.N)])

    def uniform(self):
        """``b_i(j | o)``: uniform over the admissible pairs ``(a, c')``."""
        return [np.tile(self.adm[i] / self.adm[i].sum(), (self.nO[i], 1)) for i in range(self.N)]

    def chain(self, b):
        N, S, F = self.N, self.S, self.F
        T = np.zeros((F * N, F * N))
        for k in range(F):
            for i in range(N):
                s, y, o = k * N + i, self.local[k, i], self.obs[k, i]
                for a in range(self.K[i]):
                    for c in range(S):
                        w = b[i][o, a * S + c]
                        if w == 0.0:
                            continue
                        if c == N:
                            T[s] += w * self.rho0
                        else:
                            np.add.at(T[s], self.nxt[i][k] * N + c, w * self.P[i][a][y])
        return T

    def cells(self):
        """Flat cell ``offset_i + phi_i(m, l_i)`` of every epoch state ``s = f*N + i``."""
        return np.array([self.cell(k, i) for k in range(self.F) for i in range(self.N)])


def lazy_limit(T, rho0):
    """``lim rho0 ((I + T)/2)^n`` by repeated squaring (the Cesaro limit of ``rho0 T^t``)."""
    M = 0.5 * (np.eye(T.shape[0]) + T)
    for _ in range(200):                  # rows renormalized: round-off would grow as 2^k
        M2 = M @ M
        M2 /= M2.sum(axis=1, keepdims=True)
        if np.abs(M2 - M).max() < 1e-15:
            break
        M = M2
    return rho0 @ M2


def closed_classes_and_periods(T):
    """Closed classes of ``T > 0`` (SCCs with no exit) and the period of each."""
    G = T > 1e-14
    n, lab = connected_components(G, directed=True, connection="strong")
    out = []
    for c in range(n):
        members = np.flatnonzero(lab == c)
        if G[np.ix_(members, np.flatnonzero(lab != c))].any():
            continue
        sub = G[np.ix_(members, members)].astype(float)
        order, _ = breadth_first_order(sub, 0, directed=True)
        level = np.full(members.size, -1)
        level[0] = 0
        for u in order:                                   # BFS levels along the order
            for v in np.flatnonzero(sub[u]):
                if level[v] < 0:
                    level[v] = level[u] + 1
        p = 0
        for u, v in zip(*np.nonzero(sub)):
            p = gcd(p, int(level[u] + 1 - level[v]))
        out.append((members, p))
    return out


def brute_t(T, pi, proj=None, eps=EPS, t_max=T_MAX):
    """``min{t : max_s TV(T^t(s, .) proj, pi proj) <= eps}`` stepping one power at a time."""
    proj = np.eye(T.shape[0]) if proj is None else proj
    target = pi @ proj
    X = np.eye(T.shape[0])
    dists = []
    for t in range(t_max + 1):
        d = 0.5 * np.abs(X @ proj - target).sum(axis=1).max()
        dists.append(d)
        if d <= eps:
            return float(t), dists
        X = X @ T
    return np.inf, dists


def random_behavior(dense, seed):
    """Random ``b_i(j | o)`` over each agent's admissible choices (Dirichlet rows, some zeros)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(dense.N):
        adm = np.flatnonzero(dense.adm[i])
        w = np.zeros((dense.nO[i], dense.J))
        w[:, adm] = rng.dirichlet(np.ones(adm.size), size=dense.nO[i])
        w[:, adm] *= rng.random((dense.nO[i], adm.size)) >= 0.3
        dead = w.sum(axis=1) == 0
        w[dead, adm[rng.integers(adm.size)]] = 1.0
        out.append(w / w.sum(axis=1, keepdims=True))
    return out


MODEL_KW = dict(agents=(1, 3), latent=(1, 2), interface=(1, 3), private=(1, 2), actions=(1, 3),
                modes=(1, 3))


# ------------------------------------------------------------------ the chain, pi, mu
@settings(max_examples=20, deadline=None, database=None)
@given(icsmdps_with_modes(**MODEL_KW), st.integers(0, 2**31 - 1), st.booleans())
def test_chain_stationary_law_and_mu_with_modes_match_an_enumeration(model, seed, uniform):
    dense = DenseChain(model)
    b = dense.uniform() if uniform else random_behavior(dense, seed)
    beh = None if uniform else b
    if uniform:
        for got, want in zip(uniform_behavior(model), b):
            np.testing.assert_array_equal(got, want)
    T = dense.chain(b)
    np.testing.assert_allclose(T.sum(axis=1), 1.0, atol=1e-12)
    np.testing.assert_allclose(epoch_chain(model, behavior=beh), T, atol=TOL)
    np.testing.assert_allclose(epoch_chain(model, behavior=beh, sparse=True).toarray(), T, atol=TOL)
    X = np.random.default_rng(seed).random((T.shape[0], 3))
    np.testing.assert_allclose(EpochStepper(model, behavior=beh)(X), T @ X, atol=TOL)
    op = epoch_chain_operator(model, behavior=beh)
    np.testing.assert_allclose(op.matvec(X[:, 0]), T @ X[:, 0], atol=TOL)
    np.testing.assert_allclose(op.rmatvec(X[:, 1]), T.T @ X[:, 1], atol=TOL)
    pi = lazy_limit(T, dense.rho0)
    res = stationary_law(model, behavior=beh)
    np.testing.assert_allclose(res.law.reshape(-1), pi, atol=1e-8)
    m = mu(model, res.law, behavior=beh)
    assert m.shape == (dense.F, dense.N, model.num_choices)
    want = pi.reshape(dense.F, dense.N)[:, :, None] * np.stack(
        [b[i][dense.obs[:, i]] for i in range(dense.N)], axis=1)
    np.testing.assert_allclose(m, want, atol=1e-8)
    # the matrix-free renewal occupancy: pi when every state reachable from rho0 reaches STOP
    try:
        ren = renewal_occupancy(model, behavior=beh)
    except StateSpaceTooLargeError:
        return
    np.testing.assert_allclose(ren.law.reshape(-1), pi, atol=1e-8)


# ------------------------------------------------------------------ mixing
@settings(max_examples=30, deadline=None, database=None)
@given(icsmdps_with_modes(**MODEL_KW), st.integers(0, 2**31 - 1), st.booleans())
def test_mixing_report_with_modes_matches_an_enumeration(model, seed, uniform):
    dense = DenseChain(model)
    b = dense.uniform() if uniform else random_behavior(dense, seed)
    beh = None if uniform else b
    T = dense.chain(b)
    pi = lazy_limit(T, dense.rho0)
    rep = mixing_report(model, behavior=beh)
    classes = closed_classes_and_periods(T)
    assert rep.num_closed_classes == len(classes)
    if len(classes) > 1 or classes[0][1] > 1:
        assert rep.t_mix == np.inf and rep.t_mix_is_exact
        return
    cells = dense.cells()
    proj = np.zeros((T.shape[0], int(dense.off[-1])))
    proj[np.arange(T.shape[0]), cells] = 1.0
    for got, P in ((rep.t_mix, None), (rep.projected_t_mix, proj), (rep.projected_t_mix_decision, proj)):
        t, dists = brute_t(T, pi, P)
        if got != t:                                   # only a tie with eps at round-off may differ
            assert abs(dists[int(min(t, got))] - EPS) < 1e-9, (got, t)
    lam = np.sort(np.abs(np.linalg.eigvals(T)))[::-1]
    assert abs(lam[0] - 1.0) < 1e-9
    if lam.size > 1 and lam[1] < 1 - 1e-6:
        assert rep.relaxation_time == pytest.approx(1.0 / (1.0 - lam[1]), rel=1e-5, abs=1e-6)
    # beyond exact_limit: the operator path's bounds hold the exact t_mix
    if np.isfinite(rep.t_mix) and T.shape[0] >= 5:    # ARPACK needs n > k + 1 (k = 2)
        far = mixing_report(model, behavior=beh, exact_limit=1)
        assert far.t_mix_lower - 1e-9 <= rep.t_mix <= far.t_mix_upper + 1e-9


def test_decision_projection_with_modes_has_choice_columns():
    model = instance_from_dict(modes_doc())
    dense = DenseChain(model)
    b = random_behavior(dense, 3)
    D = decision_projection(model, behavior=b).toarray()
    cells = dense.cells()
    J = model.num_choices
    assert D.shape == (model.num_epoch_states, int(dense.off[-1]) * J)
    for s in range(model.num_epoch_states):
        i = s % dense.N
        np.testing.assert_allclose(D[s, cells[s] * J:(cells[s] + 1) * J], b[i][dense.obs[s // dense.N, i]])
        assert D[s].sum() == pytest.approx(1.0)


# ------------------------------------------------------------------ identical modes
def _marginal(model, modes, b):
    """The behavior over successors of the one-mode model: ``sum_a b(a*(N+1) + c')``."""
    S = model.num_successors
    return [bi.reshape(bi.shape[0], -1, S).sum(axis=1) for bi in b]


@settings(max_examples=20, deadline=None, database=None)
@given(icsmdps(agents=(1, 3), latent=(1, 2), interface=(1, 3), private=(1, 2), actions=(1, 2)),
       st.lists(st.integers(1, 3), min_size=3, max_size=3), st.integers(0, 2**31 - 1))
def test_identical_modes_give_the_one_mode_stationary_law_and_mixing(model, K, seed):
    K = K[:model.num_agents]
    if max(K) == 1:
        K[0] = 2
    modes = _same_policy_modes(model, K)
    # uniform over (a, c'): the marginal over c' is uniform over the successors
    one, two = stationary_law(model), stationary_law(modes)
    np.testing.assert_allclose(two.law, one.law, atol=1e-12)
    m1, m2 = mixing_report(model), mixing_report(modes)
    for key in ("num_closed_classes", "period"):
        assert getattr(m2, key) == getattr(m1, key), key
    proj = observation_projection(model).toarray()
    for key, P in (("t_mix", None), ("projected_t_mix", proj), ("projected_t_mix_decision", proj)):
        t1, t2 = getattr(m1, key), getattr(m2, key)
        if t1 != t2:      # the chains agree to round-off: only a tie with eps at round-off may differ
            _, dists = brute_t(epoch_chain(model), one.law.reshape(-1), P)
            k = int(min(t1, t2))
            assert k < len(dists) and abs(dists[k] - EPS) < 1e-9, (key, t1, t2)
    assert m2.relaxation_time == pytest.approx(m1.relaxation_time, rel=1e-9, abs=1e-12)
    g1 = gap_report(model, reference="stationary", minimax=False)
    g2 = gap_report(modes, reference="stationary", minimax=False)
    for key, value in g1.scalars().items():
        assert getattr(g2, key) == pytest.approx(value, abs=1e-9), key
    # any split of the mass among identical modes: the one-mode chain under the marginal
    b = random_behavior(DenseChain(modes), seed)
    np.testing.assert_allclose(epoch_chain(modes, behavior=b),
                               epoch_chain(model, behavior=_marginal(model, modes, b)), atol=1e-12)
    np.testing.assert_allclose(stationary_law(modes, behavior=b).law,
                               stationary_law(model, behavior=_marginal(model, modes, b)).law,
                               atol=1e-10)


# ------------------------------------------------------------------ behaviors over choices
def test_behavior_over_choices_is_validated_with_located_errors():
    model = instance_from_dict(modes_doc())           # planner 1 mode, checker 2 modes; J = 6
    assert model.num_choices == 6
    u = uniform_behavior(model)
    assert [x.shape for x in u] == [(2, 6), (3, 6)]
    np.testing.assert_allclose(u[1][0], [0.25, 0, 0.25, 0.25, 0, 0.25])
    np.testing.assert_allclose(u[0][0], [0, 0.5, 0.5, 0, 0, 0])
    with pytest.raises(InvalidArgumentError, match=r"shape \[3, 6\] \(observations, choices"):
        validate_behavior(model, [u[0], u[1][:, :3]])
    bad = [u[0].copy(), u[1]]
    bad[0][0] = [0, 0.5, 0, 0, 0, 0.5]                  # the planner has no mode 1
    with pytest.raises(InvalidArgumentError,
                       match=r"inadmissible choice j=5 \(mode 1, successor STOP\) at observation o=0"):
        validate_behavior(model, bad)
    q = [np.arange(12.0).reshape(2, 6), -np.arange(18.0).reshape(3, 6)]
    g = epsilon_greedy_behavior(model, q, 0.2)
    np.testing.assert_allclose(g[0][0], [0, 0.1, 0.9, 0, 0, 0])       # greedy: j = 2 (STOP)
    np.testing.assert_allclose(g[1][0], [0.85, 0, 0.05, 0.05, 0, 0.05])  # greedy: lowest j = 0


def test_cli_gaps_with_modes_stationary_and_mixing(tmp_path, capsys):
    path = tmp_path / "modes.json"
    path.write_text(json.dumps(modes_doc()))
    assert main(["gaps", str(path), "--reference", "stationary", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    model = instance_from_dict(modes_doc())
    rep = gap_report(model, reference="stationary")
    mix = mixing_report(model)
    assert doc["reference"] == "stationary"
    for key in ("epsilon_phi", "delta_phi", "eta", "alpha_tight", "max_q_gap", "policy_loss"):
        assert doc[key] == pytest.approx(getattr(rep, key), abs=1e-12)
    dense = DenseChain(model)
    T = dense.chain(dense.uniform())
    pi = lazy_limit(T, dense.rho0)
    assert doc["t_mix"] == mix.t_mix == brute_t(T, pi)[0]
