"""The data every chapter uses: the toy *shapes world* and scikit-learn's 8x8 digits.

The shapes world is a generator of short clips. Each clip shows ONE coloured shape on a black
canvas, moving at constant speed along one axis and bouncing off the walls, and comes with its
caption in English and Chinese::

    "a red circle moves left"        "红色的圆向左移动"

6 colours x 3 shapes x 4 directions = 72 combinations. A fixed set of 12 of them
(:data:`TEST_COMBOS`) is held out, so a text-to-video model can be asked for prompts it never saw
whose every word (and every pair of words) it did see: compositional generalisation.

Geometry, in pixels. Pixel ``(row i, column j)`` covers ``[j, j+1] x [i, i+1]`` of a continuous
canvas ``[0, W] x [0, H]``; its centre is ``(x, y) = (j + 0.5, i + 0.5)``. ``y`` grows downwards,
so "up" means decreasing ``y``. Every shape has the same half-extent ``r`` (see
:func:`object_radius`) and the position of an object is the centre of its bounding box
``[x - r, x + r] x [y - r, y + r]``:

* circle: the disc of radius ``r`` (centroid = centre);
* square: side ``2r`` (centroid = centre);
* triangle: pointing up, apex ``(x, y - r)``, base from ``(x - r, y + r)`` to ``(x + r, y + r)``
  (its centroid lies ``r / 3`` below the centre).

A pixel is lit when its centre is inside the shape: no anti-aliasing, so the masks are exact.
The bounding box stays inside the canvas in every frame: at a wall the velocity component normal
to it flips and the tangential one (zero here, motion is axis-aligned) is kept.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from einops import rearrange

# --- the world's vocabulary ---------------------------------------------------------------------

COLOURS = ("red", "green", "blue", "yellow", "cyan", "purple")
SHAPES = ("circle", "square", "triangle")
DIRECTIONS = ("left", "right", "up", "down")

# Corners of the RGB cube: every colour is 1.0 on one or two channels and 0 on the rest, so any two
# colours differ by 1.0 on at least one channel (distance >= 1) and each is >= 1 away from black.
COLOUR_RGB = {
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.0, 1.0),
    "yellow": (1.0, 1.0, 0.0),
    "cyan": (0.0, 1.0, 1.0),
    "purple": (1.0, 0.0, 1.0),
}
COLOUR_ZH = {"red": "红色", "green": "绿色", "blue": "蓝色", "yellow": "黄色", "cyan": "青色", "purple": "紫色"}
SHAPE_ZH = {"circle": "圆", "square": "正方形", "triangle": "三角形"}
DIRECTION_ZH = {"left": "左", "right": "右", "up": "上", "down": "下"}
# Unit velocity (dx, dy) in image coordinates: y grows downwards.
DIRECTION_VECTORS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}

# --- sizes and speeds ---------------------------------------------------------------------------

MIN_SIDE = 8                 # smallest canvas height or width, in pixels
OBJECT_SIZE_FRACTION = 0.2   # half-extent r = 0.2 * min(height, width) ...
MIN_RADIUS = 2.0             # ... but at least 2 px, so even an 8x8 triangle has a few pixels
SPEED_RANGE = (0.06, 0.12)   # default speed: uniform in this range times the side it moves along

# --- the fixed train/test split of combinations ---------------------------------------------------

ALL_COMBOS = tuple(itertools.product(COLOURS, SHAPES, DIRECTIONS))
# Built as combo k = (COLOURS[k % 6], SHAPES[(k + k // 6) % 3], DIRECTIONS[k % 4]) for k = 0..11
# and written out so a reader sees them. Each colour is held out twice (with two different shapes
# and directions), each shape 4 times, each direction 3 times; and since at most one direction of
# any (colour, shape) pair is held out, every PAIR of words also occurs in training.
TEST_COMBOS = (
    ("red", "circle", "left"),
    ("green", "square", "right"),
    ("blue", "triangle", "up"),
    ("yellow", "circle", "down"),
    ("cyan", "square", "left"),
    ("purple", "triangle", "right"),
    ("red", "square", "up"),
    ("green", "triangle", "down"),
    ("blue", "circle", "left"),
    ("yellow", "square", "right"),
    ("cyan", "triangle", "up"),
    ("purple", "circle", "down"),
)
TRAIN_COMBOS = tuple(combo for combo in ALL_COMBOS if combo not in TEST_COMBOS)
SPLITS = {"train": TRAIN_COMBOS, "test": TEST_COMBOS, "all": ALL_COMBOS}


# --- captions -----------------------------------------------------------------------------------

def _check_attributes(colour: str, shape: str, direction: str) -> None:
    for value, allowed, what in ((colour, COLOURS, "colour"), (shape, SHAPES, "shape"),
                                 (direction, DIRECTIONS, "direction")):
        if value not in allowed:
            raise ValueError(f"unknown {what} {value!r}: expected one of {', '.join(allowed)}")


def caption_en(colour: str, shape: str, direction: str) -> str:
    """``caption_en("red", "circle", "left") == "a red circle moves left"``."""
    _check_attributes(colour, shape, direction)
    return f"a {colour} {shape} moves {direction}"


def caption_zh(colour: str, shape: str, direction: str) -> str:
    """``caption_zh("red", "circle", "left") == "红色的圆向左移动"``."""
    _check_attributes(colour, shape, direction)
    return f"{COLOUR_ZH[colour]}的{SHAPE_ZH[shape]}向{DIRECTION_ZH[direction]}移动"


# Every valid caption, in both languages, mapped to its attributes: parsing is a lookup.
_CAPTION_TO_COMBO = {
    **{caption_en(*combo): combo for combo in ALL_COMBOS},
    **{caption_zh(*combo): combo for combo in ALL_COMBOS},
}


def parse_caption(text: str) -> tuple[str, str, str] | None:
    """``(colour, shape, direction)`` of a world caption in English or Chinese, else ``None``.

    The caption must be exactly one that :func:`caption_en` or :func:`caption_zh` writes
    (surrounding whitespace is ignored), so the fraction of a language model's samples that
    parse is the fraction of valid captions.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_caption expects a str, got {type(text).__name__}")
    return _CAPTION_TO_COMBO.get(text.strip())


# --- clips --------------------------------------------------------------------------------------

@dataclass
class Clips:
    """A batch of N shapes-world clips with T frames of H x W pixels, and their ground truth.

    Attributes:
        video: float32 (N, T, 3, H, W), values in [0, 1] (black background, one pure colour).
        masks: bool (N, T, H, W), the pixels the object covers.
        positions: float32 (N, T, 2), the object's centre (x, y) in pixels (centre of its bounding
            box; see the module docstring for the coordinate convention).
        velocities: float32 (N, T, 2), velocity (vx, vy) in pixels per frame at each frame (after
            a bounce it already points away from the wall).
        colour: length-N list of names from COLOURS.
        shape: length-N list of names from SHAPES.
        direction: length-N list of names from DIRECTIONS.
        speed: float32 (N,), pixels per frame.
        radius: the half-extent r of every object, in pixels.

    ``captions_en``, ``captions_zh`` and ``labels`` (indices for embedding tables) are derived
    from the attributes. ``clips[i]``, ``clips[2:5]`` and ``clips[[0, 3]]`` return a Clips.
    """

    video: torch.Tensor
    masks: torch.Tensor
    positions: torch.Tensor
    velocities: torch.Tensor
    colour: list[str]
    shape: list[str]
    direction: list[str]
    speed: torch.Tensor
    radius: float

    def __len__(self) -> int:
        return self.video.shape[0]

    def __getitem__(self, index) -> "Clips":
        ids = torch.arange(len(self))[index]
        if ids.ndim == 0:            # an int index keeps the batch dimension: a Clips of one clip
            ids = ids[None]
        keep = ids.tolist()
        tensor_ids = ids.to(self.video.device)
        return Clips(
            video=self.video[tensor_ids],
            masks=self.masks[tensor_ids],
            positions=self.positions[tensor_ids],
            velocities=self.velocities[tensor_ids],
            colour=[self.colour[i] for i in keep],
            shape=[self.shape[i] for i in keep],
            direction=[self.direction[i] for i in keep],
            speed=self.speed[tensor_ids],
            radius=self.radius,
        )

    @property
    def combos(self) -> list[tuple[str, str, str]]:
        """The (colour, shape, direction) of every clip."""
        return list(zip(self.colour, self.shape, self.direction))

    @property
    def captions_en(self) -> list[str]:
        return [caption_en(*combo) for combo in self.combos]

    @property
    def captions_zh(self) -> list[str]:
        return [caption_zh(*combo) for combo in self.combos]

    @property
    def labels(self) -> torch.Tensor:
        """int64 (N, 3): indices of (colour, shape, direction) into COLOURS, SHAPES, DIRECTIONS."""
        rows = [(COLOURS.index(c), SHAPES.index(s), DIRECTIONS.index(d)) for c, s, d in self.combos]
        return torch.tensor(rows, dtype=torch.int64, device=self.video.device).reshape(-1, 3)


def object_radius(height: int, width: int) -> float:
    """Half-extent r of every object on an H x W canvas: 0.2 * min side, at least 2 px."""
    return max(MIN_RADIUS, OBJECT_SIZE_FRACTION * min(height, width))


def _check_positive_int(value, name: str, minimum: int = 1) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")


def bounce(start: torch.Tensor, step: torch.Tensor, low: float, high: float,
           frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions and velocities of points moving at constant velocity between two walls.

    Args:
        start: (N,) positions at frame 0, inside [low, high].
        step: (N,) signed velocity in units per frame (0 for no motion along this axis).
        low, high: the walls.
    Returns:
        positions (N, T) and velocities (N, T). A reflection is a fold: unroll the motion onto a
        line of period 2L (L = high - low) and fold the second half back, which is exact for any
        number of bounces between two frames.
    """
    if not high > low:
        raise ValueError(f"the walls must satisfy low < high, got low={low}, high={high}")
    if start.shape != step.shape or start.ndim != 1:
        raise ValueError(f"start and step must both have shape (N,), "
                         f"got {tuple(start.shape)} and {tuple(step.shape)}")
    length = high - low
    t = torch.arange(frames, dtype=start.dtype, device=start.device)
    sign = torch.where(step >= 0, 1.0, -1.0)[:, None]                    # (N, 1)
    mirrored = torch.where(sign > 0, start[:, None], low + high - start[:, None])  # move "forward"
    unrolled = torch.remainder(mirrored - low + step.abs()[:, None] * t, 2 * length)  # (N, T)
    forward = unrolled < length
    folded = low + torch.where(forward, unrolled, 2 * length - unrolled)
    positions = torch.where(sign > 0, folded, low + high - folded)
    velocities = sign * step.abs()[:, None] * torch.where(forward, 1.0, -1.0)
    return positions, velocities


def render(positions: torch.Tensor, shape_ids: torch.Tensor, radius: float, height: int,
           width: int) -> torch.Tensor:
    """Hard-edged masks of every object in every frame, all at once.

    Args:
        positions: (N, T, 2) centres (x, y) in pixels.
        shape_ids: (N,) indices into SHAPES.
    Returns:
        bool (N, T, H, W): True where a pixel's centre lies inside the shape.
    """
    if positions.ndim != 3 or positions.shape[-1] != 2:
        raise ValueError(f"positions must have shape (N, T, 2), got {tuple(positions.shape)}")
    if shape_ids.shape != positions.shape[:1]:
        raise ValueError(f"shape_ids must have shape ({positions.shape[0]},), got {tuple(shape_ids.shape)}")
    device = positions.device
    xs = torch.arange(width, dtype=torch.float32, device=device) + 0.5    # pixel centres
    ys = torch.arange(height, dtype=torch.float32, device=device) + 0.5
    dx = xs - rearrange(positions[..., 0], "n t -> n t 1 1")               # (N, T, 1, W)
    dy = rearrange(ys, "h -> h 1") - rearrange(positions[..., 1], "n t -> n t 1 1")  # (N, T, H, 1)
    r = radius
    masks = torch.zeros(*positions.shape[:2], height, width, dtype=torch.bool, device=device)
    inside = {
        "circle": lambda dx, dy: dx**2 + dy**2 <= r**2,
        "square": lambda dx, dy: (dx.abs() <= r) & (dy.abs() <= r),
        # below the apex, above the base, and within the half-width (dy + r) / 2 of the axis
        "triangle": lambda dx, dy: (dy <= r) & (dx.abs() <= (dy + r) / 2),
    }
    for k, name in enumerate(SHAPES):
        chosen = shape_ids == k
        if chosen.any():
            masks[chosen] = inside[name](dx[chosen], dy[chosen])
    return masks


def make_clips(n: int, *, frames: int = 8, height: int = 16, width: int = 16, split: str = "train",
               seed: int = 0, speed: float | None = None, device: str | torch.device = "cpu",
               combos: Sequence[tuple[str, str, str]] | None = None) -> Clips:
    """Generate ``n`` clips of the shapes world (video (N, T, 3, H, W) and ground truth).

    Args:
        n: number of clips.
        frames, height, width: T >= 1 frames of H x W pixels (H, W >= 8; any aspect ratio).
        split: "train", "test" or "all": the combinations are drawn uniformly from that split.
        seed: everything random (combinations, speeds, start positions) comes from it.
        speed: pixels per frame for every clip; None draws each clip's speed uniformly from
            SPEED_RANGE times the side of the canvas it moves along.
        device: where the returned tensors live (random numbers are drawn on the CPU, so a seed
            gives the same clips on every device).
        combos: optional list of n (colour, shape, direction) tuples to render instead of drawing
            them from ``split`` (for ground truth to compare with a model's samples).
    Returns:
        a :class:`Clips`.

    The start position is uniform over the positions from which the object moves at least two
    steps before its first bounce, so the first frames show the caption's direction. The same
    seed gives the same speeds and starts whatever the colours and shapes, so
    ``make_clips(n, seed=s, combos=other)`` redraws the same motion with other attributes.
    """
    _check_positive_int(n, "n")
    _check_positive_int(frames, "frames")
    _check_positive_int(height, "height", MIN_SIDE)
    _check_positive_int(width, "width", MIN_SIDE)
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    r = object_radius(height, width)
    max_speed = (min(height, width) - 2 * r) / 2
    if speed is not None:
        if not isinstance(speed, (int, float)) or isinstance(speed, bool):
            raise TypeError(f"speed must be a number of pixels per frame or None, got {type(speed).__name__}")
        if not 0 < speed <= max_speed:
            raise ValueError(f"speed must be in (0, {max_speed:g}] px/frame on a {height}x{width} canvas "
                             f"(two free steps must fit between the walls), got {speed}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: expected one of {', '.join(SPLITS)}")
    generator = torch.Generator().manual_seed(int(seed))
    # The motion's random numbers come first, so the same seed gives the same motion whether the
    # combinations are drawn or given (handy for "the same clip, another colour").
    speed_u = torch.rand(n, generator=generator)
    start_u = torch.rand(n, 2, generator=generator)
    if combos is None:
        pool = SPLITS[split]
        picks = torch.randint(len(pool), (n,), generator=generator).tolist()
        combos = [pool[i] for i in picks]
    else:
        combos = [tuple(combo) for combo in combos]
        if len(combos) != n:
            raise ValueError(f"combos has {len(combos)} entries but n is {n}")
        for combo in combos:
            if len(combo) != 3:
                raise ValueError(f"each combo must be (colour, shape, direction), got {combo!r}")
            _check_attributes(*combo)
    colours, shapes, directions = (list(column) for column in zip(*combos))

    unit = torch.tensor([DIRECTION_VECTORS[d] for d in directions])            # (N, 2)
    side = torch.where(unit[:, 0] != 0, float(width), float(height))            # side moved along
    if speed is None:
        low, high = SPEED_RANGE
        speeds = side * (low + (high - low) * speed_u)
    else:
        speeds = torch.full((n,), float(speed))
    # Start: uniform on [r, side - r] across the motion, and along it on the part that leaves two
    # free steps before the wall ahead.
    lows = torch.tensor([r, r])
    highs = torch.tensor([width - r, height - r])
    free = (highs - lows) - 2 * speeds[:, None] * unit.abs()                    # (N, 2) room to start
    start = torch.where(unit < 0, highs - start_u * free, lows + start_u * free)

    step = unit * speeds[:, None]                                               # (N, 2) px/frame
    x, vx = bounce(start[:, 0], step[:, 0], r, width - r, frames)
    y, vy = bounce(start[:, 1], step[:, 1], r, height - r, frames)
    positions = torch.stack([x, y], dim=-1).to(device=device, dtype=torch.float32)   # (N, T, 2)
    velocities = torch.stack([vx, vy], dim=-1).to(device=device, dtype=torch.float32)

    shape_ids = torch.tensor([SHAPES.index(s) for s in shapes], device=device)
    masks = render(positions, shape_ids, r, height, width)                      # (N, T, H, W)
    rgb = torch.tensor([COLOUR_RGB[c] for c in colours], dtype=torch.float32, device=device)
    video = rearrange(masks.float(), "n t h w -> n t 1 h w") * rearrange(rgb, "n c -> n 1 c 1 1")
    return Clips(video=video, masks=masks, positions=positions, velocities=velocities,
                 colour=colours, shape=shapes, direction=directions,
                 speed=speeds.to(device=device, dtype=torch.float32), radius=r)


# --- digits -------------------------------------------------------------------------------------

def load_digits(split: str = "train", seed: int = 0,
                test_fraction: float = 0.25) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's 1797 handwritten 8x8 digits (bundled with it, no download), split fixed.

    Args:
        split: "train", "test" or "all".
        seed: the split's random state; the split is stratified, so both halves hold every digit
            in the same proportions.
        test_fraction: share of the images in the test split, in (0, 1).
    Returns:
        images float32 (N, 8, 8) scaled from 0..16 to [0, 1], labels int64 (N,).
    """
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    if split not in ("train", "test", "all"):
        raise ValueError(f"unknown split {split!r}: expected one of train, test, all")
    if not isinstance(test_fraction, (int, float)) or not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be a number in (0, 1), got {test_fraction!r}")
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    bunch = sklearn_digits()
    images = torch.tensor(bunch.images / 16.0, dtype=torch.float32)   # (1797, 8, 8)
    labels = torch.tensor(bunch.target, dtype=torch.int64)
    if split == "all":
        return images, labels
    train_ids, test_ids = train_test_split(np.arange(len(labels)), test_size=test_fraction,
                                           random_state=int(seed), stratify=bunch.target)
    ids = torch.from_numpy(np.sort(train_ids if split == "train" else test_ids))
    return images[ids], labels[ids]
