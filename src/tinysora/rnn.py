"""Chapters 04 and 05: recurrent networks and the LSTM.

Read top to bottom:

1. the plain RNN in NumPy, the seed's ``h_t = tanh(W_xh x_t + W_hh h_prev + b_h)``, with its
   forward pass over a sequence and back-propagation through time (BPTT) written out by hand;
2. the LSTM in NumPy, its four gates stacked in torch's order (input i, forget f, candidate g,
   output o), forward and BPTT;
3. conversion of those weights to and from ``torch.nn.RNN`` / ``torch.nn.LSTM``;
4. the same cells as small torch modules (:class:`RNN`, :class:`LSTM`), written to be read;
5. what the chapters do with them: gradient norms across time steps (vanishing gradients), a
   character-level language model of the shapes world's captions with greedy and temperature
   sampling, and a long-range memory task.

Layout: NumPy weights use the seed's column convention (``W_xh`` is ``(H, D)`` and multiplies
``x_t`` from the left, as ``weight_ih_l0`` in torch); sequences are batch-first ``(B, T, D)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from einops import rearrange
from torch import nn

from tinysora.runtime import progress

# ----------------------------------------------------------------------------- helpers


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) without overflow (``exp`` only of non-positive numbers)."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _array(value, name: str, ndim: int) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    value = np.asarray(value)
    if not np.issubdtype(value.dtype, np.number):
        raise TypeError(f"{name} must hold numbers, got dtype {value.dtype}")
    if value.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got shape {value.shape}")
    return value.astype(np.float64, copy=False)


def _init_uniform(shape, hidden_size: int, rng: np.random.Generator) -> np.ndarray:
    """torch's recurrent init: U(-1/sqrt(H), 1/sqrt(H))."""
    bound = 1.0 / math.sqrt(hidden_size)
    return rng.uniform(-bound, bound, size=shape)


# ----------------------------------------------------------------------------- 1. the RNN (NumPy)


@dataclass
class RNNParams:
    """Weights of one tanh RNN layer. W_xh: (H, D), W_hh: (H, H), b_h: (H,)."""

    W_xh: np.ndarray
    W_hh: np.ndarray
    b_h: np.ndarray

    def __post_init__(self):
        self.W_xh = _array(self.W_xh, "W_xh", 2)
        self.W_hh = _array(self.W_hh, "W_hh", 2)
        self.b_h = _array(self.b_h, "b_h", 1)
        hidden = self.W_xh.shape[0]
        if self.W_hh.shape != (hidden, hidden):
            raise ValueError(f"W_hh must be ({hidden}, {hidden}) to match W_xh {self.W_xh.shape}, "
                             f"got {self.W_hh.shape}")
        if self.b_h.shape != (hidden,):
            raise ValueError(f"b_h must be ({hidden},), got {self.b_h.shape}")

    @property
    def input_size(self) -> int:
        return self.W_xh.shape[1]

    @property
    def hidden_size(self) -> int:
        return self.W_xh.shape[0]

    @classmethod
    def init(cls, input_size: int, hidden_size: int, seed: int = 0) -> "RNNParams":
        """Random weights, drawn like torch's: U(-1/sqrt(H), 1/sqrt(H))."""
        if input_size <= 0 or hidden_size <= 0:
            raise ValueError(f"input_size and hidden_size must be positive, got {input_size}, {hidden_size}")
        rng = np.random.default_rng(seed)
        return cls(_init_uniform((hidden_size, input_size), hidden_size, rng),
                   _init_uniform((hidden_size, hidden_size), hidden_size, rng),
                   _init_uniform((hidden_size,), hidden_size, rng))


def _check_sequence(x, input_size: int) -> np.ndarray:
    x = _array(x, "x", 3)
    if x.shape[2] != input_size:
        raise ValueError(f"x has {x.shape[2]} features per step but the layer expects input_size={input_size} "
                         f"(x must be batch-first (B, T, D), got {x.shape})")
    if x.shape[1] == 0:
        raise ValueError("x has no time steps")
    return x


def _check_state(h, batch: int, hidden: int, name: str) -> np.ndarray:
    if h is None:
        return np.zeros((batch, hidden))
    h = _array(h, name, 2)
    if h.shape != (batch, hidden):
        raise ValueError(f"{name} must be (batch, hidden) = ({batch}, {hidden}), got {h.shape}")
    return h


def _check_step(x_t, h_prev, input_size: int, hidden_size: int) -> None:
    if not isinstance(x_t, np.ndarray) or not isinstance(h_prev, np.ndarray):
        raise TypeError(f"x_t and h_prev must be NumPy arrays, got {type(x_t).__name__} and {type(h_prev).__name__}")
    if x_t.ndim != 2 or x_t.shape[1] != input_size:
        raise ValueError(f"x_t must be (batch, {input_size}), got shape {x_t.shape}")
    if h_prev.shape != (x_t.shape[0], hidden_size):
        raise ValueError(f"h_prev must be (batch, hidden) = ({x_t.shape[0]}, {hidden_size}), got {h_prev.shape}")


def rnn_step(x_t: np.ndarray, h_prev: np.ndarray, params: RNNParams) -> np.ndarray:
    """One step: ``h_t = tanh(W_xh x_t + W_hh h_prev + b_h)``, for a batch of row vectors.

    x_t: (B, D), h_prev: (B, H) -> h_t: (B, H).
    """
    _check_step(x_t, h_prev, params.input_size, params.hidden_size)
    return np.tanh(x_t @ params.W_xh.T + h_prev @ params.W_hh.T + params.b_h)


def rnn_forward(x: np.ndarray, params: RNNParams, h0: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Run the RNN over a sequence, one step after the other (step t needs h_{t-1}).

    x: (B, T, D), h0: (B, H) or None (zeros) -> hs: (B, T, H), and a cache for :func:`rnn_backward`.
    """
    x = _check_sequence(x, params.input_size)
    batch, steps, _ = x.shape
    h = _check_state(h0, batch, params.hidden_size, "h0")
    h_init, hs = h, []
    for t in range(steps):
        h = rnn_step(x[:, t], h, params)
        hs.append(h)
    hs = np.stack(hs, axis=1)
    return hs, {"x": x, "h0": h_init, "hs": hs, "params": params}


def rnn_backward(dhs: np.ndarray, cache: dict) -> dict[str, np.ndarray]:
    """Back-propagation through time for :func:`rnn_forward`.

    dhs: (B, T, H), the loss gradient arriving at every h_t from outside (from y_t, say).
    Returns gradients ``W_xh, W_hh, b_h`` and ``x`` (B, T, D), ``h0`` (B, H). Walking back,
    the gradient reaching h_{t-1} is ``(dh_t * (1 - h_t^2)) @ W_hh``: a product of one such factor
    per step, which is why it vanishes (or explodes) over long spans.
    """
    x, h0, hs, p = cache["x"], cache["h0"], cache["hs"], cache["params"]
    dhs = _array(dhs, "dhs", 3)
    if dhs.shape != hs.shape:
        raise ValueError(f"dhs must have the shape of the hidden states {hs.shape}, got {dhs.shape}")
    grads = {"W_xh": np.zeros_like(p.W_xh), "W_hh": np.zeros_like(p.W_hh), "b_h": np.zeros_like(p.b_h),
             "x": np.zeros_like(x)}
    dh_next = np.zeros_like(h0)
    for t in reversed(range(x.shape[1])):
        h_prev = hs[:, t - 1] if t > 0 else h0
        da = (dhs[:, t] + dh_next) * (1.0 - hs[:, t] ** 2)   # (B, H), through tanh
        grads["W_xh"] += da.T @ x[:, t]
        grads["W_hh"] += da.T @ h_prev
        grads["b_h"] += da.sum(axis=0)
        grads["x"][:, t] = da @ p.W_xh
        dh_next = da @ p.W_hh
    grads["h0"] = dh_next
    return grads


# ----------------------------------------------------------------------------- 2. the LSTM (NumPy)


@dataclass
class LSTMParams:
    """Weights of one LSTM layer, the four gates stacked in torch's order (i, f, g, o).

    W_x: (4H, D), W_h: (4H, H), b: (4H,). Rows ``k*H:(k+1)*H`` belong to gate k, so
    ``W_x[:H]`` is the seed's ``W_xi``, ``W_x[H:2H]`` its ``W_xf``, ``W_x[2H:3H]`` its ``W_xc``
    (the candidate, torch's "g") and ``W_x[3H:]`` its ``W_xo``.
    """

    W_x: np.ndarray
    W_h: np.ndarray
    b: np.ndarray

    GATES = ("i", "f", "g", "o")

    def __post_init__(self):
        self.W_x = _array(self.W_x, "W_x", 2)
        self.W_h = _array(self.W_h, "W_h", 2)
        self.b = _array(self.b, "b", 1)
        rows = self.W_x.shape[0]
        if rows % 4:
            raise ValueError(f"W_x must have 4 * hidden rows (one block per gate), got {rows}")
        hidden = rows // 4
        if self.W_h.shape != (rows, hidden):
            raise ValueError(f"W_h must be ({rows}, {hidden}) to match W_x {self.W_x.shape}, got {self.W_h.shape}")
        if self.b.shape != (rows,):
            raise ValueError(f"b must be ({rows},), got {self.b.shape}")

    @property
    def input_size(self) -> int:
        return self.W_x.shape[1]

    @property
    def hidden_size(self) -> int:
        return self.W_x.shape[0] // 4

    def gate(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(W_x*, W_h*, b_*)`` of one gate: ``"i"``, ``"f"``, ``"g"`` or ``"o"``."""
        if name not in self.GATES:
            raise ValueError(f"unknown gate {name!r}; the gates are {self.GATES}")
        k, hidden = self.GATES.index(name), self.hidden_size
        rows = slice(k * hidden, (k + 1) * hidden)
        return self.W_x[rows], self.W_h[rows], self.b[rows]

    @classmethod
    def init(cls, input_size: int, hidden_size: int, seed: int = 0, forget_bias: float = 0.0) -> "LSTMParams":
        """Random weights drawn like torch's; ``forget_bias`` is added to the forget gate's bias."""
        if input_size <= 0 or hidden_size <= 0:
            raise ValueError(f"input_size and hidden_size must be positive, got {input_size}, {hidden_size}")
        rng = np.random.default_rng(seed)
        b = _init_uniform((4 * hidden_size,), hidden_size, rng)
        b[hidden_size:2 * hidden_size] += forget_bias
        return cls(_init_uniform((4 * hidden_size, input_size), hidden_size, rng),
                   _init_uniform((4 * hidden_size, hidden_size), hidden_size, rng), b)


def lstm_step(x_t: np.ndarray, h_prev: np.ndarray, c_prev: np.ndarray, params: LSTMParams):
    """One LSTM step for a batch of row vectors.

    x_t: (B, D), h_prev: (B, H), c_prev: (B, H) -> h: (B, H), c: (B, H), gates (i, f, g, o) each (B, H)::

        i = sigmoid(W_xi x + W_hi h_prev + b_i)     how much of the candidate to write
        f = sigmoid(W_xf x + W_hf h_prev + b_f)     how much of the old cell to keep
        g = tanh(W_xg x + W_hg h_prev + b_g)        the candidate content (the seed's c_tilde)
        o = sigmoid(W_xo x + W_ho h_prev + b_o)     how much of the cell to show
        c = f * c_prev + i * g                      the cell: additive update
        h = o * tanh(c)                             the hidden state: a gated view of the cell
    """
    _check_step(x_t, h_prev, params.input_size, params.hidden_size)
    if c_prev.shape != h_prev.shape:
        raise ValueError(f"c_prev must have the shape of h_prev {h_prev.shape}, got {c_prev.shape}")
    z = x_t @ params.W_x.T + h_prev @ params.W_h.T + params.b       # (B, 4H)
    z_i, z_f, z_g, z_o = np.split(z, 4, axis=-1)
    i, f, g, o = sigmoid(z_i), sigmoid(z_f), np.tanh(z_g), sigmoid(z_o)
    c = f * c_prev + i * g
    h = o * np.tanh(c)
    return h, c, (i, f, g, o)


def lstm_forward(x: np.ndarray, params: LSTMParams, h0: np.ndarray | None = None, c0: np.ndarray | None = None):
    """Run the LSTM over a sequence. x: (B, T, D) -> hs (B, T, H), cs (B, T, H), cache."""
    x = _check_sequence(x, params.input_size)
    batch, steps, _ = x.shape
    h = _check_state(h0, batch, params.hidden_size, "h0")
    c = _check_state(c0, batch, params.hidden_size, "c0")
    cache = {"x": x, "h0": h, "c0": c, "params": params, "gates": []}
    hs, cs = [], []
    for t in range(steps):
        h, c, gates = lstm_step(x[:, t], h, c, params)
        hs.append(h)
        cs.append(c)
        cache["gates"].append(gates)
    hs, cs = np.stack(hs, axis=1), np.stack(cs, axis=1)
    cache.update(hs=hs, cs=cs)
    return hs, cs, cache


def lstm_backward(dhs: np.ndarray, cache: dict) -> dict[str, np.ndarray]:
    """BPTT for :func:`lstm_forward`. dhs: (B, T, H) -> gradients ``W_x, W_h, b, x, h0, c0``.

    Along the cell the gradient passes as ``dc_{t-1} = dc_t * f_t``: multiplied by the forget gate
    only, with no squashing derivative and no weight matrix, so it survives many steps when f is
    near 1. That is the LSTM's answer to the vanishing gradient.
    """
    x, p = cache["x"], cache["params"]
    hs, cs = cache["hs"], cache["cs"]
    dhs = _array(dhs, "dhs", 3)
    if dhs.shape != hs.shape:
        raise ValueError(f"dhs must have the shape of the hidden states {hs.shape}, got {dhs.shape}")
    grads = {"W_x": np.zeros_like(p.W_x), "W_h": np.zeros_like(p.W_h), "b": np.zeros_like(p.b), "x": np.zeros_like(x)}
    dh_next, dc_next = np.zeros_like(cache["h0"]), np.zeros_like(cache["c0"])
    for t in reversed(range(x.shape[1])):
        i, f, g, o = cache["gates"][t]
        h_prev = hs[:, t - 1] if t > 0 else cache["h0"]
        c_prev = cs[:, t - 1] if t > 0 else cache["c0"]
        tanh_c = np.tanh(cs[:, t])
        dh = dhs[:, t] + dh_next
        dc = dc_next + dh * o * (1.0 - tanh_c ** 2)
        dz = np.concatenate([dc * g * i * (1 - i),          # input gate
                             dc * c_prev * f * (1 - f),     # forget gate
                             dc * i * (1 - g ** 2),         # candidate
                             dh * tanh_c * o * (1 - o)],    # output gate
                            axis=-1)                        # (B, 4H)
        grads["W_x"] += dz.T @ x[:, t]
        grads["W_h"] += dz.T @ h_prev
        grads["b"] += dz.sum(axis=0)
        grads["x"][:, t] = dz @ p.W_x
        dh_next = dz @ p.W_h
        dc_next = dc * f
    grads["h0"], grads["c0"] = dh_next, dc_next
    return grads


# ----------------------------------------------------------------------------- 3. conversion to and from torch


def _single_layer(module: nn.Module, kind: type) -> None:
    if not isinstance(module, kind):
        raise TypeError(f"expected a torch.nn.{kind.__name__}, got {type(module).__name__}")
    if module.num_layers != 1 or module.bidirectional:
        raise ValueError(f"only a single-layer, one-directional {kind.__name__} converts to one set of weights "
                         f"(got num_layers={module.num_layers}, bidirectional={module.bidirectional})")
    if getattr(module, "proj_size", 0):
        raise ValueError("an LSTM with proj_size > 0 has no NumPy twin here")


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().double().numpy().copy()


def rnn_params_from_torch(module: nn.Module) -> RNNParams:
    """Weights of a ``torch.nn.RNN`` (tanh, one layer) or a :class:`RNN` as :class:`RNNParams`.

    torch keeps two biases, ``bias_ih`` and ``bias_hh``; they are always added, so ``b_h`` is their sum.
    """
    if isinstance(module, RNN):
        cell = module.cell
        return RNNParams(_numpy(cell.x2h.weight), _numpy(cell.h2h.weight), _numpy(cell.x2h.bias))
    _single_layer(module, nn.RNN)
    if module.nonlinearity != "tanh":
        raise ValueError(f"the seed's RNN uses tanh; this nn.RNN uses {module.nonlinearity!r}")
    bias = _numpy(module.bias_ih_l0) + _numpy(module.bias_hh_l0) if module.bias else np.zeros(module.hidden_size)
    return RNNParams(_numpy(module.weight_ih_l0), _numpy(module.weight_hh_l0), bias)


def rnn_params_to_torch(params: RNNParams, batch_first: bool = True, dtype: torch.dtype = torch.float64) -> nn.RNN:
    """A ``torch.nn.RNN`` computing the same function (``bias_ih = b_h``, ``bias_hh = 0``)."""
    if not isinstance(params, RNNParams):
        raise TypeError(f"params must be RNNParams, got {type(params).__name__}")
    module = nn.RNN(params.input_size, params.hidden_size, batch_first=batch_first).to(dtype)
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.from_numpy(params.W_xh))
        module.weight_hh_l0.copy_(torch.from_numpy(params.W_hh))
        module.bias_ih_l0.copy_(torch.from_numpy(params.b_h))
        module.bias_hh_l0.zero_()
    return module


def lstm_params_from_torch(module: nn.Module) -> LSTMParams:
    """Weights of a ``torch.nn.LSTM`` (one layer) or a :class:`LSTM` as :class:`LSTMParams`."""
    if isinstance(module, LSTM):
        cell = module.cell
        return LSTMParams(_numpy(cell.x2g.weight), _numpy(cell.h2g.weight), _numpy(cell.x2g.bias))
    _single_layer(module, nn.LSTM)
    bias = _numpy(module.bias_ih_l0) + _numpy(module.bias_hh_l0) if module.bias else np.zeros(4 * module.hidden_size)
    return LSTMParams(_numpy(module.weight_ih_l0), _numpy(module.weight_hh_l0), bias)


def lstm_params_to_torch(params: LSTMParams, batch_first: bool = True, dtype: torch.dtype = torch.float64) -> nn.LSTM:
    """A ``torch.nn.LSTM`` computing the same function (``bias_ih = b``, ``bias_hh = 0``)."""
    if not isinstance(params, LSTMParams):
        raise TypeError(f"params must be LSTMParams, got {type(params).__name__}")
    module = nn.LSTM(params.input_size, params.hidden_size, batch_first=batch_first).to(dtype)
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.from_numpy(params.W_x))
        module.weight_hh_l0.copy_(torch.from_numpy(params.W_h))
        module.bias_ih_l0.copy_(torch.from_numpy(params.b))
        module.bias_hh_l0.zero_()
    return module


# ----------------------------------------------------------------------------- 4. the cells in torch


class RNNCell(nn.Module):
    """``h_t = tanh(W_xh x_t + W_hh h_prev + b_h)``: (B, D), (B, H) -> (B, H)."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        if input_size <= 0 or hidden_size <= 0:
            raise ValueError(f"input_size and hidden_size must be positive, got {input_size}, {hidden_size}")
        self.x2h = nn.Linear(input_size, hidden_size)               # W_xh, b_h
        self.h2h = nn.Linear(hidden_size, hidden_size, bias=False)  # W_hh

    def forward(self, x_t: torch.Tensor, h_prev: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.x2h(x_t) + self.h2h(h_prev))


class RNN(nn.Module):
    """A tanh RNN layer over a batch-first sequence: (B, T, D) -> outputs (B, T, H), h_T (B, H).

    The input projections ``W_xh x_t`` of all steps are computed at once (they do not depend on
    each other); only the recurrence ``W_hh h_{t-1}`` is serial.
    """

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.cell = RNNCell(input_size, hidden_size)
        self.hidden_size = hidden_size

    @classmethod
    def from_params(cls, params: RNNParams, dtype: torch.dtype = torch.float64) -> "RNN":
        layer = cls(params.input_size, params.hidden_size).to(dtype)
        with torch.no_grad():
            layer.cell.x2h.weight.copy_(torch.from_numpy(params.W_xh))
            layer.cell.x2h.bias.copy_(torch.from_numpy(params.b_h))
            layer.cell.h2h.weight.copy_(torch.from_numpy(params.W_hh))
        return layer

    def forward(self, x: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim != 3:
            raise ValueError(f"expected a batch-first sequence (B, T, D), got shape {tuple(x.shape)}")
        h = x.new_zeros(x.shape[0], self.hidden_size) if h0 is None else h0
        projected = self.cell.x2h(x)                           # (B, T, H), all steps in parallel
        outputs = []
        for t in range(x.shape[1]):                            # the serial part
            h = torch.tanh(projected[:, t] + self.cell.h2h(h))
            outputs.append(h)
        return torch.stack(outputs, dim=1), h


class LSTMCell(nn.Module):
    """One LSTM step: (B, D), ((B, H), (B, H)) -> (h, c), gates stacked (i, f, g, o) as torch's."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        if input_size <= 0 or hidden_size <= 0:
            raise ValueError(f"input_size and hidden_size must be positive, got {input_size}, {hidden_size}")
        self.x2g = nn.Linear(input_size, 4 * hidden_size)               # W_x, b for all four gates
        self.h2g = nn.Linear(hidden_size, 4 * hidden_size, bias=False)  # W_h

    def forward(self, x_t: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        h_prev, c_prev = state
        return _lstm_update(self.x2g(x_t) + self.h2g(h_prev), c_prev)


def _lstm_update(z: torch.Tensor, c_prev: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    z_i, z_f, z_g, z_o = z.chunk(4, dim=-1)
    i, f, g, o = torch.sigmoid(z_i), torch.sigmoid(z_f), torch.tanh(z_g), torch.sigmoid(z_o)
    c = f * c_prev + i * g        # keep some of the old cell, write some of the candidate
    h = o * torch.tanh(c)         # show some of the cell
    return h, c


class LSTM(nn.Module):
    """An LSTM layer: (B, T, D) -> outputs (B, T, H), (h_T, c_T), like ``nn.LSTM(batch_first=True)``."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.cell = LSTMCell(input_size, hidden_size)
        self.hidden_size = hidden_size

    @classmethod
    def from_params(cls, params: LSTMParams, dtype: torch.dtype = torch.float64) -> "LSTM":
        layer = cls(params.input_size, params.hidden_size).to(dtype)
        with torch.no_grad():
            layer.cell.x2g.weight.copy_(torch.from_numpy(params.W_x))
            layer.cell.x2g.bias.copy_(torch.from_numpy(params.b))
            layer.cell.h2g.weight.copy_(torch.from_numpy(params.W_h))
        return layer

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None):
        if x.ndim != 3:
            raise ValueError(f"expected a batch-first sequence (B, T, D), got shape {tuple(x.shape)}")
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            state = (zeros, zeros)
        h, c = state
        projected = self.cell.x2g(x)                           # (B, T, 4H)
        outputs = []
        for t in range(x.shape[1]):
            h, c = _lstm_update(projected[:, t] + self.cell.h2g(h), c)
            outputs.append(h)
        return torch.stack(outputs, dim=1), (h, c)


def lstm_parameter_count(input_size: int, hidden_size: int) -> int:
    """Parameters of ``nn.LSTM(input_size, hidden_size)``: four gates, each with W_x (H, D),
    W_h (H, H) and torch's two bias vectors: ``4 (H D + H H + 2 H)``."""
    if input_size <= 0 or hidden_size <= 0:
        raise ValueError(f"input_size and hidden_size must be positive, got {input_size}, {hidden_size}")
    return 4 * (hidden_size * input_size + hidden_size * hidden_size + 2 * hidden_size)


# ----------------------------------------------------------------------------- 5a. vanishing gradients


def input_gradient_norms(layer: nn.Module, x: torch.Tensor) -> np.ndarray:
    """How much the last hidden state depends on each input: ``|| d sum(h_T) / d x_t ||`` for every t.

    ``layer`` is batch-first and returns ``(outputs, state)`` (``nn.RNN``, ``nn.LSTM``, :class:`RNN`,
    :class:`LSTM`). x: (B, T, D) -> (T,), averaged over the batch. For a plain RNN the norms shrink
    geometrically as t moves away from T: the vanishing gradient.
    """
    if not isinstance(layer, nn.Module):
        raise TypeError(f"layer must be a torch module, got {type(layer).__name__}")
    if not isinstance(x, torch.Tensor) or x.ndim != 3:
        raise ValueError("x must be a batch-first tensor (B, T, D)")
    if hasattr(layer, "batch_first") and not layer.batch_first:
        raise ValueError("layer must be batch_first=True")
    x = x.detach().clone().requires_grad_(True)
    outputs, _ = layer(x)
    outputs[:, -1].sum().backward()
    return x.grad.norm(dim=-1).mean(dim=0).detach().cpu().double().numpy()


# ----------------------------------------------------------------------------- 5b. a character language model


class CharVocab:
    """Characters <-> ids. Id 0 is padding; id 1 is ``"\\n"``, which starts and ends every text."""

    PAD, BOUNDARY = 0, 1

    def __init__(self, texts: Sequence[str]):
        if isinstance(texts, str) or not texts:
            raise ValueError("CharVocab needs a non-empty list of texts")
        chars = sorted(set("".join(texts)) - {"\n"})
        self.itos = ["<pad>", "\n", *chars]
        self.stoi = {ch: i for i, ch in enumerate(self.itos) if i > 0}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        unknown = sorted(set(text) - set(self.stoi))
        if unknown:
            raise ValueError(f"characters {unknown} are not in the vocabulary")
        return [self.stoi[ch] for ch in text]

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.itos[i] for i in ids if i != self.PAD)


def encode_texts(texts: Sequence[str], vocab: CharVocab) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher forcing pairs: inputs ``"\\n" + text`` and targets ``text + "\\n"``, padded.

    -> inputs (N, T) with PAD after the end, targets (N, T) with -100 (ignored by the loss) there.
    """
    if isinstance(texts, str) or not texts:
        raise ValueError("texts must be a non-empty list of strings")
    if not isinstance(vocab, CharVocab):
        raise TypeError(f"vocab must be a CharVocab, got {type(vocab).__name__}")
    length = max(len(t) for t in texts) + 1
    inputs = torch.full((len(texts), length), vocab.PAD, dtype=torch.long)
    targets = torch.full((len(texts), length), -100, dtype=torch.long)
    for row, text in enumerate(texts):
        ids = vocab.encode(text)
        inputs[row, :len(ids) + 1] = torch.tensor([vocab.BOUNDARY, *ids])
        targets[row, :len(ids) + 1] = torch.tensor([*ids, vocab.BOUNDARY])
    return inputs, targets


class CharLM(nn.Module):
    """Embedding -> recurrent layer -> linear read-out: the seed's ``y_t = W_hy h_t + b_y``.

    ids (B, T) -> logits (B, T, V): scores for the next character after each prefix.
    ``cell`` is ``"rnn"`` (``nn.RNN``, tanh) or ``"lstm"`` (``nn.LSTM``).
    """

    def __init__(self, vocab_size: int, embed: int = 32, hidden: int = 128, cell: str = "rnn"):
        super().__init__()
        if vocab_size <= 1 or embed <= 0 or hidden <= 0:
            raise ValueError(f"need vocab_size > 1 and positive sizes, got {vocab_size}, {embed}, {hidden}")
        layers = {"rnn": nn.RNN, "lstm": nn.LSTM}
        if cell not in layers:
            raise ValueError(f"cell must be one of {sorted(layers)}, got {cell!r}")
        self.embed = nn.Embedding(vocab_size, embed)
        self.rnn = layers[cell](embed, hidden, batch_first=True)
        self.head = nn.Linear(hidden, vocab_size)   # W_hy, b_y

    def forward(self, ids: torch.Tensor, state=None):
        out, state = self.rnn(self.embed(ids), state)   # (B, T, H)
        return self.head(out), state                    # (B, T, V)


def train_char_lm(model: CharLM, texts: Sequence[str], vocab: CharVocab, *, steps: int, batch_size: int = 64,
                  lr: float = 3e-3, clip: float = 1.0, seed: int = 0, desc: str = "char LM") -> list[float]:
    """Train with teacher forcing (cross-entropy on the next character); returns the loss per step."""
    if steps <= 0 or batch_size <= 0:
        raise ValueError(f"steps and batch_size must be positive, got {steps}, {batch_size}")
    inputs, targets = encode_texts(texts, vocab)
    device = next(model.parameters()).device
    inputs, targets = inputs.to(device), targets.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    bar = progress(range(steps), desc=desc)
    for step in bar:
        batch = torch.randint(len(texts), (batch_size,), generator=generator).to(device)
        logits, _ = model(inputs[batch])
        loss = nn.functional.cross_entropy(rearrange(logits, "b t v -> (b t) v"), targets[batch].flatten(),
                                           ignore_index=-100)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        losses.append(loss.item())
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    return losses


def softmax_with_temperature(logits: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(logits / temperature)`` over the last axis. Below 1 it sharpens, above 1 it flattens."""
    if temperature <= 0:
        raise ValueError(f"temperature must be positive (use greedy decoding for the limit 0), got {temperature}")
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


@torch.no_grad()
def generate(model: CharLM, vocab: CharVocab, n: int = 1, *, prompt: str = "", max_len: int = 60,
             temperature: float = 1.0, greedy: bool = False, seed: int = 0) -> list[str]:
    """Sample ``n`` texts one character at a time, feeding each choice back in as the next input.

    ``greedy``: always take the highest-scoring character (the same text every time);
    otherwise draw from ``softmax(logits / temperature)``. A text ends at ``"\\n"`` or ``max_len``.
    Returns the texts without the final ``"\\n"`` (the prompt included).
    """
    if n <= 0 or max_len <= 0:
        raise ValueError(f"n and max_len must be positive, got {n}, {max_len}")
    if not greedy and temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}; use greedy=True for argmax decoding")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device="cpu").manual_seed(seed)
    start = torch.tensor([vocab.BOUNDARY, *vocab.encode(prompt)], device=device)
    logits, state = model(start.repeat(n, 1))                    # read the prompt
    texts = [list(prompt) for _ in range(n)]
    done = torch.zeros(n, dtype=torch.bool)
    for _ in range(max_len - len(prompt)):
        scores = logits[:, -1].float().cpu()                      # (n, V)
        scores[:, vocab.PAD] = -math.inf                          # never emit padding
        if greedy:
            choice = scores.argmax(-1)
        else:
            choice = torch.multinomial(torch.softmax(scores / temperature, -1), 1, generator=generator)[:, 0]
        for row in range(n):
            if not done[row]:
                if choice[row] == vocab.BOUNDARY:
                    done[row] = True
                else:
                    texts[row].append(vocab.itos[choice[row]])
        if done.all():
            break
        logits, state = model(choice[:, None].to(device), state)  # feed the choice back in
    model.train(was_training)
    return ["".join(chars) for chars in texts]


# ----------------------------------------------------------------------------- 5c. a long-range memory task


def make_memory_task(n: int, length: int, n_symbols: int = 4, n_distractors: int = 4,
                     seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Remember the first token: x = [s, d, d, ..., d] -> y = s.

    Token 0..n_symbols-1 is the symbol to remember, shown at step 0 only; steps 1..length-1 hold
    random distractors (ids n_symbols .. n_symbols+n_distractors-1). The answer is read after the
    last step, ``length - 1`` steps after the only useful input. Chance accuracy is 1 / n_symbols.
    -> x (n, length) long, y (n,) long.
    """
    if n <= 0 or length < 2 or n_symbols < 2 or n_distractors < 1:
        raise ValueError(f"need n > 0, length >= 2, n_symbols >= 2, n_distractors >= 1; got {n}, {length}, "
                         f"{n_symbols}, {n_distractors}")
    generator = torch.Generator().manual_seed(seed)
    y = torch.randint(n_symbols, (n,), generator=generator)
    x = torch.randint(n_symbols, n_symbols + n_distractors, (n, length), generator=generator)
    x[:, 0] = y
    return x, y


class SequenceClassifier(nn.Module):
    """Embedding -> RNN or LSTM -> linear read-out of the last hidden state: (B, T) -> (B, classes)."""

    def __init__(self, vocab_size: int, num_classes: int, hidden: int = 64, cell: str = "rnn",
                 embed: int = 16, forget_bias: float = 1.0):
        super().__init__()
        layers = {"rnn": nn.RNN, "lstm": nn.LSTM}
        if cell not in layers:
            raise ValueError(f"cell must be one of {sorted(layers)}, got {cell!r}")
        self.embed = nn.Embedding(vocab_size, embed)
        self.rnn = layers[cell](embed, hidden, batch_first=True)
        self.head = nn.Linear(hidden, num_classes)
        if cell == "lstm" and forget_bias:
            with torch.no_grad():   # start by remembering: f = sigmoid(forget_bias + ...) near 1
                self.rnn.bias_hh_l0[hidden:2 * hidden] += forget_bias

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.embed(ids))   # (B, T, H)
        return self.head(out[:, -1])         # (B, classes)


@dataclass
class TrainLog:
    """Loss per step and (step, test accuracy) pairs."""

    loss: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)


def train_sequence_classifier(model: nn.Module, train: tuple[torch.Tensor, torch.Tensor],
                              test: tuple[torch.Tensor, torch.Tensor], *, steps: int, batch_size: int = 64,
                              lr: float = 3e-3, clip: float = 1.0, eval_every: int = 50, seed: int = 0,
                              desc: str = "training") -> TrainLog:
    """Adam with gradient clipping on random mini-batches of ``train``; test accuracy every ``eval_every`` steps."""
    if steps <= 0 or batch_size <= 0 or eval_every <= 0:
        raise ValueError(f"steps, batch_size and eval_every must be positive, got {steps}, {batch_size}, {eval_every}")
    x, y = train
    if len(x) != len(y):
        raise ValueError(f"{len(x)} training sequences but {len(y)} labels")
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    log = TrainLog()
    bar = progress(range(1, steps + 1), desc=desc)
    for step in bar:
        model.train()
        batch = torch.randint(len(x), (batch_size,), generator=generator)
        loss = nn.functional.cross_entropy(model(x[batch].to(device)), y[batch].to(device))
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        log.loss.append(loss.item())
        if step % eval_every == 0 or step == steps:
            log.eval_steps.append(step)
            log.test_accuracy.append(sequence_accuracy(model, *test))
            bar.set_postfix(loss=f"{loss.item():.3f}", test_acc=f"{log.test_accuracy[-1]:.3f}")
    return log


@torch.no_grad()
def sequence_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Fraction of sequences whose arg-max class equals the label."""
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"need as many labels as sequences (and at least one), got {len(x)} and {len(y)}")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = sum((model(x[i:i + batch_size].to(device)).argmax(-1).cpu() == y[i:i + batch_size]).sum().item()
                  for i in range(0, len(x), batch_size))
    model.train(was_training)
    return correct / len(x)


__all__ = [
    "sigmoid", "RNNParams", "rnn_step", "rnn_forward", "rnn_backward",
    "LSTMParams", "lstm_step", "lstm_forward", "lstm_backward",
    "rnn_params_from_torch", "rnn_params_to_torch", "lstm_params_from_torch", "lstm_params_to_torch",
    "RNNCell", "RNN", "LSTMCell", "LSTM", "lstm_parameter_count", "input_gradient_norms",
    "CharVocab", "encode_texts", "CharLM", "train_char_lm", "softmax_with_temperature", "generate",
    "make_memory_task", "SequenceClassifier", "TrainLog", "train_sequence_classifier", "sequence_accuracy",
]
