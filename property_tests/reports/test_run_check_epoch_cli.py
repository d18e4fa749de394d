"""``icsmdp run`` and ``icsmdp check`` on an explicit epoch model file (issue 12 item 1: IC-Q and
the checker consume the epoch-level interface). The truth is the primitive instance: the check
of the export's run gives the same exact terms (floor, alpha forms) as the primitive's check."""
from __future__ import annotations

import json

import pytest

from reports.cli import main


@pytest.fixture
def export(tmp_path):
    path = tmp_path / "th.json"
    assert main(["export-epoch", "tiny-handoff", "--out", str(path)]) == 0
    return path


def test_run_and_check_an_epoch_model_file(export, tmp_path, capsys):
    capsys.readouterr()
    assert main(["run", str(export), "--updates", "1500", "--seeds", "3",
                 "--out", str(tmp_path / "r"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["success"] and doc["updates_done"] == [1500, 1500, 1500]
    assert main(["check", str(export), str(tmp_path / "r.npz"), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    # the same run layout on the primitive instance: exact terms agree
    assert main(["run", "tiny-handoff", "--updates", "1500", "--seeds", "3",
                 "--out", str(tmp_path / "p"), "--json"]) == 0
    capsys.readouterr()
    assert main(["check", "tiny-handoff", str(tmp_path / "p.npz"), "--json"]) == 0
    ref = json.loads(capsys.readouterr().out)
    for k in ("alpha_paper", "alpha_tv", "alpha_tight"):
        assert got["alpha"][k] == pytest.approx(ref["alpha"][k], abs=1e-9), k
    assert got["floor"] == pytest.approx(ref["floor"], abs=1e-9)


def test_a_record_of_the_other_model_kind_is_refused(export, tmp_path, capsys):
    assert main(["run", "tiny-handoff", "--updates", "200", "--out", str(tmp_path / "p")]) == 0
    capsys.readouterr()
    assert main(["check", str(export), str(tmp_path / "p.npz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "error" in err[0]


def test_check_takes_a_label_map_for_an_epoch_model(export, tmp_path, capsys):
    """``check --obs`` on an epoch model reads the ``by_label`` form (it used to read only the
    primitive ``maps`` form and fail); the model's own map gives the check without ``--obs``."""
    from icsmdp_theory.epoch_io import load_epoch_model
    m = load_epoch_model(export)
    doc = {"format": "icsmdp-obs/1",
           "by_label": [{lab: int(m.observation[i][k]) for k, lab in enumerate(m.labels)}
                        for i in range(m.num_agents)]}
    (tmp_path / "own.json").write_text(json.dumps(doc))
    assert main(["run", str(export), "--updates", "600", "--seeds", "2",
                 "--out", str(tmp_path / "r")]) == 0
    capsys.readouterr()
    assert main(["check", str(export), str(tmp_path / "r.npz"), "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert main(["check", str(export), str(tmp_path / "r.npz"), "--obs",
                 str(tmp_path / "own.json"), "--json"]) == 0
    mapped = json.loads(capsys.readouterr().out)
    assert mapped["alpha"] == plain["alpha"] and mapped["floor"] == plain["floor"]
