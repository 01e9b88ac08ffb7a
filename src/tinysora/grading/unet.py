"""Checks for chapter 11's coding exercises (``tinysora.unet``): the unpadded U-Net's centre crop and a
soft Dice loss."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from tinysora.grading.core import CheckFailed, call_student, compare_arrays, passed, to_numpy
from tinysora.unet import pad_to

# ----------------------------------------------------------------------------- centre crop


def reference_center_crop(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, height, width), the middle; an odd surplus loses its extra row at the bottom
    (right), so that ``center_crop(pad_to(x, H, W), h, w)`` gives ``x`` back."""
    if height > x.shape[-2] or width > x.shape[-1]:
        raise ValueError(f"cannot crop a {x.shape[-2]}x{x.shape[-1]} map to the larger {height}x{width}")
    top, left = (x.shape[-2] - height) // 2, (x.shape[-1] - width) // 2
    return x[..., top:top + height, left:left + width]


def _crop_mistakes(x: torch.Tensor, height: int, width: int) -> dict[str, torch.Tensor]:
    H, W = x.shape[-2:]
    dy, dx = (H - height) // 2, (W - width) // 2
    found = {}
    if (H - height) % 2 or (W - width) % 2:
        found["center_crop dropped the odd extra row/column at the top/left; drop it at the bottom/right "
              "(top = (H - height) // 2) so that the crop undoes pad_to"] = \
            x[..., H - height - dy:H - dy, W - width - dx:W - dx]
    found["center_crop took the top-left corner: start at top = (H - height) // 2, left = (W - width) // 2"] = \
        x[..., :height, :width]
    return found


def check_center_crop(center_crop) -> None:
    """``center_crop(x (B, C, H, W), height, width) -> (B, C, height, width)``, the inverse of ``pad_to``."""
    rng = np.random.default_rng(0)
    cases = [((1, 2, 568, 568), 392, 392), ((2, 3, 9, 9), 6, 6), ((2, 1, 8, 11), 5, 8), ((1, 2, 7, 12), 4, 9),
             ((2, 2, 10, 7), 10, 4)]
    for shape, height, width in cases:
        x = torch.from_numpy(rng.normal(size=shape)).float()
        expected = reference_center_crop(x, height, width)
        got = to_numpy(call_student(center_crop, (x, height, width), "center_crop"), "the result of center_crop")
        H, W = shape[-2:]
        if got.shape[:-2] == expected.shape[:-2] and got.shape[-2:] != (height, width):
            gh, gw = got.shape[-2:]
            hint = ": height is the size of axis -2 (rows), width of axis -1" if (gh, gw) == (width, height) else ""
            if (gh - height, gw - width) in {(1, 0), (0, 1), (1, 1)}:
                hint = (": one row or column too many, the classic off-by-one of x[d:H - d] when H - height is "
                        "odd; slice x[..., top:top + height, left:left + width]")
            raise CheckFailed(f"center_crop(x of {H}x{W}, {height}, {width}) returned {gh}x{gw}, "
                              f"expected {height}x{width}{hint}")
        for message, wrong in _crop_mistakes(x, height, width).items():
            if got.shape == tuple(wrong.shape) and np.allclose(got, wrong.numpy()) and \
                    not np.allclose(got, expected.numpy()):
                raise CheckFailed(message)
        compare_arrays(got, expected, f"center_crop(x of {H}x{W}, {height}, {width})")
    small = torch.randn(1, 1, 5, 6)
    compare_arrays(call_student(center_crop, (pad_to(small, 8, 9), 5, 6), "center_crop"), small,
                   "center_crop(pad_to(x, 8, 9), 5, 6), which should give x back,")
    try:
        center_crop(torch.zeros(1, 1, 4, 4), 6, 6)
    except ValueError:
        pass
    except Exception as error:  # the student's own exception type
        raise CheckFailed(f"center_crop(a 4x4 map, 6, 6) should raise ValueError, it raised "
                          f"{type(error).__name__}: {error}") from None
    else:
        raise CheckFailed("center_crop(a 4x4 map, 6, 6) should raise ValueError: the crop is larger than the map")
    passed(f"center_crop is right on {len(cases)} maps (odd surpluses too), undoes pad_to, refuses to grow a map")


# ----------------------------------------------------------------------------- Dice loss


def _soft_dice(probs: torch.Tensor, onehot: torch.Tensor, eps: float, dims=(0, 2, 3)) -> torch.Tensor:
    inter = (probs * onehot).sum(dims)
    denominator = probs.sum(dims) + onehot.sum(dims)
    return ((2 * inter + eps) / (denominator + eps)).mean()


def _onehot(target: torch.Tensor, classes: int) -> torch.Tensor:
    return rearrange(F.one_hot(target, classes), "b h w k -> b k h w").float()


def reference_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - mean over classes k of (2 sum p_k y_k + eps) / (sum p_k + sum y_k + eps), sums over (B, H, W)."""
    probs = logits.softmax(dim=1)                                       # (B, K, H, W)
    return 1 - _soft_dice(probs, _onehot(target, logits.shape[1]), eps)


def _dice_mistakes(logits, target, eps):
    k = logits.shape[1]
    onehot = _onehot(target, k)
    probs = logits.softmax(1)
    return {
        "dice_loss returned the Dice coefficient; the loss to minimise is 1 - Dice":
            _soft_dice(probs, onehot, eps),
        "dice_loss used the raw logits; turn them into probabilities with a softmax over the class axis (dim=1)":
            1 - _soft_dice(logits, onehot, eps),
        "dice_loss used a sigmoid per class; a pixel's class probabilities come from a softmax over dim=1":
            1 - _soft_dice(logits.sigmoid(), onehot, eps),
        "dice_loss took the softmax over the wrong axis; the classes are dim=1 of (B, K, H, W)":
            1 - _soft_dice(logits.softmax(-1), onehot, eps),
        "dice_loss computed a Dice per image and averaged; sum over the whole batch (dims 0, 2, 3) per class":
            1 - _soft_dice(probs, onehot, eps, dims=(2, 3)),
        "dice_loss ignores eps; add it to the numerator and the denominator (an absent class then scores 1, "
        "not 0/0)": 1 - _soft_dice(probs, onehot, 1e-12),
        "dice_loss returned the cross-entropy (the chapter's loss); this exercise asks for the soft Dice loss":
            F.cross_entropy(logits, target),
    }


def check_dice_loss(dice_loss) -> None:
    """``dice_loss(logits (B, K, H, W), target (B, H, W) int64, eps) -> scalar tensor``, differentiable."""
    rng = np.random.default_rng(0)
    for trial in range(5):
        b, k, h, w = int(rng.integers(1, 4)), int(rng.integers(2, 5)), int(rng.integers(3, 8)), int(rng.integers(3, 8))
        logits = torch.from_numpy(rng.normal(scale=2.0, size=(b, k, h, w))).float().requires_grad_()
        present = k - 1 if trial % 2 else k                                   # odd trials: the last class absent
        target = torch.from_numpy(rng.integers(0, present, size=(b, h, w)))
        eps = float(rng.choice([1.0, 0.5]))
        expected = reference_dice_loss(logits.detach(), target, eps)
        got = call_student(dice_loss, (logits, target, eps), "dice_loss")
        if not torch.is_tensor(got):
            raise CheckFailed(f"dice_loss returned {type(got).__name__}; return a torch tensor so that "
                              "loss.backward() can train with it (no .item() or NumPy)")
        if got.numel() != 1:
            raise CheckFailed(f"dice_loss returned shape {tuple(got.shape)}; reduce to one number (a scalar tensor)")
        value = float(got.detach())
        for message, wrong in _dice_mistakes(logits.detach(), target, eps).items():
            if np.isclose(value, float(wrong), atol=1e-6) and not np.isclose(value, float(expected), atol=1e-6):
                raise CheckFailed(message)
        compare_arrays(got.detach().reshape(()), expected, "dice_loss", atol=1e-5)
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    loss = call_student(dice_loss, (logits, torch.randint(3, (2, 4, 4)), 1.0), "dice_loss")
    if not loss.requires_grad:
        raise CheckFailed("dice_loss's result carries no gradient: compute it with torch operations on the logits")
    perfect = call_student(dice_loss, (torch.full((1, 2, 3, 3), -30.0).index_fill(1, torch.tensor([0]), 30.0),
                                       torch.zeros(1, 3, 3, dtype=torch.int64), 1.0), "dice_loss")
    if abs(float(perfect)) > 1e-4:
        raise CheckFailed(f"a perfect, confident prediction should give a loss near 0, "
                          f"dice_loss gave {float(perfect):.4g}")
    passed("dice_loss matches the reference on 5 random batches (absent classes too) and is differentiable")


__all__ = ["check_center_crop", "check_dice_loss", "reference_center_crop", "reference_dice_loss"]
