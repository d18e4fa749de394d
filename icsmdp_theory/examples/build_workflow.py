"""Build the bundled ``workflow`` example (SPEC sections 1 and 9).

A planner / coder / tester workflow. Running this module rewrites
``workflow.json`` next to it (``python -m icsmdp_theory.examples.build_workflow``);
the JSON is committed and this script makes it reproducible. Nothing here is
random: every number is written below.

States
------
Latent ``x = 2*d + f`` (``nX = 4``), seen by nobody:

- ``d``: task difficulty, 0 = easy, 1 = hard;
- ``f``: the code currently in the artifact is defective (1) or correct (0).

Interface ``m = b0 + 2*b1 + 4*b2 + 8*b3`` (``nM = 16``), the artifact's four bits:

- ``b0`` plan_ready: a plan exists;
- ``b1`` code_written: code exists;
- ``b2`` tests_pass: the tester ran the suite on the current code and it passed;
- ``b3`` bug_found: the tester reported a failure on the current code.

Private states: the planner has none (``nL = 1``); the coder's ``l`` is
"context loaded" and the tester's ``l`` is "suite built" (``nL = 2`` each).

Agents (successor index 3 is STOP)
---------------------------------
``planner`` (0), actions ``plan``, ``decompose``; policy ``[0.6, 0.4]`` without a
plan, ``[0.2, 0.8]`` with one.

- ``plan``: ``b0 -> 1`` w.p. 0.9 (easy) / 0.6 (hard), else unchanged.
- ``decompose``: ``b0 -> 1`` w.p. 0.5; independently a hard task becomes easy
  (``d -> 0``) w.p. 0.3.
- ends w.p. 1 once ``b0 = 1``, else 0.3. Hands off to: coder.

``coder`` (1), actions ``load_context``, ``write_code``; policy ``[0.8, 0.2]``
without context, ``[0, 1]`` with it.

- ``load_context``: ``l -> 1``.
- ``write_code``: ``b1 -> 1``, ``b2, b3 -> 0``; the new code is defective
  (``f -> 1``) w.p. ``(0.1 | 0.4 for easy | hard) + 0.25*[no plan] + 0.2*[no context]``,
  halved when a bug report (``b3 = 1``) guides the fix.
- ends w.p. 0.9 when the artifact holds fresh untested code
  (``b1 = 1, b2 = b3 = 0``), else 0.1. Hands off to: coder, tester.

``tester`` (2), actions ``build_suite``, ``run_tests``; policy ``[0.7, 0.3]``
without a suite, ``[0, 1]`` with one.

- ``build_suite``: ``l -> 1``.
- ``run_tests``: without code, nothing changes. With code, defective code is
  caught (``b3 = 1, b2 = 0``) w.p. 0.95 with a suite / 0.5 without, otherwise it
  passes (``b2 = 1, b3 = 0``); correct code passes except for a 0.05 false alarm.
- ends after every step (``beta = 1``): one step per invocation.
  Hands off to: planner, coder, tester, STOP.

Rewards: every primitive step costs 0.02 (``decompose`` 0.04). STOP is
admissible for the tester only, and its single step committed to STOP ships
the artifact as the tester received it: +1 if code is written, tests pass,
no bug is reported and the code is correct (``f = 0``); -1 if the shipped code is
defective (``f = 1``); 0 otherwise (nothing shipped, or correct but unverified).

Start: empty artifact (``m = 0``), correct-by-default ``f = 0``, easy w.p. 0.6,
planner in control, no context, no suite. ``gamma = 0.95``, ``H = 60``.

Observations (4-bit style): the planner sees only ``(plan_ready, bug_found)``
(4 labels, not injective); the coder sees all four bits and its context flag
(32 labels, injective); the tester sees ``(code_written, tests_pass,
bug_found)`` and its suite flag (16 labels, not injective: ``plan_ready`` is hidden).

Sizes: 3 agents, ``nX*nM*prod(nL)*N = 4*16*4*3 = 768`` epoch states; local
states ``nY = 64, 128, 128``; kernels are stored in the sparse form.

Examples
--------
>>> model = build_workflow()
>>> model.agent_names(), model.num_epoch_states, model.num_observations
(['planner', 'coder', 'tester'], 768, (4, 32, 16))
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from icsmdp_theory.io import save_instance
from icsmdp_theory.model import ICSMDP

__all__ = ["build_workflow", "WORKFLOW_PATH"]

#: Where :func:`build_workflow`'s instance is saved.
WORKFLOW_PATH = Path(__file__).with_name("workflow.json")

N_LATENT = 4          # x = 2*d + f
N_INTERFACE = 16      # m = b0 + 2*b1 + 4*b2 + 8*b3
PLAN, CODE, PASS, BUG = 0, 1, 2, 3          # bit positions in m
PLANNER, CODER, TESTER, STOP = 0, 1, 2, 3   # successor indices
STEP_COST = -0.02


def _bits(m: int) -> list[int]:
    return [(m >> k) & 1 for k in range(4)]


def _pack(bits: list[int]) -> int:
    return sum(b << k for k, b in enumerate(bits))


def _set(m: int, **bits: int) -> int:
    b = _bits(m)
    for k, v in bits.items():
        b[{"plan": PLAN, "code": CODE, "tests": PASS, "bug": BUG}[k]] = v
    return _pack(b)


def _kernel(n_private: int, n_actions: int, step) -> list[sp.csr_array]:
    """Sparse ``kernel[a][y, y_next]`` from ``step(a, d, f, m, l) -> {(d', f', m', l'): p}``."""
    n_y = N_LATENT * N_INTERFACE * n_private
    mats = []
    for a in range(n_actions):
        rows, cols, vals = [], [], []
        for d in range(2):
            for f in range(2):
                for m in range(N_INTERFACE):
                    for l in range(n_private):
                        y = ((2 * d + f) * N_INTERFACE + m) * n_private + l
                        out: dict = {}
                        for (d2, f2, m2, l2), p in step(a, d, f, m, l):
                            key = ((2 * d2 + f2) * N_INTERFACE + m2) * n_private + l2
                            out[key] = out.get(key, 0.0) + p
                        for key, p in sorted(out.items()):
                            if p > 0:
                                rows.append(y)
                                cols.append(key)
                                vals.append(p)
        mats.append(sp.csr_array((vals, (rows, cols)), shape=(n_y, n_y)))
    return mats


def _planner_step(a, d, f, m, l):
    p_plan = (0.9, 0.6)[d] if a == 0 else 0.5
    p_easier = 0.3 if (a == 1 and d == 1) else 0.0
    for d2, pd in ((0, p_easier), (d, 1.0 - p_easier)):
        yield (d2, f, _set(m, plan=1), l), pd * p_plan
        yield (d2, f, m, l), pd * (1.0 - p_plan)


def _coder_step(a, d, f, m, l):
    if a == 0:                      # load_context
        yield (d, f, m, 1), 1.0
        return
    b = _bits(m)                    # write_code
    p_defect = (0.1, 0.4)[d] + 0.25 * (1 - b[PLAN]) + 0.2 * (1 - l)
    if b[BUG]:
        p_defect *= 0.5
    fresh = _set(m, code=1, tests=0, bug=0)
    yield (d, 1, fresh, l), p_defect
    yield (d, 0, fresh, l), 1.0 - p_defect


def _tester_step(a, d, f, m, l):
    if a == 0:                      # build_suite
        yield (d, f, m, 1), 1.0
        return
    if not _bits(m)[CODE]:          # run_tests with nothing to test
        yield (d, f, m, l), 1.0
        return
    p_fail = (0.95 if l else 0.5) if f else 0.05
    yield (d, f, _set(m, tests=0, bug=1), l), p_fail
    yield (d, f, _set(m, tests=1, bug=0), l), 1.0 - p_fail


def _ship_value(f: int, m: int) -> float:
    b = _bits(m)
    if not b[CODE]:
        return 0.0
    if f:
        return -1.0
    return 1.0 if (b[PASS] and not b[BUG]) else 0.0


def build_workflow() -> ICSMDP:
    """The planner/coder/tester workflow described in the module docstring.

    Returns
    -------
    ICSMDP
        Validated; 3 agents, ``nX = 4``, ``nM = 16``, ``nL = (1, 2, 2)``,
        768 epoch states, sparse kernels.
    """
    nX, nM, N = N_LATENT, N_INTERFACE, 3
    bits = np.array([_bits(m) for m in range(nM)])          # [m, bit]

    rho_xm = np.zeros((nX, nM))
    rho_xm[0, 0] = 0.6   # easy, no defect, empty artifact
    rho_xm[2, 0] = 0.4   # hard, no defect, empty artifact

    def reward(n_actions, costs):
        r = np.zeros((nX, nM, n_actions, N + 1))
        r += np.asarray(costs)[None, None, :, None]
        return r

    # planner ----------------------------------------------------------
    pol_p = np.where(bits[:, PLAN, None] == 1, [0.2, 0.8], [0.6, 0.4])[:, None, :]
    beta_p = np.broadcast_to(np.where(bits[:, PLAN] == 1, 1.0, 0.3)[None, :, None],
                             (nX, nM, 1))
    planner = dict(
        name="planner", n_private=1, n_actions=2, rho_private=[1.0],
        internal_policy=pol_p, kernel=_kernel(1, 2, _planner_step),
        reward=reward(2, [STEP_COST, 2 * STEP_COST]), end_probability=beta_p,
        observation=(bits[:, PLAN] + 2 * bits[:, BUG])[:, None],
        successors=[False, True, False, False])

    # coder ------------------------------------------------------------
    pol_c = np.broadcast_to(np.array([[0.8, 0.2], [0.0, 1.0]])[None], (nM, 2, 2))
    fresh = (bits[:, CODE] == 1) & (bits[:, PASS] == 0) & (bits[:, BUG] == 0)
    beta_c = np.broadcast_to(np.where(fresh, 0.9, 0.1)[None, :, None], (nX, nM, 2))
    coder = dict(
        name="coder", n_private=2, n_actions=2, rho_private=[1.0, 0.0],
        internal_policy=pol_c, kernel=_kernel(2, 2, _coder_step),
        reward=reward(2, [STEP_COST, STEP_COST]), end_probability=beta_c,
        observation=2 * np.arange(nM)[:, None] + np.arange(2)[None, :],
        successors=[False, True, True, False])

    # tester -----------------------------------------------------------
    pol_t = np.broadcast_to(np.array([[0.7, 0.3], [0.0, 1.0]])[None], (nM, 2, 2))
    r_t = reward(2, [STEP_COST, STEP_COST])
    for x in range(nX):
        for m in range(nM):
            r_t[x, m, :, STOP] += _ship_value(x % 2, m)
    seen = bits[:, CODE] + 2 * bits[:, PASS] + 4 * bits[:, BUG]
    tester = dict(
        name="tester", n_private=2, n_actions=2, rho_private=[1.0, 0.0],
        internal_policy=pol_t, kernel=_kernel(2, 2, _tester_step),
        reward=r_t, end_probability=np.ones((nX, nM, 2)),
        observation=2 * seen[:, None] + np.arange(2)[None, :],
        successors=[True, True, True, True])

    return ICSMDP(name="workflow", gamma=0.95, horizon=60, n_latent=nX, n_interface=nM,
                  rho_latent_interface=rho_xm, rho_agent=[1.0, 0.0, 0.0],
                  agents=[planner, coder, tester])


if __name__ == "__main__":
    print(f"wrote {save_instance(build_workflow(), WORKFLOW_PATH)}")
