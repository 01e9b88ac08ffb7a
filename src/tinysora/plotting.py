"""Plots every chapter uses: training curves, image grids and clip animations."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def plot_curves(curves: Mapping[str, Sequence[float]], *, title: str, xlabel: str, ylabel: str,
                logy: bool = False, ax: plt.Axes | None = None) -> plt.Axes:
    """One line per named curve (e.g. ``{"SGD": losses, "Adam": losses}``)."""
    if not curves:
        raise ValueError("plot_curves needs at least one curve")
    ax = ax or plt.subplots(figsize=(6, 3.5))[1]
    for name, values in curves.items():
        ax.plot(np.arange(1, len(values) + 1), values, label=name)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if logy:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax


def show_images(images, titles: Sequence[str] | None = None, *, columns: int = 8, cmap: str = "gray",
                title: str | None = None) -> plt.Figure:
    """A grid of images: (N, H, W) greyscale or (N, 3, H, W) / (N, H, W, 3) colour, values in [0, 1]."""
    images = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if images.ndim == 4 and images.shape[1] == 3:
        images = images.transpose(0, 2, 3, 1)
    if images.ndim not in (3, 4):
        raise ValueError(f"images must be (N, H, W) or (N, 3, H, W) or (N, H, W, 3), got shape {images.shape}")
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(1.2 * columns, 1.3 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            ax.imshow(np.clip(images[i], 0, 1), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[i], fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def animate_clips(videos, captions: Sequence[str] | None = None, *, interval: int = 250):
    """An HTML animation (JavaScript player) of clips (N, T, 3, H, W) side by side.

    Returns an ``IPython.display.HTML`` that a notebook shows inline and the built book keeps.
    """
    from IPython.display import HTML
    from matplotlib import animation

    videos = videos.detach().cpu().numpy() if isinstance(videos, torch.Tensor) else np.asarray(videos)
    if videos.ndim != 5 or videos.shape[2] != 3:
        raise ValueError(f"videos must be (N, T, 3, H, W), got shape {videos.shape}")
    frames = videos.transpose(0, 1, 3, 4, 2)
    n = len(frames)
    fig, axes = plt.subplots(1, n, figsize=(1.6 * n, 1.9), squeeze=False)
    artists = []
    for i, ax in enumerate(axes[0]):
        ax.axis("off")
        artists.append(ax.imshow(np.clip(frames[i, 0], 0, 1), interpolation="nearest"))
        if captions is not None:
            ax.set_title(captions[i], fontsize=7)

    def update(t):
        for i, artist in enumerate(artists):
            artist.set_data(np.clip(frames[i, t], 0, 1))
        return artists

    movie = animation.FuncAnimation(fig, update, frames=frames.shape[1], interval=interval, blit=True)
    html = HTML(movie.to_jshtml(default_mode="loop"))
    plt.close(fig)
    return html


# ----------------------------------------------------------------------------- schematics (chapters 01-05)


def _box(ax: plt.Axes, x: float, y: float, text: str, *, width: float = 0.9, height: float = 0.5,
         color: str = "#dde8f5", fontsize: int = 9) -> None:
    """A labelled rounded box centred at (x, y)."""
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.03",
                                facecolor=color, edgecolor="black", lw=1))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax: plt.Axes, start: tuple[float, float], end: tuple[float, float], text: str = "", **kwargs) -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="->", lw=1.2, **kwargs))
    if text:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, text, fontsize=8, ha="left", va="bottom")


def _canvas(ax: plt.Axes | None, figsize: tuple[float, float], title: str) -> plt.Axes:
    ax = ax or plt.subplots(figsize=figsize)[1]
    ax.set_axis_off()
    ax.set_title(title)
    ax.set_aspect("equal")
    return ax


def draw_mlp(sizes: Sequence[int], *, ax: plt.Axes | None = None, max_drawn: int = 6,
             title: str = "An MLP: every unit of a layer feeds every unit of the next") -> plt.Axes:
    """Schematic of an MLP with layer widths ``sizes`` (wide layers drawn as ``max_drawn`` units and dots)."""
    if len(sizes) < 2 or any(int(s) <= 0 for s in sizes):
        raise ValueError(f"sizes must list at least two positive widths, got {list(sizes)}")
    ax = _canvas(ax, (2.4 * len(sizes) + 1, 4), title)
    gap = 2.6
    columns = []
    for layer, size in enumerate(sizes):
        shown = min(int(size), max_drawn)
        ys = np.linspace(-(shown - 1) / 2, (shown - 1) / 2, shown) * 0.7
        columns.append([(gap * layer, y) for y in ys])
    for left, right in zip(columns[:-1], columns[1:]):
        for a in left:
            for b in right:
                ax.plot([a[0], b[0]], [a[1], b[1]], color="0.75", lw=0.6, zorder=1)
    last = len(sizes) - 1
    for layer, (units, size) in enumerate(zip(columns, sizes)):
        color = "#f6d7a7" if layer == 0 else "#c7e3c1" if layer == last else "#dde8f5"
        for x, y in units:
            ax.add_patch(plt.Circle((x, y), 0.16, facecolor=color, edgecolor="black", zorder=2))
        name = "input" if layer == 0 else "output (logits)" if layer == last else f"hidden {layer}\n+ activation"
        top = max(y for _, y in units)
        ax.text(units[0][0], top + 0.45, f"{name}\n{size} units", ha="center", va="bottom", fontsize=8)
        if size > max_drawn:
            ax.text(units[0][0], min(y for _, y in units) - 0.45, "\u22ee", ha="center", fontsize=10)
        if layer:
            ax.text(gap * (layer - 0.5), -2.5, f"W{layer}: ({sizes[layer - 1]}, {size})", ha="center", fontsize=8)
    ax.set_xlim(-0.8, gap * last + 0.8)
    ax.set_ylim(-2.8, 3.2)
    return ax


def draw_sliding_kernel(height: int = 5, width: int = 5, kernel: int = 3, position: tuple[int, int] = (1, 2), *,
                        ax: plt.Axes | None = None,
                        title: str = "A 3x3 kernel slides over the input; each position gives one output pixel",
                        ) -> plt.Axes:
    """Schematic of a convolution: an input grid, the kernel's window at ``position``, and the output grid."""
    out_h, out_w = height - kernel + 1, width - kernel + 1
    row, col = position
    if kernel < 1 or out_h < 1 or out_w < 1 or not (0 <= row < out_h and 0 <= col < out_w):
        raise ValueError(f"a {kernel}x{kernel} kernel at {position} does not fit a {height}x{width} input")
    ax = _canvas(ax, (8, 3.6), title)

    def grid(x0, rows, cols, highlight, color, label):
        for i in range(rows):
            for j in range(cols):
                lit = highlight(i, j)
                ax.add_patch(plt.Rectangle((x0 + j, rows - 1 - i), 1, 1, facecolor=color if lit else "white",
                                           edgecolor="black", lw=0.8))
        ax.text(x0 + cols / 2, rows + 0.3, label, ha="center", fontsize=9)

    grid(0, height, width, lambda i, j: row <= i < row + kernel and col <= j < col + kernel, "#f6d7a7",
         f"input {height}x{width}")
    kx = width + 1.5
    grid(kx, kernel, kernel, lambda i, j: True, "#dde8f5", f"kernel {kernel}x{kernel}")
    for i in range(kernel):
        for j in range(kernel):
            ax.text(kx + j + 0.5, kernel - 0.5 - i, f"w{i}{j}", ha="center", va="center", fontsize=7)
    ox = kx + kernel + 2
    grid(ox, out_h, out_w, lambda i, j: (i, j) == (row, col), "#c7e3c1", f"output {out_h}x{out_w}")
    ax.text(kx + kernel + 1, kernel / 2, "=", fontsize=14, ha="center", va="center")
    ax.text(width + 0.75, kernel / 2, "\u2217", fontsize=14, ha="center", va="center")
    ax.text(ox + out_w / 2, -0.9, "out[i, j] = sum over m, n of x[i + m, j + n] K[m, n]", ha="center", fontsize=8)
    ax.set_xlim(-0.5, ox + out_w + 0.5)
    ax.set_ylim(-1.3, height + 1)
    return ax


def draw_unrolled_rnn(steps: int = 4, *, tokens: Sequence[str] | None = None, ax: plt.Axes | None = None,
                      title: str = "An RNN unrolled in time: the same cell and weights at every step") -> plt.Axes:
    """Schematic of an RNN unrolled over ``steps``: x_t -> cell -> h_t -> y_t, h carried to the right."""
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    tokens = list(tokens) if tokens is not None else [f"x{t}" for t in range(steps)]
    if len(tokens) != steps:
        raise ValueError(f"{len(tokens)} tokens for {steps} steps")
    ax = _canvas(ax, (2.2 * steps + 1.5, 3.8), title)
    for t in range(steps):
        x = 2.2 * t
        ax.text(x, -1.5, tokens[t], ha="center", va="center", fontsize=10)
        _arrow(ax, (x, -1.25), (x, -0.3))
        _box(ax, x, 0, "RNN cell", width=1.3, height=0.55, fontsize=8)
        _arrow(ax, (x, 0.3), (x, 1.15))
        ax.text(x + 0.08, 0.55, f"h{t}", fontsize=8)
        _box(ax, x, 1.45, f"y{t} = W_hy h{t} + b_y", width=1.9, height=0.5, color="#c7e3c1", fontsize=7)
        _arrow(ax, (x + 0.67, 0), (x + 1.53, 0))
        ax.text(x + 1.1, 0.08, f"h{t}", fontsize=7, ha="center")
    ax.text(-1.25, 0, "h(-1) = 0", ha="right", va="center", fontsize=8)
    _arrow(ax, (-1.2, 0), (-0.67, 0))
    ax.text(2.2 * (steps - 1) / 2, -2.1, "cell: h(t) = tanh(W_xh x(t) + W_hh h(t-1) + b_h)", ha="center", fontsize=8)
    ax.set_xlim(-2.6, 2.2 * (steps - 1) + 1.8)
    ax.set_ylim(-2.4, 2.1)
    return ax


def draw_lstm_cell(*, ax: plt.Axes | None = None,
                   title: str = "An LSTM cell: three sigmoid gates, a tanh candidate, an additive cell path",
                   ) -> plt.Axes:
    """Schematic of one LSTM step: the cell line c_{t-1} -> x f -> + i*g -> c_t on top, gates below."""
    ax = _canvas(ax, (9, 4.4), title)
    ax.plot([-0.5, 8.5], [3, 3], color="tab:red", lw=2.5)
    ax.text(-0.6, 3, "c(t-1)", ha="right", va="center", fontsize=9, color="tab:red")
    ax.text(8.6, 3, "c(t)", ha="left", va="center", fontsize=9, color="tab:red")
    for x, symbol in ((2, "\u00d7"), (4.5, "+")):
        ax.add_patch(plt.Circle((x, 3), 0.28, facecolor="white", edgecolor="black", zorder=3))
        ax.text(x, 3, symbol, ha="center", va="center", fontsize=13, zorder=4)
    gates = [(2, "f = \u03c3(.)\nforget", "#f6d7a7"), (3.6, "i = \u03c3(.)\ninput", "#f6d7a7"),
             (5.4, "g = tanh(.)\ncandidate", "#dde8f5"), (7, "o = \u03c3(.)\noutput", "#f6d7a7")]
    for x, text, color in gates:
        _box(ax, x, 0.9, text, width=1.35, height=0.75, color=color, fontsize=8)
    _arrow(ax, (2, 1.3), (2, 2.7))
    ax.add_patch(plt.Circle((4.5, 2.05), 0.25, facecolor="white", edgecolor="black", zorder=3))
    ax.text(4.5, 2.05, "\u00d7", ha="center", va="center", fontsize=12, zorder=4)
    _arrow(ax, (3.6, 1.3), (4.3, 1.9))
    _arrow(ax, (5.4, 1.3), (4.7, 1.9))
    _arrow(ax, (4.5, 2.3), (4.5, 2.7))
    _box(ax, 7.8, 2.05, "tanh", width=0.8, height=0.4, color="#dde8f5", fontsize=8)
    _arrow(ax, (7.8, 3), (7.8, 2.27))
    ax.add_patch(plt.Circle((7.8, 1.3), 0.22, facecolor="white", edgecolor="black", zorder=3))
    ax.text(7.8, 1.3, "\u00d7", ha="center", va="center", fontsize=11, zorder=4)
    _arrow(ax, (7.8, 1.84), (7.8, 1.53))
    _arrow(ax, (7.3, 1.28), (7.57, 1.3))
    _arrow(ax, (8.0, 1.3), (8.9, 1.3))
    ax.text(9.0, 1.3, "h(t)", ha="left", va="center", fontsize=9)
    ax.plot([-0.5, 7], [-0.2, -0.2], color="0.4", lw=1)
    for x, _, _ in gates:
        _arrow(ax, (x, -0.2), (x, 0.5), color="0.4")
    ax.text(-0.6, -0.2, "[x(t), h(t-1)]", ha="right", va="center", fontsize=9)
    ax.text(4.2, 3.35, "c(t) = f \u2299 c(t-1) + i \u2299 g", ha="center", fontsize=9)
    ax.set_xlim(-2.4, 10)
    ax.set_ylim(-0.6, 3.8)
    return ax


def draw_computation_graph(nodes: Sequence[str], operations: Sequence[str], *, ax: plt.Axes | None = None,
                           title: str = "Forward pass left to right, backward pass (chain rule) right to left",
                           ) -> plt.Axes:
    """Schematic of a chain-shaped computation graph: ``nodes[k] --operations[k]--> nodes[k + 1]``,
    with the forward arrows above and the gradient arrows (dL/d node) below."""
    if len(nodes) < 2 or len(operations) != len(nodes) - 1:
        raise ValueError(f"need at least two nodes and one operation between each pair, got {len(nodes)} nodes "
                         f"and {len(operations)} operations")
    gap = 2.3
    ax = _canvas(ax, (gap * len(nodes) + 0.5, 2.6), title)
    for k, node in enumerate(nodes):
        _box(ax, gap * k, 0, node, width=1.1, height=0.55, color="#c7e3c1" if k == len(nodes) - 1 else "#dde8f5")
        ax.text(gap * k, -0.95, f"dL/d{node}" if k < len(nodes) - 1 else "dL/dL = 1", ha="center", fontsize=8,
                color="tab:red")
    for k, operation in enumerate(operations):
        _arrow(ax, (gap * k + 0.6, 0.1), (gap * (k + 1) - 0.6, 0.1))
        ax.text(gap * (k + 0.5), 0.25, operation, ha="center", fontsize=8)
        _arrow(ax, (gap * (k + 1) - 0.5, -0.8), (gap * k + 0.5, -0.8), color="tab:red")
    ax.set_xlim(-0.8, gap * (len(nodes) - 1) + 0.8)
    ax.set_ylim(-1.3, 0.8)
    return ax
