"""Tests for tinysora.data: the shapes world (captions, splits, rendering, motion) and digits."""

import itertools
import math
import time

import numpy as np
import pytest
import torch

from tinysora import data
from tinysora.data import (
    ALL_COMBOS,
    COLOUR_RGB,
    COLOURS,
    DIRECTIONS,
    SHAPES,
    SPEED_RANGE,
    TEST_COMBOS,
    TRAIN_COMBOS,
    caption_en,
    caption_zh,
    load_digits,
    make_clips,
    object_radius,
    parse_caption,
    render,
)

CANVASES = [(16, 16), (32, 32), (16, 32), (32, 16), (8, 8), (12, 40)]


# --- vocabulary and captions --------------------------------------------------------------------

def test_vocabulary_has_six_colours_three_shapes_four_directions_with_chinese_names():
    assert len(COLOURS) == 6 and len(SHAPES) == 3 and len(DIRECTIONS) == 4
    assert set(data.COLOUR_ZH) == set(COLOURS) == set(COLOUR_RGB)
    assert set(data.SHAPE_ZH) == set(SHAPES)
    assert set(data.DIRECTION_ZH) == set(DIRECTIONS) == set(data.DIRECTION_VECTORS)
    assert data.COLOUR_ZH["purple"] == "紫色" and data.SHAPE_ZH["square"] == "正方形"


def test_palette_colours_are_far_from_each_other_and_from_black():
    rgb = {name: np.array(value) for name, value in COLOUR_RGB.items()}
    for a, b in itertools.combinations(COLOURS, 2):
        assert np.linalg.norm(rgb[a] - rgb[b]) >= 1.0, (a, b)
    for name in COLOURS:
        assert np.linalg.norm(rgb[name]) >= 1.0 and rgb[name].max() == 1.0
        assert ((0 <= rgb[name]) & (rgb[name] <= 1)).all()


def test_captions_follow_the_book_format_in_both_languages():
    assert caption_en("red", "circle", "left") == "a red circle moves left"
    assert caption_zh("red", "circle", "left") == "红色的圆向左移动"
    assert caption_zh("purple", "triangle", "down") == "紫色的三角形向下移动"


def test_parse_caption_round_trips_every_combo_in_both_languages():
    for combo in ALL_COMBOS:
        assert parse_caption(caption_en(*combo)) == combo
        assert parse_caption(caption_zh(*combo)) == combo
        assert parse_caption(f"  {caption_en(*combo)}\n") == combo
        assert parse_caption(f"\t{caption_zh(*combo)} ") == combo


@pytest.mark.parametrize("text", [
    "", "a red circle", "a red circle moves", "a red circle moves left.", "A red circle moves left",
    "a  red circle moves left", "a pink circle moves left", "a red oval moves left",
    "a red circle moves sideways", "a red circle moves left a red circle moves left",
    "red circle moves left", "红色的圆向左", "红色的圆形向左移动", "粉色的圆向左移动",
    "红色的圆向左移动。", "a red 圆 moves left",
])
def test_parse_caption_rejects_anything_that_is_not_a_world_caption(text):
    assert parse_caption(text) is None


def test_parse_caption_rejects_non_strings_with_type_error():
    with pytest.raises(TypeError, match="str"):
        parse_caption(("red", "circle", "left"))


@pytest.mark.parametrize("args, word", [(("pink", "circle", "left"), "colour"),
                                        (("red", "oval", "left"), "shape"),
                                        (("red", "circle", "back"), "direction")])
def test_captions_reject_unknown_words_naming_the_attribute(args, word):
    for make in (caption_en, caption_zh):
        with pytest.raises(ValueError, match=f"unknown {word}"):
            make(*args)


# --- the fixed split ----------------------------------------------------------------------------

def test_splits_are_disjoint_and_cover_all_72_combos():
    assert len(ALL_COMBOS) == 72 == len(set(ALL_COMBOS))
    assert len(TEST_COMBOS) == 12 and len(TRAIN_COMBOS) == 60
    assert not set(TEST_COMBOS) & set(TRAIN_COMBOS)
    assert set(TEST_COMBOS) | set(TRAIN_COMBOS) == set(itertools.product(COLOURS, SHAPES, DIRECTIONS))


def test_test_combos_follow_the_documented_construction():
    expected = tuple((COLOURS[k % 6], SHAPES[(k + k // 6) % 3], DIRECTIONS[k % 4]) for k in range(12))
    assert TEST_COMBOS == expected


def test_every_word_appears_in_both_splits():
    for position, words in enumerate((COLOURS, SHAPES, DIRECTIONS)):
        for word in words:
            assert any(combo[position] == word for combo in TRAIN_COMBOS), word
            assert any(combo[position] == word for combo in TEST_COMBOS), word


def test_every_pair_of_words_in_a_test_combo_is_seen_in_training():
    train_pairs = {(i, j, c[i], c[j]) for c in TRAIN_COMBOS for i, j in itertools.combinations(range(3), 2)}
    for combo in TEST_COMBOS:
        for i, j in itertools.combinations(range(3), 2):
            assert (i, j, combo[i], combo[j]) in train_pairs, combo


@pytest.mark.parametrize("split, pool", [("train", TRAIN_COMBOS), ("test", TEST_COMBOS), ("all", ALL_COMBOS)])
def test_make_clips_draws_only_from_its_split_and_reaches_all_of_it(split, pool):
    clips = make_clips(1500, frames=1, split=split, seed=7)
    drawn = set(clips.combos)
    assert drawn <= set(pool)
    assert drawn == set(pool)       # 1500 draws reach every one of at most 72 combos


# --- rendering ----------------------------------------------------------------------------------

def reference_mask(shape: str, x: float, y: float, r: float, height: int, width: int):
    """Pixel-by-pixel rasterisation with plain geometry, in float64.

    Returns (mask, sure): sure is False for pixel centres within 1e-4 of the outline, where
    float32 and float64 may disagree.
    """
    mask = np.zeros((height, width), dtype=bool)
    sure = np.ones((height, width), dtype=bool)
    apex, left, right = (x, y - r), (x - r, y + r), (x + r, y + r)
    for i in range(height):
        for j in range(width):
            px, py = j + 0.5, i + 0.5
            if shape == "circle":
                slack = r - math.hypot(px - x, py - y)
            elif shape == "square":
                slack = r - max(abs(px - x), abs(py - y))
            else:   # inside when on the inner side of all three edges, corners taken in turn
                def side(a, b):
                    ex, ey = b[0] - a[0], b[1] - a[1]
                    return (ex * (py - a[1]) - ey * (px - a[0])) / math.hypot(ex, ey)
                slack = min(side(apex, right), side(right, left), side(left, apex))
            mask[i, j] = slack >= 0
            sure[i, j] = abs(slack) > 1e-4
    return mask, sure


@pytest.mark.parametrize("height, width", [(16, 16), (16, 24), (20, 12)])
def test_masks_match_a_pixel_by_pixel_rasterisation(height, width):
    clips = make_clips(24, frames=3, height=height, width=width, split="all", seed=3)
    for n in range(len(clips)):
        for t in range(3):
            x, y = clips.positions[n, t].tolist()
            expected, sure = reference_mask(clips.shape[n], x, y, clips.radius, height, width)
            got = clips.masks[n, t].numpy()
            assert (got[sure] == expected[sure]).all(), (clips.combos[n], t)


def test_video_is_the_clip_colour_on_the_mask_and_black_elsewhere():
    clips = make_clips(64, frames=8, height=16, width=24, split="all", seed=1)
    assert clips.video.dtype == torch.float32 and clips.masks.dtype == torch.bool
    for n in range(len(clips)):
        colour = torch.tensor(COLOUR_RGB[clips.colour[n]])
        pixels = clips.video[n].permute(0, 2, 3, 1)                     # (T, H, W, 3)
        assert (pixels[clips.masks[n]] == colour).all()
        assert (pixels[~clips.masks[n]] == 0).all()
    assert clips.masks.any(dim=(2, 3)).all()                           # an object in every frame


@pytest.mark.parametrize("height, width", [(16, 16), (32, 32), (16, 32), (64, 48)])
def test_mask_centroid_is_the_position_within_half_a_pixel(height, width):
    clips = make_clips(128, frames=8, height=height, width=width, split="all", seed=2)
    masks = clips.masks.float()
    xs, ys = torch.arange(width) + 0.5, torch.arange(height) + 0.5
    area = masks.sum(dim=(2, 3))
    centroid = torch.stack([(masks * xs).sum(dim=(2, 3)), (masks * ys[:, None]).sum(dim=(2, 3))], -1)
    centroid = centroid / area[..., None]                               # (N, T, 2)
    expected = clips.positions.clone()
    triangle = torch.tensor([s == "triangle" for s in clips.shape])
    expected[triangle, :, 1] += clips.radius / 3                        # a triangle's centroid is lower
    assert (centroid - expected).abs().max() < 0.5


def test_mask_area_matches_each_shape_formula():
    clips = make_clips(600, frames=2, height=64, width=64, split="all", seed=4)
    r = clips.radius
    area = clips.masks.float().sum(dim=(2, 3)).mean(dim=1)
    formula = {"circle": math.pi * r**2, "square": (2 * r) ** 2, "triangle": (2 * r) ** 2 / 2}
    for shape, expected in formula.items():
        chosen = torch.tensor([s == shape for s in clips.shape])
        assert abs(area[chosen].mean().item() / expected - 1) < 0.02, shape


def test_object_size_scales_with_the_shorter_side_and_is_at_least_two_pixels():
    assert object_radius(16, 16) == pytest.approx(3.2)
    assert object_radius(32, 64) == pytest.approx(6.4) == object_radius(64, 32)
    assert object_radius(8, 8) == 2.0


# --- motion -------------------------------------------------------------------------------------

@pytest.mark.parametrize("height, width", CANVASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_objects_stay_whole_inside_the_canvas_every_frame(height, width, seed):
    clips = make_clips(64, frames=16, height=height, width=width, split="all", seed=seed)
    r, eps = clips.radius, 1e-4
    x, y = clips.positions[..., 0], clips.positions[..., 1]
    assert (x - r >= -eps).all() and (x + r <= width + eps).all()
    assert (y - r >= -eps).all() and (y + r <= height + eps).all()
    # the same shape drawn on a canvas with a margin of 8 px has just as many pixels: nothing is cut
    shape_ids = torch.tensor([SHAPES.index(s) for s in clips.shape])
    padded = render(clips.positions + 8, shape_ids, r, height + 16, width + 16)
    assert torch.equal(padded.sum(dim=(2, 3)), clips.masks.sum(dim=(2, 3)))


@pytest.mark.parametrize("height, width", CANVASES)
def test_motion_matches_a_step_by_step_simulation_with_reflections(height, width):
    clips = make_clips(64, frames=24, height=height, width=width, split="all", seed=5)
    r = clips.radius
    low, high = np.array([r, r]), np.array([width - r, height - r])
    for n in range(len(clips)):
        p = clips.positions[n, 0].double().numpy().copy()
        v = clips.velocities[n, 0].double().numpy().copy()
        for t in range(1, 24):
            p = p + v
            for k in range(2):          # reflect off whichever wall was crossed
                if p[k] > high[k]:
                    p[k], v[k] = 2 * high[k] - p[k], -v[k]
                elif p[k] < low[k]:
                    p[k], v[k] = 2 * low[k] - p[k], -v[k]
            assert np.allclose(clips.positions[n, t].numpy(), p, atol=1e-3), (n, t)
            assert np.allclose(clips.velocities[n, t].numpy(), v, atol=1e-5), (n, t)


def test_bounce_is_exact_for_several_reflections_within_one_frame():
    start, step = torch.tensor([1.0, 4.5, 2.0, 3.0]), torch.tensor([7.3, -11.2, 0.0, 2.5])
    positions, velocities = data.bounce(start, step, low=1.0, high=5.0, frames=6)
    for n in range(4):            # an independent simulation in 1000 small steps per frame
        p, v = start[n].item(), step[n].item() / 1000
        for t in range(6):
            assert abs(positions[n, t].item() - p) < 1e-4, (n, t)
            assert np.sign(velocities[n, t].item()) == np.sign(v) or v == 0
            for _ in range(1000):
                p += v
                if p > 5.0:
                    p, v = 10.0 - p, -v
                elif p < 1.0:
                    p, v = 2.0 - p, -v


def test_bounce_flips_the_normal_velocity_and_keeps_the_tangential_one():
    clips = make_clips(256, frames=32, height=16, width=32, split="all", seed=6)
    v = clips.velocities
    speed = clips.speed[:, None]
    assert torch.allclose(v.norm(dim=-1), speed.expand(-1, 32), atol=1e-5)   # constant speed
    changed = (v[:, 1:] != v[:, :-1]).any(dim=-1)
    assert changed.any()
    for n, t in changed.nonzero().tolist():
        before, after = v[n, t], v[n, t + 1]
        normal = 0 if clips.direction[n] in ("left", "right") else 1
        assert after[normal] == -before[normal] and after[1 - normal] == before[1 - normal] == 0


def test_first_two_steps_move_in_the_captions_direction():
    clips = make_clips(512, frames=3, height=16, width=16, split="all", seed=8)
    unit = torch.tensor([data.DIRECTION_VECTORS[d] for d in clips.direction])
    steps = clips.positions[:, 1:] - clips.positions[:, :-1]               # (N, 2, 2)
    assert torch.allclose(steps, (unit * clips.speed[:, None])[:, None].expand_as(steps), atol=1e-4)


@pytest.mark.parametrize("height, width", [(16, 16), (16, 48), (40, 16)])
def test_default_speed_is_a_fraction_of_the_side_moved_along(height, width):
    clips = make_clips(400, height=height, width=width, split="all", seed=9)
    side = torch.tensor([width if d in ("left", "right") else height for d in clips.direction]).float()
    share = clips.speed / side
    assert (share >= SPEED_RANGE[0] - 1e-6).all() and (share <= SPEED_RANGE[1] + 1e-6).all()
    assert share.max() - share.min() > 0.5 * (SPEED_RANGE[1] - SPEED_RANGE[0])   # spread, not constant


def test_explicit_speed_and_combos_are_used():
    combos = [("cyan", "square", "up"), ("red", "triangle", "left")]
    clips = make_clips(2, frames=4, speed=1.5, combos=combos, seed=0)
    assert clips.combos == combos
    assert torch.allclose(clips.speed, torch.tensor([1.5, 1.5]))
    assert torch.allclose(clips.velocities[:, 0], torch.tensor([[0.0, -1.5], [-1.5, 0.0]]))


def test_same_seed_gives_the_same_motion_for_other_colours_and_shapes():
    a = make_clips(3, frames=6, seed=4, combos=[("red", "circle", "left")] * 3)
    b = make_clips(3, frames=6, seed=4, combos=[("blue", "triangle", "left")] * 3)
    assert torch.equal(a.positions, b.positions)


# --- determinism, containers ----------------------------------------------------------------------

def test_clips_are_determined_by_the_seed():
    a, b = make_clips(32, seed=11), make_clips(32, seed=11)
    assert torch.equal(a.video, b.video) and a.combos == b.combos and torch.equal(a.positions, b.positions)
    c = make_clips(32, seed=12)
    assert not torch.equal(a.video, c.video)


def test_generation_does_not_touch_the_global_random_state():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    make_clips(16, seed=5)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("frames, height, width", [(1, 8, 8), (8, 16, 16), (5, 12, 40), (16, 32, 16)])
def test_clips_have_the_documented_shapes_and_dtypes(frames, height, width):
    clips = make_clips(6, frames=frames, height=height, width=width)
    assert clips.video.shape == (6, frames, 3, height, width) and clips.video.dtype == torch.float32
    assert clips.masks.shape == (6, frames, height, width)
    assert clips.positions.shape == clips.velocities.shape == (6, frames, 2)
    assert clips.positions.dtype == clips.velocities.dtype == torch.float32
    assert clips.speed.shape == (6,) and len(clips) == 6
    assert len(clips.colour) == len(clips.shape) == len(clips.direction) == 6
    assert 0 <= clips.video.min() and clips.video.max() <= 1


def test_captions_and_labels_describe_each_clip():
    clips = make_clips(40, split="all", seed=2)
    for n in range(len(clips)):
        combo = (clips.colour[n], clips.shape[n], clips.direction[n])
        assert parse_caption(clips.captions_en[n]) == combo == parse_caption(clips.captions_zh[n])
        c, s, d = clips.labels[n].tolist()
        assert (COLOURS[c], SHAPES[s], DIRECTIONS[d]) == combo
    assert clips.labels.dtype == torch.int64 and clips.labels.shape == (40, 3)


@pytest.mark.parametrize("index, expected", [(3, [3]), (-1, [9]), (slice(2, 5), [2, 3, 4]),
                                             ([0, 7, 7], [0, 7, 7]), (torch.tensor([1, 4]), [1, 4])])
def test_indexing_returns_clips_of_the_chosen_clips(index, expected):
    clips = make_clips(10, split="all", seed=1)
    part = clips[index]
    assert isinstance(part, data.Clips) and len(part) == len(expected)
    assert torch.equal(part.video, clips.video[expected])
    assert torch.equal(part.positions, clips.positions[expected])
    assert part.captions_en == [clips.captions_en[i] for i in expected]
    assert torch.equal(part.speed, clips.speed[expected])


@pytest.mark.parametrize("kwargs, error, words", [
    (dict(n=0), ValueError, "n must be at least 1"),
    (dict(n=-3), ValueError, "n must be"),
    (dict(n=2.5), TypeError, "n must be an int"),
    (dict(n=2, frames=0), ValueError, "frames"),
    (dict(n=2, height=7), ValueError, "height must be at least 8"),
    (dict(n=2, width=4), ValueError, "width"),
    (dict(n=2, split="validation"), ValueError, "unknown split"),
    (dict(n=2, seed=-1), ValueError, "seed"),
    (dict(n=2, speed=0.0), ValueError, "speed"),
    (dict(n=2, speed=50.0), ValueError, "speed"),
    (dict(n=2, speed="fast"), TypeError, "speed"),
    (dict(n=2, combos=[("red", "circle", "left")]), ValueError, "combos has 1"),
    (dict(n=1, combos=[("pink", "circle", "left")]), ValueError, "unknown colour"),
    (dict(n=1, combos=[("red", "circle")]), ValueError, "combo"),
])
def test_bad_arguments_raise_errors_that_name_them(kwargs, error, words):
    with pytest.raises(error, match=words):
        make_clips(**kwargs)


def test_generation_is_vectorised_and_fast():
    make_clips(8, frames=8, height=32, width=32)
    start = time.perf_counter()
    clips = make_clips(1024, frames=8, height=32, width=32, seed=0)
    print(f"make_clips: 1024 clips of 8x32x32 in {time.perf_counter() - start:.3f} s")
    assert len(clips) == 1024


# --- digits -------------------------------------------------------------------------------------

def test_digits_have_the_documented_shapes_and_range():
    images, labels = load_digits("train")
    assert images.dtype == torch.float32 and images.shape[1:] == (8, 8)
    assert labels.dtype == torch.int64 and labels.shape == (images.shape[0],)
    assert images.min() == 0 and images.max() == 1
    assert set(labels.tolist()) == set(range(10))


def test_digits_split_partitions_all_images_stratified_by_label():
    all_images, all_labels = load_digits("all")
    train_images, train_labels = load_digits("train")
    test_images, test_labels = load_digits("test")
    assert len(all_labels) == 1797 == len(train_labels) + len(test_labels)

    def rows(images, labels):    # every (image, label) as a sortable row: compares multisets
        table = torch.cat([images.reshape(len(images), -1), labels[:, None].float()], dim=1).numpy()
        return table[np.lexsort(table.T[::-1])]

    together = rows(torch.cat([train_images, test_images]), torch.cat([train_labels, test_labels]))
    assert np.array_equal(rows(all_images, all_labels), together)
    for digit in range(10):       # stratified: each digit 25% test, give or take one image
        total = (all_labels == digit).sum().item()
        assert abs((test_labels == digit).sum().item() - 0.25 * total) <= 1


def test_digits_split_is_determined_by_the_seed():
    a, b, c = load_digits("test", seed=0), load_digits("test", seed=0), load_digits("test", seed=1)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert len(load_digits("test", test_fraction=0.5)[1]) in (898, 899)


@pytest.mark.parametrize("kwargs, words", [(dict(split="val"), "unknown split"),
                                           (dict(test_fraction=1.5), "test_fraction"),
                                           (dict(test_fraction=0), "test_fraction"),
                                           (dict(seed=-2), "seed")])
def test_digits_bad_arguments_raise_value_error(kwargs, words):
    with pytest.raises(ValueError, match=words):
        load_digits(**kwargs)
