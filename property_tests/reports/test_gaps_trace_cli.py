"""``icsmdp gaps`` on a trace or an epoch-model file: credible intervals, --against, evidence, errors.

Truths used: the exact ``v0`` of the instance that generated the trace (its
export, a primitive computation), the primitive gap report (for an export
without counts, and for the shipped label maps), nesting of credible
intervals across levels on the same draws, and hand-derived identities of a
map compared with itself.
"""
import json

import numpy as np
import pytest

from estimators.uncertainty import draw_values
from icsmdp_theory.epoch_export import export_epoch
from icsmdp_theory.examples import load_example
from reports.cli import main
from reports.documents import GAP_KEYS

#: tiny-handoff states are [x, m, l_0, l_1]; the maps: both agents see m; B: m and own l.
MAP_M = {"format": "icsmdp-obs/1", "fields": [[1], [1]]}
MAP_ML = {"format": "icsmdp-obs/1", "fields": [[1, 2], [1, 3]]}
FAST = ["--no-mixing", "--no-minimax"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("gaps_trace")
    trace = d / "t.jsonl"
    assert main(["simulate-trace", "tiny-handoff", "--episodes", "1500", "--seed", "5",
                 "--out", str(trace)]) == 0
    (d / "m.json").write_text(json.dumps(MAP_M))
    (d / "ml.json").write_text(json.dumps(MAP_ML))
    assert main(["fit", str(trace), "--out", str(d / "fit.json")]) == 0
    assert main(["fit", str(trace), "--out", str(d / "fit.npz")]) == 0
    assert main(["export-epoch", "tiny-handoff", "--out", str(d / "export.json")]) == 0
    return d


def _json(capsys, argv):
    assert main(argv) == 0
    cap = capsys.readouterr()
    assert cap.err == ""                          # no progress bar under --json
    return json.loads(cap.out)


def test_json_keys_intervals_and_the_exact_value(files, capsys):
    doc = _json(capsys, ["gaps", str(files / "t.jsonl"), "--obs", str(files / "m.json"),
                         "--posterior", "20", "--json"])
    for k in GAP_KEYS + ("v0", "t_mix", "relaxation_time", "cells", "intervals", "level",
                         "posterior_draws", "greedy_agreement", "fit"):
        assert k in doc, k
    assert doc["posterior_draws"] == 20 and doc["level"] == 0.9 and doc["obs"] == str(files / "m.json")
    iv = doc["intervals"]
    assert set(iv) >= {"v0", "epsilon_phi", "delta_phi", "alpha_tight", "policy_loss", "t_mix"}
    for k, (lo, hi) in ((k, v) for k, v in iv.items() if v is not None):
        assert lo <= hi, k
    # smooth quantities: the ML value lies inside its interval (1,500 episodes)
    for k in ("v0", "L_Q"):
        lo, hi = iv[k]
        assert lo - 1e-9 <= doc[k] <= hi + 1e-9, (k, doc[k], iv[k])
    assert 0.0 <= doc["greedy_agreement"] <= 1.0
    # the ML value of v0 estimates the exact value of the instance behind the trace
    exact = draw_values(export_epoch(load_example("tiny-handoff")), minimax=False,
                        mixing=False)["a"]["v0"]
    assert abs(doc["v0"] - exact) < 0.05, (doc["v0"], exact)
    assert doc["fit"]["episodes"] == 1500


def test_unvisited_declared_triples_are_borrowed_or_excluded(tmp_path, capsys):
    """A short ``workflow`` trace declares its admissible sets (simulate-trace) and leaves some
    declared triples unvisited: the draws borrow as many as the declared sets minus the triples
    seen, less those with nothing to borrow from; ``--unvisited exclude`` borrows none."""
    from estimators.fit import fit_epoch_model
    from estimators.posterior import PosteriorSampler
    from icsmdp_theory.traces import read_trace
    trace = tmp_path / "w.jsonl"
    assert main(["simulate-trace", "workflow", "--episodes", "150", "--seed", "3",
                 "--out", str(trace)]) == 0
    capsys.readouterr()
    fit = fit_epoch_model(read_trace(trace))
    m = fit.model
    c = m.counts
    declared = np.zeros((m.num_agents, m.num_agents + 1), dtype=bool)
    declared[c["declared_agent"], c["declared_successor"]] = True
    missing = int((declared[m.state_agent] & ~m.admissible).sum())
    sampler = PosteriorSampler(fit)
    assert sampler.borrowed > 0 and sampler.borrowed + sampler.not_borrowed == missing
    base = ["gaps", str(trace), "--obs", "workflow-maps", "--posterior", "10", "--json"] + FAST
    doc = _json(capsys, base)
    assert doc["borrow"] is True and doc["borrowed_pairs"] == sampler.borrowed
    off = _json(capsys, base + ["--unvisited", "exclude"])
    assert off["borrow"] is False and off["borrowed_pairs"] == 0
    assert off["v0"] == doc["v0"]                  # the ML values do not depend on it
    assert off["intervals"]["v0"] != doc["intervals"]["v0"]


def test_levels_nest_on_the_same_draws(files, capsys):
    base = ["gaps", str(files / "t.jsonl"), "--obs", str(files / "m.json"), "--posterior", "20",
            "--json"] + FAST
    wide = _json(capsys, base)["intervals"]
    narrow = _json(capsys, base + ["--level", "0.5"])["intervals"]
    for k, v in wide.items():
        if v is not None:
            assert v[0] - 1e-12 <= narrow[k][0] <= narrow[k][1] <= v[1] + 1e-12, k


def test_jobs_do_not_change_the_output(files, capsys):
    base = ["gaps", str(files / "t.jsonl"), "--obs", str(files / "m.json"), "--posterior", "8",
            "--json", "--seed", "3"]
    one = _json(capsys, base + ["--jobs", "1"])
    two = _json(capsys, base + ["--jobs", "2"])
    one["fit"].pop("elapsed"), two["fit"].pop("elapsed")
    assert one == two


def test_against_uses_the_same_draws(files, capsys):
    t, m, ml = str(files / "t.jsonl"), str(files / "m.json"), str(files / "ml.json")
    same = _json(capsys, ["gaps", t, "--obs", m, "--against", m, "--posterior", "10", "--json"] + FAST)
    cmp = same["against"]
    for k, v in cmp["difference_intervals"].items():
        if v is not None:
            assert v == [0.0, 0.0], k                 # B = A on every draw
            assert cmp["prob_b_smaller"][k] == 0.0
    doc = _json(capsys, ["gaps", t, "--obs", m, "--against", ml, "--posterior", "10", "--json"] + FAST)
    b_alone = _json(capsys, ["gaps", t, "--obs", ml, "--posterior", "10", "--json"] + FAST)
    cmp = doc["against"]
    assert cmp["obs"] == ml
    for k, v in b_alone["intervals"].items():         # B's intervals: the same draws as a run of B
        assert cmp["intervals"][k] == pytest.approx(v, abs=1e-12) if v is not None \
            else cmp["intervals"][k] is None
        if doc[k] is not None and b_alone[k] is not None:
            assert cmp["difference"][k] == pytest.approx(b_alone[k] - doc[k], abs=1e-12)
            lo, hi = cmp["difference_intervals"][k]
            assert lo <= hi


def test_fitted_model_file_gives_the_trace_numbers(files, capsys):
    argv = ["--obs", str(files / "m.json"), "--posterior", "6", "--json"] + FAST
    from_trace = _json(capsys, ["gaps", str(files / "t.jsonl")] + argv)
    for name in ("fit.json", "fit.npz"):
        from_file = _json(capsys, ["gaps", str(files / name)] + argv)
        assert "fit" not in from_file
        for k in ("v0", "epsilon_phi", "delta_phi", "alpha_tight", "policy_loss", "intervals",
                  "greedy_agreement"):
            assert from_file[k] == pytest.approx(from_trace[k], abs=1e-12) \
                if not isinstance(from_file[k], dict) else from_file[k] == from_trace[k], k


def test_evidence_needed_from_a_trace(files, capsys):
    doc = _json(capsys, ["gaps", str(files / "t.jsonl"), "--obs", str(files / "m.json"),
                         "--posterior", "10", "--target-width", "0.001", "--json"] + FAST)
    ev = doc["evidence"]
    n = np.array(ev["invocations"], dtype=float)
    assert np.all(np.diff(n) > 0) and n[-1] == doc["fit"]["invocations"]
    assert ev["target_width"] == 0.001
    for k, widths in ev["widths"].items():
        w = np.array([np.nan if x is None else x for x in widths])
        ok = np.isfinite(w) & (w > 0)
        if ok.sum() < 2:
            assert ev["slope"][k] is None
            continue
        b, loga = np.polyfit(np.log(n[ok]), np.log(w[ok]), 1)    # width = a n^b, recomputed
        assert ev["slope"][k] == pytest.approx(b) and ev["scale"][k] == pytest.approx(np.exp(loga))
        if b < 0:
            assert ev["projected_invocations"][k] == pytest.approx((0.001 / np.exp(loga)) ** (1 / b))
    # without --evidence/--target-width: no study
    assert _json(capsys, ["gaps", str(files / "t.jsonl"), "--posterior", "2", "--json"]
                 + FAST)["evidence"] is None


def test_text_output(files, capsys):
    assert main(["gaps", str(files / "t.jsonl"), "--obs", str(files / "m.json"), "--against",
                 str(files / "ml.json"), "--posterior", "6", "--evidence", "--top", "2"] + FAST) == 0
    out = capsys.readouterr().out
    for fragment in ("fit: ", "90% credible interval from 6 posterior models", "v0", "alpha_tight",
                     "greedy AIS policy optimal for Q*", "evidence needed", "top 2 cells",
                     "interval of B - A", "P(B < A)"):
        assert fragment in out, fragment


def test_export_without_counts_gets_the_plain_primitive_report(files, capsys):
    """An epoch model without counts: today's report, equal to the primitive computation."""
    prim = _json(capsys, ["gaps", "tiny-handoff", "--json", "--no-mixing"])
    exp = _json(capsys, ["gaps", str(files / "export.json"), "--json", "--no-mixing"])
    assert "intervals" not in exp
    for k in GAP_KEYS:
        if k == "delta_phi_tail_bound":
            continue
        assert exp[k] == pytest.approx(prim[k], abs=1e-9), k


def test_shipped_maps_are_the_instance_maps(tmp_path, capsys):
    """workflow-maps on the export of workflow gives the primitive gaps of workflow's own maps."""
    out = tmp_path / "w.json"
    assert main(["export-epoch", "workflow", "--out", str(out)]) == 0
    capsys.readouterr()
    prim = _json(capsys, ["gaps", "workflow", "--json"] + FAST)
    exp = _json(capsys, ["gaps", str(out), "--obs", "workflow-maps", "--json"] + FAST)
    for k in ("epsilon_phi", "delta_phi", "eta", "alpha_tight", "max_q_gap", "policy_loss"):
        assert exp[k] == pytest.approx(prim[k], abs=1e-9), k
    bits = _json(capsys, ["gaps", str(out), "--obs", "workflow-bits", "--json"] + FAST)
    assert bits["delta_phi"] <= exp["delta_phi"] + 1e-12      # finer map: no larger delta


def test_bundled_trace_and_maps_by_name(capsys):
    doc = _json(capsys, ["gaps", "workflow-trace", "--obs", "workflow-maps", "--against",
                         "workflow-bits", "--posterior", "2", "--json"] + FAST)
    assert doc["obs"] == "workflow-maps" and doc["against"]["obs"] == "workflow-bits"
    assert doc["fit"]["episodes"] == 300 and doc["cell_rule"] == "union"


@pytest.mark.parametrize("subject, argv, fragment", [
    ("fit.json", ["--evidence"], "`--evidence` needs the trace"),
    ("fit.json", ["--target-width", "0.1"], "`--target-width` needs the trace"),
    ("fit.json", ["--admissible", "declared"], "`--admissible` applies to a trace"),
    ("export.json", ["--posterior", "5"], "`--posterior` applies to a trace or a fitted"),
    ("tiny-handoff", ["--jobs", "2"], "`--jobs` applies to a trace or a fitted"),
    ("tiny-handoff", ["--unvisited", "exclude"], "`--unvisited` applies to a trace or a fitted"),
    ("t.jsonl", ["--posterior", "-1"], "`--posterior` must be an integer >= 0"),
    ("t.jsonl", ["--level", "1"], "`--level` must be a number in (0, 1)"),
    ("t.jsonl", ["--jobs", "0"], "`--jobs` must be an integer >= 1"),
    ("t.jsonl", ["--target-width", "0"], "`--target-width` must be a number"),
    ("t.jsonl", ["--obs", "nope.json"], "no such observation-map file"),
    ("no-such-thing", [], "is neither a file nor a bundled example"),
])
def test_bad_arguments_exit_2_with_one_line(files, capsys, subject, argv, fragment):
    path = str(files / subject) if (files / subject).exists() else subject
    assert main(["gaps", path] + argv) == 2
    cap = capsys.readouterr()
    assert fragment in cap.err and cap.err.count("\n") == 1, cap.err
    assert cap.out == ""


def test_bad_trace_names_its_line(tmp_path, capsys):
    trace = tmp_path / "t.jsonl"
    trace.write_text('{"format": "icsmdp-trace/1", "gamma": 0.5, "agents": ["a"]}\n'
                     '{"episode": 0, "agent": "a", "state": 0, "successor": "STOP", "tau": 0, '
                     '"reward": 0}\n')
    assert main(["gaps", str(trace), "--posterior", "2"]) == 2
    err = capsys.readouterr().err
    assert "line 2" in err and "`tau`" in err and err.count("\n") == 1


def test_interrupt_exits_130(files, capsys, monkeypatch):
    import reports.commands.gaps as cmd

    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cmd, "posterior_document", interrupted)
    assert main(["gaps", str(files / "t.jsonl"), "--posterior", "2"]) == 130
    assert "interrupted" in capsys.readouterr().err
