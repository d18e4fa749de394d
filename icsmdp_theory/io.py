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
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from icsmdp_theory.errors import InvalidInstanceError, InvalidObservationMapError
from icsmdp_theory.model import AGENT_KEYS, ICSMDP

__all__ = ["FORMAT", "OBS_FORMAT", "TOP_KEYS", "atomic_write", "instance_from_dict", "instance_to_dict",
           "load_instance", "save_instance", "load_observation_maps",
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
        raise InvalidInstanceError(f"`format` must be {FORMAT!r}, got {d['format']!r}.")
    kwargs = {k: d[k] for k in TOP_KEYS if k != "format"}
    return ICSMDP(**kwargs)


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
        agents.append({
            "name": a.name,
            "n_private": a.num_private,
            "n_actions": a.num_actions,
            "rho_private": a.rho_private.tolist(),
            "internal_policy": a.internal_policy.tolist(),
            "kernel": _kernel_to_json(a),
            "reward": a.reward.tolist(),
            "end_probability": a.end_probability.tolist(),
            "observation": a.observation.tolist(),
            "successors": a.successors.tolist(),
        })
    return {"format": FORMAT, "name": model.name, "gamma": model.gamma,
            "horizon": model.horizon, "n_latent": model.num_latent,
            "n_interface": model.num_interface,
            "rho_latent_interface": model.rho_latent_interface.tolist(),
            "rho_agent": model.rho_agent.tolist(), "agents": agents}


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
        out[p + "internal_policy"] = a.internal_policy
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


def _instance_from_npz(path: Path) -> ICSMDP:
    unreadable = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)
    try:
        z = np.load(path, allow_pickle=False)
    except unreadable as exc:
        raise InvalidInstanceError(f"{path}: not a readable .npz instance ({exc}).") from None
    with z:
        def get(key):
            if key not in z.files:
                raise InvalidInstanceError(f"{path}: missing array `{key}` in the .npz instance.")
            try:
                return z[key]
            except unreadable as exc:
                raise InvalidInstanceError(f"{path}: array `{key}` is unreadable ({exc}).") from None
        if str(get("format")) != FORMAT:
            raise InvalidInstanceError(f"`format` must be {FORMAT!r}, got {str(get('format'))!r}.")
        n = int(get("n_agents"))
        agents = []
        for i in range(n):
            p = f"agent{i}."
            nA = get(p + "internal_policy").shape[-1]
            nY = int(get(p + "kernel_nY"))
            a_, y_, y2_, pr = (get(p + "kernel_a"), get(p + "kernel_y"),
                               get(p + "kernel_y2"), get(p + "kernel_p"))
            if bool(get(p + "kernel_is_sparse")):
                kernel = {"shape": [nA, nY, nY],
                          "entries": np.column_stack([a_, y_, y2_, pr]).tolist()}
            else:
                dense = np.zeros((nA, nY, nY))
                dense[a_, y_, y2_] = pr
                kernel = dense
            agents.append({"name": str(get(p + "name")),
                           "n_private": int(get(p + "rho_private").shape[0]),
                           "n_actions": int(nA),
                           "rho_private": get(p + "rho_private"),
                           "internal_policy": get(p + "internal_policy"),
                           "kernel": kernel, "reward": get(p + "reward"),
                           "end_probability": get(p + "end_probability"),
                           "observation": get(p + "observation"),
                           "successors": get(p + "successors")})
        return ICSMDP(name=str(get("name")), gamma=float(get("gamma")),
                      horizon=int(get("horizon")), n_latent=int(get("n_latent")),
                      n_interface=int(get("n_interface")),
                      rho_latent_interface=get("rho_latent_interface"),
                      rho_agent=get("rho_agent"), agents=agents)


def load_instance(path: str | os.PathLike) -> ICSMDP:
    """Read an instance from ``.json`` or ``.npz`` (nothing is executed).

    Raises
    ------
    InvalidInstanceError
        Unreadable file, invalid JSON, or an invalid instance (located message).
    """
    path = Path(path)
    if not path.is_file():
        raise InvalidInstanceError(f"{path}: no such instance file.")
    if path.suffix == ".npz":
        return _instance_from_npz(path)
    doc = _read_json(path, InvalidInstanceError)
    try:
        return instance_from_dict(doc)
    except InvalidInstanceError as exc:
        raise type(exc)(f"{path}: {exc}") from None


class _NonFinite(Exception):
    pass


def _reject_constant(name: str):
    raise _NonFinite(name)


#: A JSON string literal, or a bare non-finite constant outside strings.
_CONSTANT = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)')


def _read_json(path: Path, error: type) -> Any:
    """Parse a UTF-8 JSON file strictly; failures raise ``error`` naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
        return json.loads(text, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}).") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}.") from None
    except _NonFinite as exc:
        where = ""
        for hit in _CONSTANT.finditer(text):
            if hit.group(1):
                line = text.count("\n", 0, hit.start()) + 1
                col = hit.start() - (text.rfind("\n", 0, hit.start()) + 1) + 1
                where = f" at line {line}, column {col}"
                break
        raise error(f"{path}: non-finite number `{exc.args[0]}`{where}; every number must be "
                    f"finite.") from None


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
    doc = _read_json(path, InvalidObservationMapError)
    if not isinstance(doc, dict):
        raise InvalidObservationMapError(f"{path}: the observation-map file must be a JSON object.")
    unknown = [k for k in doc if k not in ("format", "maps")]
    if unknown:
        raise InvalidObservationMapError(f"unknown key `{unknown[0]}` in the observation-map file (allowed: format, maps).")
    if doc.get("format") != OBS_FORMAT:
        raise InvalidObservationMapError(f"`format` must be {OBS_FORMAT!r}, got {doc.get('format')!r}.")
    if "maps" not in doc:
        raise InvalidObservationMapError("missing key `maps` in the observation-map file.")
    return model.with_observation(doc["maps"])
