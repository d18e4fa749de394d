"""Gap reports (SPEC section 5): exact cases, the provable inequalities, Monte Carlo checks."""
from __future__ import annotations

import json

import numpy as np
import pytest

from estimators.ais import ais_smdp
from estimators.gaps import GapReport, MapComparison, compare_maps, gap_report
from icsmdp_theory.errors import InvalidObservationMapError
from icsmdp_theory.generators import observation_mod, random_icsmdp
from icsmdp_theory.model import ICSMDP
from icsmdp_theory.results import to_jsonable
from property_tests.estimators import dense_reduction, full_epoch_states, simulate_invocations

GAP_KEYS = ("epsilon_phi", "delta_phi", "delta_phi_gamma", "eta")


# ------------------------------------------------------------------ exact AIS
EXACT = [
    # nX = 1, no private states, injective maps
    dict(num_agents=3, num_latent=1, num_interface=4, num_private=1, num_actions=2),
    dict(num_agents=2, num_latent=1, num_interface=5, num_private=1, num_actions=(1, 3),
         end_probability=(0.1, 0.5)),
    # N = 1 with private states, nX = 1, injective map
    dict(num_agents=1, num_latent=1, num_interface=3, num_private=3, num_actions=2,
         successor_density=1.0),
]


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("kw", EXACT)
def test_injective_maps_without_hidden_state_are_exact(kw, seed):
    model = random_icsmdp(seed, observation="injective", **kw)
    rep = gap_report(model)
    assert rep.success, rep.message
    for k in GAP_KEYS:
        assert getattr(rep, k) <= 1e-10, k
    assert rep.max_q_gap <= 1e-8 and rep.max_value_gap <= 1e-8
    assert abs(rep.policy_loss) <= 1e-8
    assert rep.minimax_epsilon <= 1e-10 and rep.minimax_delta <= 1e-10


def _counter_case(stop_reward=None) -> ICSMDP:
    """Agent 0 hands to agent 1, whose reward depends on its own private state l_1.

    nX = nM = 1 and every map is injective, yet agent 0's single cell holds both
    values of l_1: the successor's observation o' = l_1 is a point mass in each
    state and uniform on average (delta_phi = 1/2), and Q*(agent 0) = gamma*[l_1 = 0]
    while Q_hat(agent 0) = gamma/2 (so max_q_gap = eta = 0.45 with gamma = 0.9).
    With ``stop_reward``, agent 0 may also STOP and collect it.
    """
    stop = stop_reward is not None
    router = dict(name="router", n_private=1, n_actions=1, rho_private=[1.0],
                  internal_policy=[[[1.0]]], kernel=[[[1.0]]],
                  reward=[[[[0.0, 0.0, stop_reward if stop else 0.0]]]],
                  end_probability=[[[1.0]]], observation=[[0]], successors=[False, True, stop])
    worker = dict(name="worker", n_private=2, n_actions=2, rho_private=[0.5, 0.5],
                  internal_policy=[[[1.0, 0.0], [0.0, 1.0]]],
                  kernel=[[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]]],
                  reward=[[[[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]]],
                  end_probability=[[[1.0, 1.0]]], observation=[[0, 1]],
                  successors=[False, False, True])
    return ICSMDP(name="counter", gamma=0.9, horizon=10, n_latent=1, n_interface=1,
                  rho_latent_interface=[[1.0]], rho_agent=[1.0, 0.0], agents=[router, worker])


def test_private_states_break_exactness():
    rep = gap_report(_counter_case())
    assert rep.epsilon_phi <= 1e-12
    assert rep.delta_phi == pytest.approx(0.5, abs=1e-12)
    assert rep.delta_phi_gamma == pytest.approx(0.9, abs=1e-12)   # || 0.9 e_l - 0.9 (1/2, 1/2) ||_1
    assert rep.eta == pytest.approx(0.45, abs=1e-9)
    assert rep.max_q_gap == pytest.approx(0.45, abs=1e-9)
    assert rep.alpha_tight == pytest.approx(4.5, abs=1e-8)
    assert rep.minimax_delta == pytest.approx(0.5, abs=1e-9)       # two point masses
    top = rep.cells[0]
    assert (top["agent_name"], top["observation"], top["delta_state"]["successor"]) == ("router", 0, 1)


def test_greedy_ais_policy_loss_by_hand():
    # Q*(router, l_1=0) = (0.9, STOP 0.5), Q*(router, l_1=1) = (0, STOP 0.5); Q_hat = (0.45, 0.5):
    # the AIS policy stops everywhere and loses 0.9 - 0.5 at l_1 = 0.
    rep = gap_report(_counter_case(stop_reward=0.5))
    assert rep.policy_loss == pytest.approx(0.4, abs=1e-9)
    assert rep.max_value_gap == pytest.approx(0.4, abs=1e-9)
    assert rep.max_q_gap == pytest.approx(0.45, abs=1e-9)
    np.testing.assert_allclose(rep.v_hat, [0.5, 1.0, 0.0], atol=1e-9)


def _dense_policy_values(model, q_hat, cell_offsets):
    """V^sigma on epoch states by one dense linear solve (SPEC section 3 with D_i dense)."""
    N, nM = model.num_agents, model.num_interface
    states = list(full_epoch_states(model))
    index = {st: f for f, st in enumerate(states)}
    dense = [dense_reduction(model, i) for i in range(N)]
    n = len(states) * N
    A, b = np.eye(n), np.zeros(n)
    adm = np.array([a.successors for a in model.agents])
    for f, (x, m, ls) in enumerate(states):
        for i, agent in enumerate(model.agents):
            nL = agent.num_private
            cell = cell_offsets[i] + agent.observation[m, ls[i]]
            row = np.where(adm[i], q_hat[cell], -np.inf)
            c = int(np.flatnonzero(row >= row.max() - 1e-10)[0])   # lowest index within 1e-10
            y = (x * nM + m) * nL + ls[i]
            s = f * N + i
            b[s] = dense[i]["R"][y, c]
            if c == N:
                continue
            for y2 in range(dense[i]["D"].shape[1]):
                xm2, l2 = divmod(y2, nL)
                ls2 = list(ls)
                ls2[i] = l2
                f2 = index[(xm2 // nM, xm2 % nM, tuple(ls2))]
                A[s, f2 * N + c] -= dense[i]["D"][y, y2]
    return np.linalg.solve(A, b)


@pytest.mark.parametrize("seed", [5, 15, 23])
def test_policy_loss_against_dense_evaluation(seed):
    model = _random_case(seed)
    rep = gap_report(model, minimax=False)
    v_sigma = _dense_policy_values(model, rep.q_hat, rep.cell_offsets)
    v_star = np.nanmax(rep.q_star, axis=1)
    assert rep.policy_loss == pytest.approx(np.max(v_star - v_sigma), abs=1e-9)
    cells = np.array([[rep.cell_offsets[i] + model.agents[i].observation[m, ls[i]]
                       for i in range(model.num_agents)]
                      for x, m, ls in full_epoch_states(model)]).reshape(-1)   # phi(s), s = f*N + i
    assert rep.max_value_gap == pytest.approx(np.max(np.abs(v_star - rep.v_hat[cells])), abs=1e-9)


# ------------------------------------------------------------------ provable facts
def _random_case(seed):
    rng = np.random.default_rng(1000 + seed)
    nM = int(rng.integers(2, 5))
    obs = ["random", 2, "injective", "random"][seed % 4]
    return random_icsmdp(
        seed, num_agents=int(rng.integers(1, 4)), num_latent=int(rng.integers(1, 3)),
        num_interface=nM, num_private=2 if seed % 3 else 1,
        num_actions=int(rng.integers(1, 3)), observation=obs,
        end_probability=(float(rng.uniform(0.2, 0.6)), 1.0),
        gamma=float(rng.choice([0.8, 0.9, 0.95])), successor_density=float(rng.uniform(0.4, 1.0)),
        reward_range=(-1.0, 1.0) if seed % 2 else (0.0, 1.0))


@pytest.mark.parametrize("seed", range(40))
def test_provable_inequalities(seed):
    model = _random_case(seed)
    rep = gap_report(model)
    assert rep.success, rep.message
    assert rep.max_q_gap <= rep.alpha_tight + 1e-8
    assert rep.alpha_tight <= rep.alpha_tv + 1e-12
    assert rep.max_value_gap <= rep.alpha_tight + 1e-8
    assert rep.policy_loss <= 2 * rep.alpha_tight + 1e-8
    assert rep.policy_loss >= -1e-8                      # sigma can never beat the optimum
    assert rep.minimax_epsilon <= rep.epsilon_phi + 1e-12
    assert rep.minimax_delta <= rep.delta_phi + 1e-9
    assert rep.minimax_delta_lower <= rep.minimax_delta + 1e-12   # (rounding only)
    # eta <= span_f * delta (what makes alpha_tight <= alpha_tv) and the gaps' ranges
    assert rep.eta <= rep.span_f * rep.delta_phi + 1e-12
    assert 0 <= rep.delta_phi <= 1 and 0 <= rep.delta_phi_gamma <= 2 * rep.gamma_bar + 1e-12
    assert max(c["epsilon"] for c in rep.cells) == rep.epsilon_phi
    assert max(c["delta"] for c in rep.cells) == rep.delta_phi


# ------------------------------------------------------------------ attribution and Monte Carlo
def _mc_model():
    return random_icsmdp(21, num_agents=2, num_latent=2, num_interface=3, num_private=2,
                         num_actions=2, observation="random", end_probability=(0.3, 0.8),
                         successor_density=1.0)


def _coarse(o2, tau, num_o, cap):
    counts = np.zeros((num_o, cap))
    np.add.at(counts, (o2, np.minimum(tau, cap) - 1), 1.0)
    return counts / counts.sum()


def _coarse_law(law, cap):
    out = law[:, :cap].copy()
    out[:, cap - 1] += law[:, cap:].sum(axis=1)
    return out


def test_delta_phi_against_monte_carlo():
    model = _mc_model()
    rep = gap_report(model, minimax=False)
    top = max(rep.cells, key=lambda c: c["delta"])
    st = top["delta_state"]
    i, j, o = st["agent"], st["successor"], top["observation"]
    assert rep.delta_phi == top["delta"] > 0.05
    law_hat = ais_smdp(model).duration_law[i][j][o]               # [o', tau-1]
    num_o, cap, n = law_hat.shape[0], 20, 200_000
    rng = np.random.default_rng(7)
    o2, tau = simulate_invocations(model, rng, i, st["x"], st["m"], tuple(st["l"]), j, n)
    emp = _coarse(o2, tau, num_o, cap)
    hat = _coarse_law(law_hat, cap)
    tv_emp = 0.5 * np.abs(emp - hat).sum()
    # DKW/McDiarmid: TV(emp, p) <= sqrt(K/n)/2 + sqrt(log(1/delta)/(2n)) w.p. 1 - delta (1e-6)
    eps = 0.5 * np.sqrt(emp.size / n) + np.sqrt(np.log(1e6) / (2 * n))
    tail = law_hat[:, cap:].sum() + rep.delta_phi_tail_bound
    assert tv_emp <= rep.delta_phi + eps                          # merging tau >= cap lowers TV
    assert rep.delta_phi <= tv_emp + eps + tail


def test_duration_law_hat_is_the_cell_average_in_simulation():
    model = _mc_model()
    ais = ais_smdp(model)
    i, j, o = 0, 1, 0
    agent = model.agents[i]
    members = [(x, m, (l0, l1)) for x in range(model.num_latent) for m in range(model.num_interface)
               for l0 in range(2) for l1 in range(2) if agent.observation[m, (l0, l1)[i]] == o]
    rng = np.random.default_rng(8)
    per = 40_000
    draws = [simulate_invocations(model, rng, i, x, m, ls, j, per) for x, m, ls in members]
    o2 = np.concatenate([d[0] for d in draws])
    tau = np.concatenate([d[1] for d in draws])
    cap = 12
    law_hat = ais.duration_law[i][j][o]
    emp = _coarse(o2, tau, law_hat.shape[0], cap)
    n = o2.size
    eps = 0.5 * np.sqrt(emp.size / n) + np.sqrt(np.log(1e6) / (2 * n))
    assert 0.5 * np.abs(emp - _coarse_law(law_hat, cap)).sum() <= eps


def test_cell_attribution_states_realize_their_gaps():
    model = _mc_model()
    rep = gap_report(model, minimax=False)
    ais, nM = ais_smdp(model), model.num_interface
    T = max(law.shape[2] for per in ais.duration_law for law in per if law is not None)
    dense = [dense_reduction(model, i, T) for i in range(model.num_agents)]
    contrib = [c["contribution"] for c in rep.cells]
    assert contrib == sorted(contrib, reverse=True)
    for c in rep.cells:
        i = c["agent"]
        nL = model.num_private[i]
        st = c["epsilon_state"]
        y = (st["x"] * nM + st["m"]) * nL + st["l"][i]
        assert model.agents[i].observation[st["m"], st["l"][i]] == c["observation"]
        gap = abs(dense[i]["R"][y, st["successor"]] - ais.reward[c["cell"], st["successor"]])
        assert gap == pytest.approx(c["epsilon"], abs=1e-12)
        st = c["delta_state"]
        j = st["successor"]
        y = (st["x"] * nM + st["m"]) * nL + st["l"][i]
        law = np.zeros(ais.duration_law[i][j].shape[1:])
        for y2 in range(dense[i]["D"].shape[1]):
            xm2, l2 = divmod(y2, nL)
            lj = l2 if j == i else st["l"][j]
            law[model.agents[j].observation[xm2 % nM, lj]] += dense[i]["P"][:law.shape[1], y, y2]
        tv = 0.5 * np.abs(law - ais.duration_law[i][j][c["observation"]]).sum()
        assert tv == pytest.approx(c["delta"], abs=1e-11)


# ------------------------------------------------------------------ references, maps, output
def test_stationary_reference_and_json():
    model = _random_case(5)
    rep = gap_report(model, reference="stationary", minimax=False)
    assert isinstance(rep, GapReport) and rep.reference == "stationary" and rep.success
    assert rep.max_q_gap <= rep.alpha_tight + 1e-8
    data = json.loads(json.dumps(to_jsonable(rep)))
    assert data["minimax_delta"] is None and data["cells"][0]["agent_name"].startswith("agent")


def test_compare_maps_reports_differences():
    model = random_icsmdp(4, num_agents=2, num_latent=2, num_interface=4, observation="injective")
    coarse = [observation_mod(4, 1, 2)] * 2
    fine = [np.arange(4)[:, None]] * 2
    cmp = compare_maps(model, coarse, fine, minimax=False)
    assert isinstance(cmp, MapComparison)
    a, b = cmp.report_a, cmp.report_b
    for k, v in cmp.differences.items():
        if v is not None:
            assert v == pytest.approx(getattr(b, k) - getattr(a, k))
    np.testing.assert_array_equal(a.q_star, b.q_star)            # Q* does not depend on the map
    assert a.epsilon_phi > 0 and cmp.differences["alpha_tight"] < 0


@pytest.mark.parametrize("maps, match", [
    ([np.zeros((4, 1), int)], "one observation map per agent"),
    ([np.zeros((3, 1), int)] * 2, "shape"),
    ([np.array([[0], [2], [0], [2]])] * 2, "unused"),
])
def test_bad_observation_maps_are_rejected(maps, match):
    model = random_icsmdp(4, num_agents=2, num_latent=1, num_interface=4)
    with pytest.raises(InvalidObservationMapError, match=match):
        compare_maps(model, [np.arange(4)[:, None]] * 2, maps)
