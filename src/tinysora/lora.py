"""Chapter 15: low-rank adapters, LoRA and DoRA, for any ``nn.Linear`` of any model.

A map of the module:

* :class:`LoRALinear` wraps a frozen ``nn.Linear`` (weight ``W0`` of shape (out, in)) and adds a
  trainable low-rank update, ``h = W0 x + (alpha / r) B A x`` with ``A`` (r, in) random and ``B``
  (out, r) zero, so the adapted layer equals the base one at initialisation (Hu et al. 2022).
  With ``dora=True`` it is DoRA (Liu et al. 2024): ``W' = m * V / ||V||`` with ``V = W0 + (alpha / r) B A``,
  one magnitude ``m`` per output feature (the norm of each row of the (out, in) weight), initialised
  to the rows' norms of ``W0``, and the norm detached in backward as the paper's section 4.3 does.
  :meth:`LoRALinear.merge` folds the update into the weight (no extra cost at inference) and
  :meth:`LoRALinear.unmerge` takes it out again.
* :func:`add_adapters` replaces the linear layers of a module tree (all, or those whose name
  matches a filter) with adapters and freezes everything else: the seed's
  ``replace_linear_with_dora``, generalised.
* :func:`trainable_parameters` counts what an optimizer will update.

The conventions are peft's (A Kaiming-uniform with ``a = sqrt(5)``, ``scaling = alpha / r``, DoRA's
norm over dim 1 of the weight), so the layers equal peft's on the same weights (tested).
"""

from __future__ import annotations

import math
import re
from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

NORM_EPS = 1e-12          # a zero row of W0 + BA would divide by zero in DoRA


class LoRALinear(nn.Module):
    """A frozen linear layer plus a rank-``rank`` update (LoRA), or its DoRA re-parametrisation.

    forward(x (..., in)) -> (..., out). Trainable: ``lora_A`` (r, in), ``lora_B`` (out, r) and, for
    DoRA, ``magnitude`` (out,). The base layer's weight and bias are frozen.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float | None = None, *, dora: bool = False):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        limit = min(base.in_features, base.out_features)
        if not isinstance(rank, int) or isinstance(rank, bool) or not 1 <= rank <= limit:
            raise ValueError(f"rank must be an int in [1, min(in, out)] = [1, {limit}] for a "
                             f"{base.in_features} -> {base.out_features} layer, got {rank!r}")
        self.base = base.requires_grad_(False)
        self.rank, self.alpha, self.dora = rank, float(rank if alpha is None else alpha), dora
        self.scaling = self.alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.magnitude = nn.Parameter(self.row_norms(base.weight.detach())) if dora else None
        self.merged = False
        self._unmerged_weight: torch.Tensor | None = None

    @staticmethod
    def row_norms(weight: torch.Tensor) -> torch.Tensor:
        """||W[o, :]|| for every output feature o: (out, in) -> (out,)."""
        return weight.norm(p=2, dim=1).clamp_min(NORM_EPS)

    def delta(self) -> torch.Tensor:
        """The low-rank update (alpha / r) B A, (out, in)."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def adapted_weight(self) -> torch.Tensor:
        """The weight the layer applies: W0 + (alpha/r) B A, or DoRA's m * V / ||V|| (norm detached)."""
        weight = self.base.weight + self.delta()
        if not self.dora:
            return weight
        return weight * (self.magnitude / self.row_norms(weight).detach())[:, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged:
            return self.base(x)
        if self.dora:
            return F.linear(x, self.adapted_weight(), self.base.bias)
        return self.base(x) + self.scaling * F.linear(F.linear(x, self.lora_A), self.lora_B)   # (..., out)

    @torch.no_grad()
    def merge(self) -> None:
        """Fold the adapter into the base weight: one matrix, no extra cost per token."""
        if self.merged:
            raise RuntimeError("the adapter is already merged")
        merged = self.adapted_weight()
        if self.dora:                       # DoRA's merge is not additive: keep W0 to undo it exactly
            self._unmerged_weight = self.base.weight.detach().clone()
        self.base.weight.copy_(merged)
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Take the adapter out of the base weight again (to train it further or swap it)."""
        if not self.merged:
            raise RuntimeError("the adapter is not merged")
        if self.dora:
            self.base.weight.copy_(self._unmerged_weight)
            self._unmerged_weight = None
        else:
            self.base.weight.sub_(self.delta())
        self.merged = False

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha:g}, dora={self.dora}, merged={self.merged}"


def add_adapters(model: nn.Module, rank: int, alpha: float | None = None, *, dora: bool = False,
                 include: str | Callable[[str, nn.Linear], bool] | None = None) -> list[str]:
    """Replace the ``nn.Linear`` layers of ``model`` by adapters and freeze every other parameter.

    ``include``: None (every linear layer), a regular expression searched in the layer's dotted name
    (``"attn"``), or a function ``(name, layer) -> bool``. Returns the names of the adapted layers;
    a model with no matching linear layer is an error.
    """
    if include is None:
        chosen = lambda name, layer: True  # noqa: E731
    elif isinstance(include, str):
        pattern = re.compile(include)
        chosen = lambda name, layer: bool(pattern.search(name))  # noqa: E731
    else:
        chosen = include
    targets = [(name, layer) for name, layer in model.named_modules()
               if isinstance(layer, nn.Linear) and chosen(name, layer)]
    if not targets:
        linears = [name for name, layer in model.named_modules() if isinstance(layer, nn.Linear)]
        found = f"its linear layers are {', '.join(linears[:8])}{' ...' if len(linears) > 8 else ''}" if linears \
            else "it has no nn.Linear layers at all"
        raise ValueError(f"no linear layer of this {type(model).__name__} matches include={include!r}: {found}")
    model.requires_grad_(False)
    for name, layer in targets:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRALinear(layer, rank, alpha, dora=dora))
    return [name for name, _ in targets]


def merge_adapters(model: nn.Module) -> None:
    """Merge every adapter of ``model`` (see :meth:`LoRALinear.merge`)."""
    for layer in model.modules():
        if isinstance(layer, LoRALinear):
            layer.merge()


def trainable_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)
