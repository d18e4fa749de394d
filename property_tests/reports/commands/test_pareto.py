"""``icsmdp pareto``: the front table, one JSON object, the figure; bad input exits 2, writes nothing."""
import json

import numpy as np
import pytest

from icsmdp_theory.epoch_io import save_epoch_model
from icsmdp_theory.math_reasoning import WORKFLOW_NAMES, math_reasoning
from property_tests.estimators.test_pareto import (brute_force_points, supported_vertices,
                                                   tiny_model)
from reports.cli import main


@pytest.fixture
def tiny_file(tmp_path):
    path = tmp_path / "tiny.json"
    save_epoch_model(tiny_model(4), path)
    return path


@pytest.fixture(scope="module")
def math_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "mathqa.json"
    save_epoch_model(math_reasoning("MathQA"), path)
    return path


def test_json_front_is_the_brute_force_hull_and_files_are_written(tiny_file, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["pareto", str(tiny_file), "--components", "gain,cost", "--values", "discounted",
            "--weights", "3", "--out", str(out), "--json"]
    assert main(argv) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["values"] == "discounted" and doc["decentralized"] is None
    assert doc["workflows"] is None and "unsupported" in doc["note"]
    m = tiny_model(4)
    pts = np.array([p for p, _ in brute_force_points(m, True)])
    want = pts[[j for j, _, _ in supported_vertices(pts / doc["centralized"]["scales"])]]
    want = want[np.argsort(-want[:, 0])]
    got = np.array([[p["values"]["gain"], p["values"]["cost"]]
                    for p in doc["centralized"]["points"]])
    assert np.allclose(got, want, atol=1e-8)
    assert (out / "pareto-t4.png").stat().st_size > 1000
    assert json.loads((out / "pareto-t4.json").read_text()) == doc


def test_table_lists_every_point_with_its_weight_range(tiny_file, tmp_path, capsys):
    assert main(["pareto", str(tiny_file), "--components", "gain,cost", "--values", "discounted",
                 "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    main(["pareto", str(tiny_file), "--components", "gain,cost", "--values", "discounted",
          "--out", str(tmp_path / "o"), "--json"])
    doc = json.loads(capsys.readouterr().out)
    rows = [line for line in out.splitlines() if line.strip().startswith(tuple("0123456789"))
            and "[" in line]
    assert len(rows) == len(doc["centralized"]["points"])
    assert rows[0].split()[1].startswith("[0.0000,") and "figure" in out and "note:" in out


def test_math_reasoning_front_marks_the_workflows_and_dominates_them(math_file, tmp_path, capsys):
    assert main(["pareto", str(math_file), "--out", str(tmp_path / "o"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["workflows"]) == set(WORKFLOW_NAMES)
    pts = np.array([[p["values"]["correct"], p["values"]["tokens"]]
                    for p in doc["centralized"]["points"]])
    scales = np.array(doc["centralized"]["scales"])
    # no named workflow lies above the front's hull, for any weight
    for t in np.linspace(0, 1, 201):
        w = np.array([1 - t, t]) / scales
        best = (pts @ w).max()
        for name, v in doc["workflows"].items():
            assert w @ [v["correct"], v["tokens"]] <= best + 1e-9, (name, t)
    assert any(p["workflow"] == "Direct" for p in doc["centralized"]["points"])


@pytest.mark.parametrize("argv,fragment", [
    (["--components", "correct"], "two or more comma-separated"),
    (["--components", "gain,nope"], "unknown component 'nope'"),
    (["--components", "gain,cost", "--weights", "1"], "`--weights` must be an integer >= 2"),
    (["--components", "gain,cost", "--obs", "no-such-map"], "`--obs`: 'no-such-map'"),
    (["--components", "gain,cost"], "<= 0 before STOP"),   # totals of a model with gains on moves
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(argv, fragment, tiny_file, tmp_path,
                                                            capsys):
    out = tmp_path / "o"
    assert main(["pareto", str(tiny_file), *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err
    assert not out.exists()


def test_primitive_instance_has_only_the_reward_component(tmp_path, capsys):
    assert main(["pareto", "tiny-handoff", "--out", str(tmp_path / "o")]) == 2
    assert "this model has: reward" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_obs_model_with_each_label_its_own_cell_gives_the_centralized_front(tiny_file, tmp_path,
                                                                            capsys):
    """Cells = epoch states: the enumeration's front equals policy iteration's."""
    assert main(["pareto", str(tiny_file), "--components", "gain,cost", "--values", "discounted",
                 "--obs", "model", "--out", str(tmp_path / "o"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    cen = [[p["values"]["gain"], p["values"]["cost"]] for p in doc["centralized"]["points"]]
    dec = [[p["values"]["gain"], p["values"]["cost"]] for p in doc["decentralized"]["points"]]
    assert doc["decentralized"]["decentralized"] and np.allclose(cen, dec, atol=1e-9)
    assert all("observation" in c for p in doc["decentralized"]["points"] for c in p["choices"])
