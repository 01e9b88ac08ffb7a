"""Chapter 02: losses and optimisers, written out.

``mse_loss`` is the seed's criterion; ``softmax``, ``cross_entropy`` and ``cross_entropy_grad``
are the classifier's loss in NumPy (the gradient is softmax minus one-hot); ``SGD`` (with
momentum) and ``Adam`` subclass ``torch.optim.Optimizer`` so they drop into any training loop,
and follow ``torch.optim.SGD`` and ``torch.optim.Adam`` step for step, L2 weight decay included.
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import torch

REDUCTIONS = ("mean", "sum", "none")


def mse_loss(prediction: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """Mean squared error: ``(prediction - target)**2``, then averaged, summed or kept per element."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} must have the "
                         "same shape (broadcasting here silently computes the wrong loss)")
    squared_error = (prediction - target) ** 2
    if reduction == "mean":
        return squared_error.mean()
    if reduction == "sum":
        return squared_error.sum()
    return squared_error


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities over the last axis, ``exp(z) / sum(exp(z))``, shifted by the max so it cannot overflow.

    logits: (..., C) -> (..., C)
    """
    shifted = logits - np.max(logits, axis=-1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=-1, keepdims=True)


def _check_labels(logits: np.ndarray, labels: np.ndarray) -> None:
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(f"logits must be (N, C) and labels (N,), got {logits.shape} and {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise ValueError(f"labels must lie in [0, {logits.shape[1]}), got values from {labels.min()} to {labels.max()}")


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean of ``-log softmax(logits)[label]``, via log-sum-exp (stable). logits: (N, C), labels: (N,) ints."""
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels)
    _check_labels(logits, labels)
    top = logits.max(axis=-1, keepdims=True)
    log_probs = logits - top - np.log(np.exp(logits - top).sum(axis=-1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def cross_entropy_grad(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """d cross_entropy / d logits = (softmax(logits) - one_hot(labels)) / N. (N, C) -> (N, C)"""
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels)
    _check_labels(logits, labels)
    grad = softmax(logits)
    grad[np.arange(len(labels)), labels] -= 1.0
    return grad / len(labels)


def _check_hyperparameters(lr: float, weight_decay: float) -> None:
    if not lr > 0:
        raise ValueError(f"learning rate must be positive, got {lr}")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be non-negative, got {weight_decay}")


class SGD(torch.optim.Optimizer):
    """Stochastic gradient descent, with heavy-ball momentum as ``torch.optim.SGD`` computes it.

        g   <- grad + weight_decay * p
        buf <- momentum * buf + g          (buf = g at the first step; skipped when momentum = 0)
        p   <- p - lr * buf
    """

    def __init__(self, params: Iterable, lr: float = 1e-2, weight_decay: float = 0.0, momentum: float = 0.0):
        _check_hyperparameters(lr, weight_decay)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else torch.enable_grad()(closure)()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else p.grad
                if group["momentum"]:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = grad.clone()
                    else:
                        state["momentum_buffer"].mul_(group["momentum"]).add_(grad)
                    grad = state["momentum_buffer"]
                p.add_(grad, alpha=-group["lr"])
        return loss


class Adam(torch.optim.Optimizer):
    """Adam (Kingma & Ba, 2015) with L2 weight decay, as ``torch.optim.Adam`` computes it.

    Per parameter, at step t with gradient g:

        g   <- g + weight_decay * p                       (L2 penalty, before the moments)
        m   <- beta1 * m + (1 - beta1) * g                (first moment, exp_avg)
        v   <- beta2 * v + (1 - beta2) * g**2             (second moment, exp_avg_sq)
        p   <- p - lr / (1 - beta1**t) * m / (sqrt(v / (1 - beta2**t)) + eps)
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        _check_hyperparameters(lr, weight_decay)
        if not all(0.0 <= beta < 1.0 for beta in betas) or len(betas) != 2:
            raise ValueError(f"betas must be two numbers in [0, 1), got {betas}")
        if eps <= 0:
            raise ValueError(f"eps must be positive, got {eps}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else torch.enable_grad()(closure)()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                grad = p.grad
                if group["weight_decay"]:
                    grad = grad.add(p, alpha=group["weight_decay"])
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                exp_avg, exp_avg_sq, t = state["exp_avg"], state["exp_avg_sq"], state["step"]
                exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                bias_correction1 = 1 - beta1 ** t
                bias_correction2 = 1 - beta2 ** t
                step_size = group["lr"] / bias_correction1
                denom = (exp_avg_sq.sqrt() / math.sqrt(bias_correction2)).add_(group["eps"])
                p.addcdiv_(exp_avg, denom, value=-step_size)
        return loss
