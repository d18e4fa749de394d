"""Conformance checks shipped as library code (STYLE 12).

:func:`break_document` turns a valid ``icsmdp/1`` document into an invalid one
in a named way, together with the pattern the rejection message must match
(it names the key, the agent and the index). The Hypothesis strategies
(``icsmdp_theory/testing/strategies.py``) and ``icsmdp verify`` both use it, so the
rejection paths are exercised on every generated instance.
"""
from __future__ import annotations

import copy
import re
from typing import Any

import numpy as np

from icsmdp_theory.errors import InvalidArgumentError, InvalidInstanceError
from icsmdp_theory.io import instance_from_dict

__all__ = ["BREAKAGES", "break_document", "check_rejection"]

#: Kind of deliberate breakage -> regex the rejection message must match.
BREAKAGES = {
    "gamma": r"`gamma` must lie in \(0, 1\)",
    "unknown_key": r"unknown key `bogus`",
    "kernel_row": r"rows of `kernel` must sum to 1: agent {i} \(`[^`]+`\), action 0, row y=0",
    "negative": r"`internal_policy` of agent {i} \(`[^`]+`\) must be non-negative: entry \[0, 0, 0\]",
    "nonfinite": r"`reward` of agent {i} \(`[^`]+`\) must be finite: entry \[0, 0, 0, 0\]",
    "beta_range": r"`end_probability` of agent {i} \(`[^`]+`\) must lie in \[0, 1\]: entry \[0, 0, 0\]",
    "unused_label": r"`observation` of agent {i} \(`[^`]+`\): labels must be 0\.\.\d+ with every label used",
    "no_successor": r"`successors` of agent {i} \(`[^`]+`\) must admit at least one successor",
    "shape": r"`reward` of agent {i} \(`[^`]+`\) must have shape",
    "trap": r"agent {i} \(`[^`]+`\): the invocation never ends from local state y=0 \(x=0, m=0, l=0\)",
}


def break_document(doc: dict, kind: str, agent: int = 0, *, gamma: float = 1.5) -> tuple[dict, str]:
    """A broken deep copy of ``doc`` and the pattern its rejection must match.

    Parameters
    ----------
    doc : dict
        A valid ``icsmdp/1`` document.
    kind : str
        One of :data:`BREAKAGES`.
    agent : int
        The agent whose arrays are broken (for agent-level kinds).
    gamma : float
        The out-of-range discount used by kind ``"gamma"``.
    """
    if kind not in BREAKAGES:
        raise InvalidArgumentError(f"`kind` must be one of {', '.join(BREAKAGES)}, got {kind!r}.")
    doc = copy.deepcopy(doc)
    a = doc["agents"][agent]
    if kind == "gamma":
        doc["gamma"] = gamma
    elif kind == "unknown_key":
        doc["bogus"] = 1
    elif kind == "kernel_row":
        k = a["kernel"]
        if isinstance(k, dict):  # sparse form: scale the first entry of row (a=0, y=0)
            for e in k["entries"]:
                if e[0] == 0 and e[1] == 0:
                    e[3] += 0.25
                    break
        else:
            k[0][0][0] += 0.25
    elif kind == "negative":
        a["internal_policy"][0][0][0] = -0.5
    elif kind == "nonfinite":
        a["reward"][0][0][0][0] = float("nan")
    elif kind == "beta_range":
        a["end_probability"][0][0][0] = 1.5
    elif kind == "unused_label":
        obs = np.asarray(a["observation"])  # relabel the top label: label max is left unused
        a["observation"] = np.where(obs == obs.max(), obs.max() + 1, obs).tolist()
    elif kind == "no_successor":
        a["successors"] = [False] * len(a["successors"])
    elif kind == "shape":
        a["reward"] = a["reward"] + a["reward"]
    elif kind == "trap":
        a["end_probability"] = np.zeros_like(np.asarray(a["end_probability"])).tolist()
    return doc, BREAKAGES[kind].replace("{i}", str(agent))


def check_rejection(doc: dict, kind: str, agent: int = 0) -> tuple[bool, str]:
    """Break ``doc`` and check the model rejects it with a matching message.

    Returns ``(ok, message)``: ``ok`` is False when the broken document was
    accepted or rejected with a message that does not match.
    """
    broken, pattern = break_document(doc, kind, agent)
    try:
        instance_from_dict(broken)
    except InvalidInstanceError as exc:
        return re.search(pattern, str(exc)) is not None, str(exc)
    return False, f"{kind}: the broken document was accepted"
