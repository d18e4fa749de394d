"""Conformance (SPEC section 10, issue 12 item 2): a primitive IC-SMDP and its explicit export
give every quantity of SPEC sections 3 to 6 within 1e-9.

The two computations share only the estimators' formulas: the primitive side reads the
option reduction (sparse solves of ``I - G``, the committed-successor chain for ``Q*``,
end laws by powers of ``Kbar diag(1 - beta)``), the explicit side reads the exported table
of ``P(k', tau | k, i, c')`` (a finite SMDP for ``Q*``, the laws summed entry by entry).
So a wrong export, a wrong epoch-level adapter or a formula that silently depends on the
primitive structure fails here.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from estimators.ais import ais_smdp
from estimators.gaps import SCALAR_FIELDS, gap_report
from estimators.mixing import mixing_report
from estimators.stationary import mu, stationary_law
from icsmdp_theory.cells import epoch_observations
from icsmdp_theory.epoch_export import export_epoch
from icsmdp_theory.examples import load_example
from icsmdp_theory.options import gamma_bar
from icsmdp_theory.testing.strategies import icsmdps, observation_maps
from solvers.api import PolicyIteration, solve

TOL = 1e-9


def _label_maps(model):
    """The primitive maps as maps over the export's labels ``k = f``: ``phi_i(m(f), l_i(f))``."""
    obs = epoch_observations(model)
    return [obs[:, i].copy() for i in range(model.num_agents)]


def _close(a, b, what):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    assert a.shape == b.shape, what
    assert np.array_equal(np.isnan(a), np.isnan(b)), what
    diff = np.abs(np.nan_to_num(a) - np.nan_to_num(b))
    assert float(diff.max(initial=0.0)) <= TOL, (what, float(diff.max()))


def _check_all(model, reference):
    export = export_epoch(model)
    assert export.num_epoch_states == model.num_epoch_states
    # section 2-3: gamma_bar, Q*, V*
    assert abs(export.gamma_bar() - gamma_bar(model)) <= TOL
    qa = solve(PolicyIteration(tol=1e-12), model)
    qb = solve(PolicyIteration(tol=1e-12), export)
    _close(qa.q, qb.q, "Q*")
    _close(qa.v, qb.v, "V*")
    # section 4: the AIS model (cells are numbered alike: every label of a primitive map is used)
    kw = {}
    if reference == "stationary":
        la, lb = stationary_law(model), stationary_law(export)
        _close(la.law.reshape(-1), lb.law, "stationary law")
        _close(mu(model, la.law).reshape(-1), mu(export, lb.law).reshape(-1), "mu")
    aa = ais_smdp(model, reference=reference)
    ab = ais_smdp(export, reference=reference)
    _close(aa.reward, ab.reward, "R_hat")
    _close(aa.end_kernel.toarray(), ab.end_kernel.toarray(), "D_hat")
    assert aa.fallback_cells == ab.fallback_cells
    # section 5: every scalar of the gap report, and the per-cell attribution
    ra = gap_report(model, reference=reference, **kw)
    rb = gap_report(export, reference=reference, **kw)
    for k in SCALAR_FIELDS:
        va, vb = getattr(ra, k), getattr(rb, k)
        if k == "delta_phi_tail_bound":
            assert vb <= 1e-12 and va <= 1e-12
            continue
        assert (va is None) == (vb is None), k
        if va is not None:
            assert abs(va - vb) <= TOL, (k, va, vb)
    _close(ra.q_hat, rb.q_hat, "Q_hat*")
    ca = sorted((c["cell"], c["epsilon"], c["delta"], c["eta"]) for c in ra.cells)
    cb = sorted((c["cell"], c["epsilon"], c["delta"], c["eta"]) for c in rb.cells)
    _close(ca, cb, "per-cell attribution")
    return export


@settings(max_examples=200)
@given(model=icsmdps(agents=(1, 3), latent=(1, 2), interface=(1, 3), private=(1, 2),
                     graph=True),
       reference=st.sampled_from(["uniform", "stationary"]), data=st.data())
def test_export_gives_every_quantity_of_sections_3_to_6(model, reference, data):
    """>= 200 random instances, both references, the instance's own map or a proposed one."""
    if data.draw(st.booleans(), label="proposed map"):
        maps = [data.draw(observation_maps(model.num_interface, a.num_private), label=f"map {i}")
                for i, a in enumerate(model.agents)]
        model = model.with_observation(maps)
    _check_all(model, reference)


@settings(max_examples=25)
@given(model=icsmdps(agents=(1, 3), latent=(1, 2), interface=(1, 3), private=(1, 2)))
def test_export_mixing_agrees(model):
    """Section 6: t_mix, relaxation time and the projected mixing times of the epoch chain."""
    # eps off the dyadic values the distances of these small chains take, so that
    # round-off cannot move a distance across the threshold
    a = mixing_report(model, eps=0.2371)
    b = mixing_report(export_epoch(model), eps=0.2371)
    for k in ("t_mix", "projected_t_mix", "projected_t_mix_decision", "num_closed_classes"):
        assert getattr(a, k) == getattr(b, k) or (np.isnan(getattr(a, k)) and np.isnan(getattr(b, k))), k
    ra, rb = a.relaxation_time, b.relaxation_time
    assert (np.isinf(ra) and np.isinf(rb)) or abs(ra - rb) <= 1e-6 * max(1.0, abs(ra)), (ra, rb)


@pytest.mark.parametrize("name", ["tiny-handoff", "workflow"])
@pytest.mark.parametrize("reference", ["uniform", "stationary"])
def test_bundled_examples_conform(name, reference):
    model = load_example(name)
    export = _check_all(model, reference)
    # the export with the primitive maps written over labels is the same model again
    again = export.with_observation(_label_maps(model))
    assert gap_report(again, reference=reference).alpha_tight == pytest.approx(
        gap_report(model, reference=reference).alpha_tight, abs=TOL)
