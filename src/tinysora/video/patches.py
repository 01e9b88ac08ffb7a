"""Spacetime patches: a video (or its latent) as a sequence of tokens, and their positions.

Sora's report: "we turn videos into patches by first compressing videos into a lower-dimensional
latent space, and subsequently decomposing the representation into spacetime patches". ViViT
names the two ways to cut a (T, C, H, W) video:

* **uniform frame sampling** ("摊大饼", spreading the pancake): every frame cut into p x p patches,
  T * (H/p) * (W/p) tokens -- :func:`patchify` with ``patch=(1, p, p)``;
* **tubelets**: p_t x p x p boxes that span p_t frames too, (T/p_t) * (H/p) * (W/p) tokens.

Tokens are ordered time-major, ``(t h w)``, so the tokens of one frame are contiguous: a
factorised model can regroup them per frame or per position with one ``rearrange``.

Because a clip of any size or length is just a longer or shorter sequence, one model can take
wide, tall and square clips; its positions come from :func:`sincos_pos_embed_3d`, which works
for any grid (no learned table of fixed size) and is built from the package's one sinusoidal
embedding, :func:`tinysora.transformer.sinusoidal_embedding`.
"""

from __future__ import annotations

import torch
from einops import rearrange

from tinysora.transformer import sinusoidal_embedding


def _check_patch(patch) -> tuple[int, int, int]:
    if isinstance(patch, int):
        patch = (1, patch, patch)
    if (not isinstance(patch, (tuple, list)) or len(patch) != 3
            or not all(isinstance(p, int) and not isinstance(p, bool) and p >= 1 for p in patch)):
        raise ValueError(f"patch must be an int or (p_t, p_h, p_w) of positive ints, got {patch!r}")
    return tuple(patch)


def patch_grid(frames: int, height: int, width: int, patch=(1, 2, 2)) -> tuple[int, int, int]:
    """The token grid (T / p_t, H / p_h, W / p_w); raises ValueError when a size does not divide."""
    pt, ph, pw = _check_patch(patch)
    for size, p, name in ((frames, pt, "frame count"), (height, ph, "frame height"), (width, pw, "frame width")):
        if size % p != 0:
            raise ValueError(f"{name} {size} is not divisible by patch size {p}")
    return frames // pt, height // ph, width // pw


def token_count(frames: int, height: int, width: int, patch=(1, 2, 2)) -> int:
    """Number of spacetime patches: (T / p_t) * (H / p_h) * (W / p_w)."""
    gt, gh, gw = patch_grid(frames, height, width, patch)
    return gt * gh * gw


def patchify(video: torch.Tensor, patch=(1, 2, 2)) -> torch.Tensor:
    """Cut videos into spacetime patches.

    Args:
        video: (B, T, C, H, W).
        patch: (p_t, p_h, p_w), or an int p for per-frame p x p patches (p_t = 1).
    Returns:
        (B, N, p_t * p_h * p_w * C) with N = token_count(T, H, W, patch), time-major order.
    """
    if not isinstance(video, torch.Tensor) or video.ndim != 5:
        raise ValueError(f"video must be a (B, T, C, H, W) tensor, got shape {getattr(video, 'shape', None)}")
    pt, ph, pw = _check_patch(patch)
    patch_grid(video.shape[1], video.shape[3], video.shape[4], (pt, ph, pw))
    return rearrange(video, "b (t pt) c (h ph) (w pw) -> b (t h w) (pt ph pw c)", pt=pt, ph=ph, pw=pw)


def unpatchify(tokens: torch.Tensor, grid: tuple[int, int, int], patch=(1, 2, 2)) -> torch.Tensor:
    """Inverse of :func:`patchify`: (B, N, p_t p_h p_w C) tokens on ``grid`` -> (B, T, C, H, W)."""
    pt, ph, pw = _check_patch(patch)
    gt, gh, gw = grid
    if tokens.ndim != 3 or tokens.shape[1] != gt * gh * gw:
        raise ValueError(f"tokens must be (B, {gt * gh * gw}, D) for grid {tuple(grid)}, got {tuple(tokens.shape)}")
    if tokens.shape[2] % (pt * ph * pw) != 0:
        raise ValueError(f"token size {tokens.shape[2]} is not a multiple of the patch volume {pt * ph * pw}")
    return rearrange(tokens, "b (t h w) (pt ph pw c) -> b (t pt) c (h ph) (w pw)",
                     t=gt, h=gh, w=gw, pt=pt, ph=ph, pw=pw)


def sincos_pos_embed_3d(dim: int, grid: tuple[int, int, int],
                        dims: tuple[int, int, int] | None = None) -> torch.Tensor:
    """Fixed positions of a (T, H, W) token grid, (T*H*W, dim) in time-major order.

    The channels are split between time, rows and columns (``dims``; default: a quarter to
    time, the rest shared by rows and columns, each even; a 0 leaves that axis out, e.g.
    ``(0, dim/2, dim/2)`` for images) and each part is the package's one sinusoidal embedding,
    :func:`tinysora.transformer.sinusoidal_embedding`, of that coordinate. Any grid works, so one
    model takes clips of any size.
    """
    gt, gh, gw = grid
    if dims is None:
        d_t = 2 * (dim // 8)
        d_h = 2 * ((dim - d_t) // 4)
        dims = (d_t, d_h, dim - d_t - d_h)
    if sum(dims) != dim or any(d % 2 or d < 0 for d in dims):
        raise ValueError(f"dims {dims} must be even, non-negative and sum to {dim}")
    t, h, w = torch.meshgrid(torch.arange(gt), torch.arange(gh), torch.arange(gw), indexing="ij")
    parts = [sinusoidal_embedding(coord.flatten(), d) for d, coord in zip(dims, (t, h, w)) if d > 0]
    return torch.cat(parts, dim=1)                                              # (T*H*W, dim)
