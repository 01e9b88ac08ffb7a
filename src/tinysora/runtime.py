"""Seeding, devices, progress bars and the banner every chapter prints first."""

from __future__ import annotations

import os
import random
import sys
from typing import Iterable, Iterator, TypeVar

import numpy as np
import torch
from tqdm.auto import tqdm

from tinysora.config import ENV_VAR, current_scale

T = TypeVar("T")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so a run can be repeated exactly."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def pick_device(prefer: str | None = None) -> torch.device:
    """``cuda`` when it is available (or when ``prefer`` names it), else ``cpu``."""
    if prefer is not None:
        device = torch.device(prefer)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device 'cuda' was asked for, but torch sees no CUDA GPU")
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def progress(iterable: Iterable[T], *, desc: str | None = None, total: int | None = None,
             **kwargs) -> Iterator[T]:
    """A tqdm progress bar that stays readable in a notebook, a terminal and a built book.

    In batch runs (``CI`` or ``TINYSORA_BATCH`` set, as the book build and the tests do) it
    updates rarely, so the stored output is a few lines rather than thousands of redraws.
    """
    batch = os.environ.get("CI") or os.environ.get("TINYSORA_BATCH")
    interactive = not batch and (sys.stderr.isatty() or "ipykernel" in sys.modules)
    kwargs.setdefault("mininterval", 0.5 if interactive else 30.0)
    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, desc=desc, total=total, **kwargs)


def describe_runtime(gpu_helps: bool = True) -> tuple[str, torch.device]:
    """Print the scale and device a chapter runs at, and how to get a GPU if it would help.

    Returns ``(scale, device)`` so the notebook can use them.
    """
    scale = current_scale()
    device = pick_device()
    print(f"tinysora scale : {scale}   (set {ENV_VAR}=smoke|cpu|gpu to change it)")
    print(f"device         : {device}" + (f" ({torch.cuda.get_device_name(0)})" if device.type == "cuda" else ""))
    print(f"torch          : {torch.__version__}")
    if device.type == "cpu" and gpu_helps and scale != "smoke":
        print(
            "This chapter runs faster on a GPU. On Colab: Runtime > Change runtime type > "
            "T4 GPU, then Runtime > Run all. (The cpu scale works too; it just takes minutes.)"
        )
    return scale, device
