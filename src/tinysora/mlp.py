"""Chapter 01: neurons, layers and MLPs.

The seed's one formula, ``activation(np.dot(x, weights) + biases)``, written twice: in NumPy
to be read (row convention, ``x @ W + b`` with ``W`` of shape ``(in, out)``) and in torch to be
used (``nn.Linear`` stores ``weight`` as ``(out, in)`` and computes ``x @ weight.T + bias``).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
from scipy.special import erf
from torch import nn

# ----------------------------------------------------------------------------- activations (NumPy)


def relu(x: np.ndarray) -> np.ndarray:
    """max(0, x), element-wise."""
    return np.maximum(x, 0.0)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x), element-wise, without overflow for large negative x."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    positive = x >= 0
    out[positive] = 1.0 / (1.0 + np.exp(-x[positive]))
    exp_x = np.exp(x[~positive])
    out[~positive] = exp_x / (1.0 + exp_x)
    return out


def tanh(x: np.ndarray) -> np.ndarray:
    """(e^x - e^-x) / (e^x + e^-x), element-wise."""
    return np.tanh(x)


def gelu(x: np.ndarray) -> np.ndarray:
    """x * Phi(x), Phi the standard normal CDF (the exact GELU, as ``torch.nn.GELU()``)."""
    x = np.asarray(x, dtype=np.float64)
    return x * 0.5 * (1.0 + erf(x / math.sqrt(2.0)))


ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": relu, "sigmoid": sigmoid, "tanh": tanh, "gelu": gelu, "identity": lambda x: x,
}
TORCH_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "gelu": nn.GELU, "identity": nn.Identity,
    "gelu_tanh": lambda: nn.GELU(approximate="tanh"),   # GPT-2's and DiT's tanh approximation (torch only)
}


def get_activation(name: str) -> Callable[[np.ndarray], np.ndarray]:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


# ----------------------------------------------------------------------------- layers (NumPy)


def dense(x: np.ndarray, weights: np.ndarray, biases: np.ndarray, activation: str = "identity") -> np.ndarray:
    """One layer, the seed's formula: ``activation(x @ weights + biases)``.

    x: (..., d_in), weights: (d_in, d_out), biases: (d_out,) -> (..., d_out)
    """
    x, weights, biases = np.asarray(x), np.asarray(weights), np.asarray(biases)
    if weights.ndim != 2:
        raise ValueError(f"weights must be 2-D (d_in, d_out), got shape {weights.shape}")
    if x.shape[-1] != weights.shape[0]:
        raise ValueError(f"x has {x.shape[-1]} features but weights expect d_in={weights.shape[0]} "
                         f"(x: {x.shape}, weights: {weights.shape}; did you mean weights.T?)")
    if biases.shape != (weights.shape[1],):
        raise ValueError(f"biases must have shape ({weights.shape[1]},), got {biases.shape}")
    return get_activation(activation)(x @ weights + biases)


def init_dense(d_in: int, d_out: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Weights and biases drawn like ``nn.Linear``: U(-1/sqrt(d_in), 1/sqrt(d_in))."""
    if d_in <= 0 or d_out <= 0:
        raise ValueError(f"layer sizes must be positive, got d_in={d_in}, d_out={d_out}")
    bound = 1.0 / math.sqrt(d_in)
    return rng.uniform(-bound, bound, (d_in, d_out)), rng.uniform(-bound, bound, d_out)


def mlp_forward(x: np.ndarray, layers: Sequence[tuple[np.ndarray, np.ndarray]], activation: str = "relu") -> np.ndarray:
    """An MLP in NumPy: ``activation`` after every layer but the last.

    x: (N, d_0); layers[i] = (W_i (d_i, d_{i+1}), b_i (d_{i+1},)) -> (N, d_L)
    """
    if not layers:
        raise ValueError("an MLP needs at least one layer")
    for i, (weights, biases) in enumerate(layers):
        last = i == len(layers) - 1
        x = dense(x, weights, biases, "identity" if last else activation)
    return x


def numpy_layers(model: "MLP") -> list[tuple[np.ndarray, np.ndarray]]:
    """The (W, b) of every ``nn.Linear`` in ``model``, in NumPy row convention (W = weight.T)."""
    return [(layer.weight.detach().double().numpy().T, layer.bias.detach().double().numpy())
            for layer in model.modules() if isinstance(layer, nn.Linear)]


# ----------------------------------------------------------------------------- torch


class MLP(nn.Module):
    """Linear -> activation -> ... -> Linear, the classic multi-layer perceptron.

    ``sizes = [d_0, d_1, ..., d_L]`` gives L linear layers; input (..., d_0) -> output (..., d_L).
    """

    def __init__(self, sizes: Sequence[int], activation: str = "relu", dropout: float = 0.0):
        super().__init__()
        if len(sizes) < 2 or any(int(s) <= 0 for s in sizes):
            raise ValueError(f"sizes must list at least two positive widths, got {list(sizes)}")
        if activation not in TORCH_ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(TORCH_ACTIVATIONS)}")
        layers: list[nn.Module] = []
        for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(nn.Linear(d_in, d_out))
            if i < len(sizes) - 2:
                layers.append(TORCH_ACTIVATIONS[activation]())
                if dropout:
                    layers.append(nn.Dropout(dropout))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class FFN(nn.Module):
    """The Transformer's feed-forward network: up-project, activate, down-project.

    (..., d_model) -> (..., d_hidden) -> (..., d_model); d_hidden is usually 4 * d_model.
    """

    def __init__(self, d_model: int, d_hidden: int | None = None, activation: str = "gelu", dropout: float = 0.0):
        super().__init__()
        d_hidden = 4 * d_model if d_hidden is None else d_hidden
        if d_model <= 0 or d_hidden <= 0:
            raise ValueError(f"d_model and d_hidden must be positive, got {d_model}, {d_hidden}")
        if activation not in TORCH_ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {sorted(TORCH_ACTIVATIONS)}")
        self.up = nn.Linear(d_model, d_hidden)
        self.act = TORCH_ACTIVATIONS[activation]()
        self.down = nn.Linear(d_hidden, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.down(self.act(self.up(x))))


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of scalar parameters in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def mlp_parameter_count(sizes: Sequence[int]) -> int:
    """Closed form: sum over layers of d_in * d_out weights + d_out biases."""
    return sum(d_in * d_out + d_out for d_in, d_out in zip(sizes[:-1], sizes[1:]))


# ----------------------------------------------------------------------------- initialisation

INIT_SCHEMES = ("pytorch", "xavier", "kaiming", "constant")


def initialise_(model: nn.Module, scheme: str, *, value: float = 0.01, seed: int = 0) -> nn.Module:
    """Re-draw the weights of every ``nn.Linear`` in ``model`` in place; biases become 0.

    ``pytorch``: U(-1/sqrt(d_in), 1/sqrt(d_in)), weight variance 1 / (3 d_in) (``nn.Linear``'s default);
    ``xavier``: N(0, 2 / (d_in + d_out)) (Glorot & Bengio, 2010); ``kaiming``: N(0, 2 / d_in) (He et al.,
    2015, for ReLU); ``constant``: every weight equals ``value`` (the symmetric start that cannot learn).
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; choose one of {INIT_SCHEMES}")
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model.modules():
            if not isinstance(layer, nn.Linear):
                continue
            d_out, d_in = layer.weight.shape
            if scheme == "constant":
                layer.weight.fill_(value)
            elif scheme == "pytorch":
                bound = 1.0 / math.sqrt(d_in)
                layer.weight.copy_(torch.rand(d_out, d_in, generator=generator) * 2 * bound - bound)
            else:
                std = math.sqrt(2.0 / (d_in + d_out)) if scheme == "xavier" else math.sqrt(2.0 / d_in)
                layer.weight.copy_(torch.randn(d_out, d_in, generator=generator) * std)
            if layer.bias is not None:
                layer.bias.zero_()
    return model


@torch.no_grad()
def activation_stds(model: nn.Module, x: torch.Tensor) -> list[float]:
    """Standard deviation of the output of every ``nn.Linear`` in ``model`` on input ``x``, in order."""
    stds: list[float] = []
    hooks = [layer.register_forward_hook(lambda _m, _i, out: stds.append(out.std().item()))
             for layer in model.modules() if isinstance(layer, nn.Linear)]
    try:
        model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return stds
