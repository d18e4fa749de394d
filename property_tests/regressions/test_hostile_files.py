"""Issue 11, section 2: every hostile file under ``hostile/`` is refused by the CLI with
exit status 2 and ONE stderr line that names the file and the key/agent/index,
no traceback, nothing written (and through the library with the same message).

The files are small and were written once by the corruptions named in their
file names (see each row). Before the fix (``/work/orig``) each of them either
escaped as a traceback (``RecursionError``, ``OverflowError``, ``ValueError``,
``MemoryError``, ``IndexError``), was silently accepted with another meaning
(duplicate keys, strings/booleans coerced, negative npz indices wrapped, duplicate
npz entries overwritten, unknown arrays ignored, rewards of 1e308), or reported
a label as ``-9223372036854775808``.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

from icsmdp_theory.errors import InvalidInstanceError, InvalidObservationMapError
from icsmdp_theory.examples import load_example
from icsmdp_theory.io import load_instance, load_observation_maps
from reports.cli import main

HERE = Path(__file__).parent / "hostile"
P0, C1 = "of agent 0 (`planner`)", "of agent 1 (`checker`)"
BEYOND = "labels must be 0..2 with every label used (nM*nL = 3 cells); label at m=1, l=0 is"
SCALE = "so max |r| / (1 - gamma) = inf exceeds 1e+100; rewards must keep values finite in double precision with margin."

#: file -> the message after "<path>: " (exact)
INSTANCES = {
    "deep_nesting.json": "JSON nested deeper than 32 levels at line 5, column 44.",
    "int_401_digits.json": "`horizon` must be an integer in 1..9223372036854775807, got "
                           "1000000000000...0000 (401 digits).",
    "int_401_digits_in_reward.json": f"`reward` {P0}: entry [0, 0, 0, 0] is the integer "
                                     f"1000000000000...0000 (401 digits), beyond the double-precision range.",
    "ragged_successors.json": f"`successors` {C1}: entry [2] is a list of 1 entries, expected a "
                              f"boolean (true or false).",
    "ragged_kernel.json": f"`kernel` {P0} must have shape [1, 3, 3]: entry [0, 1] has 2 entries, expected 3.",
    "string_in_reward.json": f"`reward` {P0}: entry [0, 2, 0, 2] is the string '1.0', expected a number.",
    "bool_in_kernel.json": f"`kernel` {C1}: entry [0, 0, 0] is the boolean True, expected a number.",
    "bool_in_rho_agent.json": "`rho_agent`: entry [0] is the boolean True, expected a number.",
    "duplicate_gamma.json": "duplicate key `gamma` in the top-level object; every key must appear once.",
    "duplicate_format.json": "duplicate key `format` in the top-level object; every key must appear once.",
    "duplicate_agent_key.json": "duplicate key `n_actions` in `agents[0]`; every key must appear once.",
    "label_1e308.json": f"`observation` {P0}: {BEYOND} 1e+308.",
    "label_2pow63.json": f"`observation` {P0}: {BEYOND} 9223372036854775808.",
    "index_1e308.json": f"`kernel.entries` {P0}: entry 2 has y=1e+308 outside 0..2.",
    "index_2pow63.json": f"`kernel.entries` {P0}: entry 2 has y2=9223372036854775808 outside 0..2.",
    "reward_1e308.json": f"`reward` {P0}: entry [0, 2, 0, 2] is 1e+308, {SCALE}",
    "float_literal_1e400.json": "number `1e400` at line 4, column 11 is beyond the double-precision "
                                "range (about 1.8e308).",
    "truncated.json": "invalid JSON at line 104, column 1: Expecting ',' delimiter.",
    "npy_renamed.npz": "is a single .npy array, not a .npz archive; a .npz instance is a zip of named arrays.",
    "npz_complex_reward.npz": f"`reward` {P0}: entry [0, 0, 0, 0] is the complex number 0j, expected a number.",
    "npz_duplicate_entry.npz": f"`kernel.entries` {P0}: (a=0, y=1, y2=1) is repeated.",
    "npz_header_claims_7TiB.npz": "array `agent0.kernel_p` declares shape [1000000, 1000000] "
                                  "(8000000000000 bytes), more than its 76-byte member can hold.",
    "npz_huge_nY.npz": f"`kernel.shape` {P0} must be [1, 3, 3], got [1, 1000000, 1000000].",
    "npz_label_1e308.npz": f"`observation` {P0}: {BEYOND} 1e+308.",
    "npz_negative_index.npz": f"`kernel.entries` {C1}: entry 2 has y2=-1 outside 0..2.",
    "npz_reward_1e308.npz": f"`reward` {P0}: entry [0, 0, 0, 0] is 1e+308, {SCALE}",
    "npz_scalar_reward.npz": f"`reward` {P0} must be an array of shape [1, 3, 1, 3], got the number 0.0.",
    "npz_string_reward.npz": f"`reward` {P0}: entry [0, 0, 0, 0] is the string '0.0', expected a number.",
    "npz_unknown_array.npz": "unknown array `extra` in the .npz instance (allowed: format, name, gamma, "
                             "horizon, n_latent, n_interface, n_agents, rho_latent_interface, rho_agent, "
                             "and agent<i>.<key> for i < n_agents = 2 with key in name, kernel_is_sparse, "
                             "kernel_nY, rho_private, internal_policy, reward, end_probability, "
                             "observation, successors, kernel_a, kernel_y, kernel_y2, kernel_p, modes).",
    "npz_vector_gamma.npz": "array `gamma` must be a scalar (a 0-d array), got shape [2].",
}
MAPS = {
    "maps_duplicate_key.json": "duplicate key `maps` in the top-level object; every key must appear once.",
    "maps_label_2pow63.json": f"`maps[0]` {P0}: {BEYOND} 9223372036854775808.",
    "maps_bool_label.json": f"`maps[0]` {P0}: label at m=1, l=0 is the boolean True, expected an integer label.",
    "maps_ragged.json": f"`maps[0]` {P0} must have shape [3, 1]: entry [1, 0] is a list of 1 "
                        f"entries, expected a single value.",
    "maps_deep.json": "JSON nested deeper than 32 levels at line 1, column 67.",
}


def test_every_file_has_a_row():
    assert sorted(p.name for p in HERE.iterdir()) == sorted([*INSTANCES, *MAPS])


def _one_line(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no RuntimeWarning on the way either
        code = main(argv)
    out, err = capsys.readouterr()
    assert list(tmp_path.iterdir()) == []       # nothing written
    assert code == 2, (out, err)
    assert "Traceback" not in err and err.endswith("\n") and err.count("\n") == 1, err
    return err.rstrip("\n")


@pytest.mark.parametrize("name", sorted(INSTANCES))
def test_hostile_instance_is_one_located_line(name, capsys, tmp_path, monkeypatch):
    path = HERE / name
    line = _one_line(["solve", str(path), "--method", "pi"], capsys, tmp_path, monkeypatch)
    assert line == f"icsmdp solve: error: {path}: {INSTANCES[name]}"
    with pytest.raises(InvalidInstanceError, match=f"^{re.escape(f'{path}: {INSTANCES[name]}')}$"):
        load_instance(path)


@pytest.mark.parametrize("name", sorted(MAPS))
def test_hostile_observation_map_is_one_located_line(name, capsys, tmp_path, monkeypatch):
    path = HERE / name
    line = _one_line(["gaps", "tiny-handoff", "--obs", str(path), "--no-mixing", "--no-minimax"],
                     capsys, tmp_path, monkeypatch)
    assert line == f"icsmdp gaps: error: {path}: {MAPS[name]}"
    with pytest.raises(InvalidObservationMapError, match=f"^{re.escape(f'{path}: {MAPS[name]}')}$"):
        load_observation_maps(path, load_example("tiny-handoff"))
