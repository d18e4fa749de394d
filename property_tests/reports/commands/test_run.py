"""``icsmdp run``: the destination checked before training, SIGTERM keeps the run, progress bars."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import solvers.icq
from reports.cli import main
from solvers.records import load_run

REPO = Path(__file__).resolve().parents[3]


def _one_error_line(err):
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_unwritable_out_fails_before_training(tmp_path, capsys, monkeypatch):
    """Issue 11 section 4: the run trained to the end, then a traceback lost it."""
    (tmp_path / "file.txt").write_text("x")

    def no_training(*a, **k):
        raise AssertionError("trained before checking --out")
    monkeypatch.setattr(solvers.icq.BatchRun, "run", no_training)
    code = main(["run", "tiny-handoff", "--updates", "100000",
                 "--out", str(tmp_path / "file.txt" / "sub" / "rec")])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    line = _one_error_line(err)
    assert line.startswith("icsmdp run: error: `--out`") and "file.txt" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_out_in_unwritable_directory_fails_before_training(tmp_path, capsys, monkeypatch):
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k:
                        False if os.path.abspath(p) == str(tmp_path) else real(p, mode, *a, **k))
    code = main(["run", "tiny-handoff", "--updates", "100000", "--out", str(tmp_path / "rec")])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "not writable" in _one_error_line(err)
    assert list(tmp_path.iterdir()) == []


def test_relative_out_is_printed_absolute(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "tiny-handoff", "--updates", "200", "--out", "rec"]) == 0
    out = capsys.readouterr().out
    assert f"saved          {tmp_path / 'rec.npz'} + {tmp_path / 'rec.json'}" in out
    assert main(["run", "tiny-handoff", "--updates", "200", "--out", "rec2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["out"] == [str(tmp_path / "rec2.npz"), str(tmp_path / "rec2.json")]


def _sigterm_run(tmp_path, args, wait: float):
    """``icsmdp run tiny-handoff ARGS --out sig`` in a subprocess, SIGTERM after ``wait`` seconds:
    ``(returncode, stderr, record)``."""
    script = ("import sys, reports.cli\n"
              "print('imported', flush=True)\n"
              "sys.exit(reports.cli.main(sys.argv[1:]))\n")
    rec = tmp_path / "sig"
    proc = subprocess.Popen(
        [sys.executable, "-c", script, "run", "tiny-handoff", *args, "--out", str(rec)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        assert proc.stdout.readline().strip() == "imported"
        time.sleep(wait)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, (out, err)
    assert "terminated (SIGTERM); checkpoints reached are kept" in err and "Traceback" not in err
    return load_run(str(rec) + ".npz")


def test_sigterm_after_first_checkpoint_saves_the_reached_checkpoints(tmp_path):
    """SIGTERM behaves like Ctrl-C: status interrupted, checkpoints kept and saved, exit 143."""
    # the numpy engine: every seed advances in lockstep; instance load + first 100 updates
    # take well under a second
    record = _sigterm_run(tmp_path, ["--updates", "5000000", "--seeds", "2", "--checkpoints",
                                     "0,10,100,5000000", "--engine", "numpy"], wait=2.5)
    assert record.status == "interrupted" and not record.success
    assert record.reached[:3].all() and not record.reached[3].any()
    assert np.isfinite(record.q[2][:, record.cell_admissible]).all()
    assert (record.updates >= 100).all() and (record.updates < 5_000_000).all()


def test_sigterm_during_a_compiled_run_keeps_each_seeds_reached_checkpoints(tmp_path):
    """The compiled engine runs seeds one after another: SIGTERM leaves the first seed part-way
    (its checkpoints reached are kept) and the second not started; exit 143, nothing lost."""
    assert main(["run", "tiny-handoff", "--updates", "20", "--engine", "compiled"]) == 0  # cache
    T = 2_000_000_000                                # far more than a few seconds of updates
    record = _sigterm_run(tmp_path, ["--updates", str(T), "--seeds", "2", "--checkpoints",
                                     f"0,10,100,{T}", "--engine", "compiled"], wait=4.0)
    assert record.status == "interrupted" and not record.success
    assert record.reached[:3, 0].all() and not record.reached[3].any()
    assert not record.reached[:, 1].any() and record.updates[1] == 0
    assert np.isfinite(record.q[2][0][record.cell_admissible]).all()
    assert 100 <= record.updates[0] < T


def _force_tty(monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)


def test_no_progress_bar_into_a_redirected_stderr(capsys):
    assert main(["run", "tiny-handoff", "--updates", "3000"]) == 0
    assert "\r" not in capsys.readouterr().err


def test_progress_bar_on_a_terminal_but_not_under_json(capsys, monkeypatch):
    _force_tty(monkeypatch)
    assert main(["run", "tiny-handoff", "--updates", "3000"]) == 0
    err = capsys.readouterr().err
    assert "IC-Q tabular" in err and "upd" in err
    assert main(["run", "tiny-handoff", "--updates", "3000", "--json"]) == 0
    assert capsys.readouterr().err == ""


def test_sidecar_path_that_is_a_directory_fails_before_training(tmp_path, capsys, monkeypatch):
    """On the original code this trained for the whole run, then IsADirectoryError."""
    (tmp_path / "rec.json").mkdir()

    def no_training(*a, **k):
        raise AssertionError("trained before checking --out")
    monkeypatch.setattr(solvers.icq.BatchRun, "run", no_training)
    code = main(["run", "tiny-handoff", "--updates", "30000", "--out", str(tmp_path / "rec")])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and "is a directory" in _one_error_line(err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.json"]
