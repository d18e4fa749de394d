"""Corrupted run records are refused with one located line (issue 11, section 2).

A valid record is written once by ``save_run``; each test corrupts a copy
(the ``.npz`` rewritten with plain ``numpy.savez`` or by hand as a zip, the
sidecar edited as text) and states the exact message, written out here, that
names the file, the key and the index. A few go through ``icsmdp check``:
exit status 2, one stderr line, no traceback.
"""
from __future__ import annotations

import io
import json
import re
import shutil
import zipfile

import numpy as np
import pytest

from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.examples import load_example
from reports import cli
from solvers.api import solve
from solvers.icq import ICQ
from solvers.records import load_run, save_run


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    """``PATH`` of a valid record (2 seeds, checkpoints 100 and 200, message log)."""
    rec = solve(ICQ(updates=200, seeds=2, checkpoints=(100, 200), progress=False,
                    log_messages=True), load_example("tiny-handoff"))
    base = tmp_path_factory.mktemp("valid") / "run"
    save_run(rec, base)
    return base


def _arrays(valid):
    with np.load(f"{valid}.npz", allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _meta(valid):
    return json.loads(open(f"{valid}.json", encoding="utf-8").read())


def _write(tmp_path, valid, arrays=None, meta=None, sidecar_text=None):
    """A corrupted copy ``tmp_path/bad``: arrays and/or sidecar replaced."""
    base = tmp_path / "bad"
    if arrays is None:
        shutil.copy(f"{valid}.npz", f"{base}.npz")
    else:
        np.savez(f"{base}.npz", **arrays)
    if sidecar_text is not None:
        (tmp_path / "bad.json").write_text(sidecar_text, encoding="utf-8")
    elif meta is not None:
        (tmp_path / "bad.json").write_text(json.dumps(meta), encoding="utf-8")
    else:
        shutil.copy(f"{valid}.json", f"{base}.json")
    return base


def _refused(base, message):
    """``load_run`` raises exactly ``message`` (after the file name) on one line."""
    with pytest.raises(InvalidArgumentError) as info:
        load_run(base)
    text = str(info.value)
    assert "\n" not in text
    assert text == message, text
    return text


def test_the_valid_record_loads(valid):
    rec = load_run(valid)
    assert rec.q.shape == (2, 2, 5, 3) and rec.checkpoints.tolist() == [100, 200]
    assert rec.messages is not None and rec.reached.all()


# ------------------------------------------------------------------ sidecar
def test_missing_sidecar(tmp_path, valid):
    shutil.copy(f"{valid}.npz", tmp_path / "bad.npz")
    _refused(tmp_path / "bad", f"{tmp_path}/bad.json: file not found (a run is PATH.npz + PATH.json).")


def test_wrong_format_tag(tmp_path, valid):
    base = _write(tmp_path, valid, meta={**_meta(valid), "format": "icsmdp-run/2"})
    _refused(base, f"{base}.json: `format` must be 'icsmdp-run/1', got the string 'icsmdp-run/2'.")


def test_duplicate_json_keys(tmp_path, valid):
    text = json.dumps(_meta(valid))
    base = _write(tmp_path, valid, sidecar_text=text[:-1] + ', "gamma": 0.5}')
    _refused(base, f"{base}.json: duplicate key `gamma` in the top-level object; every key must "
                   f"appear once.")
    base = _write(tmp_path, valid, sidecar_text=text[:-1] + ', "format": "icsmdp-run/1"}')
    _refused(base, f"{base}.json: duplicate key `format` in the top-level object; every key must "
                   f"appear once.")


@pytest.mark.parametrize("key, value, message", [
    ("gamma", "0.9", "`gamma` must be a number in (0, 1), got the string '0.9'."),
    ("gamma", True, "`gamma` must be a number in (0, 1), got the boolean True."),
    ("num_agents", 2.0, "`num_agents` must be an integer >= 1, got the number 2.0."),
    ("num_observations", [2, True], "`num_observations[1]` must be an integer >= 1, got the "
                                    "boolean True."),
    ("num_observations", [2, "3"], "`num_observations[1]` must be an integer >= 1, got the "
                                   "string '3'."),
    ("iterations", -1, "`iterations` must be null or an integer >= 0, got the integer -1."),
    ("base_seed", 10**60, None),  # a huge but finite seed is a valid SeedSequence entropy
    ("success", "yes", "`success` must be true or false, got the string 'yes'."),
])
def test_wrong_json_types(tmp_path, valid, key, value, message):
    base = _write(tmp_path, valid, meta={**_meta(valid), key: value})
    if message is None:
        assert load_run(base).base_seed == value
    else:
        _refused(base, f"{base}.json: {message}")


def test_unknown_key_and_deep_nesting(tmp_path, valid):
    base = _write(tmp_path, valid, meta={**_meta(valid), "gama": 0.5})
    with pytest.raises(InvalidArgumentError, match=re.escape(f"{base}.json: unknown key `gama`")):
        load_run(base)
    text = json.dumps(_meta(valid))
    base = _write(tmp_path, valid, sidecar_text=text[:-1] + ', "settings": ' + "[" * 1000
                  + "]" * 1000 + "}")
    with pytest.raises(InvalidArgumentError, match=re.escape(f"{base}.json: JSON nested deeper")):
        load_run(base)
    base = _write(tmp_path, valid, sidecar_text=text[:-1] + ', "iterations": ' + "9" * 5000 + "}")
    with pytest.raises(InvalidArgumentError, match="has 5000 digits"):
        load_run(base)


# ------------------------------------------------------------------- arrays
def test_wrong_shape(tmp_path, valid):
    a = _arrays(valid)
    base = _write(tmp_path, valid, {**a, "q": a["q"][:, :, :4]})
    _refused(base, f"{base}.npz: array `q` must have shape (2, S, 5, 3), got (2, 2, 4, 3).")
    base = _write(tmp_path, valid, {**a, "updates": np.int64(200)})  # 0-d where (S,) expected
    _refused(base, f"{base}.npz: array `updates` must have shape (2,), got ().")


def test_complex_and_object_and_text(tmp_path, valid):
    a = _arrays(valid)
    base = _write(tmp_path, valid, {**a, "q": a["q"] + 0j})
    _refused(base, f"{base}.npz: array `q` has dtype complex128; expected real numbers.")
    base = _write(tmp_path, valid, {**a, "seeds": np.array(["0", "1"])})
    _refused(base, f"{base}.npz: array `seeds` has dtype <U1; expected integers.")
    base = _write(tmp_path, valid, {**a, "episodes": np.array([1.0, 2.0])})
    _refused(base, f"{base}.npz: array `episodes` has dtype float64; expected integers.")
    obj = np.empty(2, dtype=object)
    obj[:] = [1, 2]
    base = tmp_path / "obj"
    np.savez(f"{base}.npz", **{**a, "updates": obj}, allow_pickle=True)
    shutil.copy(f"{valid}.json", f"{base}.json")
    _refused(base, f"{base}.npz: array `updates` holds Python objects (pickles are never read).")


def test_negative_and_out_of_range_counters(tmp_path, valid):
    a = _arrays(valid)
    base = _write(tmp_path, valid, {**a, "truncations": np.array([0, -5])})
    _refused(base, f"{base}.npz: array `truncations` entry [1] is the integer -5; entries must "
                   f"be >= 0.")
    base = _write(tmp_path, valid, {**a, "updates": np.array([200, 150])})
    _refused(base, f"{base}.npz: array `updates` entry [1] is 150, below checkpoint 200 that "
                   f"seed 1 reached (`reached`).")
    base = _write(tmp_path, valid, {**a, "checkpoints": np.array([200, 100])})
    _refused(base, f"{base}.npz: array `checkpoints` entry [1] is 100, not above entry [0] 200; "
                   f"checkpoints must increase.")
    sender = a["msg_sender"].copy()
    sender[7] = 3
    base = _write(tmp_path, valid, {**a, "msg_sender": sender})
    _refused(base, f"{base}.npz: array `msg_sender` entry [7] is 3; entries must be <= 2 (N = 2).")
    obs = a["msg_observation"].copy()
    j = int(np.flatnonzero(a["msg_receiver"] == 0)[0])  # agent 0 has 2 observations
    obs[j] = 2
    base = _write(tmp_path, valid, {**a, "msg_observation": obs})
    _refused(base, f"{base}.npz: array `msg_observation` entry [{j}] is 2; agent 0 "
                   f"(`msg_receiver`) has 2 observations.")
    base = _write(tmp_path, valid, {k: v for k, v in a.items() if k != "msg_tau"})
    _refused(base, f"{base}.npz: missing array `msg_tau` (`msg_seed` is present; the message log "
                   f"has the columns seed, epoch, sender, receiver, b, tau, R, observation, "
                   f"successor).")


def test_non_finite_q(tmp_path, valid):
    a = _arrays(valid)
    q = a["q"].copy()
    q[1, 0, 2, 0] = np.inf
    base = _write(tmp_path, valid, {**a, "q": q})
    _refused(base, f"{base}.npz: array `q` entry [1, 0, 2, 0] is the number inf; entries must be "
                   f"finite or nan (not reached).")
    # the format allows nan (unreached checkpoints, unvisited pairs) ...
    q = a["q"].copy()
    q[1, 1] = np.nan
    reached = a["reached"].copy()
    reached[1, 1] = False
    rec = load_run(_write(tmp_path, valid, {**a, "q": q, "reached": reached}))
    assert np.isnan(rec.q[1, 1]).all() and not rec.reached[1, 1]
    # ... and inf only in a run that says it diverged
    q[1, 0, 2, 0] = -np.inf
    rec = load_run(_write(tmp_path, valid, {**a, "q": q}, meta={**_meta(valid),
                                                                "status": "diverged"}))
    assert rec.q[1, 0, 2, 0] == -np.inf


def test_unknown_array(tmp_path, valid):
    a = _arrays(valid)
    base = _write(tmp_path, valid, {**a, "theta_5": np.zeros((2, 3))})
    with pytest.raises(InvalidArgumentError,
                       match=re.escape(f"{base}.npz: unknown array `theta_5`")):
        load_run(base)


def test_npy_renamed_npz(tmp_path, valid):
    np.save(tmp_path / "bad.npy", _arrays(valid)["q"])
    (tmp_path / "bad.npy").rename(tmp_path / "bad.npz")
    shutil.copy(f"{valid}.json", tmp_path / "bad.json")
    _refused(tmp_path / "bad", f"{tmp_path}/bad.npz: is a single .npy array, not a .npz archive; "
                               f"a .npz run record is a zip of named arrays.")


def test_header_claiming_a_huge_array(tmp_path, valid):
    """A 100-byte member whose header declares 8 * 10^15 bytes is refused before allocation."""
    a = _arrays(valid)
    base = _write(tmp_path, valid, {k: v for k, v in a.items() if k != "eps0_grad"})
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False,
                                               "shape": (10**9, 10**6)})
    with zipfile.ZipFile(f"{base}.npz", "a") as zf:
        zf.writestr("eps0_grad.npy", buf.getvalue() + b"\0" * 16)
    with pytest.raises(InvalidArgumentError, match=re.escape(
            f"{base}.npz: array `eps0_grad` declares shape [1000000000, 1000000]")):
        load_run(base)


# ---------------------------------------------------------------------- CLI
@pytest.mark.parametrize("corrupt", ["duplicate", "complex", "negative", "npy"])
def test_cli_check_exits_2_with_one_line(tmp_path, valid, capsys, corrupt):
    a = _arrays(valid)
    if corrupt == "duplicate":
        base = _write(tmp_path, valid, sidecar_text=json.dumps(_meta(valid))[:-1] + ', "gamma": 0.5}')
        key = "duplicate key `gamma`"
    elif corrupt == "complex":
        base = _write(tmp_path, valid, {**a, "q": a["q"] * 1j})
        key = "array `q` has dtype complex128"
    elif corrupt == "negative":
        base = _write(tmp_path, valid, {**a, "episodes": -a["episodes"] - 1})
        key = "array `episodes` entry [0]"
    else:
        base = tmp_path / "bad"
        np.save(tmp_path / "bad.npy", a["q"])
        (tmp_path / "bad.npy").rename(tmp_path / "bad.npz")
        shutil.copy(f"{valid}.json", tmp_path / "bad.json")
        key = "is a single .npy array"
    status = cli.main(["check", "tiny-handoff", f"{base}.npz"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"icsmdp check: error: {base}.") and key in err, err
