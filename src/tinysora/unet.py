"""Chapter 11: the U-Net (Ronneberger et al. 2015), and segmentation of the shapes world.

Read top to bottom, as data meets it:

* sizes: :func:`pad_to` (the seed's ``F.pad`` of the upsampled map to the skip's size) and
  :func:`unpadded_sizes` (the paper's 572 -> 388 with unpadded convolutions, from chapter 03's
  :func:`tinysora.cnn.conv_output_size`);
* the parts, as the seed writes them: :class:`DoubleConv` ((3x3 conv -> norm -> ReLU) x 2),
  :class:`Down` (MaxPool2d(2) -> DoubleConv), :class:`Up` (transposed conv or bilinear upsampling,
  pad to the skip's size, concatenate, DoubleConv), :class:`OutConv` (1x1 conv);
* :class:`UNet`: ``depth`` Downs, ``depth`` Ups; any input size (odd ones too) comes back at its
  own size. With ``time_dim`` set, ``forward(x, t)`` adds a time embedding (features from
  :func:`tinysora.transformer.sinusoidal_embedding`) to every DoubleConv: chapter 12's first noise
  predictor; ``forward(x, t, hook=f)`` hands ``f`` the decoder's features at every level (chapter 12's
  cross-attention to a caption). ``skips=False`` feeds zeros in place of every skip (same weights, no "where");
* data and metrics: :func:`segmentation_frames` (shapes-world frames with a label per pixel: 0
  background, 1 + index into ``SHAPES``), :func:`iou_per_class`, :func:`boundary_band`,
  :func:`distance_to_boundary`, :func:`predict_labels`, and :func:`train_segmenter`;
* :func:`draw_unet`, the schematic figure of the chapter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from tinysora.cnn import conv_output_size, receptive_field
from tinysora.data import SHAPES, make_clips
from tinysora.runtime import progress
from tinysora.transformer import sinusoidal_embedding

NUM_CLASSES = 1 + len(SHAPES)     # background, circle, square, triangle
CLASS_NAMES = ("background", *SHAPES)

# ----------------------------------------------------------------------------- sizes


def pad_to(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Zero-pad (B, C, h, w) to (B, C, height, width), the extra row/column at the bottom/right.

    The seed's (and milesial/Pytorch-UNet's) ``F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])``:
    after pooling an odd side (7 -> 3) upsampling gives 6, one short of the skip's 7.
    """
    dy, dx = height - x.shape[-2], width - x.shape[-1]
    if dy < 0 or dx < 0:
        raise ValueError(f"cannot pad a {x.shape[-2]}x{x.shape[-1]} map to the smaller {height}x{width}")
    return F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])


def unpadded_sizes(size: int = 572, depth: int = 4) -> dict:
    """Side lengths through the paper's U-Net, whose 3x3 convolutions have no padding.

    Each conv loses 2 pixels (``conv_output_size(s, 3) = s - 2``), each pool halves, each 2x2
    up-convolution doubles (``(s - 1) * 2 + 2``). The skip from encoder level ``i`` is larger than
    the upsampled map it joins, so it is *cropped* to it. Returns ``{"encoder": [(conv1, conv2)
    per level, bottleneck last], "decoder": [(up, conv1, conv2) per level], "crops": [(skip, to)],
    "output": side}``. 572 gives the paper's 388; a pool of an odd side raises ``ValueError``.
    """
    if not isinstance(size, int) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"size and depth must be ints, depth >= 1, got size={size!r}, depth={depth!r}")
    encoder, decoder, crops = [], [], []
    side = size
    for level in range(depth + 1):
        if level:
            if side % 2:
                raise ValueError(f"level {level}: max pooling a {side}-pixel map loses a pixel; the unpadded "
                                 f"U-Net needs even sides before every pool (the paper's 572 works)")
            side = conv_output_size(side, 2, stride=2)            # MaxPool2d(2)
        first = conv_output_size(side, 3)
        side = conv_output_size(first, 3)
        encoder.append((first, side))
    for level in reversed(range(depth)):
        up = (side - 1) * 2 + 2                                   # ConvTranspose2d(k=2, s=2)
        skip = encoder[level][1]
        if (skip - up) % 2:
            raise ValueError(f"the skip of {skip} pixels cannot be centre-cropped to {up}")
        crops.append((skip, up))
        first = conv_output_size(up, 3)
        side = conv_output_size(first, 3)
        decoder.append((up, first, side))
    return {"encoder": encoder, "decoder": decoder, "crops": crops, "output": side}


# ----------------------------------------------------------------------------- the parts


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(8, channels), channels)
    raise ValueError(f"norm must be 'batch' or 'group', got {kind!r}")


class DoubleConv(nn.Module):
    """(3x3 conv -> norm -> ReLU) x 2, padding 1: the U-Net's brick. (B, C_in, H, W) -> (B, C_out, H, W).

    With ``emb_dim`` set, ``forward(x, emb)`` adds a projection of ``emb`` (B, emb_dim) to every
    pixel after the first norm (as DDPM's residual blocks add their time embedding).
    """

    def __init__(self, in_channels: int, out_channels: int, norm: str = "batch", emb_dim: int | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)  # the norm's shift is the bias
        self.norm1 = _norm(norm, out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = _norm(norm, out_channels)
        self.emb = nn.Linear(emb_dim, out_channels) if emb_dim else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm1(self.conv1(x))                                  # (B, C_out, H, W)
        if self.emb is not None:
            h = h + rearrange(self.emb(emb), "b c -> b c 1 1")         # the same shift at every pixel
        h = F.relu(h)
        return F.relu(self.norm2(self.conv2(h)))


class Down(nn.Module):
    """MaxPool2d(2) -> DoubleConv: halve the side (floor), change the channels. (B, C_in, H, W) ->
    (B, C_out, H // 2, W // 2). The pool widens the receptive field of everything after it."""

    def __init__(self, in_channels: int, out_channels: int, norm: str = "batch", emb_dim: int | None = None):
        super().__init__()
        self.pool = nn.MaxPool2d(2)
        self.conv = DoubleConv(in_channels, out_channels, norm, emb_dim)

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        return self.conv(self.pool(x), emb)


class Up(nn.Module):
    """Upsample x2, pad to the skip's size, concatenate ``[skip, up]``, DoubleConv.

    x: (B, C_in, h, w), skip: (B, C_in // 2, H, W) with H in {2h, 2h + 1} -> (B, C_out, H, W).
    ``bilinear=False``: a learned 2x2 transposed convolution (C_in -> C_in // 2); ``True``: bilinear
    interpolation then a 1x1 convolution (C_in -> C_in // 2), with no checkerboard artefacts.
    ``skip=None`` joins zeros instead (the U-Net without skip connections).
    """

    def __init__(self, in_channels: int, out_channels: int, bilinear: bool = False, norm: str = "batch",
                 emb_dim: int | None = None):
        super().__init__()
        if bilinear:
            self.up = nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                                    nn.Conv2d(in_channels, in_channels // 2, 1))
        else:
            self.up = nn.ConvTranspose2d(in_channels, in_channels // 2, 2, stride=2)
        self.conv = DoubleConv(in_channels, out_channels, norm, emb_dim)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None, emb: torch.Tensor | None = None,
                size: tuple[int, int] | None = None) -> torch.Tensor:
        x = self.up(x)                                                 # (B, C_in // 2, 2h, 2w)
        height, width = skip.shape[-2:] if skip is not None else size
        x = pad_to(x, height, width)                                   # (B, C_in // 2, H, W)
        if skip is None:
            skip = torch.zeros_like(x)
        return self.conv(torch.cat([skip, x], dim=1), emb)             # (B, C_in, H, W) -> (B, C_out, H, W)


class OutConv(nn.Module):
    """1x1 convolution: per-pixel class logits (or noise) from the last features. (B, C, H, W) -> (B, K, H, W)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


# ----------------------------------------------------------------------------- the U-Net


class UNet(nn.Module):
    """The seed's U-Net with ``depth`` levels: widths ``base * 2**i`` (seed: base 64, depth 4).

    ``forward(x)``: (B, in_channels, H, W) -> (B, out_channels, H, W) for any H, W >= 2**depth.

    ``time_dim``: when set, ``forward(x, t)`` takes times ``t`` (B,) (ints or floats, e.g. diffusion
    steps 0..999), embeds them with :func:`tinysora.transformer.sinusoidal_embedding` (``time_dim``
    features) and an MLP, and adds the result to every DoubleConv. ``forward(x, t, cond=c)`` adds a
    conditioning vector ``c`` (B, time_dim) to the time features first (e.g. a class embedding).
    ``skips=False``: zeros replace every skip, so the decoder sees only the bottleneck.
    ``forward(x, t, hook=f)`` lets ``f(level, h)`` change the decoder's features at every level
    (cross-attention to a caption, in chapter 12) without a copy of ``forward``; ``widths[level]``
    is the number of channels it meets there.
    ``norm``: "batch" (the seed's) or "group" (per-example statistics, usual in diffusion).
    """

    def __init__(self, in_channels: int, out_channels: int, *, base: int = 16, depth: int = 3,
                 bilinear: bool = False, time_dim: int | None = None, skips: bool = True, norm: str = "batch"):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("base", base),
                            ("depth", depth)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if time_dim is not None and (not isinstance(time_dim, int) or time_dim < 2 or time_dim % 2):
            raise ValueError(f"time_dim must be an even int >= 2 (sin/cos pairs) or None, got {time_dim!r}")
        _norm(norm, 1)
        self.in_channels, self.out_channels, self.depth = in_channels, out_channels, depth
        self.time_dim, self.skips = time_dim, skips
        emb_dim = 4 * time_dim if time_dim else None
        self.time_mlp = nn.Sequential(nn.Linear(time_dim, emb_dim), nn.SiLU(),
                                      nn.Linear(emb_dim, emb_dim)) if time_dim else None
        widths = [base * 2**i for i in range(depth + 1)]               # 16, 32, 64, 128
        self.widths = widths                                            # channels at each level (for a hook)
        self.inc = DoubleConv(in_channels, widths[0], norm, emb_dim)
        self.downs = nn.ModuleList(Down(widths[i], widths[i + 1], norm, emb_dim) for i in range(depth))
        self.ups = nn.ModuleList(Up(widths[i + 1], widths[i], bilinear, norm, emb_dim)
                                 for i in reversed(range(depth)))
        self.outc = OutConv(widths[0], out_channels)

    def _embed(self, x: torch.Tensor, t, cond) -> torch.Tensor | None:
        if self.time_dim is None:
            if t is not None or cond is not None:
                raise ValueError("this UNet has no time embedding (time_dim=None): call it as model(x)")
            return None
        if t is None:
            raise ValueError(f"this UNet embeds time (time_dim={self.time_dim}): call it as model(x, t)")
        t = torch.as_tensor(t, device=x.device)
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        if t.shape != (x.shape[0],):
            raise ValueError(f"t must hold one time per image, shape ({x.shape[0]},), got {tuple(t.shape)}")
        features = sinusoidal_embedding(t, self.time_dim)            # (B, time_dim)
        if cond is not None:
            if cond.shape != features.shape:
                raise ValueError(f"cond must have shape {tuple(features.shape)}, got {tuple(cond.shape)}")
            features = features + cond
        return self.time_mlp(features)                                  # (B, 4 time_dim)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise a ValueError unless x is (B, in_channels, H, W) with H, W >= 2**depth."""
        if not torch.is_tensor(x) or x.ndim != 4:
            raise ValueError(f"expected images (B, C, H, W), got {type(x).__name__} "
                             f"of shape {tuple(getattr(x, 'shape', ()))}")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"this UNet takes {self.in_channels}-channel images, got {x.shape[1]} channels")
        smallest = 2**self.depth
        if min(x.shape[-2:]) < smallest:
            raise ValueError(f"a {x.shape[-2]}x{x.shape[-1]} image is too small for depth {self.depth}: "
                             f"{self.depth} poolings need sides >= 2**{self.depth} = {smallest}")

    def forward(self, x: torch.Tensor, t=None, cond: torch.Tensor | None = None, *,
                hook: Callable[[int, torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
        """(B, in_channels, H, W) -> (B, out_channels, H, W); ``t`` (B,) and ``cond`` (B, time_dim) optional.

        ``hook(level, h) -> h``: called on the decoder's features at every level, the bottleneck
        first (``level = depth``, ``h`` of ``widths[depth]`` channels), then after each Up
        (``level = depth - 1 .. 0``, ``widths[level]`` channels); what it returns replaces ``h``
        (same shape). Chapter 12 inserts cross-attention to a caption here.
        """
        self.check_input(x)
        emb = self._embed(x, t, cond)
        features = [self.inc(x, emb)]                                   # (B, base, H, W)
        for down in self.downs:                                         # halve, widen: the "what"
            features.append(down(features[-1], emb))
        h = features.pop()                                              # bottleneck (B, base 2^depth, H/2^d, W/2^d)
        h = self._hook(hook, self.depth, h)
        for level, up in zip(reversed(range(self.depth)), self.ups):    # double, join the "where"
            skip = features.pop()
            h = up(h, skip if self.skips else None, emb, size=tuple(skip.shape[-2:]))
            h = self._hook(hook, level, h)
        return self.outc(h)                                             # (B, out_channels, H, W)

    @staticmethod
    def _hook(hook, level: int, h: torch.Tensor) -> torch.Tensor:
        if hook is None:
            return h
        out = hook(level, h)
        if not torch.is_tensor(out) or out.shape != h.shape:
            raise ValueError(f"the hook must return a tensor of the features' shape {tuple(h.shape)} at level "
                             f"{level}, got {tuple(getattr(out, 'shape', ())) or type(out).__name__}")
        return out

    def encoder(self) -> nn.Sequential:
        """Input -> bottleneck, as one module (for :func:`tinysora.cnn.receptive_field_by_gradient`)."""
        if self.time_dim is not None:
            raise ValueError("the encoder alone cannot be called without times; use a UNet with time_dim=None")
        return nn.Sequential(self.inc, *self.downs)

    def bottleneck_receptive_field(self) -> int:
        """Side of the input patch one bottleneck pixel sees, from chapter 03's calculator."""
        return receptive_field(nn.Sequential(self.inc, *self.downs)).size


# ----------------------------------------------------------------------------- data


def segmentation_frames(n: int, size: int = 32, max_shapes: int = 2,
                        seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` shapes-world frames with 1..max_shapes objects each, and a class per pixel.

    Returns images float32 (n, 3, size, size) in [0, 1] and labels int64 (n, size, size): 0 for
    the background, ``1 + SHAPES.index(shape)`` for an object (a later object hides an earlier
    one). Each layer is one frame of :func:`tinysora.data.make_clips`, whose masks are exact.
    """
    if not isinstance(max_shapes, int) or max_shapes < 1:
        raise ValueError(f"max_shapes must be a positive int, got {max_shapes!r}")
    generator = torch.Generator().manual_seed(seed)
    count = torch.randint(1, max_shapes + 1, (n,), generator=generator)   # objects per frame
    images = torch.zeros(n, 3, size, size)
    labels = torch.zeros(n, size, size, dtype=torch.int64)
    for layer in range(max_shapes):
        clips = make_clips(n, frames=1, height=size, width=size, split="all", seed=seed * max_shapes + layer)
        shown = clips.masks[:, 0] & rearrange(count > layer, "n -> n 1 1")             # (n, size, size)
        kind = torch.tensor([1 + SHAPES.index(s) for s in clips.shape])
        images = torch.where(rearrange(shown, "n h w -> n 1 h w"), clips.video[:, 0], images)
        labels = torch.where(shown, rearrange(kind, "n -> n 1 1"), labels)
    return images, labels


# ----------------------------------------------------------------------------- metrics


def iou_per_class(pred: torch.Tensor, target: torch.Tensor, num_classes: int = NUM_CLASSES,
                  where: torch.Tensor | None = None) -> torch.Tensor:
    """Intersection over union of every class, over all pixels (or those ``where`` is True).

    pred, target: int (N, H, W). Returns (num_classes,) float64; NaN for a class absent from both.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} must have the same shape")
    keep = torch.ones_like(target, dtype=torch.bool) if where is None else where
    pred, target = pred[keep], target[keep]
    classes = torch.arange(num_classes, device=pred.device)[:, None]
    p, t = pred[None] == classes, target[None] == classes                 # (K, pixels)
    inter, union = (p & t).sum(1).double(), (p | t).sum(1).double()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.nan)


def mean_iou(pred: torch.Tensor, target: torch.Tensor, num_classes: int = NUM_CLASSES,
             where: torch.Tensor | None = None) -> float:
    """mIoU: the mean of :func:`iou_per_class` over the classes that occur."""
    return float(iou_per_class(pred, target, num_classes, where).nanmean())


def boundary_band(labels: torch.Tensor, width: int = 1) -> torch.Tensor:
    """bool (N, H, W): pixels within ``width`` pixels (chessboard distance) of a label change."""
    return distance_to_boundary(labels, width) <= width


def distance_to_boundary(labels: torch.Tensor, max_distance: int = 4) -> torch.Tensor:
    """int64 (N, H, W): chessboard distance to the nearest pixel of another label, capped at
    ``max_distance + 1``. A pixel with a differently labelled 8-neighbour is at distance 1."""
    if labels.ndim != 3:
        raise ValueError(f"labels must be (N, H, W), got shape {tuple(labels.shape)}")
    onehot = rearrange(F.one_hot(labels, int(labels.max()) + 1), "n h w k -> n k h w").float()
    distance = torch.full_like(labels, max_distance + 1)
    other = torch.zeros_like(labels, dtype=torch.bool)
    for d in range(1, max_distance + 1):
        seen = F.max_pool2d(onehot, 2 * d + 1, stride=1, padding=d)        # classes within distance d
        other = (seen.sum(1) > 1) | other                                  # >1 class near: another label
        distance = torch.where(other & (distance > max_distance), d, distance)
    return distance


@torch.no_grad()
def predict_labels(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Arg-max class of every pixel, in eval mode. (N, C, H, W) -> int64 (N, H, W) on the CPU."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = torch.cat([model(images[i:i + batch_size].to(device)).argmax(1).cpu()
                     for i in range(0, len(images), batch_size)])
    model.train(was_training)
    return out


# ----------------------------------------------------------------------------- training


@dataclass
class SegmentationHistory:
    """Training loss every step and test mIoU every ``eval_every`` steps."""

    loss: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    test_miou: list[float] = field(default_factory=list)


def train_segmenter(model: nn.Module, train: tuple[torch.Tensor, torch.Tensor],
                    test: tuple[torch.Tensor, torch.Tensor], *, steps: int, batch_size: int = 32,
                    lr: float = 3e-3, eval_every: int = 100, seed: int = 0,
                    desc: str = "segmenter") -> SegmentationHistory:
    """Per-pixel cross-entropy with Adam (cosine-decayed learning rate) on random mini-batches."""
    if steps <= 0 or batch_size <= 0 or eval_every <= 0:
        raise ValueError(f"steps, batch_size and eval_every must be positive, got {steps}, {batch_size}, {eval_every}")
    images, labels = train
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    generator = torch.Generator().manual_seed(seed)
    history = SegmentationHistory()
    model.train()
    bar = progress(range(1, steps + 1), desc=desc)
    for step in bar:
        batch = torch.randint(len(images), (batch_size,), generator=generator)
        x, y = images[batch].to(device), labels[batch].to(device)
        loss = F.cross_entropy(model(x), y)                             # logits (B, K, H, W), y (B, H, W)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        history.loss.append(loss.item())
        if step % eval_every == 0 or step == steps:
            history.eval_steps.append(step)
            history.test_miou.append(mean_iou(predict_labels(model, test[0]), test[1]))
            bar.set_postfix(loss=f"{history.loss[-1]:.3f}", test_miou=f"{history.test_miou[-1]:.3f}")
    return history


# ----------------------------------------------------------------------------- the figure


def draw_unet(depth: int = 3, base: int = 16, size: int = 32, ax=None):
    """Schematic of :class:`UNet`: boxes per level (channels x side), pools, up-convs, skips."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(1.9 * (2 * depth + 1), 0.9 * depth + 2.6))
    sides = [size // 2**i for i in range(depth + 1)]
    widths = [base * 2**i for i in range(depth + 1)]
    enc_x = [1.6 * i for i in range(depth + 1)]
    dec_x = [1.6 * (2 * depth - i) for i in range(depth)]

    def box(x, level, label, colour):
        y = -1.0 * level
        ax.add_patch(plt.Rectangle((x - 0.45, y - 0.3), 0.9, 0.6, color=colour, alpha=0.85))
        ax.text(x, y, label, ha="center", va="center", fontsize=8)
        return x, y

    ax.annotate("", xy=(enc_x[0] - 0.45, 0), xytext=(enc_x[0] - 1.1, 0), arrowprops=dict(arrowstyle="->"))
    ax.text(enc_x[0] - 1.15, 0.35, f"input\n{size}x{size}", fontsize=8, ha="center")
    for i in range(depth + 1):
        box(enc_x[i], i, f"DoubleConv\n{widths[i]} x {sides[i]}²", "tab:blue" if i < depth else "tab:purple")
        if i == depth:
            ax.text(enc_x[i], -i - 0.45, "bottleneck", ha="center", va="top", fontsize=8, color="tab:purple")
        if i < depth:
            ax.annotate("", xy=(enc_x[i + 1] - 0.2, -i - 0.7), xytext=(enc_x[i] + 0.2, -i - 0.3),
                        arrowprops=dict(arrowstyle="->", color="tab:red"))
            ax.text((enc_x[i] + enc_x[i + 1]) / 2 - 0.5, -i - 0.5, "max pool", fontsize=7, color="tab:red")
    for i in reversed(range(depth)):
        box(dec_x[i], i, f"Up: cat\n{widths[i]}+{widths[i]} → {widths[i]}", "tab:green")
        src_x = enc_x[depth] if i == depth - 1 else dec_x[i + 1]
        ax.annotate("", xy=(dec_x[i] - 0.2, -i - 0.3), xytext=(src_x + 0.2, -i - 0.7),
                    arrowprops=dict(arrowstyle="->", color="tab:orange"))
        ax.text((src_x + dec_x[i]) / 2 + 0.05, -i - 0.5, "up x2", fontsize=7, color="tab:orange")
        ax.annotate("", xy=(dec_x[i] - 0.45, -i), xytext=(enc_x[i] + 0.45, -i),
                    arrowprops=dict(arrowstyle="->", color="gray", linestyle="--"))
        ax.text((enc_x[i] + dec_x[i]) / 2, -i + 0.08, "skip (copy, pad to size)", fontsize=7, color="gray",
                ha="center")
    ax.annotate("", xy=(dec_x[0] + 1.1, 0), xytext=(dec_x[0] + 0.45, 0), arrowprops=dict(arrowstyle="->"))
    ax.text(dec_x[0] + 1.15, 0.35, f"OutConv 1x1\n{size}x{size}", fontsize=8, ha="center")
    ax.set_xlim(enc_x[0] - 1.7, dec_x[0] + 1.8)
    ax.set_ylim(-depth - 0.8, 0.9)
    ax.set_axis_off()
    ax.set_title(f"U-Net, depth {depth}: the encoder finds what, the skips keep where")
    return ax


__all__ = ["NUM_CLASSES", "CLASS_NAMES", "pad_to", "unpadded_sizes", "DoubleConv", "Down", "Up", "OutConv",
           "UNet", "segmentation_frames", "iou_per_class", "mean_iou", "boundary_band", "distance_to_boundary",
           "predict_labels", "SegmentationHistory", "train_segmenter", "draw_unet"]
