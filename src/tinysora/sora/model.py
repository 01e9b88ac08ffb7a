"""The tiny Sora: a text-conditioned diffusion transformer over spacetime patches of video latents.

Data path, top to bottom (shapes for the cpu config: 8 frames, 4x4x4 latents, per-frame 1x1 patches):

1. latent clip ``x`` (B, T, C, h, w) -> spacetime patches (B, N, p_t p p C), N = T/p_t * h/p * w/p;
2. a linear patch embedding and fixed sin-cos (t, h, w) positions computed for this grid, so clips
   of any size or length share the weights -> (B, N, D);
3. the caption -> word tokens (B, L, D) and a pooled vector (B, D) (:mod:`tinysora.sora.text`);
4. the diffusion time, one per latent frame (B, T') -> timestep embeddings (B, T', D), plus the
   pooled caption: the adaLN conditioning ``c``. A frame given as conditioning (image-to-video,
   extension, loops) is clean and gets t = 0, as in Open-Sora's frame masks;
5. ``depth`` DiT blocks (adaLN-Zero self-attention, cross-attention to the words, MLP). With
   ``factorised=True`` the blocks alternate between spatial attention (tokens of one frame) and
   temporal attention (tokens at one position across frames): Latte's variant 1;
6. the final adaLN + linear layer and unpatchify -> (B, T, C, h, w): the velocity (rectified flow)
   or the noise (DDPM). It is exactly zero at initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from tinysora.diffusion import cfg_combine
from tinysora.dit import DiTBlock, FinalLayer, TimestepEmbedder
from tinysora.sora.text import CaptionTokenizer, TextEncoder
from tinysora.video.latte import block_modes, regrouped_attention
from tinysora.video.patches import patch_grid, patchify, sincos_pos_embed_3d, unpatchify


@dataclass
class VideoDiTConfig:
    """Sizes of the video DiT (a scale change is data, not code)."""

    latent_channels: int = 4
    patch: tuple[int, int, int] = (1, 1, 1)   # (p_t, p, p) over the latent grid
    dim: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    cross_attention: bool = True              # words by cross-attention (plus pooled into adaLN)
    factorised: bool = False                  # Latte variant 1: alternate spatial / temporal blocks
    text_layers: int = 0                      # 0 = embedding bag over words
    text_dropout: float = 0.1                 # condition dropout for classifier-free guidance
    time_scale: float = 1000.0                # 1000 for rectified flow's t in [0, 1]; 1 for DDPM steps
    qk_norm: bool = True


class VideoDiT(nn.Module):
    """Latent video DiT: forward(x (B, T, C, h, w), t (B,) or (B, T), ids (B, L)) -> (B, T, C, h, w)."""

    def __init__(self, config: VideoDiTConfig):
        super().__init__()
        self.config = cfg = config
        self.patch = tuple(cfg.patch)
        patch_dim = self.patch[0] * self.patch[1] * self.patch[2] * cfg.latent_channels
        self.tokenizer = CaptionTokenizer()
        self.x_embed = nn.Linear(patch_dim, cfg.dim)
        self.t_embed = TimestepEmbedder(cfg.dim, time_scale=cfg.time_scale)
        self.text = TextEncoder(len(self.tokenizer), cfg.dim, self.tokenizer.max_len, cfg.text_layers,
                                cfg.heads, cfg.text_dropout, self.tokenizer.pad_id, self.tokenizer.null_id)
        self.blocks = nn.ModuleList(
            DiTBlock(cfg.dim, cfg.heads, cfg.mlp_ratio, cross_attention=cfg.cross_attention, qk_norm=cfg.qk_norm)
            for _ in range(cfg.depth))
        self.final = FinalLayer(cfg.dim, patch_dim)
        # Latte variant 1 when factorised: even blocks attend within a frame, odd blocks across frames
        self.modes = block_modes("interleaved" if cfg.factorised else "full", cfg.depth)

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def forward(self, x: torch.Tensor, t: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[2] != self.config.latent_channels:
            raise ValueError(f"x must be (B, T, {self.config.latent_channels}, h, w), got {tuple(x.shape)}")
        b, frames, _, height, width = x.shape
        grid = patch_grid(frames, height, width, self.patch)                     # (T', h', w')
        if t.ndim == 1:
            t = t[:, None].expand(b, frames)
        if t.shape != (b, frames):
            raise ValueError(f"t must be (B,) or (B, T) = ({b}, {frames}), got {tuple(t.shape)}")
        t = t[:, :: self.patch[0]]                                               # one time per token frame
        tokens = self.x_embed(patchify(x, self.patch))                           # (B, N, D)
        tokens = tokens + sincos_pos_embed_3d(self.config.dim, grid).to(tokens)
        words, word_mask, pooled = self.text(ids)                                # (B, L, D), (B, L), (B, D)
        c = self.t_embed(t) + pooled[:, None]                                    # (B, T', D)
        for i, block in enumerate(self.blocks):
            tokens = block(tokens, c, words, word_mask, regrouped_attention(self.modes[i], grid[0]))
        return unpatchify(self.final(tokens, c), grid, self.patch)               # (B, T, C, h, w)

    def forward_with_cfg(self, x: torch.Tensor, t: torch.Tensor, ids: torch.Tensor,
                         scale: float) -> torch.Tensor:
        """Classifier-free guidance: the captions and the null caption in one batch.

        Scale 1 returns the conditional prediction (one pass, no null batch needed).
        """
        if scale == 1.0:
            return self(x, t, ids)
        null = self.tokenizer.null(ids.shape[0]).to(ids.device)
        both = self(torch.cat([x, x]), torch.cat([t, t]), torch.cat([ids, null]))
        cond, uncond = both.chunk(2)
        return cfg_combine(cond, uncond, scale)
