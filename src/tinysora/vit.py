"""The Vision Transformer (Dosovitskiy et al. 2021), chapter 13: an image is a sequence of patches.

* :func:`patchify` / :func:`unpatchify` -- image (B, C, H, W) <-> patch tokens (B, N, C p^2),
  N = (H / p)(W / p), with einops. A token's values are in (c p q) order, the order of a conv
  kernel's weights, so :class:`PatchEmbed` (patchify, then a Linear) *is* a p x p convolution
  with stride p (:func:`conv_patch_embedding` builds that twin).
* :class:`Positions` -- what tells the transformer where a patch came from: none, a learned 1-D
  table (ViT's default), learned 2-D (a row table and a column table of D/2 each, concatenated)
  or fixed 2-D sin-cos (:func:`sincos_2d`, built from :func:`tinysora.transformer.sinusoidal_embedding`).
* :class:`Block` -- the pre-LN encoder block: x + MHA(LN(x)), then x + FFN(LN(x)) with GELU;
  the attention is chapter 06's :class:`~tinysora.transformer.MultiHeadAttention`, the FFN
  chapter 01's :class:`~tinysora.mlp.FFN`.
* :class:`ViTConfig`, :class:`ViT` -- the classifier, pooling by a [CLS] token or by the mean
  of the patch tokens; :func:`vit_parameter_count` in closed form (ViT-B/16: 86,567,656).
* :class:`DenoiserConfig`, :class:`ViTDenoiser` -- the same blocks as a diffusion model's
  network, U-ViT style (Bao et al. 2023, without its long skips): the diffusion time and the
  class are two more tokens. Chapter 13 runs it in an autoencoder's latent space.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from einops import rearrange, repeat
from torch import nn

from tinysora.mlp import FFN
from tinysora.transformer import MultiHeadAttention, sinusoidal_embedding

POSITION_KINDS = ("none", "1d", "2d", "sincos2d")
POOLS = ("cls", "mean")


def _check_patch(height: int, width: int, patch_size: int) -> None:
    if not isinstance(patch_size, int) or isinstance(patch_size, bool) or patch_size < 1:
        raise ValueError(f"patch size must be a positive int, got {patch_size!r}")
    for size, name in ((height, "image height"), (width, "image width")):
        if size % patch_size:
            raise ValueError(f"{name} {size} is not divisible by patch size {patch_size}")


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, C p^2): non-overlapping p x p patches, row by row, values (c p q)."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(f"images must be (B, C, H, W), got {getattr(images, 'shape', None)}")
    _check_patch(images.shape[2], images.shape[3], patch_size)
    p = patch_size
    return rearrange(images, "b c (h p) (w q) -> b (h w) (c p q)", p=p, q=p)


def unpatchify(tokens: torch.Tensor, patch_size: int, height: int, width: int) -> torch.Tensor:
    """(B, N, C p^2) -> (B, C, H, W): the inverse of :func:`patchify` for H x W images."""
    _check_patch(height, width, patch_size)
    p, h = patch_size, height // patch_size
    if tokens.ndim != 3 or tokens.shape[1] != h * (width // p) or tokens.shape[2] % (p * p):
        raise ValueError(f"tokens {tuple(tokens.shape)} do not tile a {height}x{width} image with {p}x{p} patches")
    return rearrange(tokens, "b (h w) (c p q) -> b c (h p) (w q)", h=h, p=p, q=p)


class PatchEmbed(nn.Module):
    """(B, C, H, W) -> (B, N, D): patchify, then one Linear(C p^2 -> D) shared by every patch."""

    def __init__(self, in_channels: int, patch_size: int, dim: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Linear(in_channels * patch_size**2, dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(patchify(images, self.patch_size))


def conv_patch_embedding(embed: PatchEmbed) -> nn.Conv2d:
    """The strided convolution that computes the same map as ``embed`` (the original ViT code's)."""
    p = embed.patch_size
    weight = embed.proj.weight
    d, cpq = weight.shape
    conv = nn.Conv2d(cpq // (p * p), d, kernel_size=p, stride=p, dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        conv.weight.copy_(rearrange(weight, "d (c p q) -> d c p q", p=p, q=p))
        conv.bias.copy_(embed.proj.bias)
    return conv


def sincos_2d(height: int, width: int, dim: int) -> torch.Tensor:
    """Fixed 2-D positions (height * width, dim), patches row by row: the first dim/2 channels are
    the 1-D sin-cos embedding of the row, the last dim/2 that of the column (MAE, DiT)."""
    if dim % 4:
        raise ValueError(f"2-D sin-cos positions need dim divisible by 4 (two sin/cos halves), got {dim}")
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return torch.cat([sinusoidal_embedding(rows.flatten(), dim // 2),
                      sinusoidal_embedding(cols.flatten(), dim // 2)], dim=-1)   # (h w, dim)


class Positions(nn.Module):
    """Position vectors for an h x w grid of patches, (cls + h w, D), added to the tokens.

    ``kind``: "none" (zeros), "1d" (a learned table, one row per token, [CLS] included, as ViT),
    "2d" (learned row and column tables, D/2 each, concatenated), "sincos2d" (fixed). With
    ``cls``, kinds other than "1d" give the [CLS] token a zero row: its learned vector is its own.
    """

    def __init__(self, kind: str, height: int, width: int, dim: int, cls: bool = False):
        super().__init__()
        if kind not in POSITION_KINDS:
            raise ValueError(f"unknown position kind {kind!r}: expected one of {POSITION_KINDS}")
        if kind == "2d" and dim % 2:
            raise ValueError(f"learned 2-D positions need an even dim, got {dim}")
        self.kind, self.height, self.width, self.cls = kind, height, width, int(cls)
        if kind == "1d":
            self.table = nn.Parameter(0.02 * torch.randn(self.cls + height * width, dim))
        elif kind == "2d":
            self.rows = nn.Parameter(0.02 * torch.randn(height, dim // 2))
            self.cols = nn.Parameter(0.02 * torch.randn(width, dim // 2))
        else:
            fixed = sincos_2d(height, width, dim) if kind == "sincos2d" else torch.zeros(height * width, dim)
            self.register_buffer("table", fixed)

    def forward(self) -> torch.Tensor:
        if self.kind == "1d":
            return self.table                                                        # (cls + N, D)
        if self.kind == "2d":
            rows = repeat(self.rows, "h d -> h w d", w=self.width)
            cols = repeat(self.cols, "w d -> h w d", h=self.height)
            grid = rearrange(torch.cat([rows, cols], dim=-1), "h w d -> (h w) d")   # (N, D)
        else:
            grid = self.table
        return torch.cat([grid.new_zeros(self.cls, grid.shape[1]), grid])         # (cls + N, D)


class Block(nn.Module):
    """Pre-LN Transformer encoder block, (B, T, D) -> (B, T, D)."""

    def __init__(self, dim: int, heads: int, mlp_dim: int):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = FFN(dim, mlp_dim, activation="gelu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


def _check_sizes(**values) -> None:
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")


@dataclass
class ViTConfig:
    """A ViT's sizes. The defaults are ViT-B/16 on 224 x 224 ImageNet (1000 classes)."""

    image_size: int = 224
    patch_size: int = 16
    in_channels: int = 3
    dim: int = 768
    depth: int = 12
    heads: int = 12
    mlp_dim: int = 3072
    num_classes: int = 1000
    pool: str = "cls"
    pos: str = "1d"

    def __post_init__(self):
        _check_sizes(image_size=self.image_size, patch_size=self.patch_size, in_channels=self.in_channels,
                     dim=self.dim, depth=self.depth, heads=self.heads, mlp_dim=self.mlp_dim,
                     num_classes=self.num_classes)
        if self.image_size % self.patch_size:
            raise ValueError(f"image size {self.image_size} is not divisible by patch size {self.patch_size}")
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not divisible by heads {self.heads}")
        if self.pool not in POOLS:
            raise ValueError(f"unknown pool {self.pool!r}: expected one of {POOLS}")
        if self.pos not in POSITION_KINDS:
            raise ValueError(f"unknown position kind {self.pos!r}: expected one of {POSITION_KINDS}")

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2

    @property
    def patch_values(self) -> int:
        return self.in_channels * self.patch_size**2


class ViT(nn.Module):
    """Images (B, C, S, S) -> class logits (B, num_classes)."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        c = self.config = config
        grid = c.image_size // c.patch_size
        self.patch_embed = PatchEmbed(c.in_channels, c.patch_size, c.dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.dim)) if c.pool == "cls" else None
        self.pos = Positions(c.pos, grid, grid, c.dim, cls=c.pool == "cls")
        self.blocks = nn.ModuleList(Block(c.dim, c.heads, c.mlp_dim) for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, c.num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        c = self.config
        expected = (c.in_channels, c.image_size, c.image_size)
        if images.ndim != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(f"this ViT takes images (B, {', '.join(map(str, expected))}), got {tuple(images.shape)}")
        x = self.patch_embed(images)                                          # (B, N, D)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], dim=1)  # (B, 1 + N, D)
        x = x + self.pos()
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        pooled = x[:, 0] if self.cls_token is not None else x.mean(dim=1)     # (B, D)
        return self.head(pooled)                                              # (B, K)


def vit_parameter_count(config: ViTConfig) -> int:
    """The number of parameters of ``ViT(config)``, in closed form."""
    c, d = config, config.dim
    grid = c.image_size // c.patch_size
    cls = c.pool == "cls"
    positions = {"1d": (cls + c.num_patches) * d, "2d": 2 * grid * (d // 2), "sincos2d": 0, "none": 0}[c.pos]
    block = 2 * 2 * d + 4 * (d * d + d) + (d * c.mlp_dim + c.mlp_dim) + (c.mlp_dim * d + d)   # 2 LN, MHA, FFN
    return ((c.patch_values * d + d) + cls * d + positions + c.depth * block
            + 2 * d + (d * c.num_classes + c.num_classes))                  # final LN, head


@dataclass
class DenoiserConfig:
    """A :class:`ViTDenoiser`'s sizes. ``num_classes = 0``: unconditional."""

    image_size: int = 8
    channels: int = 1
    patch_size: int = 1
    dim: int = 64
    depth: int = 4
    heads: int = 4
    mlp_ratio: int = 4
    num_classes: int = 10
    time_scale: float = 1000.0          # t in [0, 1] (rectified flow) -> 0 .. 1000 for the sinusoid

    def __post_init__(self):
        _check_sizes(image_size=self.image_size, channels=self.channels, patch_size=self.patch_size,
                     dim=self.dim, depth=self.depth, heads=self.heads, mlp_ratio=self.mlp_ratio)
        if self.image_size % self.patch_size:
            raise ValueError(f"image size {self.image_size} is not divisible by patch size {self.patch_size}")
        if self.dim % 4 or self.dim % self.heads:
            raise ValueError(f"dim {self.dim} must be divisible by 4 and by heads {self.heads}")
        if not isinstance(self.num_classes, int) or self.num_classes < 0:
            raise ValueError(f"num_classes must be a non-negative int, got {self.num_classes!r}")


class ViTDenoiser(nn.Module):
    """(x_t (B, C, S, S), t (B,), y (B,)) -> a prediction of x_t's shape (noise or velocity).

    The sequence is [time token, class token, patch tokens]; only the patch tokens are read out
    (LayerNorm, Linear to C p^2, unpatchify). Class ``num_classes`` means "no class": training
    with some labels replaced by it makes classifier-free guidance possible.
    """

    def __init__(self, config: DenoiserConfig):
        super().__init__()
        c = self.config = config
        grid = c.image_size // c.patch_size
        self.patch_embed = PatchEmbed(c.channels, c.patch_size, c.dim)
        self.pos = Positions("sincos2d", grid, grid, c.dim)
        self.time_mlp = nn.Sequential(nn.Linear(c.dim, c.dim), nn.SiLU(), nn.Linear(c.dim, c.dim))
        self.class_embed = nn.Embedding(c.num_classes + 1, c.dim)
        self.blocks = nn.ModuleList(Block(c.dim, c.heads, c.mlp_ratio * c.dim) for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.dim)
        self.out = nn.Linear(c.dim, c.channels * c.patch_size**2)

    @property
    def null_class(self) -> int:
        return self.config.num_classes

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        c = self.config
        if y is None:
            y = torch.full((len(x),), self.null_class, dtype=torch.long, device=x.device)
        tokens = self.patch_embed(x) + self.pos()                                       # (B, N, D)
        time = self.time_mlp(sinusoidal_embedding(t * c.time_scale, c.dim).to(x))     # (B, D)
        h = torch.cat([time[:, None], self.class_embed(y)[:, None], tokens], dim=1)    # (B, 2 + N, D)
        for block in self.blocks:
            h = block(h)
        out = self.out(self.norm(h)[:, 2:])                                            # (B, N, C p^2)
        return unpatchify(out, c.patch_size, x.shape[2], x.shape[3])                   # (B, C, S, S)
