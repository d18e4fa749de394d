"""``icsmdp-epoch/1`` files (JSON and npz) and observation maps over labels (SPEC section 10)."""
import copy
import json

import numpy as np
import pytest
from hypothesis import given, settings

from icsmdp_theory.epoch_export import export_epoch
from icsmdp_theory.epoch_io import (epoch_model_from_dict, epoch_model_to_dict, load_epoch_model,
                                    load_label_maps, save_epoch_model)
from icsmdp_theory.epoch_model import EpochModel
from icsmdp_theory.errors import InvalidEpochModelError, InvalidObservationMapError
from icsmdp_theory.examples import load_example
from icsmdp_theory.testing.strategies import icsmdps

ARRAYS = ("state_label", "state_agent", "admissible", "rho0", "reward", "trans_state",
          "trans_successor", "trans_next_label", "trans_next", "trans_tau", "trans_prob",
          "state_observation")

#: The hand model of test_epoch_model.py written by hand as a file (agents a, b; labels x, y).
HAND = {
    "format": "icsmdp-epoch/1", "name": "hand", "gamma": 0.9, "agents": ["a", "b"],
    "labels": ["x", "y"],
    "rho0": [[0, 0, 1.0]],
    "admissible": [[0, 0, [1, 2]], [1, 1, [0, 2]], [1, 0, [2]]],
    "transitions": [[0, 0, 1, 1, 1, 0.6], [0, 0, 1, 1, 2, 0.4], [0, 0, 2, None, 1, 1.0],
                    [1, 1, 0, 0, 1, 0.5], [1, 1, 0, 1, 3, 0.5], [1, 1, 2, None, 2, 1.0],
                    [1, 0, 2, None, 1, 0.3], [1, 0, 2, None, 4, 0.7]],
    "reward": [[0, 0, 1, 1.0], [0, 0, 2, 0.0], [1, 1, 0, 2.0], [1, 1, 2, 0.0], [1, 0, 2, 5.0]],
}


def _same(a: EpochModel, b: EpochModel):
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert (a.name, a.gamma, a.agent_names, a.labels, a.component_names, a.counts) == \
        (b.name, b.gamma, b.agent_names, b.labels, b.component_names, b.counts)
    assert all(np.array_equal(x, y) for x, y in zip(a.observation, b.observation))
    if a.components is None:
        assert b.components is None
    else:
        np.testing.assert_array_equal(a.components, b.components)


def test_hand_written_file_gives_the_hand_values(tmp_path):
    path = tmp_path / "hand.json"
    path.write_text(json.dumps(HAND))
    m = load_epoch_model(path)
    xa, yb, ya = m.state_index("x", "a"), m.state_index("y", "b"), m.state_index("y", "a")
    assert m.end_discount()[xa, 1] == pytest.approx(0.864)
    assert m.end_discount()[ya, 2] == pytest.approx(0.3 * 0.9 + 0.7 * 0.6561)
    assert m.discounted_kernel()[[yb * 3], [ya]].item() == pytest.approx(0.3645)
    assert m.reward[yb, 0] == 2.0 and m.rho0[xa] == 1.0 and m.counts is None


@pytest.mark.parametrize("suffix", [".json", ".npz"])
def test_round_trip_is_exact_with_every_optional_key(suffix, tmp_path):
    doc = dict(HAND, observation=[[3, 3], [0, 1]], reward_components=["tokens", "latency"],
               components=[[k, i, c, 0.1 * j, -1 / 3] for j, (k, i, c, _) in enumerate(HAND["reward"])],
               counts={"format": "x", "n": [1, 2, 3], "nested": {"a": 0.1}})
    m = epoch_model_from_dict(doc)
    path = save_epoch_model(m, tmp_path / f"m{suffix}")
    back = load_epoch_model(path)
    _same(m, back)
    assert epoch_model_to_dict(back) == epoch_model_to_dict(m)
    assert back.num_observations == (1, 1)


@pytest.mark.parametrize("suffix", [".json", ".npz"])
@pytest.mark.parametrize("name", ["tiny-handoff", "workflow"])
def test_round_trip_of_exports(name, suffix, tmp_path):
    e = export_epoch(load_example(name))
    back = load_epoch_model(save_epoch_model(e, tmp_path / f"e{suffix}"))
    _same(e, back)
    assert back.truncation_remainder == e.truncation_remainder


@settings(max_examples=max(3, settings.default.max_examples // 5))
@given(icsmdps(agents=(1, 2), interface=(1, 3), private=(1, 2)))
def test_round_trip_of_random_exports(model):
    import tempfile
    from pathlib import Path
    e = export_epoch(model)
    with tempfile.TemporaryDirectory() as d:
        for suffix in (".json", ".npz"):
            _same(e, load_epoch_model(save_epoch_model(e, Path(d) / f"e{suffix}")))
    # the JSON document read back without the writer's layout: the same model
    _same(e, epoch_model_from_dict(json.loads(json.dumps(epoch_model_to_dict(e)))))


def _mutate(path_fn):
    doc = copy.deepcopy(HAND)
    path_fn(doc)
    return doc


#: Hostile documents: (change, fragment of the message).
HOSTILE = [
    (lambda d: d.update(format="icsmdp/1"), "`format` must be 'icsmdp-epoch/1'"),
    (lambda d: d.update(extra=1), "unknown key `extra`"),
    (lambda d: d.pop("reward"), "missing key `reward`"),
    (lambda d: d.update(agents="ab"), "`agents` must be a non-empty list of strings"),
    (lambda d: d["labels"].__setitem__(1, 7), "`labels` entry 1 must be a string, got the integer 7"),
    (lambda d: d["agents"].__setitem__(1, "a"), "`agents` entry 1 repeats 'a'"),
    # wrong types
    (lambda d: d["transitions"][2].__setitem__(4, "1"),
     "`transitions` entry 2: `tau` must be an integer, got the string '1'"),
    (lambda d: d["transitions"][0].__setitem__(0, True),
     "`transitions` entry 0: `k` must be an integer, got the boolean True"),
    (lambda d: d["transitions"][0].__setitem__(5, "0.6"),
     "`transitions` entry 0: `p` must be a number, got the string '0.6'"),
    (lambda d: d["transitions"][0].__setitem__(4, 1.0),
     "`transitions` entry 0: `tau` must be an integer, got the number 1.0"),
    (lambda d: d["rho0"][0].__setitem__(2, None), "`rho0` entry 0: `p` must be a number, got null"),
    # bad nesting
    (lambda d: d["transitions"].__setitem__(3, [1, 1, 0, 0, 1]),
     "`transitions` entry 3 must be a list [k, i, c', k', tau, p] of 6 entries, got a list of 5 entries"),
    (lambda d: d["transitions"].__setitem__(3, {"k": 1}), "`transitions` entry 3 must be a list"),
    (lambda d: d.update(transitions={"k": 1}), "`transitions` must be a list of [k, i, c', k', tau, p] entries"),
    (lambda d: d["admissible"][0].__setitem__(2, 1), "`successors` must be a list of successor indices"),
    (lambda d: d["admissible"][0].__setitem__(2, [[1]]), "`admissible` entry 0: successor a list of 1 entries must be an integer"),
    # probabilities
    (lambda d: d["transitions"][0].__setitem__(5, 0.5),
     "state 0 (label 0 ('x'), agent 0 (`a`)), successor 1 (`b`) has rows summing to 0.9"),
    (lambda d: d["transitions"][0].__setitem__(5, -0.6), "`prob` must be a probability > 0"),
    (lambda d: d["rho0"].__setitem__(0, [0, 0, 0.5]), "`rho0` must sum to 1"),
    # references
    (lambda d: d["transitions"][0].__setitem__(3, 0),
     "`transitions` entry 0 (state 0 (label 0 ('x'), agent 0 (`a`)), successor 1 (`b`)): the next epoch "
     "state (label 0 ('x'), agent 1 (`b`)) is not an epoch state"),
    (lambda d: d["transitions"][0].__setitem__(1, 5), "`transitions` entry 0: unknown agent 5 (agents are 0..1)"),
    (lambda d: d["transitions"][0].__setitem__(2, 3), "`transitions` entry 0: unknown successor 3 (successors are 0..2, STOP = 2)"),
    (lambda d: d["transitions"][0].__setitem__(0, 2), "`transitions` entry 0: unknown label 2 (labels are 0..1)"),
    (lambda d: d["transitions"][0].__setitem__(3, 9), "`transitions` entry 0: unknown next label 9"),
    (lambda d: d["transitions"].__setitem__(6, [1, 1, 2, None, 2, 0.3]),
     "`transitions` entry 6 (state 1 (label 1 ('y'), agent 1 (`b`)), successor 2 (`STOP`)) repeats entry 5"),
    (lambda d: d["transitions"][3].__setitem__(0, 0),
     "`transitions` entry 3: (label 0 ('x'), agent 1 (`b`)) is not an epoch state"),
    (lambda d: d["transitions"][0].__setitem__(3, None), "`k'` is null but the successor 1 (`b`) is not STOP"),
    (lambda d: d["transitions"][2].__setitem__(3, 1), "a STOP row must have next label -1 (null), got 1"),
    (lambda d: d["transitions"].append([1, 0, 0, 0, 1, 1.0]), "the successor is not admissible at this state"),
    (lambda d: d["transitions"].append(d["transitions"][0]), "repeats entry 0"),
    (lambda d: d["transitions"][2].__setitem__(4, 0), "`tau` must be an integer >= 1, got 0"),
    # admissible
    (lambda d: d["admissible"][2].__setitem__(2, []), "`admissible` entry 2 (label 1 ('y'), agent 0 (`a`)) lists no successor"),
    (lambda d: d["admissible"][2].__setitem__(2, [2, 2]), "`admissible` entry 2 (label 1 ('y'), agent 0 (`a`)) lists successor 2 twice"),
    (lambda d: d["admissible"].append([1, 0, [2]]), "`admissible` entries 2 and 3 repeat the state"),
    (lambda d: d["admissible"][0].__setitem__(2, [1, 2, 3]), "unknown successor 3"),
    (lambda d: d["admissible"][2].__setitem__(1, 2), "`admissible` entry 2: unknown agent 2"),
    # rho0 and reward tables
    (lambda d: d["rho0"].append([0, 1, 0.0]), "`rho0` entry 1: (label 0 ('x'), agent 1 (`b`)) is not an epoch state"),
    (lambda d: d["rho0"].append([0, 0, 0.0]), "`rho0` entry 1 repeats entry 0"),
    (lambda d: d["reward"].pop(4), "`reward` has no entry for (label 1 ('y'), agent 0 (`a`)), successor 2"),
    (lambda d: d["reward"].append([1, 0, 0, 1.0]), "`reward` entry 5 (label 1 ('y'), agent 0 (`a`)): successor 0 is not admissible"),
    (lambda d: d["reward"].append([1, 0, 2, 1.0]), "`reward` entry 5 repeats entry 4"),
    # optional keys
    (lambda d: d.update(observation=[[0, 1]]), "`observation` must hold one list of 2 observations per agent"),
    (lambda d: d.update(observation=[[0, 1], [0, -1]]), "`observation` of agent 1 (`b`), label 1 ('y'): must be an integer >= 0"),
    (lambda d: d.update(reward_components=["t"]), "`reward_components` and `components` go together"),
    (lambda d: d.update(reward_components=["t"], components=[[0, 0, 1, 1.0]]), "`components` has no entry"),
    (lambda d: d.update(counts=[1]), "`counts` must be a JSON object"),
]


@pytest.mark.parametrize("change,fragment", HOSTILE, ids=[f[:50] for _, f in HOSTILE])
def test_hostile_documents_are_refused_with_a_located_line(change, fragment, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(_mutate(change)))
    with pytest.raises(InvalidEpochModelError) as exc:
        load_epoch_model(path)
    msg = str(exc.value)
    assert fragment in msg
    assert msg.startswith(f"{path}: ") and "\n" not in msg


@pytest.mark.parametrize("text,fragment", [
    ('{"format": "icsmdp-epoch/1", "format": "icsmdp-epoch/1"}', "duplicate key `format`"),
    (json.dumps(HAND).replace("0.6]", "NaN]"), "non-finite number `NaN`"),
    (json.dumps(HAND).replace("0.6]", "1e999]"), "beyond the double-precision range"),
    ("[" * 40 + "]" * 40, "nested deeper than"),
    ("{", "invalid JSON at line 1"),
    ("[]", "must be a JSON object at top level"),
])
def test_hostile_text(text, fragment, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(InvalidEpochModelError) as exc:
        load_epoch_model(path)
    assert fragment in str(exc.value) and str(exc.value).startswith(str(path))


def _npz(tmp_path, **change):
    m = epoch_model_from_dict(HAND)
    path = save_epoch_model(m, tmp_path / "m.npz")
    arrays = dict(np.load(path))
    for k, v in change.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    out = tmp_path / "bad.npz"
    np.savez(out, **arrays)
    return out


@pytest.mark.parametrize("change,fragment", [
    (dict(extra=np.zeros(1)), "unknown array `extra`"),
    (dict(trans_tau=None), "missing array `trans_tau`"),
    (dict(format=np.array("icsmdp/1")), "`format` must be 'icsmdp-epoch/1'"),
    (dict(states=np.zeros((3, 2))), "`states` must be an array of integers, got dtype float64"),
    (dict(trans_tau=np.array([1, 2, 1, 1, 3, 2, 1, 0])), "`tau` must be an integer >= 1"),
    (dict(trans_prob=np.full(8, np.nan)), "`prob` must be a probability > 0, got nan"),
    (dict(gamma=np.array([0.9])), "array `gamma` must be a number (a 0-d array)"),
    (dict(agents=np.array([1, 2])), "array `agents` must be a 1-d array of strings"),
    (dict(counts=np.array("{bad")), "array `counts` is not JSON text"),
    (dict(counts=np.array('{"a": NaN}')), "`counts` holds NaN"),
])
def test_hostile_npz(change, fragment, tmp_path):
    path = _npz(tmp_path, **change)
    with pytest.raises(InvalidEpochModelError) as exc:
        load_epoch_model(path)
    assert fragment in str(exc.value) and str(exc.value).startswith(str(path))


def test_npz_with_a_pickle_is_refused(tmp_path):
    path = tmp_path / "p.npz"
    np.savez(path, format=np.array([object()], dtype=object))
    with pytest.raises(InvalidEpochModelError, match="holds Python objects"):
        load_epoch_model(path)


def test_missing_file_and_failed_write_leave_nothing(tmp_path):
    with pytest.raises(InvalidEpochModelError, match="no such epoch-model file"):
        load_epoch_model(tmp_path / "none.json")
    m = epoch_model_from_dict(dict(HAND, counts={"n": 1}))
    bad = EpochModel(name="x", gamma=0.9, agents=["a"], labels=["k"], states=[[0, 0]],
                     admissible=[[True, True]], rho0=[1.0], reward=[[0.0, 0.0]],
                     transitions={"state": [0, 0], "successor": [0, 1], "next_label": [0, -1],
                                  "tau": [1, 1], "prob": [1.0, 1.0]},
                     counts={"bad": {1, 2}})
    for suffix in (".json", ".npz"):
        with pytest.raises(InvalidEpochModelError, match="`counts` must be JSON data"):
            save_epoch_model(bad, tmp_path / f"b{suffix}")
    assert list(tmp_path.iterdir()) == []
    save_epoch_model(m, tmp_path / "ok.json")
    assert [p.name for p in tmp_path.iterdir()] == ["ok.json"]


# ------------------------------------------------------------- label maps
def _write(tmp_path, doc):
    path = tmp_path / "map.json"
    path.write_text(json.dumps(doc))
    return path


def test_by_label_map(tmp_path):
    m = epoch_model_from_dict(HAND)
    w = load_label_maps(_write(tmp_path, {"format": "icsmdp-obs/1",
                                          "by_label": [{"x": 4, "y": 2}, {"y": 0, "x": 0}]}), m)
    assert [o.tolist() for o in w.observation] == [[4, 2], [0, 0]]
    # agent a is active at x (4) and y (2): ranks 1 and 0
    assert w.state_observation[w.state_index("x", "a")] == 1
    assert w.state_observation[w.state_index("y", "a")] == 0
    assert w.num_observations == (2, 1)


def test_fields_rule_on_an_export_equals_the_primitive_map(tmp_path):
    """tiny-handoff labels are [x, m, l_0, l_1]; observing position 1 (m) for both agents is the
    primitive map phi_i(m, l) = m, whose export is computed through the primitive instance."""
    model = load_example("tiny-handoff")
    e = export_epoch(model)
    w = load_label_maps(_write(tmp_path, {"format": "icsmdp-obs/1", "fields": [[1], [1]]}), e)
    ref = export_epoch(model.with_observation([[[0], [1], [2]], [[0], [1], [2]]]))
    np.testing.assert_array_equal(w.state_observation, ref.state_observation)
    assert w.num_observations == (3, 3)
    nothing = load_label_maps(_write(tmp_path, {"format": "icsmdp-obs/1", "fields": [[], [0]]}), e)
    assert nothing.num_observations == (1, 1)


def test_fields_rule_on_object_states(tmp_path):
    labels = ['{"bits":[0,1],"stage":"plan"}', '{"bits":[1,1],"stage":"plan"}', '{"stage":"done"}']
    m = EpochModel(name="o", gamma=0.5, agents=["a", "b"], labels=labels,
                   states=[[0, 0], [1, 0], [2, 1]], admissible=[[False, False, True]] * 3,
                   rho0=[1.0, 0.0, 0.0], reward=np.zeros((3, 3)),
                   transitions={"state": [0, 1, 2], "successor": [2, 2, 2], "next_label": [-1, -1, -1],
                                "tau": [1, 1, 1], "prob": [1.0, 1.0, 1.0]})
    w = load_label_maps(_write(tmp_path, {"format": "icsmdp-obs/1",
                                          "fields": [["stage"], ["stage"]]}), m)
    assert w.num_observations == (1, 1)
    w = load_label_maps(_write(tmp_path, {"format": "icsmdp-obs/1", "fields": [["bits"], ["stage"]]}), m)
    assert w.num_observations == (2, 1)             # [0,1] and [1,1]; agent b is never active at 0, 1
    with pytest.raises(InvalidObservationMapError, match=r"the rule \['bits'\] does not apply to label "
                                                         r"'\{\"stage\":\"done\"\}' \(an object state\)"):
        load_label_maps(_write(tmp_path, {"format": "icsmdp-obs/1", "fields": [["stage"], ["bits"]]}), m)


@pytest.mark.parametrize("doc,fragment", [
    ({"format": "icsmdp-obs/1", "maps": [[[0]]]}, "the `maps` form is for primitive instances"),
    ({"format": "icsmdp-obs/2", "by_label": []}, "`format` must be 'icsmdp-obs/1'"),
    ({"format": "icsmdp-obs/1"}, "exactly one of `by_label` and `fields`"),
    ({"format": "icsmdp-obs/1", "by_label": [{"x": 0, "y": 0}]}, "one object per agent (2 agents)"),
    ({"format": "icsmdp-obs/1", "by_label": [{"x": 0}, {"x": 0, "y": 0}]},
     "`by_label` of agent 0 (`a`): label 'y' is missing"),
    ({"format": "icsmdp-obs/1", "by_label": [{"x": True, "y": 0}, {"x": 0, "y": 0}]},
     "label 'x' maps to the boolean True"),
    ({"format": "icsmdp-obs/1", "by_label": [{"x": -1, "y": 0}, {"x": 0, "y": 0}]},
     "label 'x' maps to the integer -1"),
    ({"format": "icsmdp-obs/1", "fields": [[0], [0]]}, "does not apply to label 'x' (a scalar state)"),
    ({"format": "icsmdp-obs/1", "fields": [[1.5], [0]]}, "the number 1.5 is neither a position"),
])
def test_bad_label_maps(doc, fragment, tmp_path):
    m = epoch_model_from_dict(HAND)
    path = _write(tmp_path, doc)
    with pytest.raises(InvalidObservationMapError) as exc:
        load_label_maps(path, m)
    assert fragment in str(exc.value) and str(exc.value).startswith(str(path))


def test_fields_position_out_of_range(tmp_path):
    e = export_epoch(load_example("tiny-handoff"))
    with pytest.raises(InvalidObservationMapError, match=r"the rule \[4\] does not apply to label "
                                                         r"'\[0,0,0,0\]' \(a list state\)"):
        load_label_maps(_write(tmp_path, {"format": "icsmdp-obs/1", "fields": [[4], [1]]}), e)


def test_label_map_may_name_labels_the_model_lacks(tmp_path):
    """A map written for a whole trace also applies to a fit of a subsample (extra labels unused)."""
    m = epoch_model_from_dict(HAND)
    doc = {"format": "icsmdp-obs/1", "by_label": [{"x": 0, "y": 1, "z": 7}, {"x": 0, "y": 0}]}
    out = load_label_maps(_write(tmp_path, doc), m)
    assert [o.tolist() for o in out.observation] == [[0, 1], [0, 0]]
