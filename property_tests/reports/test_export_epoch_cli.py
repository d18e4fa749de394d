"""``icsmdp export-epoch INSTANCE --out E.json|E.npz``: writes the explicit epoch form, or nothing."""
import json

import pytest

from icsmdp_theory.epoch_io import load_epoch_model
from icsmdp_theory.examples import load_example
from icsmdp_theory.io import save_instance
from icsmdp_theory.options import gamma_bar
from reports.cli import COMMANDS, build_parser, main


def test_command_is_listed_and_accepts_json():
    assert "export-epoch" in COMMANDS
    args = build_parser("export-epoch").parse_args(["export-epoch", "tiny-handoff", "--out", "e.json",
                                                    "--json"])
    assert args.json is True and args.command == "export-epoch"


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_example_is_written_and_prints_its_path(suffix, tmp_path, capsys):
    path = tmp_path / f"e{suffix}"
    assert main(["export-epoch", "tiny-handoff", "--out", str(path)]) == 0
    assert capsys.readouterr().out.strip() == str(path)
    e = load_epoch_model(path)
    assert e.num_epoch_states == 6 and e.labels == ("[0,0,0,0]", "[0,1,0,0]", "[0,2,0,0]")
    assert e.gamma_bar() == pytest.approx(gamma_bar(load_example("tiny-handoff")), abs=1e-12)


def test_json_summary_counts_the_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["export-epoch", "workflow", "--out", "sub/w.json", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    doc = json.loads((tmp_path / "sub" / "w.json").read_text())
    assert out["path"] == str(tmp_path / "sub" / "w.json")
    assert (out["states"], out["labels"], out["transitions"]) == \
        (len(doc["admissible"]), len(doc["labels"]), len(doc["transitions"]))
    assert out["states"] == 768 and out["labels"] == 256
    assert 0 <= out["truncation_remainder"] <= 1e-13
    assert out["truncation_remainder"] == doc["counts"]["truncation_remainder"]


def test_instance_file_is_accepted(tmp_path, capsys):
    inst = save_instance(load_example("tiny-handoff"), tmp_path / "inst.npz")
    assert main(["export-epoch", str(inst), "--out", str(tmp_path / "e.npz")]) == 0
    capsys.readouterr()
    e = load_epoch_model(tmp_path / "e.npz")
    assert e.name == "tiny-handoff" and e.num_epoch_states == 6
    # the checker at m1 moves to m2 and ends after one step: E[gamma^tau | s, STOP] = 0.9
    assert e.end_discount()[e.state_index("[0,1,0,0]", "checker"), 2] == pytest.approx(0.9)


def test_existing_file_is_kept_without_force(tmp_path, capsys):
    path = tmp_path / "e.json"
    path.write_text("mine")
    assert main(["export-epoch", "tiny-handoff", "--out", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--force" in err
    assert path.read_text() == "mine"
    assert main(["export-epoch", "tiny-handoff", "--out", str(path), "--force"]) == 0
    capsys.readouterr()
    assert load_epoch_model(path).name == "tiny-handoff"


@pytest.mark.parametrize("argv,fragment", [
    (["export-epoch", "nope", "--out", "e.json"], "neither a file nor a bundled example"),
    (["export-epoch", "tiny-handoff", "--out", "e.txt"], "must end in .json or .npz"),
    (["export-epoch", "tiny-handoff", "--out", "file.txt/e.json"], "not a directory"),
    (["export-epoch", "bad.json", "--out", "e.json"], "bad.json: invalid JSON"),
    (["export-epoch", "file.txt", "--out", "e.json"], "file.txt: invalid JSON"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(argv, fragment, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "bad.json").write_text('{"format": "icsmdp/1",')
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and fragment in err
    assert err.startswith("icsmdp export-epoch: error: ")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
