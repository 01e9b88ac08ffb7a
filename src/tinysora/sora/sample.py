"""``tinysora sample``: a trained checkpoint, a prompt and a capability -> a GIF and a PNG strip.

* :func:`generate` runs one capability (``text``, ``image``, ``extend``, ``loop``, ``edit``,
  ``still`` (one frame), ``connect`` (two clips)) of :mod:`tinysora.sora.capabilities` on one prompt;
* :func:`read_frame` and :func:`read_clip` load a PNG frame, a GIF clip (any zoom) or a saved
  ``sample.pt`` at the model's pixel size, so a drawn frame or an earlier sample can be the input.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from tinysora.sora.capabilities import (
    TinySora,
    connect,
    extend,
    generate_image,
    image_to_video,
    seamless_loop,
    text_to_video,
    video_to_video,
)
from tinysora.sora.report import save_gif, save_grid

CAPABILITIES = ("text", "image", "extend", "loop", "edit", "still", "connect")


def _to_tensor(image, height: int, width: int) -> torch.Tensor:
    """A PIL image -> (3, height, width) in [0, 1], resized with nearest neighbours (pixels stay pure)."""
    from PIL import Image

    rgb = image.convert("RGB").resize((width, height), Image.NEAREST)
    return torch.from_numpy(np.asarray(rgb, dtype=np.float32) / 255.0).permute(2, 0, 1)


def read_frame(path: str, height: int, width: int) -> torch.Tensor:
    """A PNG (or any still image) as one frame (3, height, width)."""
    from PIL import Image

    with Image.open(path) as image:
        return _to_tensor(image, height, width)


def read_clip(path: str, height: int, width: int) -> torch.Tensor:
    """A clip (T, 3, height, width) from a ``sample.pt`` this command wrote, or from an animated GIF.

    A GIF is for looking at: its writer merges identical consecutive frames, so a clip with a still
    stretch reads back shorter. The ``.pt`` file holds the exact frames (loaded as data only).
    """
    from PIL import Image, ImageSequence

    if path.endswith(".pt"):
        frames = list(torch.load(path, map_location="cpu", weights_only=True)[0])
        if frames and frames[0].shape[-2:] != (height, width):
            raise ValueError(f"{path} holds {tuple(frames[0].shape[-2:])} frames, not {height}x{width}")
    else:
        with Image.open(path) as image:
            frames = [_to_tensor(frame, height, width) for frame in ImageSequence.Iterator(image)]
    if len(frames) < 2:
        raise ValueError(f"{path} holds {len(frames)} frame(s); a clip to extend or edit needs at least 2")
    return torch.stack(frames)


def generate(sora: TinySora, capability: str, prompt: str, *, frames: int, height: int, width: int,
             first_frame: torch.Tensor | None = None, clip: torch.Tensor | None = None, new_frames: int = 4,
             backward: bool = False, strength: float = 0.7, seed: int = 0,
             clip_b: torch.Tensor | None = None) -> torch.Tensor:
    """One clip (1, T, 3, H, W) for ``prompt`` by ``capability``; ``first_frame`` (3, H, W) for
    ``image`` and ``loop``, ``clip`` (T, 3, H, W) for ``extend`` and ``edit``, ``clip`` and
    ``clip_b`` for ``connect`` (``new_frames`` between them); ``still`` is one frame (1, 1, 3, H, W)."""
    if capability not in CAPABILITIES:
        raise ValueError(f"unknown capability {capability!r}: choose one of {', '.join(CAPABILITIES)}")
    needs = {"image": first_frame, "loop": first_frame, "extend": clip, "edit": clip, "connect": clip}
    if capability in needs and needs[capability] is None:
        what = "a first frame (--first-frame PNG)" if capability in ("image", "loop") else "a clip (--clip GIF)"
        raise ValueError(f"capability {capability!r} needs {what}")
    if capability == "connect" and clip_b is None:
        raise ValueError("capability 'connect' needs a second clip (--clip-b GIF) to join the first to")
    prompts = [prompt]
    if capability == "text":
        return text_to_video(sora, prompts, frames=frames, height=height, width=width, seed=seed)
    if capability == "image":
        return image_to_video(sora, first_frame[None], prompts, frames=frames, seed=seed)
    if capability == "loop":
        return seamless_loop(sora, first_frame[None], prompts, frames=frames, seed=seed)
    if capability == "still":
        return generate_image(sora, prompts, height=height, width=width, seed=seed)[:, None]
    if capability == "connect":
        return connect(sora, clip[None], clip_b[None], prompts, between=new_frames, seed=seed)
    if capability == "extend":
        return extend(sora, clip[None], prompts, new_frames=new_frames, backward=backward, seed=seed)
    return video_to_video(sora, clip[None], prompts, strength=strength, seed=seed)


def write(video: torch.Tensor, prompt: str, out: str) -> tuple[str, str]:
    """Save ``video`` (1, T, 3, H, W) as ``out/sample.gif``, ``out/sample.png`` (a strip of its frames)
    and ``out/sample.pt`` (the exact frames, for ``--clip``); returns the GIF's and the PNG's paths."""
    os.makedirs(out, exist_ok=True)
    gif, png = os.path.join(out, "sample.gif"), os.path.join(out, "sample.png")
    save_gif(video, gif, per_row=1, border=0)
    torch.save(video.detach().cpu().clone(), os.path.join(out, "sample.pt"))
    save_grid(video, [prompt], png, title="frames (columns)")
    return gif, png
