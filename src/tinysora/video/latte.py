"""Chapter 16: Latte's ways to factorise space and time in a video diffusion transformer.

A clip of T x H x W tokens is long: full attention costs (T H W)^2 scores a layer. Latte (Ma et al.
2024), after ViViT (Arnab et al. 2021), splits attention into a *spatial* part (the tokens of one
frame) and a *temporal* part (the tokens at one position, across frames). ``VARIANTS``:

========================  ======================================================  =================
variant                   what each block does                                    scores a layer
========================  ======================================================  =================
``"full"``                joint space-time attention (ViViT model 1)              (T S)^2
``"interleaved"``         blocks alternate spatial / temporal (Latte variant 1)   T S^2 or S T^2
``"late"``                first half spatial, second half temporal (variant 2)    T S^2 or S T^2
``"factorised"``          spatial then temporal attention inside one block (3)    T S^2 + S T^2
``"split_heads"``         half the heads spatial, half temporal (variant 4)       (T S^2 + S T^2)/2
========================  ======================================================  =================

(S = H W tokens a frame.) Every block is chapter 14's :class:`tinysora.dit.DiTBlock` (adaLN-Zero);
the variant only decides how its self-attention groups the tokens, through the block's
``attn_fn`` hook. ``"factorised"`` adds a second (temporal) attention to each block.

:meth:`tinysora.video.latte.Latte.forward` regroups tokens with ``rearrange`` (the cheap way);
:meth:`tinysora.video.latte.Latte.forward_packed`
runs several clips of different sizes and lengths in one sequence with the masks of
:func:`tinysora.video.packing.packed_masks` (every variant is a mask), and gives the same outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from tinysora.dit import DiTBlock, FinalLayer, LabelEmbedder, TimestepEmbedder
from tinysora.transformer import MultiHeadAttention
from tinysora.video.packing import pack, packed_masks, unpack
from tinysora.video.patches import _check_patch, sincos_pos_embed_3d, unpatchify
from tinysora.video.tubelets import TubeletEmbedding

__all__ = ["VARIANTS", "Latte", "LatteConfig", "attention_scores", "block_modes", "regrouped_attention"]

VARIANTS = ("full", "interleaved", "late", "factorised", "split_heads")


@dataclass
class LatteConfig:
    """Sizes of a (class-conditional) video DiT whose blocks factorise attention by ``variant``."""

    channels: int = 3
    patch: tuple[int, int, int] = (1, 4, 4)   # (p_t, p_h, p_w) tubelets
    dim: int = 64
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    variant: str = "interleaved"
    num_classes: int = 0                      # 0: unconditional (labels ignored)
    class_dropout: float = 0.1
    time_scale: float = 1000.0                # rectified flow's t in [0, 1]
    qk_norm: bool = False

    def __post_init__(self):
        self.patch = _check_patch(self.patch)
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose one of {VARIANTS}")
        for name in ("channels", "dim", "depth", "heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not divisible by {self.heads} heads")
        if self.variant in ("interleaved", "late") and self.depth % 2:
            raise ValueError(f"variant {self.variant!r} needs an even depth (spatial and temporal blocks), "
                             f"got {self.depth}")
        if self.variant == "split_heads" and self.heads % 2:
            raise ValueError(f"variant 'split_heads' needs an even number of heads, got {self.heads}")


def block_modes(variant: str, depth: int) -> list[str]:
    """What each block's attention does: "full", "spatial", "temporal", "factorised" or "split"."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {VARIANTS}")
    if variant == "full":
        return ["full"] * depth
    if variant == "interleaved":
        return ["spatial" if i % 2 == 0 else "temporal" for i in range(depth)]
    if variant == "late":
        return ["spatial" if i < depth // 2 else "temporal" for i in range(depth)]
    return ["factorised" if variant == "factorised" else "split"] * depth


def attention_scores(variant: str, depth: int, grid: tuple[int, int, int]) -> int:
    """Query-key scores one clip with token grid (T, H, W) costs over all blocks (one head's worth)."""
    t, h, w = grid
    s = h * w
    cost = {"full": (t * s) ** 2, "spatial": t * s * s, "temporal": s * t * t,
            "factorised": t * s * s + s * t * t, "split": (t * s * s + s * t * t) // 2}
    return sum(cost[mode] for mode in block_modes(variant, depth))


# ----------------------------------------------------------------------------- regrouped attention


def _spatial(attn: MultiHeadAttention, h: torch.Tensor, frames: int) -> torch.Tensor:
    out = attn(rearrange(h, "b (t n) d -> (b t) n d", t=frames))                 # attend within a frame
    return rearrange(out, "(b t) n d -> b (t n) d", t=frames)


def _temporal(attn: MultiHeadAttention, h: torch.Tensor, frames: int) -> torch.Tensor:
    out = attn(rearrange(h, "b (t n) d -> (b n) t d", t=frames))                 # attend across frames
    return rearrange(out, "(b n) t d -> b (t n) d", b=h.shape[0])


def _split_heads(attn: MultiHeadAttention, h: torch.Tensor, frames: int) -> torch.Tensor:
    """Half the heads attend within a frame, half across frames; one output projection (variant 4)."""
    b, heads = h.shape[0], attn.n_heads
    q, k, v = rearrange(attn.qkv(h), "b n (three h d) -> three b h n d", three=3, h=heads)
    q, k = attn.q_norm(q), attn.k_norm(k)
    half = heads // 2
    space = [rearrange(a[:, :half], "b h (t n) d -> (b t) h n d", t=frames) for a in (q, k, v)]
    time = [rearrange(a[:, half:], "b h (t n) d -> (b n) h t d", t=frames) for a in (q, k, v)]
    out_s = rearrange(F.scaled_dot_product_attention(*space), "(b t) h n d -> b h (t n) d", t=frames)
    out_t = rearrange(F.scaled_dot_product_attention(*time), "(b n) h t d -> b h (t n) d", b=b)
    out = torch.cat([out_s, out_t], dim=1)                                      # (B, H, N, d)
    return attn.out_proj(rearrange(out, "b h n d -> b n (h d)"))


def regrouped_attention(mode: str, frames: int):
    """The ``attn_fn`` of :meth:`tinysora.dit.DiTBlock.forward` for one block's ``mode`` (see
    :func:`tinysora.video.latte.block_modes`) over clips of ``frames`` token frames; None for "full"."""
    regroup = {"spatial": _spatial, "temporal": _temporal, "split": _split_heads}
    if mode == "full":
        return None
    if mode not in regroup:
        raise ValueError(f"no regrouped attention for mode {mode!r}; expected 'full' or one of {sorted(regroup)}")
    return lambda attn, h: regroup[mode](attn, h, frames)


class Latte(nn.Module):
    """forward(x (B, T, C, H, W), t (B,), y (B,) or None) -> (B, T, C, H, W), the denoiser's output.

    Tubelet embedding (:class:`tinysora.video.tubelets.TubeletEmbedding`) plus fixed 3-D sin-cos
    positions, ``depth`` adaLN-Zero DiT blocks whose attention follows ``config.variant``, the final
    layer and unpatchify. Exactly zero at initialisation (DiT's zero-initialised final layer).
    """

    def __init__(self, config: LatteConfig):
        super().__init__()
        self.config = c = config
        self.patch = c.patch
        patch_dim = c.patch[0] * c.patch[1] * c.patch[2] * c.channels
        self.embed = TubeletEmbedding(c.channels, c.dim, c.patch)
        self.t_embed = TimestepEmbedder(c.dim, time_scale=c.time_scale)
        self.y_embed = LabelEmbedder(c.num_classes, c.dim, c.class_dropout) if c.num_classes else None
        self.modes = block_modes(c.variant, c.depth)
        self.blocks = nn.ModuleList(DiTBlock(c.dim, c.heads, c.mlp_ratio, qk_norm=c.qk_norm) for _ in range(c.depth))
        self.temporal = None
        if c.variant == "factorised":            # a second attention in every block, with its own norm
            self.temporal = nn.ModuleList(MultiHeadAttention(c.dim, c.heads, qk_norm=c.qk_norm, fused_qkv=True,
                                                             sdpa=True) for _ in range(c.depth))
            self.temporal_norm = nn.ModuleList(nn.LayerNorm(c.dim, eps=1e-6) for _ in range(c.depth))
        self.final = FinalLayer(c.dim, patch_dim)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _condition(self, t: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        c = self.t_embed(t)                                                      # (B, D)
        if self.y_embed is not None:
            if y is None:
                raise ValueError("this model is class-conditional: pass the labels y")
            c = c + self.y_embed(y)
        return c

    def _attn_fn(self, i: int, frames: int):
        mode = self.modes[i]
        if mode != "factorised":
            return regrouped_attention(mode, frames)

        def factorised(attn, h):
            s = _spatial(attn, h, frames)
            return s + _temporal(self.temporal[i], self.temporal_norm[i](s), frames)
        return factorised

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        c = self.config
        if x.ndim != 5 or x.shape[2] != c.channels:
            raise ValueError(f"x must be (B, T, {c.channels}, H, W), got {tuple(x.shape)}")
        grid = self.embed.grid(x.shape[1], x.shape[3], x.shape[4])
        tokens = self.embed(x) + sincos_pos_embed_3d(c.dim, grid).to(x)          # (B, N, D)
        cond = self._condition(t, y)
        for i, block in enumerate(self.blocks):
            tokens = block(tokens, cond, attn_fn=self._attn_fn(i, grid[0]))
        return unpatchify(self.final(tokens, cond), grid, self.patch)             # (B, T, C, H, W)

    def forward_packed(self, clips: list[torch.Tensor], t: torch.Tensor,
                       y: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Clips of different sizes and lengths, [(T_i, C, H_i, W_i), ...], in ONE sequence.

        The tokens of all clips are concatenated (:func:`tinysora.video.packing.pack`), each clip
        with its own positions and its own conditioning (t_i, y_i) on every one of its tokens, and
        every attention is masked so no token sees another clip (spatial: same clip and frame,
        temporal: same clip and position). Returns the outputs clip by clip, as
        :meth:`tinysora.video.latte.Latte.forward` would give them one at a time.
        """
        c = self.config
        if not clips or any(not isinstance(v, torch.Tensor) or v.ndim != 4 or v.shape[1] != c.channels
                            for v in clips):
            raise ValueError(f"clips must be a non-empty list of (T, {c.channels}, H, W) tensors")
        if t.shape != (len(clips),):
            raise ValueError(f"t must hold one time per clip, shape ({len(clips)},), got {tuple(t.shape)}")
        grids = [self.embed.grid(v.shape[0], v.shape[2], v.shape[3]) for v in clips]
        tokens, lengths = pack([self.embed(v[None])[0] + sincos_pos_embed_3d(c.dim, g).to(v)
                                for v, g in zip(clips, grids)])                 # (1, N, D)
        cond = torch.repeat_interleave(self._condition(t, y), torch.tensor(lengths, device=t.device), dim=0)[None]
        masks = packed_masks(grids, device=tokens.device)                        # (N, N) each
        split = torch.stack([masks["spatial"]] * (c.heads // 2) + [masks["temporal"]] * (c.heads - c.heads // 2))
        for i, block in enumerate(self.blocks):
            mode = self.modes[i]
            if mode == "factorised":
                def attn_fn(attn, h, i=i):
                    s = attn(h, mask=masks["spatial"])
                    return s + self.temporal[i](self.temporal_norm[i](s), mask=masks["temporal"])
            else:
                mask = split if mode == "split" else masks[mode]
                def attn_fn(attn, h, mask=mask):
                    return attn(h, mask=mask)
            tokens = block(tokens, cond, attn_fn=attn_fn)
        out = unpack(self.final(tokens, cond), lengths)
        return [unpatchify(o[None], g, self.patch)[0] for o, g in zip(out, grids)]
