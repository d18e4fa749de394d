"""Full states, epoch states and their indexing (SPEC section 3).

A full state is ``f = (x, m, l_0, ..., l_{N-1})``, flattened in C order over
the shape ``(nX, nM, nL_0, ..., nL_{N-1})``. An epoch state is ``s = (f, i)``
with ``i`` the active agent, flattened as ``s = f*N + i``; arrays over epoch
states are therefore also viewable as ``[f, i]``.

Agent ``i`` sees a full state as ``(y, r)``: its local state
``y = (x*nM + m)*nL_i + l_i`` and the *rest* ``r``, the other agents' private
states in C order. :meth:`EpochSpace.to_agent_view` and
:meth:`EpochSpace.from_agent_view` move arrays between the two layouts; they
are the only place this permutation is written.
"""
from __future__ import annotations

from functools import cached_property

import numpy as np

from icsmdp_theory.errors import StateSpaceTooLargeError
from icsmdp_theory.model import ICSMDP

__all__ = ["EpochSpace", "MAX_EPOCH_STATES", "initial_epoch_law"]

#: Default cap on epoch states for the exact methods (memory: the committed
#: chain holds ``num_epoch_states * (N + 1)`` float64 values, several copies).
MAX_EPOCH_STATES = 2_000_000


class EpochSpace:
    """Index maps between full states, epoch states and each agent's view.

    Parameters
    ----------
    model : ICSMDP
    max_epoch_states : int
        Refuse (before allocating anything) a model with more epoch states.

    Raises
    ------
    StateSpaceTooLargeError
        With the count and the limit in the message.

    Examples
    --------
    >>> from icsmdp_theory.examples import load_example
    >>> space = EpochSpace(load_example("tiny-handoff"))
    >>> space.num_full_states, space.num_epoch_states, space.decode(5)
    (3, 6, {'x': 0, 'm': 2, 'l': (0, 0), 'agent': 1})
    """

    def __init__(self, model: ICSMDP, *, max_epoch_states: int = MAX_EPOCH_STATES):
        n = model.num_epoch_states
        if n > max_epoch_states:
            raise StateSpaceTooLargeError(
                f"the exact methods need at most {max_epoch_states:,} epoch states; this instance "
                f"has {n:,} (nX={model.num_latent} x nM={model.num_interface} x "
                f"prod nL={int(np.prod(model.num_private, dtype=object))} x N={model.num_agents}). "
                f"Use the sampled estimators, or raise the limit if memory allows.")
        self.num_agents = model.num_agents
        self.num_full_states = model.num_full_states
        self.num_epoch_states = n
        self.full_shape = (model.num_latent, model.num_interface) + tuple(model.num_private)
        self.num_rest = tuple(self.num_full_states // (model.num_latent * model.num_interface * nl)
                              for nl in model.num_private)

    def _split(self, i: int) -> tuple[int, int, int, int]:
        """``(nX*nM, prod nL_{<i}, nL_i, prod nL_{>i})``: four axes whatever ``N`` is."""
        nL = self.full_shape[2:]
        return (self.full_shape[0] * self.full_shape[1], int(np.prod(nL[:i], dtype=np.int64)),
                nL[i], int(np.prod(nL[i + 1:], dtype=np.int64)))

    def to_agent_view(self, i: int, arr: np.ndarray) -> np.ndarray:
        """``arr[f, ...]`` -> ``out[y_i, r_i, ...]`` (a copy when private states exist)."""
        tail = arr.shape[1:]
        xm, before, nl, after = self._split(i)
        a = arr.reshape((xm, before, nl, after) + tail)
        a = np.moveaxis(a, 2, 1)
        return a.reshape((xm * nl, before * after) + tail)

    def from_agent_view(self, i: int, arr: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_agent_view`: ``arr[y_i, r_i, ...]`` -> ``out[f, ...]``."""
        tail = arr.shape[2:]
        xm, before, nl, after = self._split(i)
        a = arr.reshape((xm, nl, before, after) + tail)
        a = np.moveaxis(a, 1, 2)
        return a.reshape((self.num_full_states,) + tail)

    @cached_property
    def full_of_view(self) -> tuple[np.ndarray, ...]:
        """``full_of_view[i][y*nRest_i + r] = f``: agent ``i``'s view index -> full state."""
        f = np.arange(self.num_full_states)
        return tuple(self.to_agent_view(i, f).ravel() for i in range(self.num_agents))

    @cached_property
    def view_of_full(self) -> tuple[np.ndarray, ...]:
        """``view_of_full[i][f] = y*nRest_i + r``: inverse of :attr:`full_of_view`."""
        out = []
        for perm in self.full_of_view:
            inv = np.empty_like(perm)
            inv[perm] = np.arange(perm.size)
            out.append(inv)
        return tuple(out)

    def decode(self, s: int) -> dict:
        """Epoch state index -> ``{"x", "m", "l", "agent"}``."""
        f, i = divmod(int(s), self.num_agents)
        idx = np.unravel_index(f, self.full_shape)
        return {"x": int(idx[0]), "m": int(idx[1]), "l": tuple(int(t) for t in idx[2:]),
                "agent": int(i)}


def initial_epoch_law(model: ICSMDP) -> np.ndarray:
    """``rho0`` over epoch states, shape ``(num_full_states, N)`` (SPEC section 1).

    ``rho0(x, m, l_0..l_{N-1}, i) = rho_XM[x, m] * prod_j rho_L[j][l_j] * rho_C[i]``.
    """
    law = model.rho_latent_interface.reshape(-1)
    for a in model.agents:
        law = np.multiply.outer(law, a.rho_private).reshape(-1)
    return np.multiply.outer(law, model.rho_agent)
