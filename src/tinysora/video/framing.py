"""Chapter 16: native sizes versus square crops -- what cropping a wide or tall clip loses.

Earlier video models cropped (or resized) every training clip to a square, such as 256 x 256.
Sora trains at native aspect ratios instead. In the shapes world the truth is known, so the
loss of a crop can be measured exactly:

* :func:`tinysora.video.framing.center_crop` -- the central ``size`` x ``size`` window of every frame;
* :func:`tinysora.video.framing.crop_loss` -- for clips and their object masks: the share of the object's pixels cut
  away, the share of frames where the object is cut or gone entirely, and the share of clips
  in which the object is missing from at least one cropped frame (it "vanishes", breaking the
  object permanence a video model should learn).
"""

from __future__ import annotations

import torch

__all__ = ["center_crop", "crop_loss"]


def _crop_box(height: int, width: int, size: int) -> tuple[int, int]:
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"crop size must be a positive int, got {size!r}")
    if size > min(height, width):
        raise ValueError(f"a {size}x{size} crop does not fit a {height}x{width} frame")
    return (height - size) // 2, (width - size) // 2


def center_crop(video: torch.Tensor, size: int) -> torch.Tensor:
    """(..., H, W) -> (..., size, size): the central square of every frame (or mask)."""
    if not isinstance(video, torch.Tensor) or video.ndim < 2:
        raise ValueError(f"video must be a tensor of (..., H, W) frames, got {getattr(video, 'shape', None)}")
    top, left = _crop_box(video.shape[-2], video.shape[-1], size)
    return video[..., top:top + size, left:left + size]


def crop_loss(masks: torch.Tensor, size: int) -> dict[str, float]:
    """What a central square crop removes, measured on the object masks (N, T, H, W).

    Returns ``pixels_lost`` (object pixels outside the crop / all object pixels), ``frames_cut``
    (frames where some of the object is outside the crop), ``frames_gone`` (frames where none of
    it is inside) and ``clips_vanish`` (clips with at least one such frame), each a share in [0, 1].
    """
    if not isinstance(masks, torch.Tensor) or masks.ndim != 4 or masks.dtype != torch.bool:
        raise ValueError(f"masks must be a bool (N, T, H, W) tensor, got {getattr(masks, 'dtype', None)} "
                         f"{tuple(getattr(masks, 'shape', ()))}")
    full = masks.sum(dim=(-2, -1)).float()                                    # (N, T) pixels per frame
    if (full == 0).any():
        raise ValueError("every frame must show the object (its mask may not be empty)")
    kept = center_crop(masks, size).sum(dim=(-2, -1)).float()                 # (N, T)
    gone = kept == 0
    return dict(pixels_lost=float(1 - kept.sum() / full.sum()), frames_cut=float((kept < full).float().mean()),
                frames_gone=float(gone.float().mean()), clips_vanish=float(gone.any(dim=1).float().mean()))
