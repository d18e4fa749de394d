"""Instance and observation-map files (SPEC section 9, the stable contract).

JSON (``icsmdp/1``) is the readable form; a compressed ``.npz`` holds large
instances (read with ``allow_pickle=False``: nothing is executed). Both
round-trip exactly: floats are written with ``repr`` precision (JSON) or as
float64 arrays (npz), and a kernel is written back in the form it was given.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from icsmdp_theory.documents import describe, read_json, read_npz
from icsmdp_theory.errors import InvalidInstanceError, InvalidObservationMapError
from icsmdp_theory.model import ICSMDP, KernelEntries

__all__ = ["FORMAT", "OBS_FORMAT", "TOP_KEYS", "NPZ_SCALARS", "NPZ_ARRAYS", "NPZ_AGENT_SCALARS",
           "NPZ_AGENT_ARRAYS", "NPZ_AGENT_OPTIONAL", "atomic_write", "instance_from_dict", "instance_to_dict",
           "load_instance", "save_instance", "load_observation_maps", "observation_maps_from_dict",
           "observation_maps_to_dict", "save_observation_maps"]

FORMAT = "icsmdp/1"
OBS_FORMAT = "icsmdp-obs/1"
TOP_KEYS = ("format", "name", "gamma", "horizon", "n_latent", "n_interface",
            "rho_latent_interface", "rho_agent", "agents")


def instance_from_dict(d: Any) -> ICSMDP:
    """Validate a parsed ``icsmdp/1`` document and build the model.

    Raises
    ------
    InvalidInstanceError
        Unknown or missing keys, wrong format tag, and everything the model checks.
    """
    if not isinstance(d, dict):
        raise InvalidInstanceError("the instance must be a JSON object at top level.")
    unknown = [k for k in d if k not in TOP_KEYS]
    if unknown:
        raise InvalidInstanceError(f"unknown key `{unknown[0]}` (allowed: {', '.join(TOP_KEYS)}).")
    missing = [k for k in TOP_KEYS if k not in d]
    if missing:
        raise InvalidInstanceError(f"missing key `{missing[0]}`.")
    if d["format"] != FORMAT:
        raise InvalidInstanceError(f"`format` must be {FORMAT!r}, got {_short(d['format'])}.")
    kwargs = {k: d[k] for k in TOP_KEYS if k != "format"}
    return ICSMDP(**kwargs)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else describe(value)


def _kernel_to_json(agent) -> Any:
    if agent.kernel_is_sparse:
        entries = []
        for a, k in enumerate(agent.kernel):
            c = sp.coo_array(k)
            order = np.lexsort((c.col, c.row))
            entries.extend([a, int(c.row[j]), int(c.col[j]), float(c.data[j])] for j in order)
        return {"shape": [len(agent.kernel), *agent.kernel[0].shape], "entries": entries}
    return [k.toarray().tolist() for k in agent.kernel]


def instance_to_dict(model: ICSMDP) -> dict:
    """The ``icsmdp/1`` document of ``model`` (inverse of :func:`instance_from_dict`)."""
    agents = []
    for a in model.agents:
        doc = {
            "name": a.name,
            "n_private": a.num_private,
            "n_actions": a.num_actions,
            "rho_private": a.rho_private.tolist(),
            "internal_policy": _policy_as_given(a).tolist(),
            "kernel": _kernel_to_json(a),
            "reward": a.reward.tolist(),
            "end_probability": a.end_probability.tolist(),
            "observation": a.observation.tolist(),
            "successors": a.successors.tolist(),
        }
        if a.modes is not None:  # written only when given: one-mode files are unchanged
            doc = {**{k: doc[k] for k in ("name", "n_private", "n_actions")},
                   "modes": list(a.modes), **doc}
        agents.append(doc)
    return {"format": FORMAT, "name": model.name, "gamma": model.gamma,
            "horizon": model.horizon, "n_latent": model.num_latent,
            "n_interface": model.num_interface,
            "rho_latent_interface": model.rho_latent_interface.tolist(),
            "rho_agent": model.rho_agent.tolist(), "agents": agents}


def _policy_as_given(agent) -> np.ndarray:
    """``internal_policy`` as the file holds it: ``[K, nM, nL, nA]`` with ``modes``, else ``[nM, nL, nA]``."""
    return agent.mode_policies if agent.modes is not None else agent.mode_policies[0]


def atomic_write(path: Path, write) -> None:
    """Write ``path`` atomically: ``write(tmp)`` fills a temporary file in the same directory,
    which then replaces ``path`` (nothing is left behind on failure)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=".tmp-",
                               suffix=path.suffix)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _npz_arrays(model: ICSMDP) -> dict:
    out = {"format": np.array(FORMAT), "name": np.array(model.name),
           "gamma": np.array(model.gamma), "horizon": np.array(model.horizon),
           "n_latent": np.array(model.num_latent), "n_interface": np.array(model.num_interface),
           "rho_latent_interface": model.rho_latent_interface, "rho_agent": model.rho_agent,
           "n_agents": np.array(model.num_agents)}
    for i, a in enumerate(model.agents):
        p = f"agent{i}."
        out[p + "name"] = np.array(a.name)
        out[p + "rho_private"] = a.rho_private
        out[p + "internal_policy"] = _policy_as_given(a)
        if a.modes is not None:
            out[p + "modes"] = np.array(a.modes, dtype=str)
        out[p + "reward"] = a.reward
        out[p + "end_probability"] = a.end_probability
        out[p + "observation"] = a.observation
        out[p + "successors"] = a.successors
        out[p + "kernel_is_sparse"] = np.array(a.kernel_is_sparse)
        coo = [sp.coo_array(k) for k in a.kernel]
        out[p + "kernel_nY"] = np.array(a.num_local_states)
        out[p + "kernel_a"] = np.concatenate([np.full(c.nnz, j) for j, c in enumerate(coo)]).astype(np.int64)
        out[p + "kernel_y"] = np.concatenate([c.row for c in coo]).astype(np.int64)
        out[p + "kernel_y2"] = np.concatenate([c.col for c in coo]).astype(np.int64)
        out[p + "kernel_p"] = np.concatenate([c.data for c in coo]).astype(np.float64)
    return out


#: Scalars of an ``.npz`` instance (0-d arrays) and its per-agent arrays ``agent<i>.<key>``.
NPZ_SCALARS = ("format", "name", "gamma", "horizon", "n_latent", "n_interface", "n_agents")
NPZ_ARRAYS = ("rho_latent_interface", "rho_agent")
NPZ_AGENT_SCALARS = ("name", "kernel_is_sparse", "kernel_nY")
NPZ_AGENT_ARRAYS = ("rho_private", "internal_policy", "reward", "end_probability", "observation",
                    "successors", "kernel_a", "kernel_y", "kernel_y2", "kernel_p")
#: Optional per-agent arrays: ``modes`` (a 1-d string array, issue 15).
NPZ_AGENT_OPTIONAL = ("modes",)
_NPZ_AGENT_KEY = re.compile(r"agent(0|[1-9][0-9]*)\.(.+)")


def _npz_document(arrays: dict, fail) -> dict:
    """The ``.npz`` arrays as the instance document that :func:`instance_from_dict` validates.

    Only the container is checked here (which arrays exist, scalars are 0-d);
    every value goes through the model's validator, as a JSON document does.
    Scalars become Python values; arrays stay numpy arrays (their dtype is
    checked like the entries of JSON lists); a 0-d array where an array
    belongs becomes its value (refused by the validator like a JSON number);
    the kernel is the columnar sparse form :class:`~icsmdp_theory.model.KernelEntries`.
    """
    def scalar(key):
        if key not in arrays:
            fail(f"missing array `{key}` in the .npz instance")
        arr = arrays[key]
        if arr.ndim != 0:
            fail(f"array `{key}` must be a scalar (a 0-d array), got shape {list(arr.shape)}")
        return arr.item()

    def array(key):
        if key not in arrays:
            fail(f"missing array `{key}` in the .npz instance")
        arr = arrays[key]
        return arr.item() if arr.ndim == 0 else arr

    if "format" in arrays and scalar("format") != FORMAT:
        fail(f"`format` must be {FORMAT!r}, got {_short(scalar('format'))}")
    n = scalar("n_agents")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        fail(f"array `n_agents` must be an integer >= 1, got {_short(n)}")
    for key in arrays:
        hit = _NPZ_AGENT_KEY.fullmatch(key)
        known = (key in NPZ_SCALARS or key in NPZ_ARRAYS) if hit is None else \
            (int(hit[1]) < n and hit[2] in NPZ_AGENT_SCALARS + NPZ_AGENT_ARRAYS + NPZ_AGENT_OPTIONAL)
        if not known:
            fail(f"unknown array `{key}` in the .npz instance (allowed: "
                 f"{', '.join(NPZ_SCALARS + NPZ_ARRAYS)}, and agent<i>.<key> for i < n_agents = {n} "
                 f"with key in {', '.join(NPZ_AGENT_SCALARS + NPZ_AGENT_ARRAYS + NPZ_AGENT_OPTIONAL)})")
    doc = {k: scalar(k) for k in ("format", "name", "gamma", "horizon", "n_latent", "n_interface")}
    doc.update({k: array(k) for k in NPZ_ARRAYS})
    agents = []
    for i in range(n):
        p = f"agent{i}."
        rho_l, pol = array(p + "rho_private"), array(p + "internal_policy")
        sparse = scalar(p + "kernel_is_sparse")
        if not isinstance(sparse, bool):
            fail(f"array `{p}kernel_is_sparse` must be a boolean, got {_short(sparse)}")
        nA = pol.shape[-1] if isinstance(pol, np.ndarray) else 1
        nY = scalar(p + "kernel_nY")
        kernel = KernelEntries(shape=[nA, nY, nY], a=array(p + "kernel_a"), y=array(p + "kernel_y"),
                               y2=array(p + "kernel_y2"), p=array(p + "kernel_p"), sparse=sparse)
        agent = {"name": scalar(p + "name"),
                 "n_private": rho_l.shape[0] if isinstance(rho_l, np.ndarray) else 1,
                 "n_actions": nA, "rho_private": rho_l, "internal_policy": pol,
                 "kernel": kernel, "reward": array(p + "reward"),
                 "end_probability": array(p + "end_probability"),
                 "observation": array(p + "observation"),
                 "successors": array(p + "successors")}
        if p + "modes" in arrays:
            agent["modes"] = array(p + "modes")
        agents.append(agent)
    doc["agents"] = agents
    return doc


def _instance_from_npz(path: Path) -> ICSMDP:
    def fail(msg):
        raise InvalidInstanceError(f"{path}: {msg}.")

    doc = _npz_document(read_npz(path, InvalidInstanceError), fail)
    try:
        return instance_from_dict(doc)
    except InvalidInstanceError as exc:
        raise InvalidInstanceError(f"{path}: {exc}") from None


def load_instance(path: str | os.PathLike) -> ICSMDP:
    """Read an instance from ``.json`` or ``.npz`` (nothing is executed).

    Both forms go through one validator (:class:`~icsmdp_theory.model.ICSMDP`)
    with the same messages; the file readers are strict (see
    :mod:`icsmdp_theory.documents`: depth, repeated keys, number range, sizes
    checked before allocation).

    Raises
    ------
    InvalidInstanceError
        Unreadable file, invalid JSON or ``.npz``, or an invalid instance; the
        one-line message starts with the file name.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInstanceError(f"{path}: no such instance file.")
    if path.suffix == ".npz":
        return _instance_from_npz(path)
    doc = read_json(path, InvalidInstanceError)
    try:
        return instance_from_dict(doc)
    except InvalidInstanceError as exc:
        raise type(exc)(f"{path}: {exc}") from None


def save_instance(model: ICSMDP, path: str | os.PathLike) -> Path:
    """Write ``model`` as ``.json`` or compressed ``.npz`` (by suffix), atomically."""
    path = Path(path)
    if path.suffix == ".npz":
        arrays = _npz_arrays(model)
        atomic_write(path, lambda tmp: np.savez_compressed(tmp, **arrays))
    else:
        text = json.dumps(instance_to_dict(model), indent=1, allow_nan=False)
        atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
    return path


def observation_maps_to_dict(maps) -> dict:
    """The ``icsmdp-obs/1`` document for a list of per-agent ``[nM][nL_i]`` maps."""
    return {"format": OBS_FORMAT, "maps": [np.asarray(m).tolist() for m in maps]}


def save_observation_maps(maps, path: str | os.PathLike) -> Path:
    """Write observation maps as ``icsmdp-obs/1`` JSON, atomically."""
    path = Path(path)
    text = json.dumps(observation_maps_to_dict(maps))
    atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n", encoding="utf-8"))
    return path


def load_observation_maps(path: str | os.PathLike, model: ICSMDP) -> ICSMDP:
    """Read an ``icsmdp-obs/1`` file and return ``model`` with those maps.

    Raises
    ------
    InvalidObservationMapError
        Unreadable file, wrong format tag or keys, wrong agent count, shape or labels.
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidObservationMapError(f"{path}: no such observation-map file.")
    doc = read_json(path, InvalidObservationMapError)
    try:
        return observation_maps_from_dict(doc, model)
    except InvalidObservationMapError as exc:
        raise InvalidObservationMapError(f"{path}: {exc}") from None


def observation_maps_from_dict(doc: Any, model: ICSMDP) -> ICSMDP:
    """Validate a parsed ``icsmdp-obs/1`` document and return ``model`` with those maps.

    Raises
    ------
    InvalidObservationMapError
        Not an object, wrong format tag or keys, wrong agent count, shape or labels.
    """
    if not isinstance(doc, dict):
        raise InvalidObservationMapError("the observation-map file must be a JSON object.")
    unknown = [k for k in doc if k not in ("format", "maps")]
    if unknown:
        raise InvalidObservationMapError(f"unknown key `{unknown[0]}` in the observation-map file (allowed: format, maps).")
    if doc.get("format") != OBS_FORMAT:
        raise InvalidObservationMapError(f"`format` must be {OBS_FORMAT!r}, got {_short(doc.get('format'))}.")
    if "maps" not in doc:
        raise InvalidObservationMapError("missing key `maps` in the observation-map file.")
    return model.with_observation(doc["maps"])
