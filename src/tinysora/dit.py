"""Diffusion Transformer (DiT) building blocks, in the manner of facebookresearch/DiT ``models.py``.

Read top to bottom in the order data meets them:

1. :class:`TimestepEmbedder` -- sin-cos features of the (diffusion) time, then an MLP;
2. :func:`modulate` -- adaLN: ``LayerNorm(x) * (1 + scale) + shift`` with scale and shift computed
   from the conditioning vector ``c`` (time + class or text);
3. :class:`Attention` (self-attention, torch ``scaled_dot_product_attention``), :class:`CrossAttention`
   (queries from the tokens, keys and values from text tokens) and :class:`Mlp`;
4. :class:`DiTBlock` -- adaLN-Zero: each branch is scaled by a gate ``g`` that starts at zero, so
   every block starts as the identity ``x -> x``;
5. :class:`FinalLayer` -- adaLN then a linear layer to the patch values, zero-initialised, so the
   whole model outputs exactly 0 at initialisation (a safe start: "predict no velocity / noise");
6. :class:`DiT` -- a small class-conditional image DiT (chapter 14) built from them. The video
   model of chapter 17 (``tinysora.sora.model``) uses the same blocks.

Conditioning ``c`` may be one vector per sample, (B, D), or one per group of tokens, (B, G, D):
the video model gives each frame its own time (frames given as conditioning are "clean", t = 0).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange, repeat

from tinysora.video.patches import patch_grid, patchify, sincos_pos_embed_3d, unpatchify


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: x (B, N, D) normalised elsewhere; shift, scale broadcast to it: (B, 1, D) or (B, N, D)."""
    return x * (1 + scale) + shift


def per_token(mods: torch.Tensor, tokens: int) -> torch.Tensor:
    """Spread modulation vectors over the tokens they condition.

    (B, D') -> (B, 1, D') (one for all tokens); (B, G, D') with G dividing ``tokens`` -> (B, N, D'),
    each vector repeated over a contiguous group of N / G tokens (the video model: one per frame,
    so the Linear that makes them runs per frame, not per token).
    """
    if mods.ndim == 2:
        return mods[:, None]
    groups = mods.shape[1]
    if tokens % groups != 0:
        raise ValueError(f"{groups} conditioning vectors cannot be spread over {tokens} tokens")
    return repeat(mods, "b g d -> b (g n) d", n=tokens // groups)


class TimestepEmbedder(nn.Module):
    """t (any shape, real-valued) -> (..., dim): sin-cos features of t * time_scale, then an MLP.

    ``time_scale`` maps the objective's time range onto ~[0, 1000] (DDPM's integer steps use 1,
    rectified flow's t in [0, 1] uses 1000), so the sinusoid frequencies fit either.
    """

    def __init__(self, dim: int, freq_dim: int = 256, time_scale: float = 1.0):
        super().__init__()
        self.freq_dim, self.time_scale = freq_dim, time_scale
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    @staticmethod
    def sinusoid(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
        """(...,) -> (..., dim): [cos(t w_k), sin(t w_k)], w_k = max_period^(-k / (dim/2)) (DiT's order)."""
        half = dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        angles = t.float()[..., None] * freqs
        return torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.sinusoid(t * self.time_scale, self.freq_dim))


class Attention(nn.Module):
    """Multi-head self-attention with optional QK-norm (RMS-normalised queries and keys).

    QK-norm bounds the attention logits, which allows a higher learning rate for short runs.
    """

    def __init__(self, dim: int, heads: int, qk_norm: bool = True):
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        head_dim = dim // heads
        self.q_norm = nn.RMSNorm(head_dim) if qk_norm else nn.Identity()
        self.k_norm = nn.RMSNorm(head_dim) if qk_norm else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = rearrange(self.qkv(x), "b n (three h d) -> three b h n d", three=3, h=self.heads)
        out = F.scaled_dot_product_attention(self.q_norm(q), self.k_norm(k), v)   # (B, H, N, d)
        return self.proj(rearrange(out, "b h n d -> b n (h d)"))


class CrossAttention(nn.Module):
    """Tokens (B, N, D) attend to context tokens (B, L, D); ``context_mask`` (B, L) True = real token."""

    def __init__(self, dim: int, heads: int, qk_norm: bool = True):
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)
        head_dim = dim // heads
        self.q_norm = nn.RMSNorm(head_dim) if qk_norm else nn.Identity()
        self.k_norm = nn.RMSNorm(head_dim) if qk_norm else nn.Identity()

    def forward(self, x: torch.Tensor, context: torch.Tensor,
                context_mask: torch.Tensor | None = None) -> torch.Tensor:
        q = rearrange(self.q(x), "b n (h d) -> b h n d", h=self.heads)
        k, v = rearrange(self.kv(context), "b l (two h d) -> two b h l d", two=2, h=self.heads)
        mask = None if context_mask is None else rearrange(context_mask, "b l -> b 1 1 l")
        out = F.scaled_dot_product_attention(self.q_norm(q), self.k_norm(k), v, attn_mask=mask)
        return self.proj(rearrange(out, "b h n d -> b n (h d)"))


class Mlp(nn.Module):
    """Linear -> GELU(tanh) -> Linear, hidden width ``ratio * dim`` (ViT/DiT's MLP)."""

    def __init__(self, dim: int, ratio: float = 4.0):
        super().__init__()
        hidden = int(dim * ratio)
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class DiTBlock(nn.Module):
    """adaLN-Zero block: x + g1 * Attn(mod(LN x)) [+ CrossAttn(LN x, text)] + g2 * MLP(mod(LN x)).

    The six modulation vectors (shift, scale, gate for attention and for the MLP) come from one
    linear layer of ``c`` that starts at zero: gates 0 make the block the identity at init.
    Cross-attention (PixArt / Open-Sora style) is not gated; its output projection starts at
    zero instead, which keeps the identity at init too.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, cross_attention: bool = False,
                 qk_norm: bool = True):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads, qk_norm)
        self.cross = CrossAttention(dim, heads, qk_norm) if cross_attention else None
        self.norm_cross = nn.LayerNorm(dim, eps=1e-6) if cross_attention else None
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(dim, mlp_ratio)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))
        nn.init.zeros_(self.adaLN_modulation[-1].weight)             # adaLN-Zero
        nn.init.zeros_(self.adaLN_modulation[-1].bias)
        if self.cross is not None:
            nn.init.zeros_(self.cross.proj.weight)
            nn.init.zeros_(self.cross.proj.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor, context: torch.Tensor | None = None,
                context_mask: torch.Tensor | None = None, attn_fn=None) -> torch.Tensor:
        """x (B, N, D); c (B, D) or (B, G, D) (see :func:`per_token`); context (B, L, D) for cross-attention.

        ``attn_fn(attn, h)`` lets a caller run the self-attention on regrouped tokens (the video
        model's spatial / temporal blocks); by default all N tokens attend to each other.
        """
        mods = per_token(self.adaLN_modulation(c), x.shape[1])           # (B, 1 or N, 6D)
        shift1, scale1, gate1, shift2, scale2, gate2 = mods.chunk(6, dim=-1)
        h = modulate(self.norm1(x), shift1, scale1)
        h = self.attn(h) if attn_fn is None else attn_fn(self.attn, h)
        x = x + gate1 * h
        if self.cross is not None:
            if context is None:
                raise ValueError("this block has cross-attention: pass the text tokens as context")
            x = x + self.cross(self.norm_cross(x), context, context_mask)
        return x + gate2 * self.mlp(modulate(self.norm2(x), shift2, scale2))


class FinalLayer(nn.Module):
    """adaLN (shift, scale from c) then Linear(dim -> patch values); all zero at init."""

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(dim, out_dim)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))
        for layer in (self.linear, self.adaLN_modulation[-1]):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        mods = per_token(self.adaLN_modulation(c), x.shape[1])
        shift, scale = mods.chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


class DiT(nn.Module):
    """A small class-conditional DiT for images (B, C, H, W): patchify, blocks, unpatchify.

    ``num_classes`` labels plus one extra "null" label that :meth:`token_drop` swaps in with
    probability ``class_dropout`` during training: that is the whole of classifier-free-guidance
    training; :meth:`forward_with_cfg` is the whole of sampling with it.
    """

    def __init__(self, image_size: int = 8, channels: int = 1, patch: int = 2, dim: int = 64,
                 depth: int = 4, heads: int = 4, num_classes: int = 10, class_dropout: float = 0.1,
                 time_scale: float = 1.0):
        super().__init__()
        self.patch, self.channels, self.class_dropout = patch, channels, class_dropout
        self.grid = patch_grid(1, image_size, image_size, (1, patch, patch))
        self.x_embed = nn.Linear(patch * patch * channels, dim)
        self.register_buffer("pos", sincos_pos_embed_3d(dim, self.grid), persistent=False)
        self.t_embed = TimestepEmbedder(dim, time_scale=time_scale)
        self.y_embed = nn.Embedding(num_classes + 1, dim)            # last row: the null label
        self.num_classes = num_classes
        self.blocks = nn.ModuleList(DiTBlock(dim, heads) for _ in range(depth))
        self.final = FinalLayer(dim, patch * patch * channels)

    def token_drop(self, y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Replace each label by the null label with probability ``class_dropout`` (training only)."""
        drop = torch.rand(y.shape, generator=generator).to(y.device) < self.class_dropout
        return torch.where(drop, torch.full_like(y, self.num_classes), y)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W), t (B,), y (B,) labels (num_classes = null) -> (B, C, H, W)."""
        tokens = self.x_embed(patchify(x[:, None], self.patch)) + self.pos      # (B, N, D)
        c = self.t_embed(t) + self.y_embed(y)                                    # (B, D)
        for block in self.blocks:
            tokens = block(tokens, c)
        out = unpatchify(self.final(tokens, c), self.grid, self.patch)          # (B, 1, C, H, W)
        return out[:, 0]

    def forward_with_cfg(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, scale: float) -> torch.Tensor:
        """Guided prediction: conditional and null-label passes in one batch, every channel guided."""
        from tinysora.diffusion import cfg_combine

        null = torch.full_like(y, self.num_classes)
        both = self(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null]))
        cond, uncond = both.chunk(2)
        return cfg_combine(cond, uncond, scale)
