"""Chapter 14: the Diffusion Transformer (Peebles & Xie, 2023), in the manner of facebookresearch/DiT.

Read top to bottom in the order data meets it:

1. patches: :func:`tinysora.video.patches.patchify` and a Linear (a strided convolution in the
   reference), plus fixed 2-D sin-cos positions;
2. :class:`TimestepEmbedder` (:func:`tinysora.transformer.sinusoidal_embedding` of t, then an MLP)
   and :class:`LabelEmbedder` (a table with one extra "null" row; it drops labels to the null
   row with probability ``class_dropout`` in training: classifier-free guidance's training half);
3. :class:`DiTBlock`: chapter 06's :class:`~tinysora.transformer.MultiHeadAttention` and chapter
   01's :class:`~tinysora.mlp.FFN` around pre-LayerNorms, conditioned one of three ways
   (``modulation``): ``"adaln-zero"`` (shift, scale and a gate per branch regressed from ``c``,
   the gates start at 0: the block starts as the identity), ``"adaln"`` (shift and scale only,
   ordinary init) or ``None`` (a plain ViT block); optionally cross-attention to context tokens;
4. :class:`FinalLayer`: (adaptive) LayerNorm, then a zero-initialised Linear to the patch values,
   so a DiT outputs exactly 0 at initialisation;
5. :class:`DiT` with :class:`DiTConfig`: the paper's four ways to condition
   (``conditioning`` = ``"in-context"``, ``"cross-attention"``, ``"adaln"``, ``"adaln-zero"``) and the
   seed's ``"additive"`` one; :meth:`DiT.forward_with_cfg` guides every channel;
   :data:`DIT_SIZES`, :func:`dit_config` and :func:`dit_macs` (the paper's Gflops formula);
6. :class:`UViT` (Bao et al., 2023): time, label and patches all tokens, long skips from shallow to
   deep blocks;
7. :func:`train_class_conditional`, :func:`heldout_loss`, :func:`sample_classes`: chapter 14's
   training loop, fixed-noise evaluation and guided sampling, with any :mod:`tinysora.diffusion` objective.

The video model of chapter 17 (:mod:`tinysora.sora.model`) uses the same blocks. Its conditioning
``c`` may be one vector per sample, (B, D), or one per group of tokens, (B, G, D): each latent
frame gets its own time (frames given as conditioning are "clean", t = 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from einops import rearrange, repeat

from tinysora.mlp import FFN
from tinysora.transformer import MultiHeadAttention, sinusoidal_embedding
from tinysora.video.patches import patch_grid, patchify, sincos_pos_embed_3d, unpatchify

CONDITIONINGS = ("additive", "in-context", "cross-attention", "adaln", "adaln-zero")
MODULATIONS = ("adaln-zero", "adaln", None)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN: x (B, N, D), already normalised; shift, scale broadcast to it: (B, 1, D) or (B, N, D)."""
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


def _maybe_modulate(x: torch.Tensor, shift: torch.Tensor | None, scale: torch.Tensor | None) -> torch.Tensor:
    return x if shift is None else modulate(x, shift, scale)


class TimestepEmbedder(nn.Module):
    """t (any shape, real-valued) -> (..., dim): sin-cos features of t * time_scale, then an MLP.

    ``time_scale`` maps the objective's time range onto ~[0, 1000] (DDPM's integer steps use 1,
    rectified flow's t in [0, 1] uses 1000), so the sinusoid frequencies fit either.
    """

    def __init__(self, dim: int, freq_dim: int = 256, time_scale: float = 1.0):
        super().__init__()
        self.freq_dim, self.time_scale = freq_dim, time_scale
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.mlp(sinusoidal_embedding(t * self.time_scale, self.freq_dim))


class LabelEmbedder(nn.Module):
    """Labels (B,) -> (B, dim); row ``num_classes`` of the table is the "null" label.

    In training, each label becomes the null label with probability ``dropout`` (DiT's
    ``token_drop``): the same network then learns the unconditional prediction too.
    """

    def __init__(self, num_classes: int, dim: int, dropout: float = 0.1):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"class dropout must be in [0, 1), got {dropout}")
        self.num_classes, self.dropout = num_classes, dropout
        self.table = nn.Embedding(num_classes + 1, dim)

    def null(self, labels: torch.Tensor) -> torch.Tensor:
        return torch.full_like(labels, self.num_classes)

    def token_drop(self, labels: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Each label replaced by the null label with probability ``dropout``."""
        drop = torch.rand(labels.shape, generator=generator).to(labels.device) < self.dropout
        return torch.where(drop, self.null(labels), labels)

    def forward(self, labels: torch.Tensor) -> torch.Tensor:
        if labels.dtype != torch.long or labels.ndim != 1:
            raise ValueError(f"labels must be an int64 (B,) tensor, got {labels.dtype} {tuple(labels.shape)}")
        checkable = labels.numel() and not labels.is_meta         # a meta tensor has shapes only (flop counts)
        if checkable and (labels.min() < 0 or labels.max() > self.num_classes):
            raise ValueError(f"labels must be in 0..{self.num_classes} ({self.num_classes} = null)")
        if self.training and self.dropout > 0:
            labels = self.token_drop(labels)
        return self.table(labels)


class DiTBlock(nn.Module):
    """A pre-LN Transformer block, conditioned on ``c`` (B, D) or (B, G, D) by ``modulation``.

    adaLN-Zero (the paper's choice)::

        shift1, scale1, gate1, shift2, scale2, gate2 = Linear(SiLU(c))      # zero-initialised
        x = x + gate1 * Attn(LN(x) * (1 + scale1) + shift1)
        x = x + gate2 * MLP(LN(x) * (1 + scale2) + shift2)

    Gates 0 make the block the identity at init. ``"adaln"`` regresses shift and scale only, with
    ordinary init; ``None`` is a plain ViT block (LayerNorms with their own gain and bias). With
    ``cross_attention`` a cross-attention branch to ``context`` (B, L, D) follows the
    self-attention (PixArt / Open-Sora style, and the paper's cross-attention variant); its output
    projection starts at zero, so an adaLN-Zero block is still the identity at init.
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, *, modulation: str | None = "adaln-zero",
                 cross_attention: bool = False, qk_norm: bool = False):
        super().__init__()
        if modulation not in MODULATIONS:
            raise ValueError(f"unknown modulation {modulation!r}; choose one of {MODULATIONS}")
        affine = modulation is None                                  # adaLN supplies gain and bias
        self.modulation = modulation
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=affine, eps=1e-6)
        self.attn = MultiHeadAttention(dim, heads, qk_norm=qk_norm, fused_qkv=True, sdpa=True)
        self.cross = MultiHeadAttention(dim, heads, qk_norm=qk_norm, sdpa=True) if cross_attention else None
        self.norm_cross = nn.LayerNorm(dim, eps=1e-6) if cross_attention else None
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=affine, eps=1e-6)
        self.mlp = FFN(dim, int(dim * mlp_ratio), activation="gelu_tanh")
        self.adaLN_modulation = None
        if modulation is not None:
            vectors = 6 if modulation == "adaln-zero" else 4
            self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, vectors * dim))
        if modulation == "adaln-zero":
            nn.init.zeros_(self.adaLN_modulation[-1].weight)
            nn.init.zeros_(self.adaLN_modulation[-1].bias)
        if self.cross is not None:
            nn.init.zeros_(self.cross.out_proj.weight)
            nn.init.zeros_(self.cross.out_proj.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None, context: torch.Tensor | None = None,
                context_mask: torch.Tensor | None = None, attn_fn=None) -> torch.Tensor:
        """x (B, N, D); c (B, D) or (B, G, D) (see :func:`per_token`); context (B, L, D), mask (B, L).

        ``attn_fn(attn, h)`` lets a caller run the self-attention on regrouped tokens (the video
        model's spatial / temporal blocks); by default all N tokens attend to each other.
        """
        shift1 = scale1 = gate1 = shift2 = scale2 = gate2 = None
        if self.adaLN_modulation is not None:
            if c is None:
                raise ValueError(f"a block with {self.modulation} modulation needs the conditioning c")
            mods = per_token(self.adaLN_modulation(c), x.shape[1])                    # (B, 1 or N, 6D or 4D)
            if self.modulation == "adaln-zero":
                shift1, scale1, gate1, shift2, scale2, gate2 = mods.chunk(6, dim=-1)
            else:
                shift1, scale1, shift2, scale2 = mods.chunk(4, dim=-1)
        h = _maybe_modulate(self.norm1(x), shift1, scale1)
        h = self.attn(h) if attn_fn is None else attn_fn(self.attn, h)
        x = x + (h if gate1 is None else gate1 * h)
        if self.cross is not None:
            if context is None:
                raise ValueError("this block has cross-attention: pass the context tokens")
            mask = None if context_mask is None else rearrange(context_mask, "b l -> b 1 1 l")
            x = x + self.cross(self.norm_cross(x), context, mask=mask)
        h = self.mlp(_maybe_modulate(self.norm2(x), shift2, scale2))
        return x + (h if gate2 is None else gate2 * h)


class FinalLayer(nn.Module):
    """(adaptive) LayerNorm then Linear(dim -> patch values); the Linear (and adaLN) start at zero."""

    def __init__(self, dim: int, out_dim: int, modulated: bool = True):
        super().__init__()
        self.norm = nn.LayerNorm(dim, elementwise_affine=not modulated, eps=1e-6)
        self.linear = nn.Linear(dim, out_dim)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim)) if modulated else None
        for layer in (self.linear, self.adaLN_modulation[-1] if modulated else None):
            if layer is not None:
                nn.init.zeros_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, N, D), c (B, D) or (B, G, D) -> (B, N, out_dim)."""
        if self.adaLN_modulation is None:
            return self.linear(self.norm(x))
        shift, scale = per_token(self.adaLN_modulation(c), x.shape[1]).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))


@dataclass
class DiTConfig:
    """Sizes of a class-conditional image DiT (a scale change is data, not code).

    ``image_size`` and ``channels`` describe the input (DiT's latents: 32 x 32 x 4 for 256 x 256
    images); ``learn_sigma`` doubles the output channels (noise and a variance, as the paper).
    """

    image_size: int = 8
    channels: int = 1
    patch: int = 2
    dim: int = 64
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    num_classes: int = 10
    class_dropout: float = 0.1
    conditioning: str = "adaln-zero"
    learn_sigma: bool = False
    qk_norm: bool = False
    time_scale: float = 1.0              # 1 for DDPM's integer steps, 1000 for rectified flow's t in [0, 1]

    def __post_init__(self):
        for name in ("image_size", "channels", "patch", "dim", "depth", "heads", "num_classes"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.image_size % self.patch:
            raise ValueError(f"image size {self.image_size} is not divisible by patch size {self.patch}")
        if self.dim % self.heads or self.dim % 4:
            raise ValueError(f"width {self.dim} must be divisible by {self.heads} heads and by 4 (2-D sin-cos)")
        if self.conditioning not in CONDITIONINGS:
            raise ValueError(f"unknown conditioning {self.conditioning!r}; choose one of {CONDITIONINGS}")

    @property
    def out_channels(self) -> int:
        return 2 * self.channels if self.learn_sigma else self.channels

    @property
    def tokens(self) -> int:
        return (self.image_size // self.patch) ** 2


# depth / width / heads of the paper's Table 1
DIT_SIZES = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}


def dit_config(name: str, **overrides) -> DiTConfig:
    """A paper configuration by name, e.g. ``"XL/2"``: 256 x 256 ImageNet latents (32 x 32 x 4),
    1000 classes, learned variance."""
    size, _, patch = name.partition("/")
    if size not in DIT_SIZES or patch not in ("2", "4", "8"):
        raise ValueError(f"unknown DiT {name!r}: expected one of {sorted(DIT_SIZES)} / 2, 4 or 8, e.g. 'XL/2'")
    depth, dim, heads = DIT_SIZES[size]
    base = dict(image_size=32, channels=4, patch=int(patch), dim=dim, depth=depth, heads=heads,
                num_classes=1000, learn_sigma=True)
    return DiTConfig(**{**base, **overrides})


def dit_macs(config: DiTConfig) -> int:
    """Multiply-accumulates of one forward pass of one image (the paper's "Gflops" x 1e9).

    With N tokens, width D, depth L, MLP ratio r, patch values P = p^2 C and 256 frequencies::

        per block:  (4 + 2r) N D^2          q, k, v, output projections and the MLP
                    + 2 N^2 D               scores q k^T and the weighted sum of values
                    + m D^2                 adaLN: m = 6 (adaLN-Zero), 4 (adaLN), 0
                    + cross-attention: 2 N D^2 + 2 L D^2 + 2 N L D with L = 2 context tokens
        once:       N P D + N D P_out + (256 D + D^2) + m_final D^2

    In-context conditioning adds 2 tokens to N inside the blocks.
    """
    c = config
    n, d, r, length = c.tokens, c.dim, c.mlp_ratio, 2
    m = {"adaln-zero": 6, "adaln": 4}.get(c.conditioning, 0)
    n_blocks = n + length if c.conditioning == "in-context" else n
    block = int((4 + 2 * r) * n_blocks * d * d) + 2 * n_blocks * n_blocks * d + m * d * d
    if c.conditioning == "cross-attention":
        block += 2 * n * d * d + 2 * length * d * d + 2 * n * length * d
    patch_values = c.patch * c.patch
    once = n * patch_values * c.channels * d + n * d * patch_values * c.out_channels + 256 * d + d * d
    once += 2 * d * d if m else 0
    return c.depth * block + once


class DiT(nn.Module):
    """Class-conditional image DiT: forward(x (B, C, H, W), t (B,), y (B,)) -> (B, C_out, H, W).

    ``config.conditioning`` picks how the time and label reach the blocks (``c = t_emb + y_emb``):

    * ``"adaln-zero"`` / ``"adaln"``: every block (and the final layer) is modulated by ``c``;
    * ``"cross-attention"``: plain blocks whose tokens attend to the two tokens [t_emb, y_emb];
    * ``"in-context"``: t_emb and y_emb are two more tokens in the sequence (removed at the end);
    * ``"additive"`` (the seed's): ``c`` is added to every patch token once, before plain blocks.
    """

    def __init__(self, config: DiTConfig):
        super().__init__()
        self.config = c = config
        self.grid = patch_grid(1, c.image_size, c.image_size, (1, c.patch, c.patch))      # (1, H/p, W/p)
        patch_values = c.patch * c.patch
        self.x_embed = nn.Linear(patch_values * c.channels, c.dim)
        self.register_buffer("pos", sincos_pos_embed_3d(c.dim, self.grid, dims=(0, c.dim // 2, c.dim // 2)),
                             persistent=False)                                            # (N, D)
        self.t_embed = TimestepEmbedder(c.dim, time_scale=c.time_scale)
        self.y_embed = LabelEmbedder(c.num_classes, c.dim, c.class_dropout)
        adaptive = c.conditioning in ("adaln", "adaln-zero")
        self.blocks = nn.ModuleList(
            DiTBlock(c.dim, c.heads, c.mlp_ratio, modulation=c.conditioning if adaptive else None,
                     cross_attention=c.conditioning == "cross-attention", qk_norm=c.qk_norm)
            for _ in range(c.depth))
        self.final = FinalLayer(c.dim, patch_values * c.out_channels, modulated=adaptive)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        c = self.config
        if x.ndim != 4 or x.shape[1:] != (c.channels, c.image_size, c.image_size):
            raise ValueError(f"x must be (B, {c.channels}, {c.image_size}, {c.image_size}), got {tuple(x.shape)}")
        tokens = self.x_embed(patchify(x[:, None], c.patch)) + self.pos                  # (B, N, D)
        t_emb, y_emb = self.t_embed(t), self.y_embed(y)                                   # (B, D) each
        cond, context = t_emb + y_emb, None
        if c.conditioning == "additive":
            tokens = tokens + cond[:, None]
        elif c.conditioning == "in-context":
            tokens = torch.cat([t_emb[:, None], y_emb[:, None], tokens], dim=1)          # (B, 2 + N, D)
        elif c.conditioning == "cross-attention":
            context = torch.stack([t_emb, y_emb], dim=1)                                  # (B, 2, D)
        for block in self.blocks:
            tokens = block(tokens, cond, context)
        tokens = tokens[:, -self.grid[1] * self.grid[2]:]                                 # patch tokens
        out = unpatchify(self.final(tokens, cond), self.grid, c.patch)                    # (B, 1, C_out, H, W)
        return out[:, 0]

    def forward_with_cfg(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, scale: float) -> torch.Tensor:
        """Classifier-free guidance: uncond + scale * (cond - uncond) on every noise channel.

        The labels and the null label run in one batch of 2B. With ``learn_sigma`` the variance
        channels keep the conditional prediction (they are not a direction to extrapolate).
        """
        from tinysora.diffusion import cfg_combine

        both = self(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, self.y_embed.null(y)]))
        cond, uncond = both.chunk(2)                                                      # (B, C_out, H, W)
        channels = self.config.channels
        guided = cfg_combine(cond[:, :channels], uncond[:, :channels], scale)
        return torch.cat([guided, cond[:, channels:]], dim=1)


class UViT(nn.Module):
    """U-ViT (Bao et al., 2023): "all are worth words".

    Time, label and patches are all tokens of one sequence (no adaLN), and the blocks form a U:
    ``depth // 2`` in-blocks, a middle block, ``depth // 2`` out-blocks; out-block i first joins
    the output of in-block ``depth // 2 - 1 - i`` by ``Linear(cat([x, skip]))`` (2D -> D).
    Same interface and config as :class:`DiT` (``conditioning`` is ignored).
    """

    def __init__(self, config: DiTConfig):
        super().__init__()
        self.config = c = config
        if c.depth % 2 == 0:
            raise ValueError(f"U-ViT needs an odd depth (in-blocks, a middle block, out-blocks), got {c.depth}")
        self.grid = patch_grid(1, c.image_size, c.image_size, (1, c.patch, c.patch))
        patch_values = c.patch * c.patch
        self.x_embed = nn.Linear(patch_values * c.channels, c.dim)
        self.register_buffer("pos", sincos_pos_embed_3d(c.dim, self.grid, dims=(0, c.dim // 2, c.dim // 2)),
                             persistent=False)
        self.t_embed = TimestepEmbedder(c.dim, time_scale=c.time_scale)
        self.y_embed = LabelEmbedder(c.num_classes, c.dim, c.class_dropout)
        half = c.depth // 2
        blocks = [DiTBlock(c.dim, c.heads, c.mlp_ratio, modulation=None, qk_norm=c.qk_norm) for _ in range(c.depth)]
        self.in_blocks = nn.ModuleList(blocks[:half])
        self.mid_block = blocks[half]
        self.out_blocks = nn.ModuleList(blocks[half + 1:])
        self.skips = nn.ModuleList(nn.Linear(2 * c.dim, c.dim) for _ in range(half))
        self.final = FinalLayer(c.dim, patch_values * c.out_channels, modulated=False)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        c = self.config
        if x.ndim != 4 or x.shape[1:] != (c.channels, c.image_size, c.image_size):
            raise ValueError(f"x must be (B, {c.channels}, {c.image_size}, {c.image_size}), got {tuple(x.shape)}")
        patches = self.x_embed(patchify(x[:, None], c.patch)) + self.pos                 # (B, N, D)
        tokens = torch.cat([self.t_embed(t)[:, None], self.y_embed(y)[:, None], patches], dim=1)  # (B, 2 + N, D)
        skips = []
        for block in self.in_blocks:
            tokens = block(tokens)
            skips.append(tokens)
        tokens = self.mid_block(tokens)
        for block, skip in zip(self.out_blocks, self.skips):
            tokens = block(skip(torch.cat([tokens, skips.pop()], dim=-1)))
        out = unpatchify(self.final(tokens[:, 2:]), self.grid, c.patch)                  # (B, 1, C_out, H, W)
        return out[:, 0]

    forward_with_cfg = DiT.forward_with_cfg


# ----------------------------------------------------------------------------- training and sampling (chapter 14)


def train_class_conditional(model: nn.Module, objective, images: torch.Tensor, labels: torch.Tensor, *,
                            steps: int, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
                            desc: str = "DiT") -> list[float]:
    """Train a class-conditional DiT (or U-ViT) on ``images`` (N, C, H, W) in [-1, 1] with labels (N,).

    ``objective`` is a :mod:`tinysora.diffusion` objective (DDPM or rectified flow): its loss draws
    the noise and times. Batches, noise and times come from one generator seeded by ``seed`` (label
    dropout from torch's global generator), so two models trained with the same seed see the same
    data. AdamW without weight decay, as DiT. Returns the loss of every step.
    """
    from tinysora.runtime import progress

    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    generator = torch.Generator().manual_seed(seed)
    losses = []
    model.train()
    bar = progress(range(steps), desc=desc)
    for _ in bar:
        batch = torch.randint(len(images), (batch_size,), generator=generator)
        x0, y = images[batch].to(device), labels[batch].to(device)
        loss = objective.loss(lambda x_t, t: model(x_t, t, y), x0, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
    model.eval()
    return losses


@torch.no_grad()
def heldout_loss(model: nn.Module, objective, images: torch.Tensor, labels: torch.Tensor, *,
                 repeats: int = 4, seed: int = 1) -> float:
    """The objective's loss on held-out images, with the same noise and times for every model."""
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    total = [objective.loss(lambda x_t, t: model(x_t, t, labels.to(device)), images.to(device), generator).item()
             for _ in range(repeats)]
    return sum(total) / repeats


@torch.no_grad()
def sample_classes(model: nn.Module, objective, labels: torch.Tensor, *, steps: int, cfg_scale: float = 1.0,
                   seed: int = 0) -> torch.Tensor:
    """Samples (B, C, H, W) of the classes ``labels`` (B,), guided by ``cfg_scale`` (1 = conditional)."""
    model.eval()
    c = model.config
    device = next(model.parameters()).device
    noise = torch.randn(len(labels), c.channels, c.image_size, c.image_size,
                        generator=torch.Generator().manual_seed(seed)).to(device)
    labels = labels.to(device)
    return objective.sample(lambda x_t, t: model.forward_with_cfg(x_t, t, labels, cfg_scale), noise, steps)
