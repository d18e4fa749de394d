"""``icsmdp export``: a bundled example as a file, JSON or npz by suffix, never clobbered."""
import json

import pytest

from icsmdp_theory.examples import EXAMPLES, load_example
from icsmdp_theory.io import instance_to_dict, load_instance
from reports.cli import main


@pytest.mark.parametrize("name", EXAMPLES)
@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_export_round_trips_every_example(name, suffix, tmp_path, capsys):
    path = tmp_path / f"mine{suffix}"
    assert main(["export", name, "--out", str(path)]) == 0
    assert capsys.readouterr().out.strip() == str(path)
    assert instance_to_dict(load_instance(path)) == instance_to_dict(load_example(name))


def test_exported_file_solves_to_the_hand_derived_value(tmp_path, capsys):
    path = tmp_path / "my-instance.json"
    assert main(["export", "tiny-handoff", "--out", str(path)]) == 0
    capsys.readouterr()
    assert main(["solve", str(path), "--json"]) == 0
    v0 = json.loads(capsys.readouterr().out)["v0"]
    assert v0 == pytest.approx(0.580645161 * 0.9 + 0.261290323, abs=1e-8)


def test_existing_file_is_kept_without_force(tmp_path, capsys):
    path = tmp_path / "x.json"
    path.write_text("mine")
    assert main(["export", "tiny-handoff", "--out", str(path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--force" in err
    assert path.read_text() == "mine"
    assert main(["export", "tiny-handoff", "--out", str(path), "--force"]) == 0
    capsys.readouterr()
    assert load_instance(path).name == "tiny-handoff"


def test_json_output_and_relative_path_made_absolute(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["export", "workflow", "--out", "w.npz", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc == {"example": "workflow", "path": str(tmp_path / "w.npz"), "format": "npz"}


@pytest.mark.parametrize("argv,fragment", [
    (["export", "nope", "--out", "x.json"], "`EXAMPLE` must be one of"),
    (["export", "tiny-handoff", "--out", "x.txt"], "must end in .json or .npz"),
    (["export", "tiny-handoff", "--out", "file.txt/x.json"], "not a directory"),
])
def test_bad_export_is_one_line_and_writes_nothing(argv, fragment, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file.txt").write_text("x")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and fragment in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]
