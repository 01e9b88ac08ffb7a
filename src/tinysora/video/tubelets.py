"""Chapter 16: ViViT's two ways to turn a clip into tokens, and how many tokens a clip costs.

* :func:`tinysora.video.tubelets.uniform_frame_indices` and
  :func:`tinysora.video.tubelets.sample_frames` -- ViViT's *uniform frame sampling* ("摊大饼"): keep
  ``n`` evenly spaced frames, then cut each frame into p x p patches
  (:func:`tinysora.video.patches.patchify` with ``patch=(1, p, p)``);
* :class:`tinysora.video.tubelets.TubeletEmbedding` -- *tubelet embedding*: a strided ``Conv3d``
  whose kernel spans p_t frames as well, one token per p_t x p x p box (the same numbers as
  ``patchify`` followed by a Linear, whose weight
  :meth:`tinysora.video.tubelets.TubeletEmbedding.as_linear_weight` returns);
* :func:`tinysora.video.tubelets.inflate_central_frame` -- ViViT's "central frame" initialisation
  of a tubelet kernel from a 2-D (image) patch kernel: zeros except the middle time slice;
* :func:`tinysora.video.tubelets.latent_token_count` -- Sora's "compress, then patchify": the token
  count of a clip after a video autoencoder that compresses time by s_t and space by s, and
  patches of p_t x p x p latent cells; ``pad=True`` rounds every axis up (a 1080-pixel side does
  not divide by 16).
"""

from __future__ import annotations

import math

import torch
from einops import rearrange
from torch import nn

from tinysora.video.patches import _check_patch, patch_grid, token_count

__all__ = ["TubeletEmbedding", "inflate_central_frame", "latent_token_count", "sample_frames",
           "uniform_frame_indices"]


def _positive_int(value, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def uniform_frame_indices(total: int, n: int) -> torch.Tensor:
    """``n`` evenly spaced frame indices of a ``total``-frame clip: the middle of n equal segments.

    Frame ``floor((2i + 1) total / (2n))`` for i = 0 .. n-1, so 4 of 16 frames are 2, 6, 10, 14 and
    n = total keeps every frame. Raises ValueError for n > total (ViViT samples, it never repeats).
    """
    _positive_int(total, "total")
    _positive_int(n, "n")
    if n > total:
        raise ValueError(f"cannot sample {n} distinct frames from a clip of {total}")
    return (2 * torch.arange(n) + 1) * total // (2 * n)


def sample_frames(video: torch.Tensor, n: int) -> torch.Tensor:
    """Uniform frame sampling: (B, T, C, H, W) -> (B, n, C, H, W), the frames
    :func:`tinysora.video.tubelets.uniform_frame_indices` picks."""
    if not isinstance(video, torch.Tensor) or video.ndim != 5:
        raise ValueError(f"video must be a (B, T, C, H, W) tensor, got shape {getattr(video, 'shape', None)}")
    return video[:, uniform_frame_indices(video.shape[1], n).to(video.device)]


class TubeletEmbedding(nn.Module):
    """Clip (B, T, C, H, W) -> tokens (B, T/p_t * H/p_h * W/p_w, dim), time-major like ``patchify``.

    A ``Conv3d`` with kernel = stride = ``tubelet``: each token sees one p_t x p_h x p_w box of the
    clip and nothing else. ``tubelet=(1, p, p)`` is uniform frame sampling's per-frame ViT embedding.
    """

    def __init__(self, channels: int, dim: int, tubelet=(2, 4, 4)):
        super().__init__()
        _positive_int(channels, "channels")
        _positive_int(dim, "dim")
        self.tubelet = _check_patch(tubelet)
        self.channels = channels
        self.proj = nn.Conv3d(channels, dim, kernel_size=self.tubelet, stride=self.tubelet)

    def grid(self, frames: int, height: int, width: int) -> tuple[int, int, int]:
        """The token grid of a clip; ValueError when a size does not divide by the tubelet."""
        return patch_grid(frames, height, width, self.tubelet)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if not isinstance(video, torch.Tensor) or video.ndim != 5 or video.shape[2] != self.channels:
            raise ValueError(f"video must be (B, T, {self.channels}, H, W), got {getattr(video, 'shape', None)}")
        self.grid(video.shape[1], video.shape[3], video.shape[4])
        out = self.proj(rearrange(video, "b t c h w -> b c t h w"))              # (B, D, T', H', W')
        return rearrange(out, "b d t h w -> b (t h w) d")                        # (B, N, D)

    def as_linear_weight(self) -> torch.Tensor:
        """The kernel as a (dim, p_t p_h p_w C) matrix in ``patchify``'s (pt ph pw c) order:
        ``patchify(video, tubelet) @ W.T + bias`` equals ``forward(video)``."""
        return rearrange(self.proj.weight, "d c pt ph pw -> d (pt ph pw c)")


def inflate_central_frame(weight_2d: torch.Tensor, frames: int) -> torch.Tensor:
    """ViViT's central-frame initialisation: (D, C, p, p) image kernel -> (D, C, p_t, p, p).

    Every time slice is zero except the middle one (index p_t // 2), which is the image kernel, so
    at initialisation a tubelet token is the image patch embedding of its tubelet's central frame.
    (The alternative, "filter inflation", repeats the kernel divided by p_t: the average frame.)
    """
    if not isinstance(weight_2d, torch.Tensor) or weight_2d.ndim != 4:
        raise ValueError(f"weight_2d must be a (D, C, p, p) conv kernel, got {getattr(weight_2d, 'shape', None)}")
    _positive_int(frames, "frames")
    out = weight_2d.new_zeros(weight_2d.shape[0], weight_2d.shape[1], frames, *weight_2d.shape[2:])
    out[:, :, frames // 2] = weight_2d
    return out


def latent_token_count(frames: int, height: int, width: int, *, compression=(1, 8, 8), patch=(1, 2, 2),
                       pad: bool = False) -> int:
    """Tokens of a (frames, height, width) clip after a video autoencoder and patchify.

    ``compression`` = (s_t, s_h, s_w): the autoencoder turns T x H x W into T/s_t x H/s_h x W/s_w
    latent cells; ``patch`` = (p_t, p_h, p_w) cuts those into tokens::

        N = T / (s_t p_t) * H / (s_h p_h) * W / (s_w p_w)

    With ``pad=False`` every quotient must be exact (ValueError names the side that is not); with
    ``pad=True`` each axis is rounded up, as padding the clip to the next multiple would.
    """
    for value, name in ((frames, "frames"), (height, "height"), (width, "width")):
        _positive_int(value, name)
    st, sh, sw = _check_patch(compression)
    pt, ph, pw = _check_patch(patch)
    if pad:
        return (math.ceil(frames / (st * pt)) * math.ceil(height / (sh * ph)) * math.ceil(width / (sw * pw)))
    for size, s, name in ((frames, st, "frame count"), (height, sh, "frame height"), (width, sw, "frame width")):
        if size % s:
            raise ValueError(f"{name} {size} is not divisible by the autoencoder's compression {s}")
    return token_count(frames // st, height // sh, width // sw, (pt, ph, pw))
