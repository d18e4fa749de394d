"""The AIS construction and the gaps of SPEC 5 with adaptable agents (modes, issue 15).

Independent truths:

- :class:`Dense`, built here from the file arrays alone (``instance_to_dict``; no
  library reduction, AIS construction or solver): per ``(agent, mode)`` the dense
  option reduction, every full epoch state enumerated, the uniform-reference
  AIS SMDP on cells over the choices ``j = a*(N+1) + c'``, ``Q_hat*`` by value
  iteration, ``epsilon_phi``, ``delta_phi`` (laws of ``(o', tau)`` by matrix
  powers), ``eta``, ``gamma_bar``, and ``V^sigma`` of a given epoch policy;
- ``Q*`` from :func:`property_tests.icsmdp_theory.test_modes.explicit_q` (each mode
  a separate agent copy; the library oracle is checked against it there);
- the one-mode model: every mode given the same policy must reproduce its gaps.
"""
import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from estimators.ais import ais_smdp, ais_solution
from estimators.gaps import gap_report
from estimators.minimax import minimax_gaps
from icsmdp_theory.examples import load_example
from icsmdp_theory.io import instance_from_dict, instance_to_dict
from icsmdp_theory.testing.strategies import icsmdps, icsmdps_with_modes
from property_tests.icsmdp_theory.test_modes import (_dense_kernel, explicit_q, local_and_next,
                                                     mode_averages, modes_doc)
from reports.cli import main

TOL = 1e-7


class Dense:
    """Everything of SPEC 4-5 by explicit enumeration (uniform reference), from the file arrays.

    Full states ``f = (x, m, l_0..l_{N-1})`` in C order (``itertools.product``), epoch
    state ``s = f*N + i``, agent ``i``'s local state ``y = (x nM + m) nL_i + l_i``.
    Per agent ``i`` and mode ``a``: ``Kbar = sum_u pi^a(u|m,l) K[u]``,
    ``rbar = sum_u pi^a r``, ``G = gamma Kbar diag(1-beta)``, ``E = gamma Kbar diag(beta)``,
    ``R = (I-G)^-1 rbar``, ``D = (I-G)^-1 E`` (``numpy.linalg.solve``), and the
    undiscounted ``P(y', tau | y) = [(Kbar diag(1-beta))^(tau-1) Kbar diag(beta)](y, y')``.
    A cell is ``(i, o)``; under the uniform reference every full state of the cell
    weighs the same. Choice ``j = a*(N+1) + c'``: mode ``a``, successor ``c'``.
    """

    def __init__(self, model):
        doc = instance_to_dict(model)
        self.gamma = g = doc["gamma"]
        nX, nM = doc["n_latent"], doc["n_interface"]
        ags = doc["agents"]
        self.N = N = len(ags)
        self.S = S = N + 1
        nL = [a["n_private"] for a in ags]
        self.K = [len(a["modes"]) if "modes" in a else 1 for a in ags]
        self.J = J = max(self.K) * S
        self.fulls = list(itertools.product(range(nX), range(nM), *[range(n) for n in nL]))
        F = self.F = len(self.fulls)
        self.phi = [np.asarray(a["observation"], dtype=np.int64) for a in ags]   # [m, l]
        self.nO = [int(p.max()) + 1 for p in self.phi]
        succ = np.array([a["successors"] for a in ags], bool)
        self.adm = np.zeros((N, J), bool)                  # choice admissible
        for i in range(N):
            for a in range(self.K[i]):
                self.adm[i, a * S:(a + 1) * S] = succ[i]
        self.red = []                                      # red[i][a] = (R, D, Pcont, Pend)
        for i, ag in enumerate(ags):
            nY = nX * nM * nL[i]
            Kk = _dense_kernel(ag, nY)
            per = []
            for kbar, rbar, beta in mode_averages(ag, Kk, nX, nM, nL[i], N):
                A = np.eye(nY) - g * kbar * (1 - beta)[None, :]
                per.append((np.linalg.solve(A, rbar), np.linalg.solve(A, g * kbar * beta[None, :]),
                            kbar * (1 - beta)[None, :], kbar * beta[None, :]))
            self.red.append(per)
        self.gamma_bar = max(float(D.sum(axis=1).max()) for per in self.red for _, D, _, _ in per)
        # per agent: local state of f; next full state f[y -> y']; the successor's observation
        self.local, self.nxt = local_and_next(self.fulls, nX, nM, nL)
        self.obs = np.array([[self.phi[i][f[1], f[2 + i]] for i in range(N)] for f in self.fulls],
                            dtype=np.int64).reshape(F, N)     # obs[f, i] = phi_i(m, l_i)
        self.off = np.concatenate([[0], np.cumsum(self.nO)])
        self._ais()

    def _ais(self):
        N, S, J, F = self.N, self.S, self.J, self.F
        nC = int(self.off[-1])
        R_hat = np.zeros((nC, J))
        D_hat = np.zeros((nC, J, nC))
        count = np.zeros(nC)
        for k in range(F):
            for i in range(N):
                c = self.off[i] + self.obs[k, i]
                count[c] += 1
                y = self.local[k, i]
                for a, (R, D, _, _) in enumerate(self.red[i]):
                    for cn in range(S):
                        j = a * S + cn
                        if not self.adm[i, j]:
                            continue
                        R_hat[c, j] += R[y, cn]
                        if cn < N:
                            o2 = self.obs[self.nxt[i][k], cn]          # (nY,) successor's o'
                            np.add.at(D_hat[c, j], self.off[cn] + o2, D[y])
        self.R_hat = R_hat / count[:, None]
        self.D_hat = D_hat / count[:, None, None]
        self.cell_adm = np.repeat(self.adm, self.nO, axis=0)       # (nC, J)
        V = np.zeros(nC)
        while True:
            Q = np.where(self.cell_adm, self.R_hat + self.D_hat @ V, -np.inf)
            Vn = Q.max(axis=1)
            step = np.abs(Vn - V).max()
            V = Vn
            if step < 1e-13:
                break
        self.q_hat = np.where(self.cell_adm, Q, np.nan)
        self.v_hat = V

    def cell(self, k, i):
        return int(self.off[i] + self.obs[k, i])

    def gaps(self, tail=1e-13, max_tau=20000):
        """``epsilon_phi``, ``delta_phi``, ``eta`` over every ``(s, j)`` (SPEC 5, uniform reference)."""
        N, S = self.N, self.S
        eps = delta = eta = 0.0
        for i in range(N):
            for a, (R, D, Pc, Pe) in enumerate(self.red[i]):
                for cn in range(S):
                    j = a * S + cn
                    if not self.adm[i, j]:
                        continue
                    for k in range(self.F):
                        c = self.cell(k, i)
                        y = self.local[k, i]
                        eps = max(eps, abs(R[y, cn] - self.R_hat[c, j]))
                    if cn == N:
                        continue
                    # eta: D_phi V_hat vs D_hat V_hat
                    vn = self.v_hat[self.off[cn]:self.off[cn + 1]]
                    # laws of (o', tau): per state row e_y (Pc)^(tau-1) Pe pushed through phi_cn
                    cells = np.array([self.cell(k, i) for k in range(self.F)])
                    ys = self.local[:, i]
                    o2 = self.obs[self.nxt[i], cn]                        # (F, nY)
                    for k in range(self.F):
                        dphi = np.bincount(o2[k], weights=D[ys[k]], minlength=self.nO[cn])
                        eta = max(eta, abs(dphi @ vn - self.D_hat[cells[k], j,
                                                                   self.off[cn]:self.off[cn + 1]] @ vn))
                    row = np.eye(Pc.shape[0])[ys]                         # (F, nY)
                    acc = np.zeros(self.F)
                    for _ in range(max_tau):
                        law = row @ Pe                                    # (F, nY'): P(y', tau)
                        pushed = np.zeros((self.F, self.nO[cn]))
                        for k in range(self.F):
                            pushed[k] = np.bincount(o2[k], weights=law[k], minlength=self.nO[cn])
                        mean = np.zeros((int(self.off[-1]), self.nO[cn]))
                        np.add.at(mean, cells, pushed)
                        mean /= np.maximum(np.bincount(cells, minlength=len(mean)), 1)[:, None]
                        acc += np.abs(pushed - mean[cells]).sum(axis=1)
                        row = row @ Pc
                        if row.sum(axis=1).max() < tail:
                            break
                    delta = max(delta, 0.5 * float(acc.max()))
        return eps, delta, eta

    def policy_value(self, policy):
        """``V^sigma[s]`` of an epoch policy ``sigma[s]`` (choice indices), by iteration."""
        N, S, F = self.N, self.S, self.F
        pol = np.asarray(policy).reshape(F, N)
        V = np.zeros((F, N))
        while True:
            Vn = np.empty_like(V)
            for i in range(N):
                for k in range(F):
                    a, cn = divmod(int(pol[k, i]), S)
                    R, D, _, _ = self.red[i][a]
                    y = self.local[k, i]
                    v = R[y, cn]
                    if cn < N:
                        v += D[y] @ V[self.nxt[i][k], cn]
                    Vn[k, i] = v
            step = np.abs(Vn - V).max()
            V = Vn
            if step < 1e-13:
                return V.reshape(-1)


def _same_policy_modes(model, K):
    """``model`` (one mode) with agent ``i`` given ``K[i]`` modes, all with its policy."""
    doc = instance_to_dict(model)
    for a, k in zip(doc["agents"], K):
        if k > 1:
            a["modes"] = [f"copy{c}" for c in range(k)]
            a["internal_policy"] = [a["internal_policy"]] * k
    return instance_from_dict(doc)


# ------------------------------------------------------------------ (1) identical modes
@settings(max_examples=20, deadline=None, database=None)
@given(icsmdps(agents=(1, 3), latent=(1, 2), interface=(1, 3), private=(1, 2), actions=(1, 2)),
       st.lists(st.integers(1, 3), min_size=3, max_size=3))
def test_identical_modes_give_the_one_mode_gaps(model, K):
    K = K[:model.num_agents]
    if max(K) == 1:
        K[0] = 2
    modes = _same_policy_modes(model, K)
    one, rep = gap_report(model), gap_report(modes)
    for key, value in one.scalars().items():
        assert getattr(rep, key) == pytest.approx(value, abs=1e-9), key
    S, J = model.num_successors, modes.num_choices
    assert rep.q_hat.shape == (one.q_hat.shape[0], J)
    for a in range(max(K)):
        block = rep.q_hat[:, a * S:(a + 1) * S]
        for c in range(rep.q_hat.shape[0]):
            i = int(np.searchsorted(rep.cell_offsets, c, side="right") - 1)
            if a < K[i]:
                np.testing.assert_allclose(block[c], one.q_hat[c], atol=1e-9, equal_nan=True)
            else:
                assert np.isnan(block[c]).all()
    np.testing.assert_allclose(rep.v_hat, one.v_hat, atol=1e-9)
    # per-cell attribution: the same values, and the worst states name a mode
    by_cell = {r["cell"]: r for r in one.cells}
    for r in rep.cells:
        for key in ("epsilon", "delta", "delta_gamma", "eta", "minimax_epsilon", "minimax_delta"):
            assert r[key] == pytest.approx(by_cell[r["cell"]][key], abs=1e-9), key
        assert 0 <= r["epsilon_state"]["mode"] < K[r["agent"]]


# ------------------------------------------------------------------ (2) SPEC 5 facts with modes
@settings(max_examples=25, deadline=None, database=None)
@given(icsmdps_with_modes(agents=(1, 3), latent=(1, 2), interface=(1, 3), private=(1, 2),
                          actions=(1, 3), modes=(1, 3)))
def test_ais_and_gaps_with_modes_match_an_explicit_enumeration(model):
    dense = Dense(model)
    rep = gap_report(model, minimax=False)
    # Q_hat*, V_hat over (cell, j) against the enumeration
    assert rep.q_hat.shape == dense.q_hat.shape
    np.testing.assert_array_equal(np.isnan(rep.q_hat), np.isnan(dense.q_hat))
    np.testing.assert_allclose(rep.q_hat, dense.q_hat, atol=TOL, equal_nan=True)
    np.testing.assert_allclose(rep.v_hat, dense.v_hat, atol=TOL)
    eps, delta, eta = dense.gaps()
    assert rep.epsilon_phi == pytest.approx(eps, abs=TOL)
    assert rep.delta_phi == pytest.approx(delta, abs=1e-9)
    assert rep.eta == pytest.approx(eta, abs=TOL)
    assert rep.gamma_bar == pytest.approx(dense.gamma_bar, abs=1e-12)
    assert rep.alpha_tight == pytest.approx((eps + eta) / (1 - dense.gamma_bar), rel=1e-6, abs=TOL)
    # the provable facts against Q* by copy enumeration
    q_star = explicit_q(model)
    cells = np.array([dense.cell(k, i) for k in range(dense.F) for i in range(dense.N)])
    q_gap = np.nanmax(np.abs(q_star - dense.q_hat[cells]))
    v_star = np.nanmax(q_star, axis=1)
    assert rep.max_q_gap == pytest.approx(q_gap, abs=TOL)
    assert q_gap <= rep.alpha_tight + TOL
    assert rep.alpha_tight <= rep.alpha_tv + TOL
    assert np.abs(v_star - dense.v_hat[cells]).max() <= rep.alpha_tight + TOL
    # the greedy AIS choice (lowest admissible index within 1e-10), evaluated in the full system
    q = np.where(np.isnan(dense.q_hat[cells]), -np.inf, dense.q_hat[cells])
    sigma = np.argmax(q >= q.max(axis=1, keepdims=True) - 1e-10, axis=1)
    loss = float(np.max(v_star - dense.policy_value(sigma)))
    assert rep.policy_loss == pytest.approx(loss, abs=1e-6)
    assert loss <= 2 * rep.alpha_tight + TOL


@settings(max_examples=10, deadline=None, database=None)
@given(icsmdps_with_modes(agents=(1, 2), latent=(1, 2), interface=(1, 3), private=(1, 2),
                          actions=(1, 2), modes=(2, 3)))
def test_minimax_with_modes_below_the_gaps_and_by_hand_epsilon(model):
    """Minimax epsilon = max over (cell, j) of half the range of R (enumeration); minimax
    <= the uniform-reference gaps."""
    dense = Dense(model)
    mm = minimax_gaps(model, workers=1)
    half = 0.0
    for i in range(dense.N):
        for a, (R, _, _, _) in enumerate(dense.red[i]):
            for cn in range(dense.S):
                if not dense.adm[i, a * dense.S + cn]:
                    continue
                for o in range(dense.nO[i]):
                    vals = [R[dense.local[k, i], cn] for k in range(dense.F) if dense.obs[k, i] == o]
                    half = max(half, 0.5 * (max(vals) - min(vals)))
    assert mm.epsilon == pytest.approx(half, abs=TOL)
    rep = gap_report(model, minimax=False)
    assert mm.epsilon <= rep.epsilon_phi + TOL
    assert mm.delta_lower <= rep.delta_phi + TOL


# ------------------------------------------------------------------ (3) exact AIS with modes
@settings(max_examples=25, deadline=None, database=None)
@given(st.one_of(
    icsmdps_with_modes(agents=(1, 3), latent=1, interface=(1, 3), private=1, actions=(1, 3),
                       modes=(1, 3), observation="injective"),
    icsmdps_with_modes(agents=1, latent=1, interface=(1, 3), private=(1, 3), actions=(1, 3),
                       modes=(2, 3), observation="injective")))
def test_injective_maps_are_exact_with_modes(model):
    rep = gap_report(model)
    assert rep.epsilon_phi <= 1e-9 and rep.delta_phi <= 1e-9
    assert rep.minimax_epsilon <= 1e-9 and rep.minimax_delta <= 1e-6
    q_star = explicit_q(model)
    cells = Dense(model)
    flat = np.array([cells.cell(k, i) for k in range(cells.F) for i in range(cells.N)])
    np.testing.assert_allclose(rep.q_hat[flat], q_star, atol=TOL, equal_nan=True)
    assert rep.max_q_gap <= TOL and rep.policy_loss <= TOL


# ------------------------------------------------------------------ a hand-checked instance
def test_tiny_handoff_with_a_fast_mode_by_hand():
    """tiny-handoff's checker with a second mode ``fast`` (m -> m2 at cost 0.3 except at m2;
    one-step invocations). The checker's cells are singletons, so its rows of Q_hat* are
    Q*'s: at m1 choosing (fast, planner) gives -0.3 + 0.9 * V_hat(planner, o=1)."""
    model = instance_from_dict(modes_doc())
    rep = gap_report(model)
    assert rep.q_hat.shape == (5, 6)
    ais = ais_smdp(model)
    v = ais_solution(ais).v
    c = ais.cell_index(1, 1)                               # checker at m1
    assert rep.q_hat[c, model.choice(1, 0)] == pytest.approx(-0.3 + 0.9 * v[ais.cell_index(0, 1)])
    assert rep.q_hat[c, model.choice(1, 2)] == pytest.approx(-0.3)
    assert np.isnan(rep.q_hat[c, model.choice(1, 1)])     # checker -> checker inadmissible
    assert ais.end_kernel_dense.shape == (5, 6, 5)
    # one-step invocations: D_hat rows of the fast mode put gamma on the planner's o=1 cell
    assert ais.end_kernel_dense[c, model.choice(1, 0)].tolist() == pytest.approx(
        [0.0, 0.9, 0.0, 0.0, 0.0])
    names = {(r["epsilon_state"] or {}).get("mode_name") for r in rep.cells if r["agent"] == 1}
    assert names <= {"careful", "fast"}


def test_cli_gaps_with_modes(tmp_path, capsys):
    path = tmp_path / "modes.json"
    path.write_text(json.dumps(modes_doc()))
    assert main(["gaps", str(path), "--no-mixing", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rep = gap_report(instance_from_dict(modes_doc()))
    for key in ("epsilon_phi", "delta_phi", "eta", "alpha_tight", "max_q_gap", "policy_loss"):
        assert doc[key] == pytest.approx(getattr(rep, key), abs=1e-12)
    assert all("mode" in r["epsilon_state"] for r in doc["cells"])
    # the stationary reference and mixing take modes too (slice 2b: test_stationary_modes.py)
    for argv in (["gaps", str(path)], ["gaps", str(path), "--no-mixing", "--reference", "stationary"]):
        assert main(argv) == 0
        capsys.readouterr()


def test_stationary_and_explicit_reference_with_modes():
    model = instance_from_dict(modes_doc())
    rep = gap_report(model, reference="stationary", minimax=False)
    assert rep.reference == "stationary" and rep.max_q_gap <= rep.alpha_tight + TOL
    d = np.arange(1, model.num_epoch_states + 1, dtype=float)
    rep = gap_report(model, reference=d, minimax=False)
    assert rep.reference == "explicit" and rep.max_q_gap <= rep.alpha_tight + TOL


def test_one_mode_examples_have_no_mode_keys():
    """A one-mode model's per-cell states keep today's keys (the JSON is unchanged)."""
    rep = gap_report(load_example("tiny-handoff"), minimax=False)
    assert set(rep.cells[0]["epsilon_state"]) == {"x", "m", "l", "agent", "successor"}
