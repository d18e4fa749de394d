"""The property battery of SPEC section 5 on Hypothesis-generated IC-SMDPs.

Each property is a claim that can fail on a bug; instances come from
``icsmdp_theory.testing.strategies`` (valid by construction, shrinkable). The
number of examples follows the active settings profile (``conftest.py``).
"""
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from icsmdp_theory.conformance import BREAKAGES, check_rejection
from icsmdp_theory.io import instance_to_dict, load_instance, save_instance
from icsmdp_theory.options import gamma_bar
from solvers.oracle import bellman_operator
from icsmdp_theory.testing import strategies as S
from solvers import ModifiedPolicyIteration, PolicyIteration, ValueIteration, solve

TOL = 1e-10
small = S.icsmdps(agents=(1, 3), latent=(1, 2), interface=(1, 3), private=(1, 2), actions=(1, 2))


@given(small)
def test_vi_equals_pi_and_residual_within_bound(model):
    vi = solve(ValueIteration(tol=TOL), model)
    pi = solve(PolicyIteration(tol=TOL), model)
    mpi = solve(ModifiedPolicyIteration(tol=TOL), model)
    adm = ~np.isnan(pi.q)
    assert vi.success and pi.success and mpi.success
    assert np.max(np.abs(vi.q[adm] - pi.q[adm])) <= vi.error_bound + pi.error_bound + 1e-12
    assert np.max(np.abs(mpi.q[adm] - pi.q[adm])) <= mpi.error_bound + pi.error_bound + 1e-12
    assert vi.bellman_residual <= TOL * (1 - model.gamma) * (1 + 1e-9)
    assert vi.error_bound <= TOL


@given(small, st.integers(0, 2**32 - 1))
def test_bellman_operator_is_a_gamma_bar_contraction(model, seed):
    rng = np.random.default_rng(seed)
    n = model.num_epoch_states * model.num_successors
    q1 = rng.normal(size=n).reshape(-1, model.num_successors) * rng.uniform(0.1, 10)
    q2 = rng.normal(size=n).reshape(-1, model.num_successors)
    t1, t2 = bellman_operator(model, q1), bellman_operator(model, q2)
    adm = ~np.isnan(t1)
    lhs = np.max(np.abs(t1 - t2)[adm])
    assert lhs <= gamma_bar(model) * np.max(np.abs(q1 - q2)[adm]) + 1e-12


@given(S.exact_ais_icsmdps(agents=(1, 3), interface=(1, 3)))
def test_injective_maps_without_private_states_have_zero_gaps(model):
    from estimators.gaps import gap_report
    rep = gap_report(model, tol=TOL, minimax=False)
    assert rep.epsilon_phi <= 1e-9 and rep.delta_phi <= 1e-9 and rep.delta_phi_gamma <= 1e-9
    assert rep.max_q_gap <= 1e-8 and rep.max_value_gap <= 1e-8


@given(S.icsmdps(agents=(1, 3), latent=(1, 2), interface=(1, 3), private=(1, 2),
                 actions=(1, 2), observation="mod"))
@settings(max_examples=40)
def test_provable_gap_inequalities(model):
    from estimators.gaps import gap_report
    rep = gap_report(model, tol=TOL)
    slack = 1e-8
    assert rep.max_q_gap <= rep.alpha_tight + slack
    assert rep.alpha_tight <= rep.alpha_tv + 1e-12
    assert rep.max_value_gap <= rep.alpha_tight + slack
    assert rep.policy_loss <= 2 * rep.alpha_tight + slack
    assert rep.minimax_epsilon <= rep.epsilon_phi + 1e-12
    assert rep.minimax_delta_lower <= rep.delta_phi + 1e-9


@given(S.icsmdps(sparse=True), st.booleans())
def test_json_and_npz_round_trips_are_exact(model, npz):
    doc = instance_to_dict(model)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("m.npz" if npz else "m.json")
        save_instance(model, path)
        assert instance_to_dict(load_instance(path)) == doc


@given(small, st.sampled_from(sorted(BREAKAGES)), st.data())
def test_every_invalid_input_is_rejected_with_its_location(model, kind, data):
    agent = data.draw(st.integers(0, model.num_agents - 1))
    ok, message = check_rejection(instance_to_dict(model), kind, agent)
    assert ok, message


@given(S.mdp_icsmdps(agents=(1, 2), latent=1, interface=(1, 3), private=1, actions=(1, 2)))
@settings(max_examples=25)
def test_tau_one_agrees_with_quantecon(model):
    """tau == 1: the epoch SMDP is an MDP on (m, i); QuantEcon's DiscreteDP must agree."""
    qe = pytest.importorskip("quantecon")
    N, nM, C = model.num_agents, model.num_interface, model.num_successors
    # state s = m*N + i; action c' (STOP -> absorbing zero-reward state s = nM*N)
    S_ = nM * N + 1
    R = np.full((S_, C), -np.inf)
    Q = np.zeros((S_, C, S_))
    for i, a in enumerate(model.agents):
        kbar = model.mean_kernel(i).toarray()          # [m, m'] (nX = nL = 1)
        rbar = model.mean_reward(i)                    # [m, c']
        for m in range(nM):
            s = m * N + i
            for c in range(C):
                if not a.successors[c]:
                    continue
                R[s, c] = rbar[m, c]
                if c == N:
                    Q[s, c, S_ - 1] = 1.0
                else:
                    for m2 in range(nM):
                        Q[s, c, m2 * N + c] += kbar[m, m2]
    R[S_ - 1, :] = 0.0
    Q[S_ - 1, :, S_ - 1] = 1.0
    ddp = qe.markov.DiscreteDP(R, Q, model.gamma)
    ref = ddp.solve(method="policy_iteration")
    ours = solve(PolicyIteration(tol=TOL), model)
    # our epoch states: s = f*N + i with f = m here
    np.testing.assert_allclose(ours.v, ref.v[:-1], atol=1e-8)
