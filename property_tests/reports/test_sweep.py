"""``reports.sweep``: grid expansion, grid documents, and a point against an independent gap report."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from estimators.gaps import gap_report
from icsmdp_theory.errors import InvalidArgumentError, InvalidInstanceError
from icsmdp_theory.examples import load_example
from icsmdp_theory.families import synthetic_instance
from reports.sweep import (AXES, MAX_POINTS, SWEEP_FORMAT, grid_from_document,
                           grid_from_options, sweep_campaign, sweep_point, sweep_summary)

SMALL = ["N=3", "nX=5", "nM=6"]
GAP_KEYS = ("alpha_tight", "alpha_paper", "alpha_tv", "epsilon_phi", "delta_phi", "max_q_gap",
            "policy_loss")

_values = {
    "rho": st.lists(st.sampled_from([1.0, 0.9, 0.75, 0.5, 0.25, 0.1]), min_size=1, max_size=4,
                    unique=True),
    "T": st.lists(st.integers(0, 10_000), min_size=1, max_size=4, unique=True),
    "learner": st.lists(st.sampled_from(["tabular", "linear", "mlp"]), min_size=1,
                        unique=True),
    "reference": st.lists(st.sampled_from(["uniform", "stationary"]), min_size=1, unique=True),
    "N": st.lists(st.integers(1, 12), min_size=1, max_size=3, unique=True),
    "seeds": st.lists(st.integers(1, 9), min_size=1, max_size=3, unique=True),
}


@given(st.fixed_dictionaries({}, optional=_values), st.permutations(list(_values)))
def test_expansion_is_the_cartesian_product_with_stable_unique_ids(chosen, order):
    sets = [f"{k}={','.join(map(str, chosen[k]))}" for k in order if k in chosen]
    grid = grid_from_options(sets, [], 0)
    points = grid.points()
    swept = {k: v for k, v in chosen.items() if len(v) > 1}
    # size: the product of the list lengths (1 when nothing is swept)
    assert len(points) == math.prod(len(v) for v in swept.values())
    ids = [tid for tid, _ in points]
    assert len(set(ids)) == len(ids)
    # every point is a distinct combination of the given values: a bijection onto the product
    combos = {tuple(p[k] for k in sorted(swept)) for _, p in points}
    assert len(combos) == len(points)
    for tid, params in points:
        assert set(params) == set(AXES)
        # the id lists exactly the swept values (parsed back independently of the code)
        parsed = dict(part.split("=") for part in tid.split(",")) if swept else {}
        assert tid != "point" or not swept
        assert set(parsed) == set(swept)
        for k, text in parsed.items():
            assert params[k] == type(params[k])(text) and params[k] in swept[k]
        for k, v in chosen.items():  # axes with one value are held there
            if len(v) == 1:
                assert params[k] == v[0]
    # stable: the order of the options does not matter, a second build gives the same ids
    again = grid_from_options(list(reversed(sets)), [], 0)
    assert [t for t, _ in again.points()] == ids and again.digest() == grid.digest()
    # the printed grid is a grid file that reads back as the same grid
    assert grid_from_document(grid.to_json(), "g.json") == grid
    assert [t.id for t in sweep_campaign(grid).tasks] == ids


def test_digest_changes_with_any_value_and_the_seed():
    base = grid_from_options(["rho=1,0.5"], SMALL, 0)
    assert grid_from_options(["rho=1,0.5"], SMALL, 1).digest() != base.digest()
    assert grid_from_options(["rho=1,0.25"], SMALL, 0).digest() != base.digest()
    assert grid_from_options(["rho=1,0.5"], ["N=4", "nX=5", "nM=6"], 0).digest() != base.digest()


@pytest.mark.parametrize("sets, fixed, needle", [
    (["rho=1,2"], [], "`--set rho=1,2`"),
    (["foo=1"], [], "unknown axis 'foo'"),
    (["rho"], [], "expected AXIS=VALUE"),
    (["T=1,1"], [], "repeated value"),
    (["T=1,"], [], "empty value"),
    (["T=-1"], [], "an integer >= 0"),
    (["learner=tabular,deep"], [], "one of 'tabular', 'linear', 'mlp'"),
    ([], ["T=1,2"], "`--fixed` takes one value"),
    (["T=1,2"], ["T=3"], "given twice"),
    (["rho=1,0.5"], ["mod=2"], "give `rho` or `mod`, not both"),
    (["mod=2,7"], ["nM=6"], "`mod` = 7 exceeds |M| = 6"),
    (["mod=2,4"], ["instance=tiny-handoff"], "`mod` = 4 exceeds |M| = 3"),
    (["N=2,3"], ["instance=workflow"], "`N` is a parameter of the synthetic family"),
    (["T=" + ",".join(map(str, range(400))), "seeds=" + ",".join(map(str, range(1, 400)))],
     [], f"more than {MAX_POINTS}"),
])
def test_bad_options_are_one_located_line(sets, fixed, needle):
    with pytest.raises(InvalidArgumentError) as info:
        grid_from_options(sets, fixed, 0)
    msg = str(info.value)
    assert needle in msg and "\n" not in msg


def test_bad_document_names_source_and_key():
    doc = {"format": SWEEP_FORMAT, "axes": {"rho": [1, 0.5]}, "fixed": {"gamma": 1.0}}
    with pytest.raises(InvalidInstanceError, match=r"^g\.json: key `fixed\.gamma`: must be a "
                                                   r"number in \(0, 1\)"):
        grid_from_document(doc, "g.json")


def test_gap_numbers_of_a_point_equal_an_independent_gap_report():
    """The family's own draw at each rho (not the sweep's re-mapped base) and gap_report's
    own oracle: the sweep must reproduce the numbers."""
    grid = grid_from_options(["rho=1,0.5,0.2", "reference=uniform,stationary"], SMALL, 0)
    for tid, params in grid.points():
        got = sweep_point(params, 0)
        model = synthetic_instance(rho=params["rho"], num_agents=3, num_latent=5,
                                   num_interface=6, seed=0)
        ref = gap_report(model, reference=params["reference"], minimax=False)
        for k in GAP_KEYS:
            assert got[k] == pytest.approx(getattr(ref, k), rel=1e-7, abs=1e-9), (tid, k)
        assert got["icq_status"] == "skipped" and got["v0"] is None


def test_family_axis_reaches_both_synthetic_families():
    """``family=cos-mod`` is the family before issue 15 (its own draw and ``m mod k`` map at each
    rho), ``family=nested`` the default: each point equals gap_report on the family's own draw."""
    grid = grid_from_options(["family=nested,cos-mod", "rho=1,0.5"], SMALL, 0)
    seen = set()
    for tid, params in grid.points():
        got = sweep_point(params, 0)
        model = synthetic_instance(rho=params["rho"], num_agents=3, num_latent=5,
                                   num_interface=6, seed=0, family=params["family"])
        ref = gap_report(model, reference="uniform", minimax=False)
        for k in GAP_KEYS:
            assert got[k] == pytest.approx(getattr(ref, k), rel=1e-7, abs=1e-9), (tid, k)
        seen.add((params["family"], got["alpha_tight"]))
    assert len(seen) == 4          # the two families differ at some rho


def test_mod_map_of_an_example_equals_a_hand_built_map():
    grid = grid_from_options(["mod=1,2"], ["instance=tiny-handoff"], 0)
    for _, params in grid.points():
        got = sweep_point(params, 0)
        ex = load_example("tiny-handoff")
        k = params["mod"]
        maps = [np.array([[m % k] * a.num_private for m in range(ex.num_interface)])
                for a in ex.agents]
        ref = gap_report(ex.with_observation(maps), reference="uniform", minimax=False)
        assert got["num_cells"] == ex.num_agents * k
        for key in GAP_KEYS:
            assert got[key] == pytest.approx(getattr(ref, key), rel=1e-7, abs=1e-9)


def test_summary_means_per_axis_value_by_hand():
    grid = grid_from_options(["rho=1,0.5", "T=0,10"], SMALL, 0)
    fake = {tid: {"alpha_tight": float(i), "value_gap": None if p["T"] == 0 else 10.0 * i}
            for i, (tid, p) in enumerate(grid.points())}
    last = list(fake)[-1]
    del fake[last]
    s = sweep_summary(grid, fake, {last: "ValueError: x"}, "r.jsonl")
    # points in order: (1,0)->0, (1,10)->1, (0.5,0)->2, (0.5,10) failed
    assert s["axes"]["rho"]["metrics"]["alpha_tight"] == [0.5, 2.0]
    assert s["axes"]["T"]["metrics"]["alpha_tight"] == [1.0, 1.0]
    assert s["axes"]["T"]["metrics"]["value_gap"] == [None, 10.0]
    assert s["axes"]["rho"]["points"] == [2, 1]
    assert s["failed"] == {last: "ValueError: x"} and s["counts"]["failed"] == 1


def test_a_point_does_not_depend_on_what_its_worker_ran_before():
    """Regression: with one instance object shared by the points of a worker, a stationary
    gap report changed a later uniform one in the last bits (jobs 1 and 2 then disagreed)."""
    grid = grid_from_options(["reference=uniform,stationary"], SMALL + ["instance_seed=7"], 0)
    uniform, stationary = (p for _, p in grid.points())
    first = sweep_point(uniform, 0)
    sweep_point(stationary, 0)
    assert sweep_point(uniform, 0) == first
