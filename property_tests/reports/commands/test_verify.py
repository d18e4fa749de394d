"""``icsmdp verify``: Hypothesis checked up front, destinations checked, no bars in logs."""
import json
import sys

import pytest

import reports.search
import reports.verify
from reports.cli import main


def test_search_without_hypothesis_fails_before_any_work(tmp_path, capsys, monkeypatch):
    """Issue 11 section 6: the whole verification ran first, then `--search` failed."""
    monkeypatch.setattr(reports.search, "find", None)

    def no_work(*a, **k):
        raise AssertionError("verification ran before the Hypothesis check")
    monkeypatch.setattr(reports.verify, "draw_verification_instance", no_work)
    code = main(["verify", "--instances", "50", "--search", "--out", str(tmp_path)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "`--search` needs Hypothesis" in lines[0] and "test" in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_out_under_a_file_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    (tmp_path / "file.txt").write_text("x")

    def no_work(*a, **k):
        raise AssertionError("verification ran before the --out check")
    monkeypatch.setattr(reports.verify, "draw_verification_instance", no_work)
    code = main(["verify", "--instances", "5", "--out", str(tmp_path / "file.txt" / "sub")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "`--out`" in err
    assert "Traceback" not in err


def test_no_carriage_returns_in_a_redirected_log(tmp_path, capsys):
    """Issue 11 section 6: `verify` wrote `\\r` progress bars into files."""
    assert main(["verify", "--instances", "3", "--out", str(tmp_path)]) == 0
    assert "\r" not in capsys.readouterr().err


def test_bar_on_a_terminal_and_none_under_json(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert main(["verify", "--instances", "3", "--out", str(tmp_path)]) == 0
    assert "verify" in capsys.readouterr().err
    assert main(["verify", "--instances", "3", "--out", str(tmp_path), "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and json.loads(out)["instances"] == 3


def test_default_out_is_resolved_against_the_working_directory(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    seen = {}
    real = reports.verify.verify

    def spy(*a, **k):
        seen["out"] = k["out"]
        return real(*a, **k)
    monkeypatch.setattr("reports.commands.verify.verify", spy)
    assert main(["verify", "--instances", "2"]) == 0
    assert seen["out"] == tmp_path / "reports" / "out" / "verify" and seen["out"].is_absolute()
