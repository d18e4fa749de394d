"""Batched value estimators of one IC-Q agent: tabular, linear, MLP (SPEC section 7).

Each estimator represents ``Q_i(o, c'; theta)`` of *one* agent ``i`` over its
own observations ``o in 0..nO_i-1`` and successors ``c' in 0..N`` (STOP last),
for every seed of a batch at once: parameters carry a leading seed axis and a
call touches only the seeds it is given. Inadmissible successors never get a
value: :meth:`values` returns ``-inf`` there and :meth:`table` ``nan``.

Models, with ``theta`` the agent's parameter vector:

- tabular: ``Q(o, c') = theta[o, c']``;
- linear: ``Q(o, c') = psi(o, c') . theta`` with user features ``psi[o, c', :]``;
- MLP: ``Q(o, .) = W_L relu(... relu(W_0 x_o + b_0) ...) + b_L``, one output
  per successor, float64, input ``x_o`` the one-hot of ``o`` (default) or user
  features ``inputs[o, :]``. Flat parameter order: for each layer ``l``, the
  weight ``W_l[fan_in, fan_out]`` row-major, then the bias ``b_l``.
  Initialization (He): ``W_l ~ N(0, 2/fan_in)`` for hidden layers (fan-in 1
  for a one-hot input, whose norm is 1), ``W_L ~ N(0, 1/fan_in)``, biases 0.

SGD on the squared TD error ``(Q(o, c'; theta) - y)^2 / 2``:
``theta <- theta - eta (Q(o, c'; theta) - y) grad_theta Q(o, c'; theta)``
(for the table, ``Q <- Q + eta (y - Q)``), followed, when ``omega`` is set, by
the projection onto the ball ``B(theta_0, omega)`` (assumption A3):
``theta <- theta_0 + (theta - theta_0) min(1, omega / ||theta - theta_0||)``,
applied only to seeds whose parameters left the ball.

Every per-seed computation is an elementwise operation, a reduction along a
fixed axis or a per-seed matrix product, so a seed's numbers do not depend on
which other seeds share the call (tested bit for bit).

:func:`mlp_values` and :func:`mlp_jacobian` evaluate one parameter vector at
every ``(o, c')`` in closed form (backpropagation), for the tangent features
of :mod:`estimators.tangent`.
"""
from __future__ import annotations

import numpy as np

from icsmdp_theory.errors import InvalidArgumentError

__all__ = ["TabularQ", "LinearQ", "MLPQ", "max_and_greedy", "mlp_layer_shapes", "mlp_num_parameters",
           "mlp_init", "mlp_values", "mlp_jacobian", "mlp_unflatten"]


def _masked(values: np.ndarray, admissible: np.ndarray, fill: float) -> np.ndarray:
    return np.where(admissible, values, fill)


def max_and_greedy(columns, successors, tol: float):
    """Max over admissible successors and the lowest one within ``tol`` of it, from value columns.

    ``columns[j]`` holds ``Q(., successors[j])`` for the admissible
    successors in increasing order; returns ``(best, pick)``. A row whose
    values are not comparable (``nan``) picks the last admissible successor.

    >>> b, p = max_and_greedy([np.array([1.0, 0.0]), np.array([1.0 + 1e-12, 2.0])], [0, 2], 1e-10)
    >>> b.tolist(), p.tolist()
    ([1.000000000001, 2.0], [0, 2])
    """
    best = columns[0]
    for x in columns[1:]:
        best = np.maximum(best, x)
    thr = best - tol
    if len(columns) == 1:
        return best, np.full(best.shape, successors[0], dtype=np.int64)
    pick = np.where(columns[-2] >= thr, successors[-2], successors[-1])
    for c, x in zip(successors[-3::-1], columns[-3::-1]):
        pick = np.where(x >= thr, c, pick)
    return best, pick


class _Estimator:
    """Shared layout: ``num_seeds`` x ``num_observations`` x ``num_successors``."""

    kind = ""

    def __init__(self, num_seeds: int, num_observations: int, admissible):
        self.admissible = np.array(admissible, dtype=bool)
        self.admissible.setflags(write=False)
        self.num_seeds = int(num_seeds)
        self.num_observations = int(num_observations)
        self.num_successors = self.admissible.size
        self._adm_idx = np.flatnonzero(self.admissible)
        self._all = np.arange(self.num_seeds)

    def _columns(self, seeds, o) -> list:
        """``[Q(o, c') for admissible c']`` per seed (each ``(n,)``)."""
        q = self.values(seeds, o)
        return [q[:, c] for c in self._adm_idx]

    def best(self, seeds: np.ndarray, o: np.ndarray) -> np.ndarray:
        """``max_{c' admissible} Q(o, c')`` per seed: ``(n,)``."""
        cols = self._columns(seeds, o)
        best = cols[0]
        for x in cols[1:]:
            best = np.maximum(best, x)
        return best

    def greedy(self, seeds: np.ndarray, o: np.ndarray, tol: float) -> np.ndarray:
        """Lowest admissible successor within ``tol`` of the max, per seed: ``(n,)``."""
        return max_and_greedy(self._columns(seeds, o), self._adm_idx, tol)[1]

    def value(self, seeds: np.ndarray, o: np.ndarray, c: np.ndarray) -> np.ndarray:
        """``Q(o, c')`` for each seed in ``seeds`` (one ``(o, c')`` per seed): shape ``(n,)``."""
        return np.take_along_axis(self.values(seeds, o), c[:, None], axis=1)[:, 0]

    def table(self, seeds: np.ndarray | None = None) -> np.ndarray:
        """``Q[seed, o, c']`` for all observations, ``nan`` where inadmissible: ``(n, nO, N+1)``."""
        seeds = self._all if seeds is None else np.asarray(seeds)
        n, nO = seeds.size, self.num_observations
        rep = np.repeat(seeds, nO)
        obs = np.tile(np.arange(nO), n)
        q = self.values(rep, obs).reshape(n, nO, self.num_successors)
        return _masked(q, self.admissible, np.nan)

    def values_at(self, theta: np.ndarray) -> np.ndarray:
        """``Q(o, c'; theta)`` for one flat parameter vector: ``(nO, N+1)`` (``nan`` inadmissible)."""
        raise NotImplementedError

    def jacobian(self, theta: np.ndarray) -> np.ndarray:
        """``grad_theta Q(o, c'; theta)`` for one flat vector: ``(nO, N+1, P)`` (zero rows inadmissible)."""
        raise NotImplementedError


class TabularQ(_Estimator):
    """A table ``Q[seed, o, c']`` per agent.

    Only admissible successors are stored, successor-major:
    ``q[r, seed*nO + o] = Q(o, c'_r)`` with ``c'_r`` the ``r``-th admissible
    successor, so that the values of a batch are one ``take`` of ``k``
    contiguous rows and the maximum and greedy choice are a handful of
    vectorized operations whatever ``k``.

    Parameters
    ----------
    num_seeds, num_observations : int
    admissible : bool array (N+1,)
    init : float
        Initial value of every admissible entry.
    """

    kind = "tabular"

    def __init__(self, num_seeds: int, num_observations: int, admissible, *, init: float = 0.0):
        super().__init__(num_seeds, num_observations, admissible)
        self._so = self.num_seeds * self.num_observations
        k = self._adm_idx.size
        self.q = np.full((k, self._so), float(init))
        self._flat = self.q.reshape(-1)
        self._init = float(init)
        self._row_of = np.full(self.num_successors, -1, np.int64)  # c' -> row (-1: inadmissible)
        self._row_of[self._adm_idx] = np.arange(k)

    @property
    def num_parameters(self) -> int:
        return self.num_observations * self._adm_idx.size

    def _rows(self, seeds, o):
        """``[k, n]``: the admissible values of each seed's ``(seed, o)``."""
        return self.q.take(seeds * self.num_observations + o, axis=1)

    def best(self, seeds, o):
        v = self._rows(seeds, o)
        best = v[0]
        for x in v[1:]:
            best = np.maximum(best, x)
        return best

    def greedy(self, seeds, o, tol):
        """Lowest admissible successor within ``tol`` of the max (as :func:`max_and_greedy`)."""
        v = self._rows(seeds, o)
        if v.shape[0] == 1:
            return self._adm_idx.repeat(v.shape[1])
        best = v[0]
        for x in v[1:]:
            best = np.maximum(best, x)
        # (a row without comparable values, nan, picks the first admissible successor)
        return self._adm_idx[(v >= best - tol).argmax(axis=0)]

    def values(self, seeds, o):
        """``Q[seed, o, :]`` with ``-inf`` at inadmissible successors: ``(n, N+1)``."""
        v = self._rows(seeds, o)
        out = np.full((v.shape[1], self.num_successors), -np.inf)
        out[:, self._adm_idx] = v.T
        return out

    def value(self, seeds, o, c):
        return self._flat[self.index(seeds, o, c)]

    def index(self, seeds, o, c) -> np.ndarray:
        """Flat position of ``(seed, o, c')`` (``c'`` admissible) in the table."""
        return self._row_of[c] * self._so + seeds * self.num_observations + o

    def sgd_at(self, idx, target, eta) -> None:
        """``Q <- Q + eta (y - Q)`` at flat positions ``idx`` (distinct)."""
        q = self._flat[idx]
        self._flat[idx] = q + eta * (target - q)

    def sgd(self, seeds, o, c, target, eta) -> None:
        """``Q(o, c') <- Q + eta (y - Q)`` for each listed (distinct) seed."""
        self.sgd_at(self.index(seeds, o, c), target, eta)

    def table(self, seeds=None):
        seeds = self._all if seeds is None else np.asarray(seeds)
        q = self.q.reshape(-1, self.num_seeds, self.num_observations)[:, seeds]  # (k, n, nO)
        out = np.full((seeds.size, self.num_observations, self.num_successors), np.nan)
        out[:, :, self._adm_idx] = np.moveaxis(q, 0, 2)
        return out

    def parameters(self, seeds=None) -> np.ndarray:
        """Admissible entries in ``(o, c')`` order: ``(n, P)``."""
        seeds = self._all if seeds is None else np.asarray(seeds)
        q = self.q.reshape(-1, self.num_seeds, self.num_observations)[:, seeds]
        return np.moveaxis(q, 0, 2).reshape(seeds.size, -1)

    def initial_parameters(self, seeds=None) -> np.ndarray:
        n = self.num_seeds if seeds is None else np.size(seeds)
        return np.full((n, self.num_parameters), self._init)

    def values_at(self, theta):
        q = np.full((self.num_observations, self.num_successors), np.nan)
        q[:, self._adm_idx] = np.asarray(theta).reshape(self.num_observations, -1)
        return q

    def jacobian(self, theta=None):
        nO, k = self.num_observations, self._adm_idx.size
        J = np.zeros((nO, self.num_successors, nO * k))
        o = np.repeat(np.arange(nO), k)
        c = np.tile(self._adm_idx, nO)
        J[o, c, np.arange(nO * k)] = 1.0
        return J


class _Parametric(_Estimator):
    """Projection onto ``B(theta_0, omega)`` for estimators with parameter arrays."""

    def __init__(self, num_seeds, num_observations, admissible, omega):
        super().__init__(num_seeds, num_observations, admissible)
        if omega is not None and not (np.isfinite(omega) and omega > 0):
            raise InvalidArgumentError(f"`omega` must be a finite number > 0 or None, got {omega!r}.")
        self.omega = None if omega is None else float(omega)

    # subclasses define: _arrays (list of [S, ...] arrays), _arrays0 (list of [S0, ...]), _init_row
    def _project(self, seeds: np.ndarray) -> None:
        if self.omega is None or seeds.size == 0:
            return
        rows = self._init_row[seeds]
        sq = np.zeros(seeds.size)
        diffs = []
        for a, a0 in zip(self._arrays, self._arrays0):
            d = a[seeds] - a0[rows]
            diffs.append(d)
            sq += (d * d).reshape(seeds.size, -1).sum(axis=1)
        dist = np.sqrt(sq)
        out = dist > self.omega
        if not out.any():
            return
        sel = seeds[out]
        scale = self.omega / dist[out]
        for a, a0, d in zip(self._arrays, self._arrays0, diffs):
            shape = (-1,) + (1,) * (a.ndim - 1)
            a[sel] = a0[rows[out]] + d[out] * scale.reshape(shape)

    def parameters(self, seeds=None) -> np.ndarray:
        """Flat parameters per seed: ``(n, P)``."""
        seeds = self._all if seeds is None else np.asarray(seeds)
        return np.concatenate([a[seeds].reshape(seeds.size, -1) for a in self._arrays], axis=1)

    def set_parameters(self, seeds: np.ndarray, theta: np.ndarray) -> None:
        """Set the flat parameters ``theta[n, P]`` (the order of :meth:`parameters`) of the listed seeds."""
        seeds = np.asarray(seeds)
        k = 0
        for a in self._arrays:
            size = int(np.prod(a.shape[1:], dtype=np.int64))
            a[seeds] = np.asarray(theta[:, k:k + size]).reshape((seeds.size,) + a.shape[1:])
            k += size

    def initial_parameters(self, seeds=None) -> np.ndarray:
        """``theta_0`` per seed: ``(n, P)``."""
        seeds = self._all if seeds is None else np.asarray(seeds)
        rows = self._init_row[seeds]
        return np.concatenate([a[rows].reshape(seeds.size, -1) for a in self._arrays0], axis=1)


class LinearQ(_Parametric):
    """``Q(o, c') = psi[o, c', :] . theta`` per seed.

    Parameters
    ----------
    num_seeds : int
    features : ndarray (nO, N+1, d)
        ``psi[o, c', :]``; rows at inadmissible ``c'`` are ignored.
    admissible : bool array (N+1,)
    theta0 : ndarray (d,) or (S, d) or None
        Initial parameters (default 0).
    omega : float or None
        Projection radius around ``theta0``.
    """

    kind = "linear"

    def __init__(self, num_seeds: int, features: np.ndarray, admissible, *, theta0=None,
                 omega: float | None = None):
        features = np.asarray(features, dtype=float)
        if features.ndim != 3 or features.shape[1] != np.size(admissible):
            raise InvalidArgumentError(
                f"`features` must have shape (nO, N+1, d) with N+1 = {np.size(admissible)}, "
                f"got {features.shape}.")
        super().__init__(num_seeds, features.shape[0], admissible, omega)
        self.features = np.ascontiguousarray(features)
        self.features.setflags(write=False)
        d = features.shape[2]
        theta0 = np.zeros(d) if theta0 is None else np.asarray(theta0, dtype=float)
        if theta0.shape == (d,):
            theta0 = theta0[None, :]
            self._init_row = np.zeros(self.num_seeds, np.int64)
        elif theta0.shape == (self.num_seeds, d):
            self._init_row = np.arange(self.num_seeds)
        else:
            raise InvalidArgumentError(f"`theta0` must have shape ({d},) or ({self.num_seeds}, {d}), "
                                       f"got {theta0.shape}.")
        self.theta = np.ascontiguousarray(theta0[self._init_row])
        self._arrays, self._arrays0 = [self.theta], [theta0.copy()]

    @property
    def num_parameters(self) -> int:
        return self.features.shape[2]

    def values(self, seeds, o):
        q = np.matmul(self.features[o], self.theta[seeds][:, :, None])[:, :, 0]
        return _masked(q, self.admissible, -np.inf)

    def value(self, seeds, o, c):
        return np.matmul(self.features[o, c][:, None, :], self.theta[seeds][:, :, None])[:, 0, 0]

    def sgd(self, seeds, o, c, target, eta) -> None:
        psi = self.features[o, c]
        th = self.theta[seeds]
        q = np.matmul(psi[:, None, :], th[:, :, None])[:, 0, 0]
        self.theta[seeds] = th - (eta * (q - target))[:, None] * psi
        self._project(seeds)

    def values_at(self, theta):
        return _masked(self.features @ np.asarray(theta, float), self.admissible, np.nan)

    def jacobian(self, theta=None):
        return np.where(self.admissible[None, :, None], self.features, 0.0)


# ---------------------------------------------------------------- MLP helpers
def mlp_layer_shapes(num_inputs: int, hidden, num_outputs: int) -> list[tuple[int, int]]:
    """``[(fan_in, fan_out), ...]`` of the weight matrices.

    >>> mlp_layer_shapes(3, (4, 5), 2)
    [(3, 4), (4, 5), (5, 2)]
    """
    widths = [int(num_inputs)] + [int(h) for h in hidden] + [int(num_outputs)]
    return list(zip(widths[:-1], widths[1:]))


def mlp_num_parameters(num_inputs: int, hidden, num_outputs: int) -> int:
    """Total weights and biases.

    >>> mlp_num_parameters(3, (4,), 2)
    26
    """
    return sum(a * b + b for a, b in mlp_layer_shapes(num_inputs, hidden, num_outputs))


def mlp_unflatten(theta: np.ndarray, num_inputs: int, hidden, num_outputs: int):
    """Flat ``theta[..., P]`` -> ``[(W_0, b_0), ...]`` views with shapes ``[..., fan_in, fan_out]``, ``[..., fan_out]``."""
    theta = np.asarray(theta)
    lead = theta.shape[:-1]
    out, k = [], 0
    for fi, fo in mlp_layer_shapes(num_inputs, hidden, num_outputs):
        W = theta[..., k:k + fi * fo].reshape(lead + (fi, fo))
        k += fi * fo
        b = theta[..., k:k + fo]
        k += fo
        out.append((W, b))
    if k != theta.shape[-1]:
        raise InvalidArgumentError(f"`theta` must have {k} parameters, got {theta.shape[-1]}.")
    return out


def mlp_init(rng: np.random.Generator, num_inputs: int, hidden, num_outputs: int, *,
             one_hot: bool = True) -> np.ndarray:
    """He initialization (see module docstring) as one flat vector."""
    parts = []
    shapes = mlp_layer_shapes(num_inputs, hidden, num_outputs)
    for l, (fi, fo) in enumerate(shapes):
        fan = 1 if (l == 0 and one_hot) else fi
        gain = 1.0 if l == len(shapes) - 1 else 2.0
        parts.append(rng.standard_normal(fi * fo) * np.sqrt(gain / fan))
        parts.append(np.zeros(fo))
    return np.concatenate(parts)


def _mlp_forward(layers, x):
    """Pre-activations ``z_1..z_L`` and hidden outputs ``h_0 = x, h_1..h_L`` and the output."""
    hs, zs = [x], []
    h = x
    for W, b in layers[:-1]:
        z = h @ W + b
        zs.append(z)
        h = np.maximum(z, 0.0)
        hs.append(h)
    W, b = layers[-1]
    return hs, zs, h @ W + b


def mlp_values(theta: np.ndarray, inputs: np.ndarray, hidden, num_outputs: int) -> np.ndarray:
    """Outputs ``Q(o, .; theta)`` for every input row: ``(nO, num_outputs)``."""
    inputs = np.asarray(inputs, float)
    layers = mlp_unflatten(theta, inputs.shape[1], hidden, num_outputs)
    return _mlp_forward(layers, inputs)[2]


def mlp_jacobian(theta: np.ndarray, inputs: np.ndarray, hidden, num_outputs: int) -> np.ndarray:
    """``J[o, c, :] = grad_theta Q(o, c; theta)`` by backpropagation: ``(nO, num_outputs, P)``.

    With ``delta_L[o, c] = W_L[:, c] * 1[z_L(o) > 0]`` and
    ``delta_l = (W_l delta_{l+1}) * 1[z_l > 0]``: ``dQ/dW_L[k, c'] = h_L[k] [c = c']``,
    ``dQ/db_L[c'] = [c = c']``, ``dQ/dW_l = h_l delta_{l+1}^T``, ``dQ/db_l = delta_{l+1}``
    (``h_0 = x_o``). The ReLU derivative at 0 is taken as 0.
    """
    inputs = np.asarray(inputs, float)
    nO = inputs.shape[0]
    C = int(num_outputs)
    layers = mlp_unflatten(theta, inputs.shape[1], hidden, C)
    hs, zs, _ = _mlp_forward(layers, inputs)
    blocks = [None] * (2 * len(layers))
    eye = np.eye(C)
    WL, _ = layers[-1]
    hL = hs[-1]
    # last layer: dQ(o,c)/dW_L[k, c'] = h_L[o, k] * [c == c']
    blocks[-2] = (hL[:, None, :, None] * eye[None, :, None, :]).reshape(nO, C, -1)
    blocks[-1] = np.broadcast_to(eye[None], (nO, C, C))
    if len(layers) > 1:
        delta = WL.T[None, :, :] * (zs[-1] > 0)[:, None, :]  # (nO, C, h_L)
        for l in range(len(layers) - 2, -1, -1):
            W, _ = layers[l]
            h = hs[l]  # (nO, fan_in)
            blocks[2 * l] = (h[:, None, :, None] * delta[:, :, None, :]).reshape(nO, C, -1)
            blocks[2 * l + 1] = delta
            if l > 0:
                delta = (delta @ W.T) * (zs[l - 1] > 0)[:, None, :]
    return np.concatenate(blocks, axis=2)


def _bmv(h: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Per-seed vector-matrix products ``h[n, k] @ W[n, k, m] -> [n, m]``."""
    return np.matmul(h[:, None, :], W)[:, 0, :]


class MLPQ(_Parametric):
    """A ReLU network ``Q(o, .; theta)`` per seed (float64), one output per successor.

    Parameters
    ----------
    num_seeds, num_observations : int
    admissible : bool array (N+1,)
    theta0 : ndarray (P,) or (S, P)
        Initial flat parameters (see :func:`mlp_init`), shared or per seed.
    hidden : tuple of int
        Hidden widths (default two layers of 64).
    inputs : ndarray (nO, d_in) or None
        Input features of each observation; ``None``: one-hot of ``o``.
    omega : float or None
        Projection radius around ``theta0``.
    """

    kind = "mlp"

    def __init__(self, num_seeds: int, num_observations: int, admissible, *, theta0,
                 hidden=(64, 64), inputs=None, omega: float | None = None):
        super().__init__(num_seeds, num_observations, admissible, omega)
        self.hidden = tuple(int(h) for h in hidden)
        if inputs is None:
            self.inputs = None
            d_in = self.num_observations
        else:
            inputs = np.ascontiguousarray(inputs, dtype=float)
            if inputs.ndim != 2 or inputs.shape[0] != self.num_observations:
                raise InvalidArgumentError(
                    f"`inputs` must have shape ({self.num_observations}, d_in), got {inputs.shape}.")
            inputs.setflags(write=False)
            self.inputs = inputs
            d_in = inputs.shape[1]
        self.num_inputs = d_in
        P = mlp_num_parameters(d_in, self.hidden, self.num_successors)
        theta0 = np.asarray(theta0, dtype=float)
        if theta0.shape == (P,):
            theta0 = theta0[None]
            self._init_row = np.zeros(self.num_seeds, np.int64)
        elif theta0.shape == (self.num_seeds, P):
            self._init_row = np.arange(self.num_seeds)
        else:
            raise InvalidArgumentError(f"`theta0` must have shape ({P},) or ({self.num_seeds}, {P}), "
                                       f"got {theta0.shape}.")
        layers0 = mlp_unflatten(theta0, d_in, self.hidden, self.num_successors)
        self.W = [np.ascontiguousarray(W[self._init_row]) for W, _ in layers0]
        self.b = [np.ascontiguousarray(b[self._init_row]) for _, b in layers0]
        self._arrays = [a for pair in zip(self.W, self.b) for a in pair]
        self._arrays0 = [np.ascontiguousarray(a) for W, b in layers0 for a in (W, b)]

    @property
    def num_parameters(self) -> int:
        return sum(a[0].size for a in self._arrays)

    def _input_layer(self, seeds, o):
        if self.inputs is None:
            return self.W[0][seeds, o] + self.b[0][seeds]
        return _bmv(self.inputs[o], self.W[0][seeds]) + self.b[0][seeds]

    def _hidden(self, seeds, o):
        """Hidden pre-activations, outputs and gathered middle weights for the seeds."""
        z = self._input_layer(seeds, o)
        zs, hs, Ws = [z], [], []
        h = np.maximum(z, 0.0)
        hs.append(h)
        for l in range(1, len(self.W) - 1):
            Wl = self.W[l][seeds]
            Ws.append(Wl)
            z = _bmv(h, Wl) + self.b[l][seeds]
            zs.append(z)
            h = np.maximum(z, 0.0)
            hs.append(h)
        return zs, hs, Ws

    def values(self, seeds, o):
        _, hs, _ = self._hidden(seeds, o)
        q = _bmv(hs[-1], self.W[-1][seeds]) + self.b[-1][seeds]
        return _masked(q, self.admissible, -np.inf)

    def value(self, seeds, o, c):
        _, hs, _ = self._hidden(seeds, o)
        wc = self.W[-1][seeds, :, c]
        return (hs[-1] * wc).sum(axis=1) + self.b[-1][seeds, c]

    def sgd(self, seeds, o, c, target, eta) -> None:
        """One SGD step per listed (distinct) seed on ``(Q(o, c') - y)^2 / 2``, then projection."""
        zs, hs, Ws = self._hidden(seeds, o)
        L = len(self.W) - 1
        wc = self.W[L][seeds, :, c]  # (n, h_L)
        q = (hs[-1] * wc).sum(axis=1) + self.b[L][seeds, c]
        g = eta * (q - target)  # (n,)
        # gradients at the current parameters, then the updates
        delta = wc * (zs[-1] > 0)
        self.W[L][seeds, :, c] = wc - g[:, None] * hs[-1]
        self.b[L][seeds, c] = self.b[L][seeds, c] - g
        for l in range(L - 1, 0, -1):
            Wl = Ws[l - 1]
            new_delta = np.matmul(Wl, delta[:, :, None])[:, :, 0] * (zs[l - 1] > 0)
            Wl -= (g[:, None] * hs[l - 1])[:, :, None] * delta[:, None, :]  # Wl is a gathered copy
            self.W[l][seeds] = Wl
            self.b[l][seeds] = self.b[l][seeds] - g[:, None] * delta
            delta = new_delta
        gd = g[:, None] * delta
        if self.inputs is None:
            self.W[0][seeds, o] = self.W[0][seeds, o] - gd
        else:
            x = self.inputs[o]
            self.W[0][seeds] = self.W[0][seeds] - x[:, :, None] * gd[:, None, :]
        self.b[0][seeds] = self.b[0][seeds] - gd
        self._project(seeds)

    def _inputs_matrix(self):
        return np.eye(self.num_observations) if self.inputs is None else self.inputs

    def values_at(self, theta):
        q = mlp_values(theta, self._inputs_matrix(), self.hidden, self.num_successors)
        return _masked(q, self.admissible, np.nan)

    def jacobian(self, theta):
        J = mlp_jacobian(theta, self._inputs_matrix(), self.hidden, self.num_successors)
        return np.where(self.admissible[None, :, None], J, 0.0)
