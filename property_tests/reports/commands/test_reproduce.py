"""``icsmdp reproduce``: destination checked before any work, absolute path, bars."""
import json
import sys
from pathlib import Path

import reports.commands.reproduce as reproduce_cmd
from reports.cli import main


def _fake(calls):
    def reproduce(kind, *, quick, out, seed, argv, progress):
        calls.append({"out": out, "progress": progress})
        d = Path(out) / "r"
        d.mkdir(parents=True)
        (d / "report.json").write_text(json.dumps({"sections": {"t1": {}}}))
        return d
    return reproduce


def test_out_under_a_file_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(reproduce_cmd, "reproduce", _fake(calls))
    (tmp_path / "file.txt").write_text("x")
    assert main(["reproduce", "synthetic", "--out", str(tmp_path / "file.txt" / "x")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "`--out`" in err and calls == []


def test_relative_out_printed_absolute_and_no_bar_when_redirected(tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(reproduce_cmd, "reproduce", _fake(calls))
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "synthetic", "--out", "o"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "o" / "r")
    assert calls[0]["progress"] is False  # capsys: not a terminal
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert main(["reproduce", "synthetic", "--out", "o2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["report"] == str(tmp_path / "o2" / "r")
    assert calls[1]["progress"] is False
