"""Chapter 03: convolutional networks.

The seed's pipeline, built twice. In NumPy to be read: the four-loop ``conv2d_loops`` exactly as
the lecture notes write it (plus the stride they forget), a vectorised ``conv2d`` (strided views
and one einsum, with stride, padding and dilation), ``im2col``, ``BatchNorm2d`` with its train and
eval behaviour, ``max_pool2d``, ``adaptive_avg_pool2d`` and inverted ``Dropout``. In torch to be
used: :class:`CNNClassifier`, ``Conv2d -> BatchNorm2d -> ReLU -> MaxPool2d`` blocks, then
``AdaptiveAvgPool2d``, then the ``Flatten -> Linear -> ReLU -> Dropout -> Linear`` head.

Plus the two calculators a CNN designer needs: :func:`conv_output_size` (the seed's ``out_H``
formula, with dilation) and :func:`receptive_field` (checked in the chapter against
:func:`receptive_field_by_gradient`, which back-propagates a one-hot).

NumPy layout is torch's: images ``(B, C, H, W)``, kernels ``(C_out, C_in, kH, kW)``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch
from einops import rearrange
from numpy.lib.stride_tricks import as_strided
from torch import nn

# ----------------------------------------------------------------------------- argument checks


def _pair(value, name: str) -> tuple[int, int]:
    """``3 -> (3, 3)``; ``(2, 3) -> (2, 3)``; anything else is a ``TypeError``/``ValueError``."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        return int(value[0]), int(value[1])
    raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")


def _check_images(x, name: str = "x") -> np.ndarray:
    if isinstance(x, torch.Tensor):
        raise TypeError(f"{name} is a torch tensor; these NumPy layers take np.ndarray (use .numpy())")
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"{name} must be 4-D (batch, channels, height, width), got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.number):
        raise TypeError(f"{name} must hold numbers, got dtype {x.dtype}")
    return x.astype(np.float64, copy=False)


# ----------------------------------------------------------------------------- sizes


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution or pooling along one axis.

    The seed's formula is the ``dilation=1`` case, ``(H + 2p - k) // s + 1``; a dilated kernel
    spans ``d (k - 1) + 1`` pixels, so in general ``(H + 2p - d (k - 1) - 1) // s + 1``.
    """
    for name, value, low in (("size", size, 1), ("kernel_size", kernel_size, 1), ("stride", stride, 1),
                             ("padding", padding, 0), ("dilation", dilation, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
            raise TypeError(f"{name} must be an int, got {value!r}")
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    span = dilation * (kernel_size - 1) + 1
    if size + 2 * padding < span:
        raise ValueError(f"the kernel spans {span} pixels but the padded input has only "
                         f"{size + 2 * padding} (size {size} + 2 x padding {padding})")
    return (size + 2 * padding - span) // stride + 1


# ----------------------------------------------------------------------------- convolution (NumPy)


def _check_conv_args(x, weight, bias):
    x = _check_images(x)
    weight = np.asarray(weight, dtype=np.float64)
    if weight.ndim != 4:
        raise ValueError(f"weight must be 4-D (C_out, C_in, kH, kW), got shape {weight.shape}")
    if weight.shape[1] != x.shape[1]:
        raise ValueError(f"x has {x.shape[1]} channels but weight expects C_in={weight.shape[1]} "
                         f"(x: {x.shape}, weight: {weight.shape})")
    if bias is None:
        bias = np.zeros(weight.shape[0])
    bias = np.asarray(bias, dtype=np.float64)
    if bias.shape != (weight.shape[0],):
        raise ValueError(f"bias must have shape ({weight.shape[0]},), got {bias.shape}")
    return x, weight, bias


def conv2d_loops(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None,
                 stride: int = 1, padding: int = 0) -> np.ndarray:
    """The seed's four-loop convolution, kept to be read (and timed): slow, obviously right.

    x: (B, C_in, H, W), weight: (C_out, C_in, k, k), bias: (C_out,) -> (B, C_out, out_H, out_W).
    Like every deep-learning "convolution" it does not flip the kernel (a cross-correlation).
    The seed slices ``x_pad[b, :, h:h+k, w:w+k]``, which is right only for stride 1; the window
    of output pixel ``h`` starts at ``h * stride``.
    """
    x, weight, bias = _check_conv_args(x, weight, bias)
    stride, padding = _pair(stride, "stride"), _pair(padding, "padding")
    if stride[0] != stride[1] or padding[0] != padding[1]:
        raise ValueError("conv2d_loops keeps the seed's square stride and padding; use conv2d for pairs")
    stride, padding = stride[0], padding[0]
    batch, _, height, width = x.shape
    out_c, _, kh, kw = weight.shape
    out_h = conv_output_size(height, kh, stride, padding)
    out_w = conv_output_size(width, kw, stride, padding)
    # padding: give the input a border of zeros
    x_pad = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), mode="constant")
    out = np.zeros((batch, out_c, out_h, out_w))
    for b in range(batch):                # every sample
        for c_out in range(out_c):        # every output channel
            for h in range(out_h):        # every output row
                for w in range(out_w):    # every output column
                    field = x_pad[b, :, h * stride:h * stride + kh, w * stride:w * stride + kw]  # (C_in, kh, kw)
                    out[b, c_out, h, w] = np.sum(field * weight[c_out]) + bias[c_out]
    return out


def sliding_windows(x: np.ndarray, kernel_size, stride=1, padding=0, dilation=1, pad_value: float = 0.0) -> np.ndarray:
    """Every kernel-sized window of ``x`` as a view, no copy (beyond the padding).

    x: (B, C, H, W) -> (B, C, out_H, out_W, kH, kW), where ``windows[b, c, h, w]`` is the patch
    that output pixel (h, w) sees. It is the loops' ``field`` for all (h, w) at once.
    """
    x = _check_images(x)
    (kh, kw), (sh, sw) = _pair(kernel_size, "kernel_size"), _pair(stride, "stride")
    (ph, pw), (dh, dw) = _pair(padding, "padding"), _pair(dilation, "dilation")
    batch, channels, height, width = x.shape
    out_h = conv_output_size(height, kh, sh, ph, dh)
    out_w = conv_output_size(width, kw, sw, pw, dw)
    x_pad = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), mode="constant", constant_values=pad_value)
    s_b, s_c, s_h, s_w = x_pad.strides
    return as_strided(x_pad, shape=(batch, channels, out_h, out_w, kh, kw),
                      strides=(s_b, s_c, s_h * sh, s_w * sw, s_h * dh, s_w * dw), writeable=False)


def im2col(x: np.ndarray, kernel_size, stride=1, padding=0, dilation=1) -> np.ndarray:
    """Unfold every window into a column: (B, C, H, W) -> (B, C*kH*kW, L), L = out_H*out_W.

    The same layout as ``torch.nn.functional.unfold``; a convolution is then one matrix product
    ``weight.reshape(C_out, -1) @ columns``.
    """
    windows = sliding_windows(x, kernel_size, stride, padding, dilation)
    return rearrange(windows, "b c h w i j -> b (c i j) (h w)")


def conv2d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None,
           stride=1, padding=0, dilation=1) -> np.ndarray:
    """Vectorised convolution (cross-correlation, as in ``torch.nn.functional.conv2d``).

    x: (B, C_in, H, W), weight: (C_out, C_in, kH, kW), bias: (C_out,) -> (B, C_out, out_H, out_W).
    Each output channel sums over *all* input channels:
    ``out[b, o, h, w] = bias[o] + sum_{c,i,j} x_pad[b, c, h*s + i*d, w*s + j*d] * weight[o, c, i, j]``.
    """
    x, weight, bias = _check_conv_args(x, weight, bias)
    windows = sliding_windows(x, weight.shape[2:], stride, padding, dilation)  # (B, C_in, oH, oW, kH, kW)
    out = np.einsum("bchwij,ocij->bohw", windows, weight, optimize=True)
    return out + bias[None, :, None, None]


def convolve2d_true(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The mathematician's discrete convolution, 'valid' part: flip the kernel, then slide.

    image: (H, W), kernel: (kH, kW) -> (H - kH + 1, W - kW + 1);
    ``out[i, j] = sum_{m, n} image[i + m, j + n] * kernel[kH - 1 - m, kW - 1 - n]``.
    """
    image, kernel = np.asarray(image, dtype=np.float64), np.asarray(kernel, dtype=np.float64)
    if image.ndim != 2 or kernel.ndim != 2:
        raise ValueError(f"image and kernel must be 2-D, got shapes {image.shape} and {kernel.shape}")
    flipped = kernel[::-1, ::-1]
    return conv2d(image[None, None], flipped[None, None])[0, 0]


# ----------------------------------------------------------------------------- normalisation, pooling, dropout (NumPy)


class BatchNorm2d:
    """Batch normalisation over (batch, height, width) for each channel, as ``torch.nn.BatchNorm2d``.

    Training: normalise with the batch's own mean and (biased) variance, one per channel
    (``x.mean(axis=(0, 2, 3))``: 64 means for 64 channels), and update the running statistics
    with an exponential moving average,
    ``running = (1 - momentum) * running + momentum * batch_statistic``
    (torch's ``momentum`` is the weight of the *new* batch; the running variance uses the unbiased
    variance, n / (n - 1) times the biased one). Evaluation: use the running statistics only.
    Either way, ``gamma * x_hat + beta`` with learnable ``gamma`` (1s) and ``beta`` (0s).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        if not isinstance(num_features, (int, np.integer)) or num_features <= 0:
            raise ValueError(f"num_features must be a positive int, got {num_features!r}")
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"momentum must be in (0, 1], got {momentum}")
        if eps <= 0:
            raise ValueError(f"eps must be positive, got {eps}")
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), float(momentum)
        self.gamma = np.ones(num_features)
        self.beta = np.zeros(num_features)
        self.running_mean = np.zeros(num_features)
        self.running_var = np.ones(num_features)
        self.num_batches_tracked = 0
        self.training = True

    def train(self, mode: bool = True) -> "BatchNorm2d":
        self.training = bool(mode)
        return self

    def eval(self) -> "BatchNorm2d":
        return self.train(False)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """x: (B, C, H, W) -> (B, C, H, W)."""
        x = _check_images(x)
        if x.shape[1] != self.num_features:
            raise ValueError(f"x has {x.shape[1]} channels but this BatchNorm2d has {self.num_features}")
        if self.training:
            n = x.shape[0] * x.shape[2] * x.shape[3]  # values per channel
            if n < 2:
                raise ValueError("training BatchNorm2d needs more than one value per channel "
                                 f"(got x of shape {x.shape}); use eval() for single values")
            mean = x.mean(axis=(0, 2, 3))             # (C,)
            var = x.var(axis=(0, 2, 3))               # (C,), biased: used to normalise
            m = self.momentum
            self.running_mean = (1 - m) * self.running_mean + m * mean
            self.running_var = (1 - m) * self.running_var + m * var * n / (n - 1)
            self.num_batches_tracked += 1
        else:
            mean, var = self.running_mean, self.running_var
        x_hat = (x - mean[None, :, None, None]) / np.sqrt(var[None, :, None, None] + self.eps)
        return self.gamma[None, :, None, None] * x_hat + self.beta[None, :, None, None]


def max_pool2d(x: np.ndarray, kernel_size, stride=None, padding=0) -> np.ndarray:
    """Maximum over each window, channel by channel (no weights; the channel count is unchanged).

    x: (B, C, H, W) -> (B, C, out_H, out_W), sizes by :func:`conv_output_size`. ``stride``
    defaults to ``kernel_size`` (non-overlapping windows), padding pads with -inf, as torch does.
    """
    kernel_size = _pair(kernel_size, "kernel_size")
    stride = kernel_size if stride is None else _pair(stride, "stride")
    padding = _pair(padding, "padding")
    if padding[0] > kernel_size[0] // 2 or padding[1] > kernel_size[1] // 2:
        raise ValueError(f"padding {padding} must be at most half the kernel size {kernel_size}")
    windows = sliding_windows(x, kernel_size, stride, padding, pad_value=-np.inf)
    return windows.max(axis=(-2, -1))


def adaptive_avg_pool2d(x: np.ndarray, output_size) -> np.ndarray:
    """Average over ``output_size`` bins that tile the image, whatever its size (torch's bins).

    x: (B, C, H, W) -> (B, C, oH, oW). Bin ``i`` along an axis of length ``H`` covers rows
    ``floor(i H / oH)`` to ``ceil((i + 1) H / oH)`` (bins overlap when oH does not divide H).
    ``output_size=1`` is global average pooling: one number, the mean strength, per channel.
    """
    x = _check_images(x)
    out_h, out_w = _pair(output_size, "output_size")
    if out_h <= 0 or out_w <= 0:
        raise ValueError(f"output_size must be positive, got {(out_h, out_w)}")
    height, width = x.shape[2:]
    out = np.empty(x.shape[:2] + (out_h, out_w))
    for i in range(out_h):
        top, bottom = (i * height) // out_h, -((-(i + 1) * height) // out_h)
        for j in range(out_w):
            left, right = (j * width) // out_w, -((-(j + 1) * width) // out_w)
            out[:, :, i, j] = x[:, :, top:bottom, left:right].mean(axis=(2, 3))
    return out


class Dropout:
    """Inverted dropout, as ``torch.nn.Dropout``.

    Training: keep each value with probability ``1 - p`` (a Bernoulli(1 - p) mask) and divide the
    kept ones by ``1 - p``, so every output has the same expectation as its input. Evaluation:
    the identity, with no rescaling needed (that is the point of dividing during training).
    """

    def __init__(self, p: float = 0.5, seed: int = 0):
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability p must be in [0, 1), got {p}")
        self.p = float(p)
        self.rng = np.random.default_rng(seed)
        self.training = True

    def train(self, mode: bool = True) -> "Dropout":
        self.training = bool(mode)
        return self

    def eval(self) -> "Dropout":
        return self.train(False)

    def __call__(self, x: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """x: any shape -> same shape. ``mask`` (bool, x's shape) replaces the random draw."""
        x = np.asarray(x, dtype=np.float64)
        if not self.training or self.p == 0.0:
            return x
        if mask is None:
            mask = self.rng.random(x.shape) >= self.p  # True = keep, with probability 1 - p
        mask = np.asarray(mask)
        if mask.shape != x.shape:
            raise ValueError(f"mask has shape {mask.shape} but x has shape {x.shape}")
        return x * mask / (1.0 - self.p)


# ----------------------------------------------------------------------------- receptive fields


@dataclass(frozen=True)
class LayerSpec:
    """The spatial hyper-parameters of one conv or pooling layer (square kernels)."""

    kernel_size: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1

    def __post_init__(self):
        for name in ("kernel_size", "stride", "dilation"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(self.padding, (int, np.integer)) or self.padding < 0:
            raise ValueError(f"padding must be a non-negative int, got {self.padding!r}")


@dataclass(frozen=True)
class ReceptiveField:
    """After a stack of layers: ``size`` input pixels seen by one output pixel, ``jump`` input
    pixels between neighbouring output pixels (the product of the strides), and ``start``, the
    input coordinate of the centre of output pixel 0's field (pixel centres at 0, 1, 2, ...)."""

    size: int
    jump: int
    start: float


def _square(value, what: str) -> int:
    value = value if isinstance(value, tuple) else (value, value)
    if value[0] != value[1]:
        raise ValueError(f"{what} {value} is not square; the calculator handles square layers only")
    return int(value[0])


def layer_specs(model: nn.Module) -> list[LayerSpec]:
    """The :class:`LayerSpec` of every Conv2d / MaxPool2d / AvgPool2d in ``model``, in order.

    Layers that act pixel by pixel (BatchNorm, ReLU, Dropout) do not change receptive fields and
    are skipped; an ``AdaptiveAvgPool2d`` ends the list (after it, every unit sees the whole image).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
    specs = []
    for layer in model.modules():
        if isinstance(layer, nn.Conv2d):
            specs.append(LayerSpec(_square(layer.kernel_size, "kernel_size"), _square(layer.stride, "stride"),
                                   _square(layer.padding, "padding"), _square(layer.dilation, "dilation")))
        elif isinstance(layer, (nn.MaxPool2d, nn.AvgPool2d)):
            dilation = getattr(layer, "dilation", 1)
            specs.append(LayerSpec(_square(layer.kernel_size, "kernel_size"), _square(layer.stride, "stride"),
                                   _square(layer.padding, "padding"), _square(dilation, "dilation")))
        elif isinstance(layer, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            break
    return specs


def _as_specs(layers) -> list[LayerSpec]:
    if isinstance(layers, nn.Module):
        return layer_specs(layers)
    specs = []
    for layer in layers:
        if isinstance(layer, LayerSpec):
            specs.append(layer)
        elif isinstance(layer, (tuple, list)) and 1 <= len(layer) <= 4:
            specs.append(LayerSpec(*layer))
        elif isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
            specs.append(LayerSpec(int(layer)))
        else:
            raise TypeError(f"each layer must be a LayerSpec, a (kernel, stride, padding, dilation) tuple "
                            f"or a kernel size, got {layer!r}")
    return specs


def receptive_field(layers: Iterable | nn.Module) -> ReceptiveField:
    """Receptive field of one output pixel after ``layers`` (specs, tuples or a torch model).

    With ``k' = d (k - 1) + 1`` the span of a dilated kernel, each layer grows the field by
    ``(k' - 1)`` times the jump so far, and multiplies the jump by its stride:
    ``r_l = r_{l-1} + (k'_l - 1) j_{l-1}``, ``j_l = j_{l-1} s_l``, starting from ``r_0 = j_0 = 1``.
    Two 3x3 convolutions: 1 + 2 + 2 = 5 (the seed's 5x5).
    """
    size, jump, start = 1, 1, 0.0
    for spec in _as_specs(layers):
        span = spec.dilation * (spec.kernel_size - 1) + 1
        start += ((span - 1) / 2 - spec.padding) * jump
        size += (span - 1) * jump
        jump *= spec.stride
    return ReceptiveField(size=size, jump=jump, start=start)


def linearised(model: nn.Module) -> nn.Module:
    """A copy of ``model`` in which every input pixel of a receptive field carries gradient.

    Convolution weights become 1 (no cancellation), max pooling becomes average pooling over the
    same windows (max routes the gradient to one pixel), ReLU, BatchNorm and Dropout become the
    identity (a ReLU that is off blocks the gradient). The receptive fields are unchanged.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
    model = copy.deepcopy(model)

    def swap(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            if isinstance(child, nn.MaxPool2d):
                setattr(parent, name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding,
                                                   ceil_mode=child.ceil_mode, count_include_pad=True))
            elif isinstance(child, (nn.ReLU, nn.BatchNorm2d, nn.Dropout, nn.GELU, nn.Tanh, nn.Sigmoid)):
                setattr(parent, name, nn.Identity())
            elif isinstance(child, nn.Conv2d):
                with torch.no_grad():
                    child.weight.fill_(1.0)
                    if child.bias is not None:
                        child.bias.zero_()
            else:
                swap(child)

    swap(model)
    return model.eval()


def receptive_field_by_gradient(model: nn.Module, in_channels: int, image_size: int,
                                linearise: bool = True) -> tuple[int, int, np.ndarray]:
    """Measure a receptive field: back-propagate a one-hot at the central output pixel.

    ``model`` maps (1, in_channels, S, S) to a feature map (1, C, h, w). The gradient of
    output[0, 0, h//2, w//2] with respect to the input is non-zero exactly on the pixels that
    reach it. Returns ``(height, width, |gradient| map (S, S))``. ``linearise=True`` first applies
    :func:`linearised` (otherwise ReLUs and max pooling hide part of the field: the map then shows
    the *effective* field of those weights on that input).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch nn.Module, got {type(model).__name__}")
    if image_size <= 0 or in_channels <= 0:
        raise ValueError(f"in_channels and image_size must be positive, got {in_channels}, {image_size}")
    net = linearised(model) if linearise else model
    x = torch.ones(1, in_channels, image_size, image_size, dtype=torch.float64, requires_grad=True)
    net = copy.deepcopy(net).double()
    out = net(x)
    if out.ndim != 4:
        raise ValueError(f"model must return a feature map (1, C, h, w), got shape {tuple(out.shape)}")
    one_hot = torch.zeros_like(out)
    one_hot[0, 0, out.shape[2] // 2, out.shape[3] // 2] = 1.0
    out.backward(one_hot)
    grad = x.grad[0].abs().sum(0).numpy()  # (S, S)
    rows, cols = np.nonzero(grad.sum(1))[0], np.nonzero(grad.sum(0))[0]
    if rows.size == 0:
        return 0, 0, grad
    if rows[0] == 0 or cols[0] == 0 or rows[-1] == image_size - 1 or cols[-1] == image_size - 1:
        raise ValueError(f"the receptive field reaches the border of a {image_size}x{image_size} input: "
                         "use a larger image_size to measure all of it")
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1), grad


# ----------------------------------------------------------------------------- the classifier (torch)


class ConvBlock(nn.Module):
    """Conv2d -> BatchNorm2d -> ReLU -> MaxPool2d: extract features, then halve the resolution.

    (B, C_in, H, W) -> (B, C_out, H // 2, W // 2). The convolution has no bias: BatchNorm
    subtracts the channel mean right after, which would cancel it, and its ``beta`` takes its place.
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 3, pool: int = 2):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd so that padding keeps the size, got {kernel_size}")
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.ReLU()
        self.pool = nn.MaxPool2d(pool) if pool > 1 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.bn(self.conv(x))))


def _check_classifier_sizes(in_channels, num_classes, channels, hidden, dropout, pooled) -> None:
    if in_channels <= 0 or num_classes <= 1 or hidden <= 0 or pooled <= 0:
        raise ValueError(f"need positive sizes and >= 2 classes, got in_channels={in_channels}, "
                         f"num_classes={num_classes}, hidden={hidden}, pooled={pooled}")
    if not channels or any(c <= 0 for c in channels):
        raise ValueError(f"channels must list positive widths, got {channels}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")


class CNNClassifier(nn.Module):
    """The seed's CNN: feature extractor, then classifier head.

    features: ``[Conv2d -> BatchNorm2d -> ReLU -> MaxPool2d] x len(channels) -> AdaptiveAvgPool2d``
    head:     ``Flatten -> Linear -> ReLU -> Dropout -> Linear``

    (B, in_channels, H, W) -> logits (B, num_classes), for any H, W that survive the pooling:
    the adaptive pool always leaves ``pooled x pooled`` values per channel, so the head's size does
    not depend on the input size (spectrograms of different lengths work).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, channels: Sequence[int] = (32, 64),
                 hidden: int = 128, dropout: float = 0.3, pooled: int = 1):
        super().__init__()
        _check_classifier_sizes(in_channels, num_classes, channels, hidden, dropout, pooled)
        widths = [in_channels, *channels]
        self.features = nn.Sequential(
            *[ConvBlock(c_in, c_out) for c_in, c_out in zip(widths[:-1], widths[1:])],
            nn.AdaptiveAvgPool2d(pooled),
        )
        self.head = nn.Sequential(
            nn.Flatten(),                                        # (B, C, p, p) -> (B, C*p*p)
            nn.Linear(channels[-1] * pooled * pooled, hidden),   # mix every channel and position
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, num_classes),                      # logits
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected images (B, C, H, W), got shape {tuple(x.shape)}")
        return self.head(self.features(x))


# ----------------------------------------------------------------------------- small helpers for the chapter


def confusion_matrix(labels: Sequence[int], predictions: Sequence[int], num_classes: int) -> np.ndarray:
    """counts[i, j] = how many examples of class i were predicted as class j."""
    labels, predictions = np.asarray(labels, dtype=int), np.asarray(predictions, dtype=int)
    if labels.shape != predictions.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predictions.shape} differ in shape")
    if labels.size and (min(labels.min(), predictions.min()) < 0
                        or max(labels.max(), predictions.max()) >= num_classes):
        raise ValueError(f"labels and predictions must lie in [0, {num_classes})")
    counts = np.zeros((num_classes, num_classes), dtype=int)
    np.add.at(counts, (labels, predictions), 1)
    return counts


@torch.no_grad()
def predict(model: nn.Module, inputs: torch.Tensor, batch_size: int = 512) -> np.ndarray:
    """Arg-max class of every input, in eval mode (running BatchNorm statistics, no dropout)."""
    if not isinstance(inputs, torch.Tensor) or len(inputs) == 0:
        raise ValueError("inputs must be a non-empty tensor (N, ...)")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = torch.cat([model(inputs[i:i + batch_size].to(device)).argmax(-1).cpu()
                     for i in range(0, len(inputs), batch_size)])
    model.train(was_training)
    return out.numpy()


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


__all__ = [
    "conv_output_size", "conv2d_loops", "sliding_windows", "im2col", "conv2d", "convolve2d_true",
    "BatchNorm2d", "max_pool2d", "adaptive_avg_pool2d", "Dropout",
    "LayerSpec", "ReceptiveField", "layer_specs", "receptive_field", "linearised", "receptive_field_by_gradient",
    "ConvBlock", "CNNClassifier", "confusion_matrix", "predict", "count_parameters",
]
