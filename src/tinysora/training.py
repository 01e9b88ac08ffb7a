"""A plain supervised training loop, shared by every chapter that trains a classifier.

Chapter 02 explains each line (loss, ``backward``, the optimiser step); chapter 01 uses it first.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from tinysora.runtime import progress


@dataclass
class History:
    """Per-epoch training loss and test accuracy, for plots and asserts."""

    train_loss: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)


@torch.no_grad()
def accuracy(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, batch_size: int = 1024) -> float:
    """Fraction of ``inputs`` (N, ...) whose arg-max logit equals ``labels`` (N,)."""
    if len(inputs) != len(labels):
        raise ValueError(f"{len(inputs)} inputs but {len(labels)} labels")
    was_training = model.training
    model.eval()
    correct = sum((model(inputs[i:i + batch_size]).argmax(-1) == labels[i:i + batch_size]).sum().item()
                  for i in range(0, len(inputs), batch_size))
    model.train(was_training)
    return correct / len(inputs)


def fit_classifier(model: nn.Module, train: tuple[torch.Tensor, torch.Tensor], test: tuple[torch.Tensor, torch.Tensor],
                   *, epochs: int, batch_size: int = 64, lr: float = 1e-3, weight_decay: float = 0.0,
                   optimizer: torch.optim.Optimizer | None = None, seed: int = 0, desc: str = "training") -> History:
    """Train ``model`` with cross-entropy on ``train = (X, y)``; record test accuracy each epoch.

    Mini-batches are shuffled with their own generator, so the run is reproducible from ``seed``.
    ``optimizer`` defaults to ``torch.optim.Adam(lr, weight_decay)`` (chapter 02 builds our own).
    """
    if epochs <= 0 or batch_size <= 0:
        raise ValueError(f"epochs and batch_size must be positive, got {epochs}, {batch_size}")
    inputs, labels = train
    if len(inputs) != len(labels):
        raise ValueError(f"{len(inputs)} training inputs but {len(labels)} labels")
    device = next(model.parameters()).device
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    history = History()
    bar = progress(range(epochs), desc=desc)
    for _ in bar:
        model.train()
        order = torch.randperm(len(inputs), generator=generator)
        total = 0.0
        for start in range(0, len(inputs), batch_size):
            batch = order[start:start + batch_size]
            x, y = inputs[batch].to(device), labels[batch].to(device)
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        history.train_loss.append(total / len(inputs))
        history.test_accuracy.append(accuracy(model, test[0].to(device), test[1].to(device)))
        bar.set_postfix(loss=f"{history.train_loss[-1]:.3f}", test_acc=f"{history.test_accuracy[-1]:.3f}")
    return history
