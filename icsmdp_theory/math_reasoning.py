r"""The multi-LLM math-reasoning workflow (paper section 5.2) as a calibrated epoch model (SPEC 10, 11).

**This is a calibrated model, not a rerun of the LLM experiment.** No LLM is
called. The four-agent pipeline of the paper (GPT-4o-mini agents answering
multiple-choice mathematics) is written down as an explicit epoch model
(:class:`~icsmdp_theory.epoch_model.EpochModel`) whose per-call probabilities
are fitted (:mod:`estimators.calibration`, bounded least squares) so that the
*exact* accuracies of the five predefined workflows reproduce the paper's
Table 1 (:data:`PAPER_TABLE1`). The fitted values ship as data
(:data:`CALIBRATED`, the default of :func:`math_reasoning`).

Agents, epochs, observation
---------------------------
Agents ``commissioner, editor, thinker, checker`` (indices 0..3, STOP = 4).
One LLM call is one invocation (``tau = 1``). The active agent commits its
successor when it receives the task (SPEC 10: ``c'`` is chosen at ``(k, i)``),
so a verdict of the checker is routed by the *next* agent, who sees it.

A label ``k`` is the canonical JSON (:func:`~icsmdp_theory.labels.canonical_label`)
of the dict

=============  ========================================================================
key            meaning
=============  ========================================================================
``difficulty`` latent level of the question: ``"easy"``, ``"medium"``, ``"hard"``
``right``      latent: the current answer is correct (0 before any answer)
``given``      an answer has been given (bit 1 of the observation, value 8)
``modified``   the current answer is a revision (bit 2, value 4)
``checked``    the current answer has been checked (bit 3, value 2)
``judged``     the checker judged the current answer correct (bit 4, value 1)
``round``      revisions so far (at most ``round_cap``, default 1)
``length``     calls so far, capped at ``length_cap`` (default 9)
``rationale``  the thinker's pending rationale: ``"none"``, ``"sound"``, ``"unsound"``
``feedback``   pending critique: ``"none"``, ``"critique"`` (from the checker),
               ``"relay"`` (the checker's critique relayed by the thinker)
=============  ========================================================================

Every agent observes the same 4 bits, ``phi(k) = 8 given + 4 modified + 2 checked
+ judged`` (the ``fields`` rule over the four bit keys of a trace state).

Calls (the agents' fixed local behaviour; ``h`` the difficulty)
----------------------------------------------------------------
- **commissioner**: opens, routes and closes; changes nothing but ``length``.
- **thinker**: if the answer was judged wrong and the checker's critique is
  pending, it relays the critique (``feedback = "relay"``) as a new, unchecked
  rationale: it clears ``checked`` and ``judged`` and sets ``modified``
  (``1010 -> 1100``, a cell no other path reaches). Otherwise it writes a fresh
  rationale, sound with probability ``rationale[h]``; before any answer the
  rationale ends with a proposed answer (``given = 1``, right iff the rationale
  is sound): ``0000 -> 1000``.
- **editor**, first answer (``given = 0``): a direct answer, correct with
  probability ``direct[h]``. After the thinker's proposal (an unchecked answer)
  it writes the final answer from the rationale, correct with probability
  ``follow_sound`` / ``follow_unsound``, and sets ``modified`` (``1000 ->
  1100``). A call on a checked answer is a revision (``modified = 1``,
  ``round + 1``; ``checked`` and the verdict acted on stay, ``1010 -> 1110``):
  with the checker's critique a wrong answer is repaired with probability
  ``repair[h]`` and a right one (a false alarm) is broken with probability
  ``breakage[h]``; with only a fresh rationale the editor answers anew from it;
  with nothing new it keeps its answer. The revision answering the thinker's
  relay repairs with probability ``relay * repair[h]`` (information lost in the
  relay), the breakage the same, and sets all four bits (``1100 -> 1111``, again
  a cell of its own, so Comb-E's and Comb-T's last commissioner calls are
  different cells). Once ``round = round_cap`` a further revision keeps the
  answer (correctness no longer changes; only reachable with ``round_cap >=
  2``, see below). Every editor call clears the rationale and the feedback.
- **checker**: judges the current answer wrong with probability ``detect[h]``
  if it is wrong, ``false_alarm[h]`` if it is right; a negative verdict leaves
  its critique (``feedback = "critique"``). It clears ``modified`` (the answer
  is now a checked one): ``1000, 1100 -> 1010 / 1011``.

Admissible handoffs (constant on each (agent, 4-bit) cell, so the cells of the
4-bit map admit exactly their states' sets; SPEC 10's intersection rule loses
nothing): the commissioner before any answer picks the editor or the thinker;
with an unchecked answer STOP or the checker; with a checked answer judged
wrong STOP, the editor or the thinker; with an answer judged right, or a
checked revision (``modified = checked = 1``), only STOP: **one revision
round**, as in every workflow of Table 1, and the cap is observable. The editor
hands to the commissioner or the checker while the answer is neither checked
nor modified, otherwise to the commissioner; the thinker to the editor; the
checker to the commissioner. Only the commissioner may STOP. Every path is
then ``[T|E] -> [C ->] [K -> C -> [E | T -> E] ->] C -> STOP`` in some form and
**every** policy, decentralized or not, STOPs within 9 calls (``C T E C K C T E
C``), so ``length_cap = 9`` records the exact number of earlier calls. There are
14 deterministic decentralized policies on the reachable cells
(:mod:`estimators.decentralized`).

``round_cap >= 2`` is a richer variant: the commissioner may also send a
revised answer back (further rounds; the editor stops changing its answer
after ``round_cap`` revisions). The cap is then hidden from the 4 bits: it
lives in the dynamics, because an admissible set depending on the hidden
``round`` would, by the intersection rule, remove the choice from the whole
4-bit cell. Some policies then never STOP (their accuracy is 0 and
:func:`estimators.policy_value.policy_value` reports ``terminates=False``),
and there are 150 decentralized policies; their optimum is still the best
predefined workflow on every dataset (a second round repairs nothing more
through the 4 bits).

Rewards (components, SPEC 11)
-----------------------------
``correct``: 1 when the commissioner STOPs with a right answer, else 0.
``tokens``: minus the tokens of the call, in thousands:
``tokens_base[i] + tokens_context * length`` (each call reads the conversation
so far; the thinker and the checker cost more). ``calls``: -1 per call. The
scalar reward is ``correct`` (weights ``(1, 0, 0)``) unless ``weights`` are given.
``gamma = 0.999`` by default: decisions are discounted as everywhere in the
toolkit; the **accuracy** of a policy is its *undiscounted* total of
``correct`` (``policy_value(model, sigma, discounted=False).values["correct"]``),
the quantity Table 1 reports. The token figures are illustrative (Table 1
gives no costs) and are not calibrated.

The five workflows (:data:`WORKFLOWS`, :func:`workflow_policy`)
---------------------------------------------------------------
``C`` commissioner, ``E`` editor, ``T`` thinker, ``K`` checker; ``[...]`` runs
only after a negative verdict (one revision round, after which the commissioner
closes; a second check would not change the outcome):

- ``Direct``: C -> E -> C -> STOP;
- ``CoT`` (zero-shot chain of thought): C -> T -> E -> C -> STOP;
- ``Reflect``: C -> E -> K -> C -> [E -> C ->] STOP;
- ``Comb-E`` (CoT, then reflection with the critique to the editor):
  C -> T -> E -> K -> C -> [E -> C ->] STOP;
- ``Comb-T`` (the critique reaches the editor only through the thinker):
  C -> T -> E -> K -> C -> [T -> E -> C ->] STOP.

On cells a workflow does not reach, :func:`workflow_cells` gives the default
successor (the commissioner STOPs once an answer exists).

Why Table 1's ordering is possible (the structural assumptions)
----------------------------------------------------------------
Write ``c_h`` for CoT's accuracy on level ``h``, ``x_h = false_alarm[h] *
breakage[h]`` (a right answer lost to a false alarm) and ``y_h = detect[h] *
repair[h]`` (a wrong answer caught and repaired). The checking round changes
the accuracy on level ``h`` by

    Comb-E - CoT = (1 - c_h) y_h - c_h x_h,

and a dataset is a *mixture of levels* (``mix``), so its change is
``sum_h mix[h] (Comb-E - CoT)_h``. Three assumptions do the work:

1. *The checker helps where CoT leaves repairable errors and hurts where CoT is
   already right.* On easy questions ``c_h`` is near 1 and only the
   false-alarm term remains: the checker introduces errors. On medium
   questions CoT leaves wrong answers that the checker catches and the editor
   repairs (``repair`` near 1): it helps. On hard questions the repair fails
   (``repair[hard]`` about 0.05), so only false alarms count: it hurts a
   little. With the shipped values (``python -m estimators.calibration``
   prints them), ``(Comb-E - CoT)_h`` for easy / medium / hard and the mixture:

   =========  =======================  ===============================
   dataset    Comb-E - CoT per level   mix (easy, medium, hard)
   =========  =======================  ===============================
   MathQA     -0.013 / +0.011 / -0.009  0.18 / 0.64 / 0.19
   MMLU-HS    -0.036 / +0.060 / -0.014  0.35 / 0.53 / 0.11
   MMLU-Elem  -0.011 / +0.029 / -0.017  0.73 / 0.24 / 0.03
   =========  =======================  ===============================

   MMLU-Elem is mostly easy: the checker's net effect is negative (CoT
   best). MMLU-HS has many medium questions on which CoT still errs (0.89):
   the largest gain. MathQA is the hardest dataset (lowest Direct, the largest
   hard share) yet gains little: its medium questions are already solved by
   CoT (0.96) and its hard ones cannot be repaired.
2. *A critique is nearly as good as a rationale on easy and medium questions*
   (the checker's critique carries the reasoning): a revision repairs most
   wrong *direct* answers there, so Reflect comes close to CoT although Direct
   is far below; on hard questions neither helps.
3. *Relaying loses information:* Comb-T differs from Comb-E only in the
   relay, ``Comb-T - Comb-E = - (1 - relay) (1 - c_h) detect[h] repair[h] <= 0``
   on every level (the breakage after a false alarm is the same either way;
   the fitted ``relay`` is about 0.52), and it costs one more thinker call.
   Comb-T is therefore dominated on every dataset.

With one revision round the exact optimum over all 14 decentralized policies
on the 4-bit cells *is* the best predefined workflow on every dataset (Comb-E,
Comb-E, CoT on the reachable cells), as IC-Q's column of Table 1 reports; the
full-information optimum, which sees ``right`` and ``difficulty``, is higher
(the 4-bit map's AIS gap).

Examples
--------
>>> m = math_reasoning("MathQA")
>>> m.agent_names, m.component_names
(('commissioner', 'editor', 'thinker', 'checker'), ('correct', 'tokens', 'calls'))
>>> sorted(set(m.observation[0].tolist())) == [0, 8, 10, 11, 12, 14, 15]
True
>>> sigma = workflow_policy(m, "CoT")
>>> [m.successor_name(int(sigma[s])) for s in np.flatnonzero(m.rho0 > 0)]
['thinker', 'thinker', 'thinker']
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from icsmdp_theory.epoch_model import STOP_NAME, EpochModel
from icsmdp_theory.errors import InvalidArgumentError
from icsmdp_theory.labels import canonical_label
from icsmdp_theory.validation import is_int, is_real

__all__ = ["math_reasoning", "MathParams", "Workflow", "WORKFLOWS", "WORKFLOW_NAMES",
           "workflow_policy", "workflow_cells", "workflow_totals", "PAPER_TABLE1", "PAPER_LEARNED", "PAPER_CITATION",
           "CALIBRATED", "NOMINAL", "DATASETS", "LEVELS", "AGENTS", "COMPONENTS",
           "OBSERVATION_BITS", "PARAMETER_BOUNDS", "ROUND_CAP", "LENGTH_CAP",
           "admissible_successors", "label_state", "observation_bits", "DEFAULT_GAMMA"]

#: The agents, in index order (STOP is index 4).
AGENTS = ("commissioner", "editor", "thinker", "checker")
_C, _E, _T, _K = range(4)
_STOP = 4
#: The datasets of Table 1.
DATASETS = ("MathQA", "MMLU-HS", "MMLU-Elem")
#: Latent difficulty levels.
LEVELS = ("easy", "medium", "hard")
#: Reward components, in order.
COMPONENTS = ("correct", "tokens", "calls")
#: The four observed bits, most significant first (``phi = 8 g + 4 m + 2 c + j``).
OBSERVATION_BITS = ("given", "modified", "checked", "judged")
#: Default number of revision rounds (label key ``round``; one, as in every workflow of Table 1).
ROUND_CAP = 1
#: Default cap on the recorded conversation length (label key ``length``): with one revision
#: round no episode has more than 9 calls, so 9 records every call's exact position.
LENGTH_CAP = 9
#: Default discount (decisions are discounted as everywhere in the toolkit).
DEFAULT_GAMMA = 0.999

#: Where Table 1 comes from.
PAPER_CITATION = ("Learning to Hand Off: Provably Convergent Workflow Learning under Interface "
                  "Constraints, section 5.2, Table 1 (accuracy of predefined workflows and of "
                  "the workflow learned by IC-Q; GPT-4o-mini agents)")

#: Table 1 of the paper: accuracy of the five predefined workflows per dataset.
PAPER_TABLE1: dict[str, dict[str, float]] = {
    "MathQA": {"Direct": 0.299, "CoT": 0.833, "Reflect": 0.825, "Comb-E": 0.836, "Comb-T": 0.823},
    "MMLU-HS": {"Direct": 0.415, "CoT": 0.863, "Reflect": 0.859, "Comb-E": 0.881, "Comb-T": 0.852},
    "MMLU-Elem": {"Direct": 0.648, "CoT": 0.960, "Reflect": 0.944, "Comb-E": 0.958,
                  "Comb-T": 0.950},
}
#: Table 1's last column: the accuracy of the IC-Q-learned workflow and the workflow it matched.
PAPER_LEARNED: dict[str, tuple[float, str]] = {
    "MathQA": (0.836, "Comb-E"), "MMLU-HS": (0.881, "Comb-E"), "MMLU-Elem": (0.960, "CoT"),
}

#: Bounds of every :class:`MathParams` field (per entry of a per-level tuple).
PARAMETER_BOUNDS: dict[str, tuple[float, float]] = {
    "mix": (0.0, 1.0), "direct": (0.0, 1.0), "rationale": (0.0, 1.0),
    "follow_sound": (0.0, 1.0), "follow_unsound": (0.0, 1.0), "detect": (0.0, 1.0),
    "false_alarm": (0.0, 1.0), "repair": (0.0, 1.0), "breakage": (0.0, 1.0), "relay": (0.0, 1.0),
    "tokens_base": (0.0, 1e3), "tokens_context": (0.0, 1e3),
}
_PER_LEVEL = ("mix", "direct", "rationale", "detect", "false_alarm", "repair", "breakage")


@dataclass(frozen=True, kw_only=True)
class MathParams:
    """Per-call probabilities of the pipeline (module docstring), validated on construction.

    Per-level fields are tuples over :data:`LEVELS` (easy, medium, hard); every
    probability lies in ``[0, 1]`` (:data:`PARAMETER_BOUNDS`).

    Attributes
    ----------
    mix : tuple of 3 floats
        Share of each difficulty level among the dataset's questions (sums to 1).
    direct : tuple of 3
        P(the editor's first answer is right | no rationale).
    rationale : tuple of 3
        P(the thinker's rationale is sound).
    follow_sound, follow_unsound : float
        P(the editor's answer from a sound / unsound rationale is right).
    detect : tuple of 3
        P(the checker judges a wrong answer wrong).
    false_alarm : tuple of 3
        P(the checker judges a right answer wrong).
    repair : tuple of 3
        P(the editor's revision of a wrong answer, with the checker's critique, is right).
    breakage : tuple of 3
        P(the editor's revision of a right answer after a false alarm is wrong).
    relay : float
        Factor on ``repair`` when the critique reaches the editor through the thinker.
    tokens_base : tuple of 4
        Thousands of tokens of a call per agent (commissioner, editor, thinker, checker).
    tokens_context : float
        Extra thousands of tokens per call already in the conversation (``length``).
    """

    mix: tuple
    direct: tuple
    rationale: tuple
    follow_sound: float
    follow_unsound: float
    detect: tuple
    false_alarm: tuple
    repair: tuple
    breakage: tuple
    relay: float
    tokens_base: tuple = (0.2, 0.5, 1.2, 0.9)
    tokens_context: float = 0.1

    def __post_init__(self):
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            lo, hi = PARAMETER_BOUNDS[f.name]
            length = 3 if f.name in _PER_LEVEL else 4 if f.name == "tokens_base" else None
            if length is None:
                if not is_real(value) or not lo <= float(value) <= hi:
                    raise InvalidArgumentError(f"MathParams `{f.name}` must be a number in "
                                               f"[{lo:g}, {hi:g}], got {value!r}.")
                object.__setattr__(self, f.name, float(value))
                continue
            if not isinstance(value, (tuple, list, np.ndarray)) or len(value) != length:
                raise InvalidArgumentError(f"MathParams `{f.name}` must hold {length} numbers, "
                                           f"got {value!r}.")
            for j, v in enumerate(value):
                if not is_real(v) or not lo <= float(v) <= hi:
                    raise InvalidArgumentError(f"MathParams `{f.name}` entry {j} must be a number "
                                               f"in [{lo:g}, {hi:g}], got {v!r}.")
            object.__setattr__(self, f.name, tuple(float(v) for v in value))
        total = sum(self.mix)
        if not abs(total - 1.0) <= 1e-9:
            raise InvalidArgumentError(f"MathParams `mix` must sum to 1, sums to {total!r}.")

    def replace(self, **changes: Any) -> "MathParams":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


#: Nominal parameters: the calibration's starting point and the centre of its weak prior.
#: Their level-by-level shape carries the structural assumptions of the module docstring
#: (easy: CoT nearly always right, false alarms do the damage; medium: CoT leaves errors
#: the checker catches and the editor repairs; hard: nothing repairs them).
NOMINAL = MathParams(
    mix=(0.4, 0.4, 0.2), direct=(0.85, 0.2, 0.05), rationale=(0.995, 0.85, 0.3),
    follow_sound=0.99, follow_unsound=0.1, detect=(0.9, 0.9, 0.6),
    false_alarm=(0.05, 0.05, 0.2), repair=(0.95, 0.9, 0.05), breakage=(0.6, 0.5, 0.5),
    relay=0.5)

#: Fitted parameters per dataset: the output of ``python -m estimators.calibration``
#: (bounded least squares to Table 1, rounded to 6 decimals; a test re-derives them).
CALIBRATED: dict[str, MathParams] = {
    "MathQA": MathParams(
        mix=(0.176506, 0.635055, 0.188439), direct=(0.859164, 0.196963, 0.11818),
        rationale=(0.999, 0.959864, 0.219015), follow_sound=0.999, follow_unsound=0.038744,
        detect=(0.909413, 0.999, 0.599126), false_alarm=(0.025074, 0.058761, 0.198121),
        repair=(0.958927, 0.999, 0.035073), breakage=(0.598957, 0.501027, 0.499255),
        relay=0.532676),
    "MMLU-HS": MathParams(
        mix=(0.350404, 0.53494, 0.114656), direct=(0.857859, 0.197747, 0.075182),
        rationale=(0.999, 0.880928, 0.268923), follow_sound=0.999, follow_unsound=0.079309,
        detect=(0.911805, 0.983315, 0.599817), false_alarm=(0.062087, 0.102975, 0.204059),
        repair=(0.961198, 0.983315, 0.047702), breakage=(0.601248, 0.510682, 0.501651),
        relay=0.515036),
    "MMLU-Elem": MathParams(
        mix=(0.725218, 0.240703, 0.034079), direct=(0.827378, 0.190442, 0.062649),
        rationale=(0.999, 0.925922, 0.282664), follow_sound=0.999, follow_unsound=0.092736,
        detect=(0.958351, 0.974609, 0.599675), false_alarm=(0.021969, 0.076422, 0.201462),
        repair=(0.999, 0.974609, 0.045736), breakage=(0.598972, 0.504006, 0.500588),
        relay=0.524949),
}


# ------------------------------------------------------------------ workflows
@dataclass(frozen=True)
class Workflow:
    """A predefined workflow: a table ``(agent name, 4-bit observation) -> successor name``.

    The observation is written as the four bits ``given modified checked judged``
    (e.g. ``"1010"``: an answer, checked and judged wrong). Cells not in the
    table take the default successor (:func:`workflow_cells`).
    """

    name: str
    sequence: str
    table: Mapping


def _table(*rows) -> dict:
    return {(a, bits): succ for a, bits, succ in rows}


def _check_tail(answered: str) -> tuple:
    """The reflection round after the answer cell ``answered`` (``1000`` direct, ``1100`` CoT)."""
    return (("checker", answered, "commissioner"), ("commissioner", "1011", STOP_NAME),
            ("commissioner", "1010", "editor"), ("editor", "1010", "commissioner"),
            ("commissioner", "1110", STOP_NAME))


_THINK_FIRST = (("commissioner", "0000", "thinker"), ("thinker", "0000", "editor"))

#: The five predefined workflows of Table 1 (module docstring).
WORKFLOWS: dict[str, Workflow] = {
    "Direct": Workflow("Direct", "commissioner -> editor -> commissioner -> STOP", _table(
        ("commissioner", "0000", "editor"), ("editor", "0000", "commissioner"),
        ("commissioner", "1000", STOP_NAME))),
    "CoT": Workflow("CoT", "commissioner -> thinker -> editor -> commissioner -> STOP", _table(
        *_THINK_FIRST, ("editor", "1000", "commissioner"), ("commissioner", "1100", STOP_NAME))),
    "Reflect": Workflow(
        "Reflect", "commissioner -> editor -> checker -> commissioner -> [if judged wrong: "
                   "editor -> commissioner ->] STOP",
        _table(("commissioner", "0000", "editor"), ("editor", "0000", "checker"),
               *_check_tail("1000"))),
    "Comb-E": Workflow(
        "Comb-E", "commissioner -> thinker -> editor -> checker -> commissioner -> [if judged "
                  "wrong: editor -> commissioner ->] STOP",
        _table(*_THINK_FIRST, ("editor", "1000", "checker"), *_check_tail("1100"))),
    "Comb-T": Workflow(
        "Comb-T", "commissioner -> thinker -> editor -> checker -> commissioner -> [if judged "
                  "wrong: thinker -> editor -> commissioner ->] STOP",
        _table(*_THINK_FIRST, ("editor", "1000", "checker"),
               *[r for r in _check_tail("1100") if r[:2] != ("commissioner", "1010")],
               ("commissioner", "1010", "thinker"), ("thinker", "1010", "editor"),
               ("editor", "1100", "commissioner"), ("commissioner", "1111", STOP_NAME))),
}
#: Workflow names in Table 1's column order.
WORKFLOW_NAMES = tuple(WORKFLOWS)


def observation_bits(obs: int) -> str:
    """The 4-bit string ``"gmcj"`` of a raw observation ``8 g + 4 m + 2 c + j``.

    >>> observation_bits(10)
    '1010'
    """
    if not is_int(obs) or not 0 <= obs < 16:
        raise InvalidArgumentError(f"`obs` must be an integer in 0..15, got {obs!r}.")
    return format(int(obs), "04b")


def admissible_successors(agent: int, bits: str, *, round_cap: int = ROUND_CAP
                          ) -> tuple[int, ...]:
    """The admissible successors (indices, STOP = 4) of ``agent`` at the 4-bit observation ``bits``.

    With ``round_cap = 1`` the commissioner must STOP once a checked answer is
    judged right or revised (``1011``, ``111j``): one revision round, observable.
    An unchecked answer (``1000``, ``1100``) may still go to the checker; the
    editor may hand to the checker only an answer neither checked nor modified.

    >>> admissible_successors(0, "0000"), admissible_successors(0, "1010")
    ((1, 2), (4, 1, 2))
    >>> admissible_successors(0, "1110"), admissible_successors(0, "1110", round_cap=2)
    ((4,), (4, 1, 2))
    >>> admissible_successors(0, "1011"), admissible_successors(0, "1100")
    ((4,), (4, 3))
    """
    given, modified, checked = bits[0] == "1", bits[1] == "1", bits[2] == "1"
    if agent == _C:
        if not given:
            return (_E, _T)
        if not checked:
            return (_STOP, _K)
        if round_cap == 1 and (modified or bits[3] == "1"):
            return (_STOP,)                             # a revision, or judged right: final
        return (_STOP, _E, _T)
    if agent == _E:
        return (_C,) if checked or modified else (_C, _K)
    if agent == _T:
        return (_E,)
    return (_C,)


def _default_successor(agent: int, bits: str) -> int:
    """Close the discussion as soon as possible: C STOPs (or asks the editor), others hand back."""
    if agent == _C:
        return _STOP if bits[0] == "1" else _E
    return {_E: _C, _T: _E, _K: _C}[agent]


def workflow_cells(name: str) -> dict:
    """The full table ``(agent name, bits) -> successor name`` of a workflow on all 4-bit cells.

    Cells the workflow's table does not list take the documented default: the
    commissioner STOPs once an answer is given (before, it asks the editor); the
    editor and the checker hand to the commissioner; the thinker to the editor.
    """
    wf = _workflow_iv(name)
    out = {}
    for i, agent in enumerate(AGENTS):
        for obs in range(16):
            bits = observation_bits(obs)
            succ = wf.table.get((agent, bits))
            if succ is None:
                d = _default_successor(i, bits)
                succ = STOP_NAME if d == _STOP else AGENTS[d]
            out[(agent, bits)] = succ
    return out


def _workflow_iv(name: str) -> Workflow:
    if name not in WORKFLOWS:
        raise InvalidArgumentError(f"`name` must be one of {', '.join(WORKFLOW_NAMES)}, got "
                                   f"{name!r}.")
    return WORKFLOWS[name]


def label_state(label: str) -> dict:
    """The state dict of a label of :func:`math_reasoning` (the parsed canonical JSON)."""
    try:
        state = json.loads(label)
    except (TypeError, ValueError):
        state = None
    if not isinstance(state, dict) or any(b not in state for b in OBSERVATION_BITS):
        raise InvalidArgumentError(f"label {label!r} is not a math-reasoning state (a JSON object "
                                   f"with the keys {', '.join(OBSERVATION_BITS)}).")
    return state


def workflow_policy(model: EpochModel, name: str) -> np.ndarray:
    """The epoch policy ``sigma[s]`` of a named workflow on a :func:`math_reasoning` model.

    Decentralized: every epoch state of one (agent, 4-bit cell) gets the same
    successor, read from the label's four bits (whatever observation map the
    model carries).

    Parameters
    ----------
    model : EpochModel
        Built by :func:`math_reasoning` (possibly with another observation map).
    name : str
        One of :data:`WORKFLOW_NAMES`.

    Returns
    -------
    int ndarray (S,)
        Successor indices (STOP is ``N = 4``), admissible at every state.

    Raises
    ------
    InvalidArgumentError
        Unknown workflow, a model with other agents or labels.
    """
    cells = workflow_cells(name)
    if not isinstance(model, EpochModel) or tuple(model.agent_names) != AGENTS:
        raise InvalidArgumentError(f"`model` must be a math_reasoning EpochModel with the agents "
                                   f"{', '.join(AGENTS)}.")
    names = list(AGENTS) + [STOP_NAME]
    bits = [_bits_of(label_state(k)) for k in model.labels]
    sigma = np.empty(model.num_epoch_states, np.int64)
    for s in range(model.num_epoch_states):
        i = int(model.state_agent[s])
        c = names.index(cells[(AGENTS[i], bits[int(model.state_label[s])])])
        if not model.admissible[s, c]:
            raise InvalidArgumentError(f"workflow {name!r}: successor {names[c]!r} is not "
                                       f"admissible at state {s} ({model.describe_state(s)}).")
        sigma[s] = c
    return sigma


def _bits_of(state: Mapping) -> str:
    return "".join(str(int(state[b])) for b in OBSERVATION_BITS)


# ------------------------------------------------------------------ the model
# internal state tuple: (level, right, given, modified, checked, judged, round, length,
#                        rationale, feedback)
_LEVEL, _RIGHT, _GIVEN, _MOD, _CHECKED, _JUDGED, _ROUND, _LENGTH, _RAT, _FB = range(10)


def _act(st: tuple, agent: int, p: MathParams, round_cap: int, length_cap: int) -> list:
    """Outcomes ``[(next state tuple, prob), ...]`` of ``agent``'s call at ``st`` (module docstring)."""
    h = st[_LEVEL]
    s = list(st)
    s[_LENGTH] = min(st[_LENGTH] + 1, length_cap)
    if agent == _C:
        return [(tuple(s), 1.0)]
    if agent == _K:
        wrong = p.detect[h] if st[_RIGHT] == 0 else p.false_alarm[h]
        neg = s.copy()
        neg[_MOD], neg[_CHECKED], neg[_JUDGED], neg[_FB] = 0, 1, 0, "critique"
        pos = s.copy()
        pos[_MOD], pos[_CHECKED], pos[_JUDGED], pos[_FB] = 0, 1, 1, "none"
        return [(tuple(neg), wrong), (tuple(pos), 1.0 - wrong)]
    if agent == _T:
        if st[_CHECKED] == 1 and st[_JUDGED] == 0 and st[_FB] == "critique":
            # the relay is a new, unchecked rationale: `1010 -> 1100`, a cell of its own
            s[_FB], s[_MOD], s[_CHECKED], s[_JUDGED] = "relay", 1, 0, 0
            return [(tuple(s), 1.0)]
        good, bad = s.copy(), s.copy()
        good[_RAT], bad[_RAT] = "sound", "unsound"
        if st[_GIVEN] == 0:
            # the rationale ends with a proposed answer: the first answer of the conversation
            good[_GIVEN], bad[_GIVEN] = 1, 1
            good[_RIGHT], bad[_RIGHT] = 1, 0
        return [(tuple(good), p.rationale[h]), (tuple(bad), 1.0 - p.rationale[h])]
    # editor
    follow = {"sound": p.follow_sound, "unsound": p.follow_unsound}
    s[_RAT], s[_FB] = "none", "none"
    if st[_GIVEN] == 0:
        p_right = p.direct[h]                           # a direct answer
        s[_GIVEN], s[_MOD], s[_CHECKED], s[_JUDGED], s[_ROUND] = 1, 0, 0, 0, 0
    elif st[_FB] == "relay":
        # the revision answering the relayed critique: `1100 -> 1111`, reached by no other path
        s[_MOD], s[_CHECKED], s[_JUDGED], s[_ROUND] = 1, 1, 1, min(st[_ROUND] + 1, round_cap)
        right = st[_RIGHT]
        if st[_ROUND] >= round_cap:
            p_right = float(right)
        else:
            p_right = 1.0 - p.breakage[h] if right else p.relay * p.repair[h]
    elif st[_CHECKED] == 0:
        # the final answer written from the thinker's proposed answer (kept or changed)
        p_right = follow[st[_RAT]] if st[_RAT] != "none" else float(st[_RIGHT])
        s[_MOD], s[_JUDGED] = 1, 0
    else:
        # a revision of a checked answer: `checked` and the verdict acted on stay
        s[_MOD], s[_ROUND] = 1, min(st[_ROUND] + 1, round_cap)
        right = st[_RIGHT]
        if st[_ROUND] >= round_cap:
            p_right = float(right)                      # stuck: the answer no longer changes
        elif st[_FB] in ("critique", "relay"):
            rep = p.repair[h] * (p.relay if st[_FB] == "relay" else 1.0)
            p_right = 1.0 - p.breakage[h] if right else rep
        elif st[_RAT] != "none":
            p_right = follow[st[_RAT]]
        else:
            p_right = float(right)
    yes, no = s.copy(), s.copy()
    yes[_RIGHT], no[_RIGHT] = 1, 0
    return [(tuple(yes), p_right), (tuple(no), 1.0 - p_right)]


def workflow_totals(params: MathParams, name: str, *, round_cap: int = ROUND_CAP,
                    length_cap: int = LENGTH_CAP, max_calls: int = 64) -> dict:
    """Expected totals of each component over one episode of a workflow, by forward propagation.

    The law of the conversation state is pushed call by call through the
    workflow's table (:func:`workflow_cells`) from the start law ``mix`` until
    every path has STOPped; ``correct`` is then the workflow's accuracy. This
    is a second exact computation, independent of the epoch model and its
    linear solves (the calibration's inner loop uses it for speed; tests
    compare it with :func:`estimators.policy_value.policy_value`).

    Parameters
    ----------
    params : MathParams
    name : str
        One of :data:`WORKFLOW_NAMES`.
    round_cap, length_cap : int
        As in :func:`math_reasoning`.
    max_calls : int
        Refuse a workflow whose episodes are not over after this many calls.

    Returns
    -------
    dict
        ``{"correct": ..., "tokens": ..., "calls": ...}`` (undiscounted totals).

    Examples
    --------
    >>> p = NOMINAL.replace(mix=(1.0, 0.0, 0.0))
    >>> workflow_totals(p, "Direct")["correct"] == p.direct[0]
    True
    """
    if not isinstance(params, MathParams):
        raise InvalidArgumentError(f"`params` must be a MathParams, got {type(params).__name__}.")
    cells = workflow_cells(name)
    names = list(AGENTS) + [STOP_NAME]
    law: dict[tuple, float] = {}
    for h, share in enumerate(params.mix):
        if share > 0:
            law[((h, 0, 0, 0, 0, 0, 0, 0, "none", "none"), _C)] = share
    totals = {"correct": 0.0, "tokens": 0.0, "calls": 0.0}
    for _ in range(max_calls):
        if not law:
            return totals
        nxt_law: dict[tuple, float] = {}
        for (st, agent), pr in law.items():
            c = names.index(cells[(AGENTS[agent], observation_bits(_obs_of(st)))])
            totals["calls"] -= pr
            totals["tokens"] -= pr * (params.tokens_base[agent] + params.tokens_context * st[_LENGTH])
            if c == _STOP:
                totals["correct"] += pr * st[_RIGHT]
                continue
            for st2, p2 in _act(st, agent, params, round_cap, length_cap):
                if p2 > 0.0:
                    key = (st2, c)
                    nxt_law[key] = nxt_law.get(key, 0.0) + pr * p2
        law = nxt_law
    raise InvalidArgumentError(f"workflow {name!r}: episodes are not over after {max_calls} calls.")


def _label_of(st: tuple) -> str:
    return canonical_label({"difficulty": LEVELS[st[_LEVEL]], "right": st[_RIGHT],
                            "given": st[_GIVEN], "modified": st[_MOD], "checked": st[_CHECKED],
                            "judged": st[_JUDGED], "round": st[_ROUND], "length": st[_LENGTH],
                            "rationale": st[_RAT], "feedback": st[_FB]})


def _obs_of(st: tuple) -> int:
    return 8 * st[_GIVEN] + 4 * st[_MOD] + 2 * st[_CHECKED] + st[_JUDGED]


def _weights_iv(weights: Any) -> np.ndarray:
    if weights is None:
        return np.array([1.0, 0.0, 0.0])
    if isinstance(weights, Mapping):
        unknown = [k for k in weights if k not in COMPONENTS]
        if unknown:
            raise InvalidArgumentError(f"`weights`: unknown component {unknown[0]!r} (components: "
                                       f"{', '.join(COMPONENTS)}).")
        weights = [weights.get(k, 0.0) for k in COMPONENTS]
    if not isinstance(weights, (list, tuple, np.ndarray)) or len(weights) != len(COMPONENTS) \
            or not all(is_real(w) for w in weights):
        raise InvalidArgumentError(f"`weights` must be a mapping over {', '.join(COMPONENTS)} or "
                                   f"{len(COMPONENTS)} finite numbers, got {weights!r}.")
    return np.asarray(weights, float)


def _math_reasoning_iv(dataset, params, gamma, round_cap, length_cap):
    if params is None:
        if dataset not in CALIBRATED:
            raise InvalidArgumentError(f"`dataset` must be one of {', '.join(DATASETS)}, got "
                                       f"{dataset!r}.")
        params = CALIBRATED[dataset]
    elif not isinstance(params, MathParams):
        raise InvalidArgumentError(f"`params` must be a MathParams, got {type(params).__name__}.")
    if not isinstance(dataset, str):
        raise InvalidArgumentError(f"`dataset` must be a string, got {dataset!r}.")
    if not is_real(gamma) or not 0.0 < float(gamma) < 1.0:
        raise InvalidArgumentError(f"`gamma` must be a number in (0, 1), got {gamma!r}.")
    for key, value, low in (("round_cap", round_cap, 1), ("length_cap", length_cap, 1)):
        if not is_int(value) or not low <= value <= 50:
            raise InvalidArgumentError(f"`{key}` must be an integer in {low}..50, got {value!r}.")
    return params, float(gamma), int(round_cap), int(length_cap)


def math_reasoning(dataset: str = "MathQA", *, params: MathParams | None = None,
                   gamma: float = DEFAULT_GAMMA, weights: Mapping | Sequence | None = None,
                   round_cap: int = ROUND_CAP, length_cap: int = LENGTH_CAP) -> EpochModel:
    """The calibrated four-agent math-reasoning workflow as an explicit epoch model (module docstring).

    Only the labels reachable from the start are built (breadth-first search over
    every admissible handoff).

    Parameters
    ----------
    dataset : str
        One of :data:`DATASETS`; selects :data:`CALIBRATED` ``[dataset]`` and names the model.
    params : MathParams, optional
        Other parameters (then ``dataset`` only names the model).
    gamma : float
        Discount per call, default 0.999.
    weights : mapping or sequence of 3 floats, optional
        Scalar reward ``sum_j w_j R_j`` over :data:`COMPONENTS`; default ``correct`` only.
    round_cap, length_cap : int
        Caps of the ``round`` and ``length`` label keys.

    Returns
    -------
    EpochModel
        Agents :data:`AGENTS`, components :data:`COMPONENTS`, the 4-bit observation
        map for every agent, ``rho0`` on the start label of each difficulty level
        with the commissioner active.
    """
    params, gamma, round_cap, length_cap = _math_reasoning_iv(dataset, params, gamma, round_cap,
                                                             length_cap)
    w = _weights_iv(weights)
    tokens_base = params.tokens_base
    label_index: dict[tuple, int] = {}
    label_list: list[tuple] = []
    state_index: dict[tuple, int] = {}
    states: list[tuple] = []

    def lab(st):
        k = label_index.get(st)
        if k is None:
            k = label_index[st] = len(label_list)
            label_list.append(st)
        return k

    def epoch(st, agent):
        key = (lab(st), agent)
        s = state_index.get(key)
        if s is None:
            s = state_index[key] = len(states)
            states.append((st, agent))
        return s

    rho0 = {}
    for h, share in enumerate(params.mix):
        if share > 0:
            start = (h, 0, 0, 0, 0, 0, 0, 0, "none", "none")
            rho0[epoch(start, _C)] = share
    t_state, t_succ, t_next, t_prob = [], [], [], []
    adm_rows, comp_rows = [], []
    q = 0
    while q < len(states):
        st, agent = states[q]
        bits = observation_bits(_obs_of(st))
        adm = admissible_successors(agent, bits, round_cap=round_cap)
        outcomes: dict[tuple, float] = {}
        for nxt, pr in _act(st, agent, params, round_cap, length_cap):
            if pr > 0.0:
                outcomes[nxt] = outcomes.get(nxt, 0.0) + pr
        row = np.zeros(len(AGENTS) + 1, bool)
        comp = np.zeros((len(AGENTS) + 1, len(COMPONENTS)))
        cost = -(tokens_base[agent] + params.tokens_context * st[_LENGTH])
        for c in adm:
            row[c] = True
            comp[c] = (float(st[_RIGHT]) if c == _STOP else 0.0, cost, -1.0)
            if c == _STOP:
                t_state.append(q), t_succ.append(c), t_next.append(-1), t_prob.append(1.0)
                continue
            for nxt, pr in outcomes.items():
                k2 = lab(nxt)
                epoch(nxt, c)
                t_state.append(q), t_succ.append(c), t_next.append(k2), t_prob.append(pr)
        adm_rows.append(row)
        comp_rows.append(comp)
        q += 1
    S = len(states)
    r0 = np.zeros(S)
    for s, share in rho0.items():
        r0[s] = share
    components = np.stack(comp_rows)
    obs = np.array([_obs_of(st) for st in label_list], np.int64)
    return EpochModel(
        name=f"math_reasoning:{dataset}", gamma=gamma, agents=AGENTS,
        labels=[_label_of(st) for st in label_list],
        states=np.array([[label_index[st], a] for st, a in states], np.int64),
        admissible=np.stack(adm_rows), rho0=r0,
        transitions={"state": np.asarray(t_state, np.int64), "successor": np.asarray(t_succ, np.int64),
                     "next_label": np.asarray(t_next, np.int64),
                     "tau": np.ones(len(t_state), np.int64), "prob": np.asarray(t_prob, float)},
        reward=components @ w, observation=[obs] * len(AGENTS), component_names=COMPONENTS,
        components=components)
