"""Exact metrics for clips of the shapes world, computed from the RGB frames alone.

VBench scores generated video with learned models (DINO features for consistency, optical flow
for motion, detectors for objects and colours). In the shapes world the truth is known, so each
of those has an exact counterpart that a few lines of tensor code compute:

1. **Segment** every frame: a pixel is foreground when its brightest channel exceeds
   FOREGROUND_THRESHOLD (the background is black, every palette colour has a channel at 1), and
   the object is the largest 8-connected component (:func:`label_components`).
2. **Per frame**: area, centroid, bounding box, mean colour (-> nearest palette hue), and two
   shape features: the *skewness* of the object's rows (an upward triangle is heavy at the
   bottom: about -0.57; circles and squares are symmetric: 0), then the *fill* = area /
   bounding-box area (square 1, circle pi/4). Skewness, a moment, survives blur better than
   anything read off the box: a blurred triangle loses its apex pixels first.
3. **Per clip**: the colour and shape most frames agree on; the direction from a least-squares
   line through the centroid track up to the first reversal (the first bounce); the speed of the
   path of a ball bouncing between the walls that fits the whole track best; persistence,
   smoothness (every frame close to that path) and consistency, each a boolean with its raw
   number kept.

Coordinates follow :mod:`tinysora.data`: pixel (row i, column j) has its centre at
(x, y) = (j + 0.5, i + 0.5), y grows downwards.

Every threshold below was chosen by measuring ground-truth clips of several canvas sizes (16 to
64 px), clean, with Gaussian noise (sigma 0.05) and with a slight blur (Gaussian, sigma 0.7 px),
and putting it between what the cases give, with margin on both sides (see the comments). On
canvases under 14 px the objects (r < 2.8 px) are too few pixels to tell a circle from a square
in every frame: colour and direction still work, shape consistency does not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange

from tinysora.data import COLOUR_RGB, COLOURS, DIRECTIONS, SHAPES, parse_caption

# --- thresholds ---------------------------------------------------------------------------------
# Measured on hard-edged objects of half-extent r = 3.2 .. 12.8 px (canvases 16 .. 64 px), clean and
# blurred with a Gaussian of sigma up to 0.8 px.

# A pixel is foreground when max(R, G, B) > 0.5: halfway between black (0) and any palette colour
# (1). Halfway also keeps a blurred edge's area unbiased.
FOREGROUND_THRESHOLD = 0.5
# Fewer foreground pixels than this in a frame means "no object" (the smallest object, a triangle
# of half-extent 2 px on an 8x8 canvas, has 6 to 10).
MIN_OBJECT_PIXELS = 3
# Persistence allows foreground pixels outside the object's component up to this fraction of the
# object's area (a speck of noise); a second piece or a noisy background exceeds it.
STRAY_FRACTION = 0.1
# Shape, first: the skewness of the object's rows (third standardised moment of y). An upward
# triangle has its mass at the bottom and a long tail up to the apex: -2*sqrt(2)/5 = -0.57 in the
# continuum, -0.53 .. -0.69 rasterised, >= -0.33 at worst with blur. Circles and squares are
# symmetric: 0, up to +-0.13 rasterised at r = 3.2. The threshold sits in the gap.
TRIANGLE_SKEWNESS = -0.23
# Then: fill = area / bounding-box area. A square fills its box: 1.0 measured, also with blur up to
# sigma 0.8. A circle fills pi/4 = 0.785: 0.67 .. 0.89 rasterised at r >= 3.2. Threshold in the gap.
SQUARE_FILL = 0.945
# Slower than this (px/frame) counts as not moving: direction NOT_FOUND.
MIN_SPEED = 0.25
# Smoothness: the largest distance (px) of a frame's centroid from the best-fitting path of a ball
# bouncing between the walls (see _fit_bounce), along the motion, and from a line across it.
# Hard-edged objects are rounded to the pixel grid, so ground truth reaches 0.7 px (also blurred):
# every frame must be within a pixel. A teleport, frames out of order or a change of speed that
# moves the object more than that off the path is caught; swapping two frames at 1-2 px/frame, or
# two frames on either side of a bounce, moves it less: not caught (and hardly visible).
SMOOTH_TOLERANCE = 1.0
# The first bounce is the first step of more than MIN_STEP px against the initial direction
# (rounding never reverses a monotone track, so ground truth never does so elsewhere).
MIN_STEP = 0.5
# The path search tries starts within START_SEARCH px of the first centroid (which is rounded to
# the grid) and speeds within SPEED_SEARCH_PX px/frame + SPEED_SEARCH_FRACTION of the speed seen
# before the first bounce (measured from as few as 2 rounded positions: off by up to 0.6 px/frame).
START_SEARCH = 1.0
SPEED_SEARCH_PX = 1.0
SPEED_SEARCH_FRACTION = 0.3
# Consistency: every frame's area within this fraction of the clip's median area (ground truth:
# up to 0.4 for the smallest triangles (r = 3.2), 0.5 with blur), plus the same colour and shape.
AREA_TOLERANCE = 0.6

NOT_FOUND = "none"  # the colour/shape/direction reported when there is nothing to report

AREA_PER_R2 = {"circle": math.pi, "square": 4.0, "triangle": 2.0}  # area / r^2 of each shape

PALETTE = torch.tensor([COLOUR_RGB[c] for c in COLOURS], dtype=torch.float32)  # (6, 3)


# --- segmentation -------------------------------------------------------------------------------

def _max_3x3(x: torch.Tensor) -> torch.Tensor:
    """Largest value in every pixel's 3x3 neighbourhood (zero outside). (F, H, W) -> (F, H, W).

    A 3x3 max is a max over 3 rows of a max over 3 columns: four elementwise maxima of shifted
    views, several times faster on a CPU than ``F.max_pool2d``.
    """
    padded = F.pad(x, (1, 1, 1, 1))                                      # (F, H+2, W+2)
    rows = torch.maximum(torch.maximum(padded[:, :-2], padded[:, 1:-1]), padded[:, 2:])
    return torch.maximum(torch.maximum(rows[..., :-2], rows[..., 1:-1]), rows[..., 2:])


def label_components(mask: torch.Tensor) -> torch.Tensor:
    """8-connected components of every binary image in a batch, all at once.

    Each foreground pixel starts with its own label, 1 + its flat index. Then, until nothing
    changes, every pixel takes the largest label in its 3x3 neighbourhood (kept inside the
    foreground), and then the label of the pixel its label names ("pointer jumping": labels only
    ever travel within a component, and the named pixel's label is at least as large, so this
    leaps along chains and a blob needs a few rounds rather than its diameter). Every component
    ends with the largest label among its pixels.

    Args:
        mask: bool (F, H, W).
    Returns:
        int64 (F, H, W): 0 on the background, the component's label (in 1..H*W) on its pixels.
    """
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool or mask.ndim != 3:
        raise TypeError("label_components expects a bool tensor of shape (F, H, W)")
    frames, height, width = mask.shape
    fg = mask.float()
    ids = torch.arange(1, height * width + 1, dtype=torch.float32, device=mask.device)
    labels = fg * rearrange(ids, "(h w) -> 1 h w", h=height)    # float32: exact for H*W < 2**24
    zero = torch.zeros(frames, 1, device=mask.device)
    for _ in range(height * width):                   # a chain can be at most every pixel long
        flat = rearrange(_max_3x3(labels) * fg, "f h w -> f (h w)")
        # label L names pixel L - 1, found in column L once a 0 is put in front (for the background)
        named = torch.cat([zero, flat], dim=1).gather(1, flat.long())
        jumped = rearrange(torch.maximum(flat, named), "f (h w) -> f h w", h=height)
        if torch.equal(jumped, labels):
            break
        labels = jumped
    return labels.long()


def _first_true(flags: torch.Tensor) -> torch.Tensor:
    """Index of the first True along the last dim (0 when there is none). (..., L) -> (...)."""
    return flags.int().argmax(dim=-1)


def _last_true(flags: torch.Tensor) -> torch.Tensor:
    return flags.shape[-1] - 1 - flags.flip(-1).int().argmax(dim=-1)


def frame_features(video: torch.Tensor) -> dict[str, torch.Tensor]:
    """Find the object in every frame and measure it.

    Args:
        video: float (N, T, 3, H, W) in [0, 1].
    Returns:
        dict of per-frame tensors with leading dims (N, T): ``found`` bool; ``area`` and ``stray``
        (foreground pixels outside the object's component) float; ``centroid`` (N, T, 2) (x, y)
        in px; ``low_edge``/``high_edge`` (N, T, 2) the bounding box's (left, top) and
        (right, bottom) edges in px; ``fill`` and ``skewness`` (the shape features); ``rgb``
        (N, T, 3) the object's mean colour; ``colour_id`` (into COLOURS) and ``shape_id`` (into
        SHAPES). Geometry is NaN in frames where no object was found.
    """
    n, t, _, height, width = video.shape
    frames = rearrange(video.float(), "n t c h w -> (n t) c h w")
    fg = frames.amax(dim=1) > FOREGROUND_THRESHOLD                       # (F, H, W)
    labels = rearrange(label_components(fg), "f h w -> f (h w)")
    sizes = torch.zeros(len(frames), height * width + 1, device=video.device)
    sizes.scatter_add_(1, labels, torch.ones(labels.shape, device=video.device))
    sizes[:, 0] = 0                                                      # the background is no object
    area, best = sizes.max(dim=1)                                        # the largest component
    obj = rearrange((labels == best[:, None]) & (area > 0)[:, None], "f (h w) -> f h w", h=height)
    found = area >= MIN_OBJECT_PIXELS
    stray = fg.sum(dim=(1, 2)).float() - area
    mass = obj.float() / area.clamp(min=1)[:, None, None]                # sums to 1 over the object

    xs = torch.arange(width, dtype=torch.float32, device=video.device) + 0.5     # pixel centres
    ys = torch.arange(height, dtype=torch.float32, device=video.device) + 0.5
    cx, cy = (mass * xs).sum(dim=(1, 2)), (mass * ys[:, None]).sum(dim=(1, 2))   # (F,)
    dy = ys[:, None] - cy[:, None, None]                                 # (F, H, 1)
    variance_y = (mass * dy**2).sum(dim=(1, 2))
    skewness = (mass * dy**3).sum(dim=(1, 2)) / variance_y.clamp(min=1e-6) ** 1.5

    cols, rows = obj.any(dim=1), obj.any(dim=2)                          # (F, W), (F, H)
    low_edge = torch.stack([_first_true(cols), _first_true(rows)], dim=-1).float()
    high_edge = torch.stack([_last_true(cols), _last_true(rows)], dim=-1).float() + 1
    box = high_edge - low_edge                                           # (F, 2) width, height
    fill = area / (box[:, 0] * box[:, 1]).clamp(min=1)

    rgb = torch.einsum("fchw,fhw->fc", frames, mass)                     # (F, 3) mean colour
    # Compare hues, not brightness: scale the brightest channel to 1 (a blurred, darker red is red).
    hue = rgb / rgb.amax(dim=1, keepdim=True).clamp(min=1e-6)
    colour_id = torch.cdist(hue, PALETTE.to(video.device)).argmin(dim=1)
    shape_id = torch.where(skewness < TRIANGLE_SKEWNESS, SHAPES.index("triangle"),
                           torch.where(fill > SQUARE_FILL, SHAPES.index("square"), SHAPES.index("circle")))

    nan = torch.tensor(float("nan"), device=video.device)
    features = dict(
        found=found, area=area, stray=stray, rgb=rgb, colour_id=colour_id, shape_id=shape_id,
        centroid=torch.where(found[:, None], torch.stack([cx, cy], dim=-1), nan),
        low_edge=torch.where(found[:, None], low_edge, nan),
        high_edge=torch.where(found[:, None], high_edge, nan),
        fill=torch.where(found, fill, nan), skewness=torch.where(found, skewness, nan),
    )
    return {key: rearrange(value, "(n t) ... -> n t ...", n=n, t=t) for key, value in features.items()}


# --- per-clip judgements ------------------------------------------------------------------------

def _majority(ids: torch.Tensor, found: torch.Tensor, classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Most frequent class among found frames. ids, found (N, T) -> (N,) winner, (N,) any found."""
    votes = (F.one_hot(ids, classes) * found[..., None]).sum(dim=1)      # (N, classes)
    return votes.argmax(dim=1), found.any(dim=1)


def _fit_line(values: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted least-squares line a + b t through (t, values[t]). (N, T) -> (N,) a, (N,) b."""
    t = torch.arange(values.shape[1], dtype=values.dtype, device=values.device).expand_as(values)
    values = torch.nan_to_num(values)
    total = weights.sum(dim=1).clamp(min=1e-9)
    t_mean = (weights * t).sum(dim=1) / total
    v_mean = (weights * values).sum(dim=1) / total
    dt = t - t_mean[:, None]
    cov = (weights * dt * (values - v_mean[:, None])).sum(dim=1)
    var = (weights * dt**2).sum(dim=1)
    slope = torch.where(var > 0, cov / var.clamp(min=1e-9), torch.zeros_like(cov))
    return v_mean - slope * t_mean, slope


def _wall_reach(feats: dict, shape_id: torch.Tensor, axis: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """How close the centroid gets to the low and the high wall along the axis of motion. (N,) each.

    Every shape touches a wall at its half-extent r, which follows from its area (circle pi r^2,
    square 4 r^2, triangle 2 r^2; rasterised areas are right on average). The centroid is r from
    either wall, except for a triangle moving up or down: r/3 below its box centre, so 4r/3 from the
    top wall (apex) and 2r/3 from the bottom one (base). Box edges would be biased: a triangle's thin
    apex often lights no pixel.
    """
    area_per_r2 = torch.tensor([AREA_PER_R2[name] for name in SHAPES], device=shape_id.device)
    area = torch.where(feats["found"], feats["area"], float("nan"))
    r = (area.nanmean(dim=1) / area_per_r2[shape_id]).sqrt()
    upright = (shape_id == SHAPES.index("triangle")) & (axis == 1)
    return torch.where(upright, 4 * r / 3, r), torch.where(upright, 2 * r / 3, r)


def _path_miss(y: torch.Tensor, found: torch.Tensor, length: torch.Tensor, starts: torch.Tensor,
               speeds: torch.Tensor) -> torch.Tensor:
    """Worst distance of a track from every bouncing path, one per (start, speed) pair.

    A point moving at speed v from distance y0 off a wall, between walls L apart, is at
    y(t) = fold(y0 + v t), the triangle wave L - |((y0 + v t) mod 2L) - L|.

    Args:
        y: (N, T) distance from the wall the object moves away from first; found: (N, T) bool.
        length: (N,) distance L between the walls. starts: (N, A). speeds: (N, B).
    Returns:
        (N, A, B): the largest |path - y| over the found frames.
    """
    t = torch.arange(y.shape[1], dtype=y.dtype, device=y.device)
    length = length[:, None, None, None]
    unrolled = starts[:, :, None, None] + speeds[:, None, :, None] * t   # (N, A, B, T)
    path = length - (torch.remainder(unrolled, 2 * length) - length).abs()
    return torch.where(found[:, None, None], (path - y[:, None, None]).abs(), 0.0).amax(dim=-1)


def _fit_bounce(main: torch.Tensor, found: torch.Tensor, low_wall: torch.Tensor,
                high_wall: torch.Tensor, velocity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The path of a ball bouncing between the walls that stays closest to a centroid track.

    A grid of starts (within START_SEARCH px of the first centroid) and speeds (within
    SPEED_SEARCH_PX + SPEED_SEARCH_FRACTION of the one measured before the first bounce) is tried
    all at once, then a 10x finer grid around the best.

    Args:
        main: (N, T) centroid along the axis of motion (NaN where missing); found: (N, T) bool.
        low_wall, high_wall: (N,) where the centroid touches each wall.
        velocity: (N,) signed velocity before the first bounce, px/frame.
    Returns:
        (N,) the largest distance (px) of a found frame from the best path; (N,) its speed.
    """
    length = (high_wall - low_wall).clamp(min=1.0)                       # (N,)
    y = torch.where((velocity >= 0)[:, None], main - low_wall[:, None], high_wall[:, None] - main)
    start, speed = torch.nan_to_num(y[:, 0]), velocity.abs()
    start_step = torch.full_like(start, START_SEARCH / 5)
    speed_step = (SPEED_SEARCH_PX + SPEED_SEARCH_FRACTION * speed) / 20
    offsets_a = torch.arange(-5, 6, device=main.device)                  # 11 starts
    offsets_b = torch.arange(-20, 21, device=main.device)                # 41 speeds
    for _ in range(2):                      # a coarse grid, then a fine one around its best point
        starts = start[:, None] + start_step[:, None] * offsets_a
        speeds = (speed[:, None] + speed_step[:, None] * offsets_b).clamp(min=0)
        miss = rearrange(_path_miss(y, found, length, starts, speeds), "n a b -> n (a b)")
        best = miss.argmin(dim=1)
        start = starts.gather(1, (best // len(offsets_b))[:, None])[:, 0]
        speed = speeds.gather(1, (best % len(offsets_b))[:, None])[:, 0]
        start_step, speed_step = start_step / 5, speed_step / 10
    return miss.gather(1, best[:, None])[:, 0], speed


def _motion(feats: dict, shape_id: torch.Tensor, height: int, width: int) -> dict[str, torch.Tensor]:
    """Direction, speed and physics of every clip's centroid track.

    * axis: the one the centroid travels further along (0 = x, 1 = y);
    * velocity: least-squares slope (px/frame, signed) over the frames before the first bounce,
      i.e. before the first step against the initial direction (frames[2] - frames[0]), leaving
      out the frame just before that step too where two or more remain, as the bounce may lie
      inside the step before it (the object hits the wall and comes back less than it went);
    * speed: of the bouncing-ball path that fits the whole track best (:func:`_fit_bounce`, walls
      from :func:`_wall_reach`), so every frame counts;
    * deviation: the largest distance (px) of a frame's centroid from that path, or across the
      motion from a straight line: ground truth only rounds to pixels; a jump, frames out of
      order or a change of speed leave the path.

    Returns a dict of (N,) tensors: axis, velocity, speed, deviation.
    """
    centroid, found = feats["centroid"], feats["found"]                   # (N, T, 2), (N, T)
    n, t, _ = centroid.shape
    if t == 1:                                                           # one frame: no motion
        zeros = torch.zeros(n, device=centroid.device)
        return dict(axis=zeros.long(), velocity=zeros, speed=zeros, deviation=zeros)
    travel = torch.nansum((centroid[:, 1:] - centroid[:, :-1]).abs(), dim=1)   # (N, 2)
    axis = (travel[:, 1] > travel[:, 0]).long()                          # 0: x, 1: y

    def along(value, which):                                             # (N, T, 2) -> (N, T)
        return value.gather(2, which[:, None, None].expand(n, t, 1))[..., 0]

    main, across = along(centroid, axis), along(centroid, 1 - axis)      # (N, T)
    steps = main[:, 1:] - main[:, :-1]                                   # (N, T-1)
    initial = torch.sign(main[:, min(2, t - 1)] - main[:, 0])            # (N,) +1 / -1
    against = steps * initial[:, None] < -MIN_STEP                       # NaN compares False
    first = torch.where(against.any(dim=1), _first_true(against), torch.full_like(axis, t - 1))
    last = torch.where(first >= 2, first - 1, first)     # the bounce may lie in the step before
    before = torch.arange(t, device=centroid.device)[None] <= last[:, None]
    _, velocity = _fit_line(main, (before & found).float())              # (N,)

    side = torch.where(axis == 0, float(width), float(height))           # (N,)
    low_reach, high_reach = _wall_reach(feats, shape_id, axis)
    along_dev, speed = _fit_bounce(main, found, low_reach, side - high_reach, velocity)
    start, slope = _fit_line(across, found.float())                      # across: a straight line
    line = start[:, None] + slope[:, None] * torch.arange(t, device=centroid.device)
    off_line = (across - line).abs()
    across_dev = torch.where(found, off_line, 0.0).amax(dim=1)
    return dict(axis=axis, velocity=velocity, speed=speed, deviation=torch.maximum(along_dev, across_dev))


@dataclass
class ClipReport:
    """What :func:`analyse_clips` found in N clips of T frames.

    Per clip: ``colour``, ``shape``, ``direction`` (lists of names; NOT_FOUND when there is no
    object, or for direction no motion); ``speed`` float (N,) px/frame; ``persistent``,
    ``smooth``, ``consistent`` bool (N,). The raw numbers behind them, all (N,):
    ``max_deviation`` px (smoothness), ``area_spread`` (largest relative deviation of a frame's
    area from the clip's median; consistency), ``worst_stray`` (largest share of stray foreground
    pixels in a frame, inf for a frame without object; persistence).
    ``frames`` holds the per-frame features of :func:`frame_features`.
    """

    colour: list[str]
    shape: list[str]
    direction: list[str]
    speed: torch.Tensor
    persistent: torch.Tensor
    smooth: torch.Tensor
    consistent: torch.Tensor
    max_deviation: torch.Tensor
    area_spread: torch.Tensor
    worst_stray: torch.Tensor
    frames: dict

    def __len__(self) -> int:
        return len(self.colour)


def _check_video(video) -> None:
    if not isinstance(video, torch.Tensor):
        raise TypeError(f"video must be a torch.Tensor, got {type(video).__name__}")
    if video.ndim != 5 or video.shape[2] != 3:
        raise ValueError(f"video must have shape (N, T, 3, H, W), got {tuple(video.shape)}")
    if not video.is_floating_point():
        raise TypeError(f"video must be a float tensor with values in [0, 1], got {video.dtype}")
    if video.shape[0] == 0 or video.shape[1] == 0:
        raise ValueError(f"video must hold at least one clip of one frame, got {tuple(video.shape)}")


@torch.no_grad()
def analyse_clips(video: torch.Tensor) -> ClipReport:
    """Detect the object in every frame of every clip and judge each clip.

    Args:
        video: float (N, T, 3, H, W), values in [0, 1] (generated clips may be noisy or blurry).
    Returns:
        a :class:`ClipReport`:

        * colour, shape: what most frames with an object show;
        * direction: of the centroid track before the first bounce (NOT_FOUND below MIN_SPEED);
        * speed: of the bouncing path that fits the whole track best, px/frame;
        * persistent: every frame holds an object of at least MIN_OBJECT_PIXELS, as one piece
          (stray foreground at most STRAY_FRACTION of it);
        * smooth: every centroid within SMOOTH_TOLERANCE px of the best path of a ball bouncing
          between the walls at constant speed;
        * consistent: every frame with an object shows the clip's colour and shape, with an area
          within AREA_TOLERANCE of the median.
    """
    _check_video(video)
    height, width = video.shape[-2:]
    feats = frame_features(video)
    found = feats["found"]                                               # (N, T)

    colour_id, any_found = _majority(feats["colour_id"], found, len(COLOURS))
    shape_id, _ = _majority(feats["shape_id"], found, len(SHAPES))
    motion = _motion(feats, shape_id, height, width)

    names = (("right", "left"), ("down", "up"))                          # [axis][velocity < 0]
    moving = (motion["velocity"].abs() >= MIN_SPEED) & any_found
    direction = [names[a][int(v < 0)] if m else NOT_FOUND for a, v, m in
                 zip(motion["axis"].tolist(), motion["velocity"].tolist(), moving.tolist())]

    stray_share = feats["stray"] / feats["area"].clamp(min=1)            # (N, T)
    persistent = (found & (stray_share <= STRAY_FRACTION)).all(dim=1)

    area = torch.where(found, feats["area"], float("nan"))
    median_area = torch.nanmedian(area, dim=1).values[:, None]
    area_spread = torch.nan_to_num((area - median_area).abs() / median_area, nan=0.0).amax(dim=1)
    same_colour = ((feats["colour_id"] == colour_id[:, None]) | ~found).all(dim=1)
    same_shape = ((feats["shape_id"] == shape_id[:, None]) | ~found).all(dim=1)
    consistent = any_found & same_colour & same_shape & (area_spread <= AREA_TOLERANCE)

    smooth = any_found & (motion["deviation"] <= SMOOTH_TOLERANCE)
    return ClipReport(
        colour=[COLOURS[i] if ok else NOT_FOUND for i, ok in zip(colour_id.tolist(), any_found.tolist())],
        shape=[SHAPES[i] if ok else NOT_FOUND for i, ok in zip(shape_id.tolist(), any_found.tolist())],
        direction=direction,
        speed=motion["speed"],
        persistent=persistent,
        smooth=smooth,
        consistent=consistent,
        max_deviation=motion["deviation"],
        area_spread=area_spread,
        worst_stray=torch.where(found, stray_share, float("inf")).amax(dim=1),
        frames=feats,
    )


# --- scores -------------------------------------------------------------------------------------

def _prompt_combo(prompt, index: int) -> tuple[str, str, str]:
    if isinstance(prompt, str):
        combo = parse_caption(prompt)
        if combo is None:
            raise ValueError(f"prompt {index} is not a shapes-world caption: {prompt!r}")
        return combo
    if isinstance(prompt, (tuple, list)) and len(prompt) == 3:
        colour, shape, direction = prompt
        if colour in COLOURS and shape in SHAPES and direction in DIRECTIONS:
            return colour, shape, direction
    raise ValueError(f"prompt {index} must be a caption or a (colour, shape, direction) tuple of "
                     f"known words, got {prompt!r}")


def score_clips(video: torch.Tensor, prompts: Sequence) -> dict[str, float]:
    """How well N clips show their N prompts, as fractions of clips.

    Args:
        video: float (N, T, 3, H, W) in [0, 1].
        prompts: N captions (English or Chinese) or (colour, shape, direction) tuples.
    Returns:
        dict with colour_acc, shape_acc, direction_acc (the clip shows the prompt's colour, shape,
        direction), persistence, smoothness, consistency, and all_acc (every one of the six holds).
    """
    _check_video(video)
    if isinstance(prompts, str) or not isinstance(prompts, Sequence):
        raise TypeError("prompts must be a list of captions or (colour, shape, direction) tuples")
    if len(prompts) != video.shape[0]:
        raise ValueError(f"got {len(prompts)} prompts for {video.shape[0]} clips")
    combos = [_prompt_combo(p, i) for i, p in enumerate(prompts)]
    report = analyse_clips(video)
    checks = {
        "colour_acc": torch.tensor([r == c for r, (c, _, _) in zip(report.colour, combos)]),
        "shape_acc": torch.tensor([r == s for r, (_, s, _) in zip(report.shape, combos)]),
        "direction_acc": torch.tensor([r == d for r, (_, _, d) in zip(report.direction, combos)]),
        "persistence": report.persistent.cpu(),
        "smoothness": report.smooth.cpu(),
        "consistency": report.consistent.cpu(),
    }
    scores = {name: ok.float().mean().item() for name, ok in checks.items()}
    scores["all_acc"] = torch.stack(list(checks.values())).all(dim=0).float().mean().item()
    return scores


def format_table(scores: dict[str, float]) -> str:
    """The scores as a two-column text table, one metric per row."""
    if not isinstance(scores, dict) or not scores:
        raise TypeError("format_table expects the non-empty dict that score_clips returns")
    width = max(len(name) for name in scores)
    lines = [f"{'metric'.ljust(width)}  score", f"{'-' * width}  -----"]
    lines += [f"{name.ljust(width)}  {value:5.3f}" for name, value in scores.items()]
    return "\n".join(lines)
