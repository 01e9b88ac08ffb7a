"""Tests for tinysora.video.metrics: exact detectors for clips of the shapes world.

Ground-truth clips from tinysora.data must score (almost) perfectly, also slightly noisy or
blurred; every corruption a generator can produce must be caught by the check meant for it.
"""

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from einops import rearrange
from scipy import ndimage

from tinysora.data import COLOUR_RGB, COLOURS, SHAPES, make_clips, render
from tinysora.video import metrics
from tinysora.video.metrics import NOT_FOUND, analyse_clips, format_table, label_components, score_clips

METRIC_NAMES = ["colour_acc", "shape_acc", "direction_acc", "persistence", "smoothness", "consistency",
                "all_acc"]
OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}

# (clips, frames, height, width, split, seed): 576 clips in all
GROUND_TRUTH = [
    (128, 8, 16, 16, "train", 0),
    (96, 16, 16, 16, "test", 1),
    (96, 8, 32, 32, "train", 2),
    (64, 16, 32, 32, "test", 3),
    (96, 8, 16, 32, "all", 4),
    (32, 16, 16, 32, "train", 5),
    (48, 8, 32, 16, "test", 6),
    (16, 16, 32, 16, "all", 7),
]


def gaussian_blur(video: torch.Tensor, sigma: float) -> torch.Tensor:
    """Blur every frame with a 5x5 Gaussian (zero padding, like a generator's dark border)."""
    x = torch.arange(-2, 3, dtype=torch.float32)
    k = torch.exp(-x**2 / (2 * sigma**2))
    kernel = torch.outer(k, k) / k.sum() ** 2
    frames = rearrange(video, "n t c h w -> (n t) c h w")
    blurred = F.conv2d(frames, kernel.expand(3, 1, 5, 5), padding=2, groups=3)
    return rearrange(blurred, "(n t) c h w -> n t c h w", n=video.shape[0])


def noisy(video: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (video + sigma * torch.randn(video.shape, generator=g)).clamp(0, 1)


@pytest.fixture(scope="module")
def clips16():
    return make_clips(96, frames=8, height=16, width=16, split="all", seed=21)


@pytest.fixture(scope="module")
def clips32():
    return make_clips(64, frames=16, height=32, width=24, split="all", seed=22)


# --- connected components -----------------------------------------------------------------------

def same_partition(ours: np.ndarray, theirs: np.ndarray) -> bool:
    """True when two labellings split the pixels into the same groups (background 0 in both)."""
    if not np.array_equal(ours == 0, theirs == 0):
        return False
    pairs = set(zip(ours[ours > 0].tolist(), theirs[theirs > 0].tolist()))
    return len(pairs) == len(np.unique(ours[ours > 0])) == len(np.unique(theirs[theirs > 0]))


@pytest.mark.parametrize("height, width, density", [(16, 16, 0.3), (16, 16, 0.45), (32, 24, 0.55),
                                                    (64, 64, 0.4), (20, 36, 0.7)])
def test_label_components_matches_scipy_8_connectivity(height, width, density):
    g = torch.Generator().manual_seed(height * width)
    masks = torch.rand(12, height, width, generator=g) < density
    labels = label_components(masks).numpy()
    for frame in range(len(masks)):
        expected, _ = ndimage.label(masks[frame].numpy(), structure=np.ones((3, 3)))
        assert same_partition(labels[frame], expected)


def test_label_components_follows_a_long_winding_path():
    snake = np.zeros((15, 15), dtype=bool)
    snake[::2] = True                                  # rows joined alternately at either end
    for row in range(1, 15, 2):
        snake[row, -1 if row % 4 == 1 else 0] = True
    labels = label_components(torch.from_numpy(snake)[None]).numpy()[0]
    assert len(np.unique(labels[snake])) == 1 and (labels[~snake] == 0).all()


def test_label_components_rejects_non_boolean_masks():
    with pytest.raises(TypeError, match="bool"):
        label_components(torch.zeros(2, 8, 8))


# --- ground truth -------------------------------------------------------------------------------

@pytest.mark.parametrize("n, frames, height, width, split, seed", GROUND_TRUTH)
def test_ground_truth_clips_score_at_least_0_99(n, frames, height, width, split, seed):
    clips = make_clips(n, frames=frames, height=height, width=width, split=split, seed=seed)
    scores = score_clips(clips.video, clips.combos)
    print(f"\n{n} clips {frames}x{height}x{width} {split}:", {k: round(v, 3) for k, v in scores.items()})
    assert set(scores) == set(METRIC_NAMES)
    assert min(scores.values()) >= 0.99, scores


@pytest.mark.parametrize("damage", ["noise 0.05", "blur 0.7", "noise and blur"])
def test_mildly_noisy_or_blurred_clips_are_still_scored_correctly(damage, clips16, clips32):
    for clips in (clips16, clips32):
        video = clips.video
        if "blur" in damage:
            video = gaussian_blur(video, 0.7)
        if "noise" in damage:
            video = noisy(video, 0.05)
        scores = score_clips(video, clips.captions_en)
        assert min(scores.values()) >= 0.99, (damage, scores)


def test_frame_features_match_the_true_masks(clips32):
    feats = metrics.frame_features(clips32.video)
    masks = clips32.masks.float()
    _, _, height, width = masks.shape
    area = masks.sum(dim=(2, 3))
    xs, ys = torch.arange(width) + 0.5, torch.arange(height) + 0.5
    centroid = torch.stack([(masks * xs).sum(dim=(2, 3)), (masks * ys[:, None]).sum(dim=(2, 3))], -1)
    centroid = centroid / area[..., None]                               # (N, T, 2)
    assert feats["found"].all() and (feats["stray"] == 0).all()
    assert torch.equal(feats["area"], area)
    assert torch.allclose(feats["centroid"], centroid, atol=1e-4)
    palette = torch.tensor([COLOUR_RGB[c] for c in clips32.colour])
    assert torch.allclose(feats["rgb"], palette[:, None].expand(-1, clips32.video.shape[1], -1), atol=1e-5)


def test_speed_is_measured_to_within_a_third_of_a_pixel_per_frame(clips16, clips32):
    for clips in (clips16, clips32):
        report = analyse_clips(clips.video)
        assert (report.speed - clips.speed).abs().max() < 0.3
        assert (report.max_deviation <= metrics.SMOOTH_TOLERANCE).all()


def test_captions_in_either_language_and_tuples_give_the_same_scores(clips16):
    by_tuple = score_clips(clips16.video, clips16.combos)
    assert score_clips(clips16.video, clips16.captions_en) == by_tuple
    assert score_clips(clips16.video, clips16.captions_zh) == by_tuple


# --- corruptions: each must be caught -------------------------------------------------------------

def test_heavy_noise_fails_persistence(clips16, clips32):
    for clips in (clips16, clips32):
        scores = score_clips(noisy(clips.video, 0.5, seed=3), clips.combos)
        assert scores["persistence"] == 0 and scores["all_acc"] == 0


@pytest.mark.parametrize("frame", [0, 3, -1])
def test_a_missing_frame_fails_persistence(frame, clips16):
    video = clips16.video.clone()
    video[:, frame] = 0
    report = analyse_clips(video)
    assert not report.persistent.any()
    assert not report.frames["found"][:, frame].any()


def test_a_colour_swap_in_one_frame_fails_consistency(clips16, clips32):
    for clips in (clips16, clips32):
        video = clips.video.clone()
        k = video.shape[1] // 2
        other = torch.tensor([COLOUR_RGB[COLOURS[(COLOURS.index(c) + 1) % 6]] for c in clips.colour])
        video[:, k] = clips.masks[:, k, None] * other[:, :, None, None]
        scores = score_clips(video, clips.combos)
        assert scores["consistency"] == 0
        assert scores["colour_acc"] == 1          # the clip's colour is what most frames show


@pytest.mark.parametrize("frames_swapped", ["second half", "one frame"])
def test_a_shape_swapped_mid_clip_fails_consistency(frames_swapped, clips32):
    n, t = len(clips32), clips32.video.shape[1]
    for shift in (1, 2):
        # the same seed gives the same motion, so this is the same clip with another shape
        combos = [(c, SHAPES[(SHAPES.index(s) + shift) % 3], d) for c, s, d in clips32.combos]
        other = make_clips(n, frames=t, height=32, width=24, seed=22, combos=combos)
        assert torch.equal(other.positions, clips32.positions)
        video = clips32.video.clone()
        chosen = slice(t // 2, None) if frames_swapped == "second half" else slice(t // 2, t // 2 + 1)
        video[:, chosen] = other.video[:, chosen]
        assert score_clips(video, clips32.combos)["consistency"] == 0


def test_a_sudden_change_of_size_fails_consistency(clips32):
    video = clips32.video.clone()
    t = video.shape[1]
    shape_ids = torch.tensor([SHAPES.index(s) for s in clips32.shape])
    bigger = render(clips32.positions, shape_ids, 1.8 * clips32.radius, 32, 24)   # may touch the edges
    palette = torch.tensor([COLOUR_RGB[c] for c in clips32.colour])
    video[:, t // 2:] = (bigger[:, :, None] * palette[:, None, :, None, None])[:, t // 2:]
    assert score_clips(video, clips32.combos)["consistency"] == 0


def test_a_prompt_with_the_opposite_direction_is_scored_wrong(clips16):
    prompts = [(c, s, OPPOSITE[d]) for c, s, d in clips16.combos]
    scores = score_clips(clips16.video, prompts)
    assert scores["direction_acc"] == 0 and scores["all_acc"] == 0
    assert scores["colour_acc"] == scores["shape_acc"] == 1


def test_a_prompt_with_another_colour_or_shape_is_scored_wrong(clips16):
    wrong_colour = [(COLOURS[(COLOURS.index(c) + 3) % 6], s, d) for c, s, d in clips16.combos]
    wrong_shape = [(c, SHAPES[(SHAPES.index(s) + 1) % 3], d) for c, s, d in clips16.combos]
    assert score_clips(clips16.video, wrong_colour)["colour_acc"] == 0
    assert score_clips(clips16.video, wrong_shape)["shape_acc"] == 0


def test_a_frozen_object_has_no_direction(clips16):
    video = clips16.video[:, :1].expand_as(clips16.video).contiguous()
    report = analyse_clips(video)
    assert report.direction == [NOT_FOUND] * len(clips16)
    assert score_clips(video, clips16.combos)["direction_acc"] == 0


def test_a_teleporting_object_fails_smoothness(clips16, clips32):
    for clips in (clips16, clips32):
        video = clips.video.clone()
        k = video.shape[1] // 2
        height, width = video.shape[-2:]
        for i, direction in enumerate(clips.direction):
            # jump 4 px across the motion, towards the middle so the object stays whole
            x, y = clips.positions[i, k].tolist()
            if direction in ("left", "right"):
                video[i, k] = video[i, k].roll(4 if y < height / 2 else -4, dims=1)
            else:
                video[i, k] = video[i, k].roll(4 if x < width / 2 else -4, dims=2)
        assert score_clips(video, clips.combos)["smoothness"] == 0


def test_shuffled_frames_fail_smoothness(clips16, clips32):
    g = torch.Generator().manual_seed(0)
    for clips in (clips16, clips32):
        n, t = clips.video.shape[:2]
        order = torch.stack([torch.randperm(t, generator=g) for _ in range(n)])   # (N, T)
        shuffled = clips.video[torch.arange(n)[:, None], order]
        # a few permutations leave a clip nearly in order, or happen to trace another bounce
        assert score_clips(shuffled, clips.combos)["smoothness"] <= 0.05


def test_a_sudden_change_of_speed_fails_smoothness():
    clips = make_clips(64, frames=12, height=32, width=32, split="all", seed=23)
    order = torch.tensor([0, 1, 2, 3, 5, 7, 9, 11])                       # twice as fast after frame 3
    assert score_clips(clips.video[:, order], clips.combos)["smoothness"] <= 0.05


def test_an_object_split_in_two_fails_persistence(clips16, clips32):
    for clips in (clips16, clips32):
        video = clips.video.clone()
        k = video.shape[1] // 2
        for i in range(len(clips)):
            column = int(clips.positions[i, k, 0])        # cut a black column through the middle
            video[i, k, :, :, column] = 0
        report = analyse_clips(video)
        assert not report.persistent.any()


def test_an_empty_video_reports_nothing_found():
    report = analyse_clips(torch.zeros(3, 4, 3, 16, 16))
    assert report.colour == report.shape == report.direction == [NOT_FOUND] * 3
    assert not report.persistent.any() and not report.consistent.any() and not report.smooth.any()
    assert score_clips(torch.zeros(3, 4, 3, 16, 16), [("red", "circle", "left")] * 3)["all_acc"] == 0


# --- API ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("video, error, words", [
    ([[0.0]], TypeError, "torch.Tensor"),
    (torch.zeros(2, 4, 16, 16), ValueError, "shape"),
    (torch.zeros(2, 4, 1, 16, 16), ValueError, "shape"),
    (torch.zeros(2, 4, 3, 16, 16, dtype=torch.uint8), TypeError, "float"),
    (torch.zeros(0, 4, 3, 16, 16), ValueError, "at least one"),
])
def test_analyse_clips_rejects_bad_videos(video, error, words):
    with pytest.raises(error, match=words):
        analyse_clips(video)


@pytest.mark.parametrize("prompts, error, words", [
    ([("red", "circle", "left")], ValueError, "1 prompts for 2 clips"),
    (["a red circle moves left", "a red circle flies"], ValueError, "prompt 1"),
    ([("red", "circle", "left"), ("red", "blob", "left")], ValueError, "prompt 1"),
    ([("red", "circle", "left"), 7], ValueError, "prompt 1"),
    ("a red circle moves left", TypeError, "prompts"),
])
def test_score_clips_rejects_bad_prompts(prompts, error, words):
    with pytest.raises(error, match=words):
        score_clips(torch.zeros(2, 4, 3, 16, 16), prompts)


def test_format_table_shows_every_metric_and_value():
    scores = {name: i / 10 for i, name in enumerate(METRIC_NAMES)}
    table = format_table(scores)
    lines = table.splitlines()
    assert len(lines) == 2 + len(METRIC_NAMES)
    for line, (name, value) in zip(lines[2:], scores.items()):
        assert line.split() == [name, f"{value:.3f}"]
    with pytest.raises(TypeError):
        format_table([0.5])


def test_analyse_clips_speed_is_printed():
    for size in (16, 32):
        video = make_clips(256, frames=8, height=size, width=size, seed=0).video
        analyse_clips(video[:4])
        start = time.perf_counter()
        analyse_clips(video)
        print(f"\nanalyse_clips: 256 clips of 8x{size}x{size} in {time.perf_counter() - start:.3f} s")
