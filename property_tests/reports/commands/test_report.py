"""``icsmdp report``: destination checked before any work, absolute path, ``--json``, bars."""
import json
import os
import sys
from pathlib import Path

import pytest

import reports.commands.report as report_cmd
from reports.cli import main


def _fake_build(calls):
    def build(sections, *, out_root, seed, quick, argv, progress):
        calls.append({"out_root": out_root, "progress": progress})
        d = Path(out_root) / "20260101T000000Z"
        d.mkdir(parents=True)
        (d / "report.json").write_text(json.dumps({"summary": {"counts": {"holds": 3}}}))
        return d
    return build


def test_out_under_a_file_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    """Issue 11 section 4: NotADirectoryError traceback after the work."""
    calls = []
    monkeypatch.setattr(report_cmd, "build_report", _fake_build(calls))
    (tmp_path / "file.txt").write_text("x")
    code = main(["report", "--out", str(tmp_path / "file.txt" / "sub")])
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and calls == []
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("icsmdp report: error: `--out`")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_unwritable_out_is_refused(tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(report_cmd, "build_report", _fake_build(calls))
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k:
                        False if os.path.abspath(p) == str(tmp_path) else real(p, mode, *a, **k))
    assert main(["report", "--out", str(tmp_path / "r")]) == 2
    assert "not writable" in capsys.readouterr().err and calls == []


def test_relative_default_is_printed_absolute_and_json(tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(report_cmd, "build_report", _fake_build(calls))
    monkeypatch.chdir(tmp_path)
    assert main(["report"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == str(tmp_path / "reports" / "out" / "20260101T000000Z")
    assert Path(calls[0]["out_root"]).is_absolute()
    assert main(["report", "--out", "elsewhere", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["report"] == str(tmp_path / "elsewhere" / "20260101T000000Z")
    assert doc["summary"] == {"counts": {"holds": 3}} and doc["quick"] is True


@pytest.mark.parametrize("tty,json_flag,expected", [(False, False, False), (True, False, True),
                                                     (True, True, False)])
def test_progress_only_on_a_terminal_and_never_under_json(tmp_path, capsys, monkeypatch,
                                                          tty, json_flag, expected):
    calls = []
    monkeypatch.setattr(report_cmd, "build_report", _fake_build(calls))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty, raising=False)
    assert main(["report", "--out", str(tmp_path)] + (["--json"] if json_flag else [])) == 0
    assert calls[0]["progress"] is expected
