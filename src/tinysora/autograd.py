"""Chapter 02: a tiny reverse-mode autograd, to show what ``loss.backward()`` does.

A :class:`Var` wraps a NumPy array and remembers which operation made it and from which
inputs: the computation graph. :meth:`Var.backward` visits the graph from the loss back to the
leaves in reverse topological order and applies the chain rule at each node, accumulating
``grad`` exactly as torch does.
"""

from __future__ import annotations

from typing import Callable

import numpy as np


def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched, back to ``shape``."""
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad


class Var:
    """An array that records how it was computed, so gradients can flow back through it."""

    def __init__(self, data, parents: tuple["Var", ...] = (), op: str = "leaf"):
        self.data = np.asarray(data, dtype=np.float64)
        self.grad = np.zeros_like(self.data)
        self.parents = parents
        self.op = op
        self._backward: Callable[[], None] = lambda: None

    def __repr__(self) -> str:
        return f"Var(shape={self.data.shape}, op={self.op!r})"

    @staticmethod
    def lift(value) -> "Var":
        return value if isinstance(value, Var) else Var(value, op="const")

    # -- operations: each builds the output and says how to send its gradient to the inputs
    def __add__(self, other) -> "Var":
        other = Var.lift(other)
        out = Var(self.data + other.data, (self, other), "+")

        def backward():
            self.grad += _unbroadcast(out.grad, self.data.shape)
            other.grad += _unbroadcast(out.grad, other.data.shape)
        out._backward = backward
        return out

    def __mul__(self, other) -> "Var":
        other = Var.lift(other)
        out = Var(self.data * other.data, (self, other), "*")

        def backward():
            self.grad += _unbroadcast(out.grad * other.data, self.data.shape)
            other.grad += _unbroadcast(out.grad * self.data, other.data.shape)
        out._backward = backward
        return out

    def __matmul__(self, other) -> "Var":
        other = Var.lift(other)
        if self.data.ndim != 2 or other.data.ndim != 2:
            raise ValueError(f"@ takes two 2-D arrays here, got shapes {self.data.shape} and {other.data.shape}")
        out = Var(self.data @ other.data, (self, other), "@")

        def backward():
            self.grad += out.grad @ other.data.T
            other.grad += self.data.T @ out.grad
        out._backward = backward
        return out

    def __pow__(self, exponent: float) -> "Var":
        if not isinstance(exponent, (int, float)):
            raise TypeError(f"only constant exponents are supported, got {type(exponent).__name__}")
        out = Var(self.data ** exponent, (self,), f"**{exponent}")

        def backward():
            self.grad += out.grad * exponent * self.data ** (exponent - 1)
        out._backward = backward
        return out

    def relu(self) -> "Var":
        out = Var(np.maximum(self.data, 0.0), (self,), "relu")

        def backward():
            self.grad += out.grad * (self.data > 0)
        out._backward = backward
        return out

    def tanh(self) -> "Var":
        out = Var(np.tanh(self.data), (self,), "tanh")

        def backward():
            self.grad += out.grad * (1.0 - out.data ** 2)
        out._backward = backward
        return out

    def sum(self) -> "Var":
        out = Var(self.data.sum(), (self,), "sum")

        def backward():
            self.grad += np.broadcast_to(out.grad, self.data.shape)
        out._backward = backward
        return out

    def mean(self) -> "Var":
        return self.sum() * (1.0 / self.data.size)

    def __neg__(self) -> "Var":
        return self * -1.0

    def __sub__(self, other) -> "Var":
        return self + (-Var.lift(other))

    __radd__ = __add__
    __rmul__ = __mul__

    def __rsub__(self, other) -> "Var":
        return Var.lift(other) - self

    # -- the backward pass
    def topological_order(self) -> list["Var"]:
        """Every node that led to ``self``, each after all of its inputs."""
        order, seen = [], set()

        def visit(node: Var) -> None:
            if id(node) not in seen:
                seen.add(id(node))
                for parent in node.parents:
                    visit(parent)
                order.append(node)
        visit(self)
        return order

    def backward(self) -> None:
        """Fill ``grad`` of every node upstream of this scalar with d(self)/d(node)."""
        if self.data.size != 1:
            raise ValueError(f"backward() starts from a scalar loss, but this Var has shape {self.data.shape}")
        self.grad = np.ones_like(self.data)
        for node in reversed(self.topological_order()):
            node._backward()


def numerical_gradient(f: Callable[[], float], array: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of the scalar ``f()`` with respect to ``array`` (changed in place, restored)."""
    grad = np.zeros_like(array, dtype=np.float64)
    for index in np.ndindex(array.shape):
        original = array[index]
        array[index] = original + eps
        plus = f()
        array[index] = original - eps
        minus = f()
        array[index] = original
        grad[index] = (plus - minus) / (2 * eps)
    return grad
