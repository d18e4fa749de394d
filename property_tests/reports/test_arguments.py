"""Shared argument helpers: output destinations checked before any work, SIGTERM as Ctrl-C."""
import os
import signal
import threading

import pytest

from icsmdp_theory.errors import InvalidArgumentError
from reports.arguments import (EXIT_INTERRUPTED, EXIT_TERMINATED, TerminationSignals,
                               run_record_paths, writable_destination)


def _tree(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("kind", ["dir", "file"])
def test_destination_under_a_regular_file_is_refused(tmp_path, kind):
    (tmp_path / "file.txt").write_text("x")
    before = _tree(tmp_path)
    with pytest.raises(InvalidArgumentError) as exc:
        writable_destination("--out", tmp_path / "file.txt" / "sub" / "x", kind=kind)
    msg = str(exc.value)
    assert "`--out`" in msg and "file.txt" in msg and "not a directory" in msg
    assert "\n" not in msg
    assert _tree(tmp_path) == before


def test_existing_file_where_a_directory_is_expected(tmp_path):
    (tmp_path / "out").write_text("x")
    with pytest.raises(InvalidArgumentError, match="exists and is not a directory"):
        writable_destination("--out", tmp_path / "out", kind="dir")


def test_directory_where_a_file_is_expected(tmp_path):
    with pytest.raises(InvalidArgumentError, match="is a directory"):
        writable_destination("--out", tmp_path, kind="file")


def test_unwritable_directory_is_refused(tmp_path, monkeypatch):
    """Tests run as root: ``os.access`` stands in for a read-only directory."""
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, *a, **k:
                        False if os.path.abspath(p) == str(tmp_path) else real(p, mode, *a, **k))
    with pytest.raises(InvalidArgumentError, match="is not writable"):
        writable_destination("--out", tmp_path / "new" / "deeper", kind="dir")


def test_failing_write_test_is_refused(tmp_path, monkeypatch):
    import tempfile

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(InvalidArgumentError, match="Permission denied"):
        writable_destination("--out", tmp_path, kind="dir")


def test_relative_destination_is_made_absolute_and_nothing_is_created(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = writable_destination("--out", os.path.join("a", "b"), kind="dir")
    assert p.is_absolute() and p == tmp_path / "a" / "b"
    assert _tree(tmp_path) == []
    q = run_record_paths("--out", "rec")
    assert q == tmp_path / "rec" and _tree(tmp_path) == []


def test_run_record_paths_refuses_a_directory_named_like_the_sidecar(tmp_path):
    (tmp_path / "rec.json").mkdir()
    with pytest.raises(InvalidArgumentError, match="is a directory"):
        run_record_paths("--out", str(tmp_path / "rec"))


def test_sigterm_raises_keyboard_interrupt_and_handlers_are_restored():
    assert threading.current_thread() is threading.main_thread()
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(KeyboardInterrupt):
        with TerminationSignals() as sig:
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(10_000_000):  # the handler runs between bytecodes
                pass
    assert sig.signal_number == signal.SIGTERM and sig.exit_status == EXIT_TERMINATED == 143
    assert signal.getsignal(signal.SIGTERM) == before


def test_plain_keyboard_interrupt_exits_130():
    sig = TerminationSignals()
    assert sig.exit_status == EXIT_INTERRUPTED == 130


def test_read_trace_arg_draws_a_byte_bar_only_when_asked(tmp_path, capsys):
    from icsmdp_theory.traces import TraceWriter, read_trace
    from reports.arguments import read_trace_arg
    path = tmp_path / "t.jsonl"
    with TraceWriter(path, gamma=0.5, agents=["a"]) as w:
        for e in range(50):
            w.write(e, "a", [e % 3], "STOP", 1, reward=1.0)
    seen = []
    read_trace(path, progress=seen.append)
    assert sum(seen) == path.stat().st_size            # every byte reported once
    capsys.readouterr()
    read_trace_arg(str(path), show=False)
    assert capsys.readouterr().err == ""
    data = read_trace_arg(str(path), show=True)
    err = capsys.readouterr().err
    assert "reading trace" in err and "100%" in err and data.num_invocations == 50
