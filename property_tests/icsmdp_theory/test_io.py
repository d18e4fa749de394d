"""Tests of :mod:`icsmdp_theory.io` (SPEC section 9): exact round-trips, located
errors for unreadable files, observation-map files, atomic writes."""
from __future__ import annotations

import copy
import json
import os
import pathlib
import re

import numpy as np
import pytest

from icsmdp_theory import io as icio
from icsmdp_theory.errors import InvalidInstanceError, InvalidObservationMapError
from icsmdp_theory.examples import EXAMPLES, load_example
from icsmdp_theory.generators import random_icsmdp
from icsmdp_theory.io import (instance_from_dict, instance_to_dict, load_instance,
                              load_observation_maps, observation_maps_to_dict, save_instance,
                              save_observation_maps)


def exactly(message):
    return f"^{re.escape(message)}$"


def _bits(a: np.ndarray) -> tuple:
    a = np.asarray(a)
    return a.dtype.str, a.shape, a.tobytes()


def assert_identical(a, b):
    """Every scalar and array of two models equal bit for bit; kernels identical."""
    assert (a.name, a.horizon, a.num_latent, a.num_interface, a.num_agents) == \
           (b.name, b.horizon, b.num_latent, b.num_interface, b.num_agents)
    assert _bits(np.float64(a.gamma)) == _bits(np.float64(b.gamma))
    assert _bits(a.rho_latent_interface) == _bits(b.rho_latent_interface)
    assert _bits(a.rho_agent) == _bits(b.rho_agent)
    for x, y in zip(a.agents, b.agents):
        assert x.name == y.name and x.kernel_is_sparse == y.kernel_is_sparse
        for field in ("rho_private", "internal_policy", "reward", "end_probability",
                      "observation", "successors"):
            assert _bits(getattr(x, field)) == _bits(getattr(y, field)), field
        assert len(x.kernel) == len(y.kernel)
        for kx, ky in zip(x.kernel, y.kernel):
            assert kx.shape == ky.shape
            assert _bits(kx.data) == _bits(ky.data)
            np.testing.assert_array_equal(kx.indices, ky.indices)
            np.testing.assert_array_equal(kx.indptr, ky.indptr)
    assert instance_to_dict(a) == instance_to_dict(b)


def _random_models():
    for seed in range(4):
        for nnz in (None, 3):
            yield random_icsmdp(seed, num_agents=3, num_latent=2, num_interface=4,
                                num_private=(1, 2, 3), num_actions=(2, 1, 3), nnz_per_row=nnz,
                                observation="random", reward_range=(-1.0, 1.0),
                                end_probability=(0.05, 1.0), gamma=0.97, horizon=17,
                                name=f"random-{seed}-{nnz}")


def _awkward_model():
    """Mixed kernel forms, a non-ASCII name and floats that a lossy writer would change."""
    d = instance_to_dict(load_example("tiny-handoff"))
    d["name"] = "tiny – ü"
    d["gamma"] = 0.1 + 0.2
    d["agents"][0]["kernel"] = {"shape": [1, 3, 3], "entries": [
        [0, 0, 1, 1.0], [0, 1, 1, 1 / 3], [0, 1, 2, 2 / 3], [0, 2, 2, 1.0]]}
    d["agents"][0]["reward"][0][0][0] = [-0.0, 5e-324, 6.999999999999999e99]  # scale < 1e100
    d["agents"][1]["reward"][0][1][0] = [1 / 7, -2.2250738585072014e-308, 123456789.123456789]
    d["agents"][1]["end_probability"][0][1][0] = 0.1 + 0.7
    return instance_from_dict(d)


MODELS = [load_example(n) for n in EXAMPLES] + [_awkward_model()] + list(_random_models())


@pytest.mark.parametrize("suffix", [".json", ".npz"])
@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_round_trip_is_exact(model, suffix, tmp_path):
    path = save_instance(model, tmp_path / f"inst{suffix}")
    assert path == tmp_path / f"inst{suffix}"
    again = load_instance(path)
    assert_identical(model, again)
    # writing the loaded copy reproduces the same file
    path2 = save_instance(again, tmp_path / f"inst2{suffix}")
    if suffix == ".json":
        assert path.read_bytes() == path2.read_bytes()
    assert_identical(model, load_instance(path2))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, path2.name])


def test_awkward_floats_survive(tmp_path):
    model = _awkward_model()
    back = load_instance(save_instance(model, tmp_path / "a.json"))
    r = back.agents[0].reward[0, 0, 0]
    assert np.signbit(r[0]) and r[0] == 0.0
    assert r[1] == 5e-324 and r[2] == 6.999999999999999e99
    assert back.gamma == 0.1 + 0.2 and back.name == "tiny – ü"
    assert back.agents[0].kernel[0][1, 1] == 1 / 3


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_json_and_npz_agree(model, tmp_path):
    via_json = load_instance(save_instance(model, tmp_path / "a.json"))
    via_npz = load_instance(save_instance(via_json, tmp_path / "a.npz"))
    assert_identical(via_json, via_npz)


def test_kernel_forms_are_kept_in_the_file(tmp_path):
    model = _awkward_model()
    doc = json.loads(save_instance(model, tmp_path / "a.json").read_text(encoding="utf-8"))
    planner, checker = doc["agents"]
    assert planner["kernel"] == {"shape": [1, 3, 3], "entries": [
        [0, 0, 1, 1.0], [0, 1, 1, 1 / 3], [0, 1, 2, 2 / 3], [0, 2, 2, 1.0]]}
    assert checker["kernel"] == [[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]]]
    sparse = random_icsmdp(1, nnz_per_row=2, num_private=2)
    doc = json.loads(save_instance(sparse, tmp_path / "s.json").read_text(encoding="utf-8"))
    for a, agent in zip(doc["agents"], sparse.agents):
        assert set(a["kernel"]) == {"shape", "entries"}
        assert len(a["kernel"]["entries"]) == sum(k.nnz for k in agent.kernel)
    with np.load(save_instance(sparse, tmp_path / "s.npz")) as z:
        assert bool(z["agent0.kernel_is_sparse"]) and "agent0.kernel_p" in z.files
        assert all(not f.endswith(".pkl") for f in z.files)


def test_json_document_is_the_spec_format():
    doc = instance_to_dict(load_example("tiny-handoff"))
    path = pathlib.Path(icio.__file__).parent / "examples" / "tiny-handoff.json"
    assert doc == json.loads(path.read_text(encoding="utf-8"))
    assert list(doc) == list(icio.TOP_KEYS)


# -------------------------------------------------------------- bad files
def test_invalid_json_names_file_line_and_column(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"format": "icsmdp/1",\n "name": }\n', encoding="utf-8")
    with pytest.raises(InvalidInstanceError,
                       match=exactly(f"{path}: invalid JSON at line 2, column 10: Expecting value.")):
        load_instance(path)


def test_truncated_json(tmp_path):
    path = tmp_path / "cut.json"
    text = json.dumps(instance_to_dict(load_example("tiny-handoff")), indent=1)
    path.write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(InvalidInstanceError, match=f"^{re.escape(str(path))}: invalid JSON at line "):
        load_instance(path)


def test_non_utf8_file(tmp_path):
    path = tmp_path / "latin1.json"
    path.write_bytes(b'{"name": "\xff"}')
    with pytest.raises(InvalidInstanceError, match=exactly(f"{path}: not UTF-8 text (byte 10).")):
        load_instance(path)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_literal_names_file_and_line(literal, tmp_path):
    doc = instance_to_dict(load_example("tiny-handoff"))
    doc["name"] = "NaN Infinity -Infinity \\\" NaN"      # decoys inside a string
    text = json.dumps(doc, indent=1).replace('"horizon": 60', f'"horizon": {literal}')
    path = tmp_path / "nan.json"
    path.write_text(text, encoding="utf-8")
    lines = text.split("\n")
    line = next(k for k, s in enumerate(lines, 1) if '"horizon"' in s)
    col = lines[line - 1].index(literal) + 1
    with pytest.raises(InvalidInstanceError, match=exactly(
            f"{path}: non-finite number `{literal}` at line {line}, column {col}; every number "
            f"must be finite.")):
        load_instance(path)


@pytest.mark.parametrize("name", ["missing.json", "missing.npz", "."])
def test_missing_file(name, tmp_path):
    path = tmp_path / name
    with pytest.raises(InvalidInstanceError, match=exactly(f"{path}: no such instance file.")):
        load_instance(path)


def test_top_level_not_an_object(tmp_path):
    path = tmp_path / "list.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InvalidInstanceError,
                       match=exactly(f"{path}: the instance must be a JSON object at top level.")):
        load_instance(path)


def test_invalid_instance_in_a_valid_file(tmp_path):
    doc = instance_to_dict(load_example("tiny-handoff"))
    doc["agents"][1]["successors"] = [False, False, False]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(InvalidInstanceError, match=exactly(
            f"{path}: `successors` of agent 1 (`checker`) must admit at least one successor; all 3 are false.")):
        load_instance(path)


def test_unreadable_npz(tmp_path):
    good = save_instance(load_example("tiny-handoff"), tmp_path / "good.npz").read_bytes()
    for name, data in [("garbage.npz", b"not a zip at all"), ("cut.npz", good[: len(good) // 2])]:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(InvalidInstanceError,
                           match=f"^{re.escape(str(path))}: not a readable .npz instance "):
            load_instance(path)


def test_npz_with_missing_array_or_wrong_format(tmp_path):
    arrays = icio._npz_arrays(load_example("tiny-handoff"))
    missing = dict(arrays)
    del missing["agent1.reward"]
    path = tmp_path / "missing.npz"
    np.savez_compressed(path, **missing)
    with pytest.raises(InvalidInstanceError, match=exactly(
            f"{path}: missing array `agent1.reward` in the .npz instance.")):
        load_instance(path)
    wrong = dict(arrays, format=np.array("icsmdp/0"))
    path = tmp_path / "wrong.npz"
    np.savez_compressed(path, **wrong)
    with pytest.raises(InvalidInstanceError,
                       match=exactly(f"{path}: `format` must be 'icsmdp/1', got 'icsmdp/0'.")):
        load_instance(path)
    bad = dict(arrays)
    bad["agent0.end_probability"] = np.array([[[1.0], [2.0], [1.0]]])
    path = tmp_path / "beta.npz"
    np.savez_compressed(path, **bad)
    with pytest.raises(InvalidInstanceError, match=exactly(
            f"{path}: `end_probability` of agent 0 (`planner`) must lie in [0, 1]: entry [0, 1, 0] "
            f"is 2.0.")):
        load_instance(path)


def test_npz_with_pickled_object_is_refused(tmp_path):
    arrays = icio._npz_arrays(load_example("tiny-handoff"))
    arrays["name"] = np.array([object()], dtype=object)
    path = tmp_path / "pickle.npz"
    np.savez(path, **arrays)
    with pytest.raises(InvalidInstanceError, match=exactly(
            f"{path}: array `name` holds Python objects (pickles are never read).")):
        load_instance(path)


# ------------------------------------------------------ observation maps
TINY_MAPS = [[[0], [0], [1]], [[1], [0], [0]]]


def test_observation_maps_round_trip(tmp_path):
    model = load_example("tiny-handoff")
    path = save_observation_maps([np.array(m) for m in TINY_MAPS], tmp_path / "obs.json")
    assert json.loads(path.read_text(encoding="utf-8")) == {"format": "icsmdp-obs/1", "maps": TINY_MAPS}
    assert observation_maps_to_dict(TINY_MAPS) == {"format": "icsmdp-obs/1", "maps": TINY_MAPS}
    new = load_observation_maps(path, model)
    assert [a.observation.tolist() for a in new.agents] == TINY_MAPS
    assert [a.observation.tolist() for a in model.agents] == [[[0], [1], [1]], [[0], [1], [2]]]
    # the model's own maps written out and read back give the same maps
    own = save_observation_maps([a.observation for a in model.agents], tmp_path / "own.json")
    back = load_observation_maps(own, new)
    for a, b in zip(model.agents, back.agents):
        assert _bits(a.observation) == _bits(b.observation)


def test_observation_maps_round_trip_workflow(tmp_path):
    model = load_example("workflow")
    coarse = [np.zeros((16, a.num_private), int) for a in model.agents]
    coarse[1][:, 1] = 1
    new = load_observation_maps(save_observation_maps(coarse, tmp_path / "o.json"), model)
    assert new.num_observations == (1, 2, 1)
    for a, m in zip(new.agents, coarse):
        np.testing.assert_array_equal(a.observation, m)


def _write(tmp_path, doc, name="obs.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc) if not isinstance(doc, str) else doc, encoding="utf-8")
    return path


@pytest.mark.parametrize("doc, message", [
    ({"format": "icsmdp/1", "maps": TINY_MAPS}, "`format` must be 'icsmdp-obs/1', got 'icsmdp/1'."),
    ({"maps": TINY_MAPS}, "`format` must be 'icsmdp-obs/1', got None."),
    ({"format": "icsmdp-obs/1", "maps": TINY_MAPS, "note": 1},
     "unknown key `note` in the observation-map file (allowed: format, maps)."),
    ({"format": "icsmdp-obs/1"}, "missing key `maps` in the observation-map file."),
    ({"format": "icsmdp-obs/1", "maps": TINY_MAPS[:1]},
     "`maps` must hold one observation map per agent: expected 2, got 1."),
    ({"format": "icsmdp-obs/1", "maps": TINY_MAPS + TINY_MAPS[:1]},
     "`maps` must hold one observation map per agent: expected 2, got 3."),
    ({"format": "icsmdp-obs/1", "maps": [TINY_MAPS[0], [[0, 1], [1, 0], [0, 1]]]},
     "`maps[1]` of agent 1 (`checker`) must have shape [3, 1], got [3, 2]."),
    ({"format": "icsmdp-obs/1", "maps": [[[0], [2], [2]], TINY_MAPS[1]]},
     "`maps[0]` of agent 0 (`planner`): labels must be 0..2 with every label used; label 1 is unused."),
    ({"format": "icsmdp-obs/1", "maps": [[[0], [3], [1]], TINY_MAPS[1]]},
     "`maps[0]` of agent 0 (`planner`): labels must be 0..2 with every label used (nM*nL = 3 "
     "cells); label at m=1, l=0 is 3."),
    ({"format": "icsmdp-obs/1", "maps": [TINY_MAPS[0], [[0], [-1], [1]]]},
     "`maps[1]` of agent 1 (`checker`): label at m=1, l=0 is -1, must be >= 0."),
])
def test_bad_observation_map_file(doc, message, tmp_path):
    path = _write(tmp_path, doc)
    with pytest.raises(InvalidObservationMapError, match=exactly(f"{path}: {message}")):
        load_observation_maps(path, load_example("tiny-handoff"))


def test_unreadable_observation_map_file(tmp_path):
    model = load_example("tiny-handoff")
    path = tmp_path / "none.json"
    with pytest.raises(InvalidObservationMapError, match=exactly(f"{path}: no such observation-map file.")):
        load_observation_maps(path, model)
    path = _write(tmp_path, '{"format": "icsmdp-obs/1",\n "maps": [[[0], [NaN], [1]]]}')
    with pytest.raises(InvalidObservationMapError, match=exactly(
            f"{path}: non-finite number `NaN` at line 2, column 18; every number must be finite.")):
        load_observation_maps(path, model)
    path = _write(tmp_path, '{"format": ', "cut.json")
    with pytest.raises(InvalidObservationMapError,
                       match=exactly(f"{path}: invalid JSON at line 1, column 12: Expecting value.")):
        load_observation_maps(path, model)
    path = _write(tmp_path, "[]", "list.json")
    with pytest.raises(InvalidObservationMapError, match=exactly(
            f"{path}: the observation-map file must be a JSON object.")):
        load_observation_maps(path, model)


# ---------------------------------------------------------- atomic writes
def _boom(*args, **kwargs):
    raise RuntimeError("boom")


def test_failing_serialization_writes_nothing(tmp_path, monkeypatch):
    target = tmp_path / "inst.json"
    monkeypatch.setattr(json, "dumps", _boom)
    with pytest.raises(RuntimeError, match="boom"):
        save_instance(load_example("tiny-handoff"), target)
    with pytest.raises(RuntimeError, match="boom"):
        save_observation_maps(TINY_MAPS, tmp_path / "obs.json")
    assert list(tmp_path.iterdir()) == []


def _half_write_then_fail(self, data, *args, **kwargs):
    with open(self, "w", encoding="utf-8") as fh:
        fh.write(data[: len(data) // 2])
    raise OSError("disk full")


@pytest.mark.parametrize("which", ["instance", "maps"])
def test_failing_write_leaves_no_partial_file_and_keeps_the_old_one(which, tmp_path, monkeypatch):
    model = load_example("tiny-handoff")
    target = tmp_path / "out.json"
    save = ((lambda: save_instance(model, target)) if which == "instance"
            else (lambda: save_observation_maps(TINY_MAPS, target)))
    monkeypatch.setattr(pathlib.Path, "write_text", _half_write_then_fail)
    with pytest.raises(OSError, match="disk full"):
        save()
    assert list(tmp_path.iterdir()) == []
    monkeypatch.undo()
    target.write_text("old content", encoding="utf-8")
    monkeypatch.setattr(pathlib.Path, "write_text", _half_write_then_fail)
    with pytest.raises(OSError, match="disk full"):
        save()
    assert list(tmp_path.iterdir()) == [target]
    assert target.read_text(encoding="utf-8") == "old content"


def test_failing_npz_write_leaves_nothing(tmp_path, monkeypatch):
    def half(file, **arrays):
        pathlib.Path(file).write_bytes(b"PK\x03\x04 partial")
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez_compressed", half)
    with pytest.raises(OSError, match="disk full"):
        save_instance(load_example("tiny-handoff"), tmp_path / "inst.npz")
    assert list(tmp_path.iterdir()) == []


def test_written_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o027)
    try:
        for name in ("a.json", "a.npz"):
            save_instance(load_example("tiny-handoff"), tmp_path / name)
        save_observation_maps(TINY_MAPS, tmp_path / "o.json")
    finally:
        os.umask(old)
    for p in tmp_path.iterdir():
        assert p.stat().st_mode & 0o777 == 0o640, p


def test_overwrite_replaces_the_file(tmp_path):
    target = tmp_path / "inst.json"
    save_instance(load_example("tiny-handoff"), target)
    doc = copy.deepcopy(instance_to_dict(load_example("tiny-handoff")))
    doc["name"] = "renamed"
    save_instance(instance_from_dict(doc), target)
    assert load_instance(target).name == "renamed"
    assert list(tmp_path.iterdir()) == [target]
