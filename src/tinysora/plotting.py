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
