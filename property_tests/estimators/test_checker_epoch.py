"""The Theorem 1 checker on explicit epoch models (SPEC sections 8 and 10).

Independent reference: the checker on the primitive instance and a run made
there (primitive simulator, primitive option reduction, committed-chain
oracle) against the checker on the instance's export and a run made there
(invocation-level simulator, epoch SMDP oracle): the exact quantities must
agree to 1e-9 and the verdicts must be the same.
"""
from __future__ import annotations

import numpy as np
import pytest

from estimators.ais import ais_smdp, ais_solution
from estimators.checker import check_run, learning_floor, lhs_per_seed
from estimators.stationary import mu, stationary_law
from icsmdp_theory.epoch_export import export_epoch
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.examples import load_example
from solvers.api import PolicyIteration, solve
from solvers.icq import ICQ, FixedBehavior, StepSize
from solvers.records import load_run, save_run


def _pair(learner, tmp_path):
    model = load_example("tiny-handoff")
    e = export_epoch(model)
    kw = dict(learner=learner, updates=3000, seeds=8, behavior=FixedBehavior(),
              checkpoints=(30, 300, 3000), horizon=model.horizon,
              step=None if learner == "tabular" else StepSize(rule="constant", c=0.05))
    rp = solve(ICQ(seed=1, **kw), model)
    save_run(solve(ICQ(seed=2, **kw), e), tmp_path / "epoch")
    return model, e, rp, load_run(tmp_path / "epoch")   # the epoch run goes through its file


@pytest.mark.parametrize("learner", ["tabular", "linear"])
def test_check_run_on_the_export_matches_the_primitive_check(learner, tmp_path):
    model, e, rp, re = _pair(learner, tmp_path)
    cp, ce = check_run(model, rp), check_run(e, re)
    assert {k: v["verdict"] for k, v in cp.verdicts.items()} == \
        {k: v["verdict"] for k, v in ce.verdicts.items()}
    assert ce.floor == pytest.approx(cp.floor, abs=1e-9)
    for f in cp.alpha:
        assert ce.alpha[f] == pytest.approx(cp.alpha[f], abs=1e-9)
    for k in ("lambda_0", "lambda_max", "eps_app"):
        assert ce.approximation[k] == pytest.approx(cp.approximation[k], rel=1e-9, abs=1e-12), k
    assert ce.mixing["t_mix"] == pytest.approx(cp.mixing["t_mix"], rel=1e-9)
    # lhs at the last checkpoint: two independent batches of the same law (4.5 sigma)
    a, b = cp.lhs_per_seed[:, -1], ce.lhs_per_seed[:, -1]
    se = np.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    assert abs(a.mean() - b.mean()) <= 4.5 * se + 1e-12


def test_lhs_and_floor_on_the_export_equal_the_primitive_sums():
    # the same Q on the same cells gives the same lhs: the epoch sums are the primitive ones
    model = load_example("tiny-handoff")
    e = export_epoch(model)
    rp = solve(ICQ(updates=200, seeds=3, checkpoints=(20, 200)), model)
    vals = []
    for m in (model, e):
        q_star = solve(PolicyIteration(tol=1e-12), m).q
        law = stationary_law(m).law
        w = mu(m, law)
        q_hat = ais_solution(ais_smdp(m, reference="stationary")).q
        vals.append((lhs_per_seed(m, rp, q_star, w), learning_floor(m, q_hat, q_star, w)))
    (lp, fp), (le, fe) = vals
    assert np.allclose(lp, le, rtol=1e-9, atol=1e-12)
    assert fe == pytest.approx(fp, rel=1e-9, abs=1e-15)


def test_record_of_the_other_model_kind_is_refused():
    model = load_example("tiny-handoff")
    e = export_epoch(model)
    kw = dict(updates=50, seeds=1, checkpoints=(50,))
    rp, re = solve(ICQ(**kw), model), solve(ICQ(**kw), e)
    with pytest.raises(InvalidArgumentError, match="explicit epoch model"):
        check_run(model, re)
    with pytest.raises(InvalidArgumentError, match="primitive instance"):
        check_run(e, rp)
