"""``reproduce`` (reports.reproduce) and ``icsmdp reproduce``: the studies composed as reports.

The studies themselves are tested in ``property_tests/reports/studies``.
"""
import argparse
import json

import pytest

from icsmdp_theory.errors import InvalidArgumentError
from reports.commands import reproduce as cli_reproduce
import reports.studies.routing as routing_module
from reports.reproduce import REPRODUCE_KINDS, SECTIONS, reproduce
from icsmdp_theory.families import GRAPH_KINDS
from reports.studies.routing import ROUTING_KEYS, routing
from reports.studies.synthetic_t1 import synthetic_t1
from reports.studies.synthetic_t2 import synthetic_t2


def test_sections_per_kind():
    assert REPRODUCE_KINDS == ("synthetic", "routing", "all", "llm", "cpu") == cli_reproduce.KINDS
    assert SECTIONS["synthetic"] == (synthetic_t1, synthetic_t2)
    assert SECTIONS["routing"] == (routing,)
    assert SECTIONS["all"] == (synthetic_t1, synthetic_t2, routing)


_TINY = dict(n=6, seeds=2, default=dict(updates=2000, epsilon=0.3, step=None))


@pytest.fixture(scope="module")
def routing_report(tmp_path_factory):
    """``reproduce("routing")`` end to end, on 6 routers and a short run (the quick study
    itself, N = 12, is tested in studies/test_routing.py), its tasks in two loky workers."""
    out = tmp_path_factory.mktemp("reproduce")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(routing_module, "_routing_config", lambda quick: _TINY)
        path = reproduce("routing", quick=True, out=out, seed=1, jobs=2)
    return path, json.loads((path / "report.json").read_text(encoding="utf-8"))


def test_routing_report_keys_and_figures(routing_report):
    path, doc = routing_report
    data = doc["sections"]["routing"]
    assert set(ROUTING_KEYS) <= set(data)
    assert data["num_routers"] == 6 and data["graph_seed"] == 1
    assert doc["provenance"]["seeds"] == {"routing": 1}
    assert set(data["families"]) == {"erdos_renyi", "barabasi_albert", "watts_strogatz", "chain"}
    for f in data["families"].values():
        for key in ("oracle_accuracy", "accuracy_per_seed", "accuracy_mean", "length_ratio_mean",
                    "seconds", "num_edges"):
            assert key in f
    assert doc["figures"] and all((path / f).is_file() for f in doc["figures"])
    assert (path / "index.html").is_file() and (path / "report.md").is_file()


def test_results_file_in_out_campaigns_named_in_data_and_provenance(routing_report):
    path, doc = routing_report
    results = path.parent / "campaigns" / "routing-seed1-quick.jsonl"
    assert results.is_file()
    assert doc["sections"]["routing"]["results_file"] == str(results)
    assert doc["provenance"]["campaigns"] == {"routing": str(results)}
    lines = [json.loads(x) for x in results.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["campaign"] == "routing" and lines[0]["settings"]["config"] == _TINY
    assert sorted(x["id"] for x in lines[1:]) == sorted(f"family={k}" for k in GRAPH_KINDS)
    assert all(isinstance(x["result"], dict) for x in lines[1:])  # every task finished


def _no_task(params, seed):
    raise AssertionError(f"task {params['kind']} ran again")


def test_resume_runs_no_finished_task_and_gives_the_same_families(routing_report, monkeypatch):
    """A second reproduce with resume=True finds every task of the first in
    out/campaigns: no task runs (the task function would raise), the same numbers."""
    path, doc = routing_report
    monkeypatch.setattr(routing_module, "_routing_config", lambda quick: _TINY)
    monkeypatch.setattr(routing_module, "routing_task", _no_task)
    again = reproduce("routing", quick=True, out=path.parent, seed=1, jobs=1, resume=True)
    assert again != path
    new = json.loads((again / "report.json").read_text(encoding="utf-8"))["sections"]["routing"]
    assert new["families"] == doc["sections"]["routing"]["families"]


def test_reproduce_rejects_bad_kind(tmp_path):
    with pytest.raises(InvalidArgumentError, match="`kind` must be one of"):
        reproduce("nope", out=tmp_path)
    with pytest.raises(InvalidArgumentError, match="`seed` must be an integer >= 0, got -1"):
        reproduce("routing", out=tmp_path, seed=-1)
    with pytest.raises(InvalidArgumentError, match="`seed`"):
        reproduce("routing", out=tmp_path, seed=True)
    assert not any(tmp_path.iterdir())


def _parser():
    p = argparse.ArgumentParser(prog="icsmdp")
    sub = p.add_subparsers(dest="command", required=True)
    cli_reproduce.add_parser(sub)
    return p


def test_cli_bad_input_raises(tmp_path):
    p = _parser()
    args = p.parse_args(["reproduce", "nope", "--out", str(tmp_path)])
    with pytest.raises(InvalidArgumentError):
        args.func(args)
    args = p.parse_args(["reproduce", "routing", "--seed", "-3", "--out", str(tmp_path)])
    with pytest.raises(InvalidArgumentError):
        args.func(args)
    f = tmp_path / "file"
    f.write_text("x")
    args = p.parse_args(["reproduce", "routing", "--out", str(f)])
    with pytest.raises(InvalidArgumentError):
        args.func(args)


@pytest.mark.slow
def test_full_routing_report(tmp_path):
    """Paper scale, N=100 routers (minutes): the exact policy routes every pair."""
    path = reproduce("routing", quick=False, out=tmp_path)
    data = json.loads((path / "report.json").read_text(encoding="utf-8"))["sections"]["routing"]
    assert data["num_routers"] == 100
    for kind, f in data["families"].items():
        assert f["oracle_method"] == "routing_q_star" and f["oracle_status"] == "converged"
        assert f["oracle_accuracy"] == 1.0 and f["oracle_length_ratio"] == pytest.approx(1.0)
        if kind != "chain":  # the chain's far pairs (Q* gap 0.02) need far more updates
            assert f["accuracy_min"] == 1.0, (kind, f["failures"])
        curve = [min(c["accuracy_per_seed"]) for c in f["curve"]]
        assert curve[-1] >= curve[0], (kind, curve)
