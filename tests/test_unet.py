"""Tests for tinysora.unet: sizes, parts, the time embedding, data, metrics, bad input."""

import numpy as np
import pytest
import torch
from torch import nn

from tinysora import cnn, transformer, unet


def test_unpadded_sizes_are_the_papers():
    # Ronneberger et al. 2015, Fig. 1: 572 in, 388 out; skips cropped 568->392, 280->200, 136->104, 64->56
    sizes = unet.unpadded_sizes(572, depth=4)
    assert [pair[1] for pair in sizes["encoder"]] == [568, 280, 136, 64, 28]
    assert [row[0] for row in sizes["decoder"]] == [56, 104, 200, 392]
    assert sizes["crops"] == [(64, 56), (136, 104), (280, 200), (568, 392)]
    assert sizes["output"] == 388


def test_unpadded_sizes_match_torch_layers():
    conv, pool = nn.Conv2d(1, 1, 3), nn.MaxPool2d(2)
    up = nn.ConvTranspose2d(1, 1, 2, stride=2)
    sizes = unet.unpadded_sizes(188, depth=3)
    x = torch.zeros(1, 1, 188, 188)
    with torch.no_grad():
        for level, (first, second) in enumerate(sizes["encoder"]):
            if level:
                x = pool(x)
            x = conv(x)
            assert x.shape[-1] == first
            x = conv(x)
            assert x.shape[-1] == second
        for up_size, first, second in sizes["decoder"]:
            x = up(x)
            assert x.shape[-1] == up_size
            x = conv(conv(x))
            assert x.shape[-1] == second
    assert x.shape[-1] == sizes["output"]


def test_unpadded_sizes_reject_odd_pool():
    with pytest.raises(ValueError, match="even sides"):
        unet.unpadded_sizes(570, depth=4)


@pytest.mark.parametrize("bilinear", [False, True])
@pytest.mark.parametrize("size", [(8, 8), (9, 13), (15, 8), (21, 21), (32, 17)])
def test_output_has_the_input_size(size, bilinear):
    model = unet.UNet(3, 5, base=4, depth=3, bilinear=bilinear)
    assert model(torch.randn(2, 3, *size)).shape == (2, 5, *size)


def test_pad_to_places_the_map_like_the_seed():
    x = torch.randn(1, 2, 6, 5)
    padded = unet.pad_to(x, 7, 8)
    expected = torch.zeros(1, 2, 7, 8)
    expected[..., 0:6, 1:6] = x          # dy = 1: 0 above, 1 below; dx = 3: 1 left, 2 right
    torch.testing.assert_close(padded, expected)
    with pytest.raises(ValueError, match="smaller"):
        unet.pad_to(x, 5, 5)


def test_parts_shapes():
    x = torch.randn(2, 8, 9, 11)
    assert unet.DoubleConv(8, 6)(x).shape == (2, 6, 9, 11)
    assert unet.Down(8, 16)(x).shape == (2, 16, 4, 5)
    assert unet.Up(8, 4)(torch.randn(2, 8, 4, 5), torch.randn(2, 4, 9, 11)).shape == (2, 4, 9, 11)
    assert unet.OutConv(8, 3)(x).shape == (2, 3, 9, 11)


def test_seed_widths_for_base_64_depth_4():
    model = unet.UNet(3, 2, base=64, depth=4)
    assert [down.conv.conv2.out_channels for down in model.downs] == [128, 256, 512, 1024]
    assert [up.conv.conv2.out_channels for up in model.ups] == [512, 256, 128, 64]


def test_bottleneck_receptive_field_matches_gradient():
    model = unet.UNet(1, 2, base=2, depth=2)
    height, width, _ = cnn.receptive_field_by_gradient(model.encoder(), 1, 48)
    # inc: 1 + 2 + 2 = 5; pool: +1, jump 2; two convs: +4 +4 = 14; pool: +2, jump 4; +8 +8 = 32
    assert model.bottleneck_receptive_field() == 32
    assert height == width == 32


def test_skips_false_has_the_same_weights_and_ignores_the_encoder_maps():
    torch.manual_seed(0)
    with_skips = unet.UNet(3, 4, base=4, depth=2).eval()
    without = unet.UNet(3, 4, base=4, depth=2, skips=False).eval()
    without.load_state_dict(with_skips.state_dict())
    x = torch.randn(2, 3, 12, 12)
    assert not torch.allclose(with_skips(x), without(x))
    # without skips the decoder's input is the bottleneck alone: replace the skips by zeros by hand
    features = [with_skips.inc(x)]
    for down in with_skips.downs:
        features.append(down(features[-1]))
    h = features.pop()
    for up in with_skips.ups:
        skip = features.pop()
        h = up.conv(torch.cat([torch.zeros_like(skip), unet.pad_to(up.up(h), *skip.shape[-2:])], 1))
    torch.testing.assert_close(without(x), with_skips.outc(h))


def test_time_embedding_uses_the_package_sinusoids(monkeypatch):
    calls = []

    def spy(positions, dim, **kwargs):
        calls.append((positions.clone(), dim))
        return transformer.sinusoidal_embedding(positions, dim, **kwargs)

    monkeypatch.setattr(unet, "sinusoidal_embedding", spy)
    torch.manual_seed(0)
    model = unet.UNet(1, 1, base=4, depth=2, time_dim=16, norm="group")
    x = torch.randn(3, 1, 8, 8)
    out = model(x, torch.tensor([0, 500, 999]))
    assert calls and calls[0][1] == 16 and calls[0][0].tolist() == [0, 500, 999]
    assert out.shape == x.shape
    same_x = x[:1].expand(2, -1, -1, -1)
    two_times = model(same_x, torch.tensor([3.0, 700.0]))
    assert not torch.allclose(two_times[0], two_times[1], atol=1e-5)   # the time changes the output
    torch.testing.assert_close(model(x, 7), model(x, torch.tensor([7, 7, 7])))


def test_cond_is_added_to_the_time_features():
    torch.manual_seed(0)
    model = unet.UNet(1, 1, base=4, depth=2, time_dim=8, norm="group")
    x, t = torch.randn(2, 1, 8, 8), torch.tensor([1, 2])
    torch.testing.assert_close(model(x, t, cond=torch.zeros(2, 8)), model(x, t))
    assert not torch.allclose(model(x, t, cond=torch.ones(2, 8)), model(x, t))
    with pytest.raises(ValueError, match="cond must have shape"):
        model(x, t, cond=torch.ones(2, 4))


def test_hook_sees_every_decoder_level_and_its_result_replaces_the_features():
    torch.manual_seed(0)
    model = unet.UNet(1, 1, base=4, depth=2, time_dim=8, norm="group")
    x, t = torch.randn(2, 1, 9, 11), torch.tensor([1, 2])
    seen = []

    def record(level, h):
        seen.append((level, tuple(h.shape)))
        return h

    torch.testing.assert_close(model(x, t, hook=record), model(x, t))     # the identity hook changes nothing
    assert seen == [(2, (2, 16, 2, 2)), (1, (2, 8, 4, 5)), (0, (2, 4, 9, 11))]
    assert [model.widths[level] for level, _ in seen] == [16, 8, 4]
    zero_bottleneck = model(x, t, hook=lambda level, h: torch.zeros_like(h) if level == 2 else h)
    assert not torch.allclose(zero_bottleneck, model(x, t))
    # a hook is an inserted layer: a gradient flows through its parameters
    gain = torch.ones(1, requires_grad=True)
    model(x, t, hook=lambda level, h: gain * h).sum().backward()
    assert gain.grad is not None and gain.grad.abs() > 0
    with pytest.raises(ValueError, match="the hook must return a tensor of the features' shape"):
        model(x, t, hook=lambda level, h: h[:, :1])
    with pytest.raises(ValueError, match="the hook must return a tensor"):
        model(x, t, hook=lambda level, h: None)


@pytest.mark.parametrize("call, message", [
    (lambda m: m(torch.randn(2, 1, 16, 16)), "takes 3-channel images, got 1"),
    (lambda m: m(torch.randn(2, 3, 7, 16)), "too small for depth 3"),
    (lambda m: m(torch.randn(3, 16, 16)), "expected images"),
    (lambda m: m(torch.randn(2, 3, 16, 16), torch.tensor([1, 2])), "no time embedding"),
])
def test_bad_input_is_explained(call, message):
    with pytest.raises(ValueError, match=message):
        call(unet.UNet(3, 2, base=4, depth=3))


def test_bad_construction_and_times_are_explained():
    with pytest.raises(ValueError, match="time_dim must be an even"):
        unet.UNet(3, 2, time_dim=7)
    with pytest.raises(ValueError, match="norm must be"):
        unet.UNet(3, 2, norm="layer")
    with pytest.raises(ValueError, match="depth must be a positive int"):
        unet.UNet(3, 2, depth=0)
    model = unet.UNet(1, 1, base=4, depth=2, time_dim=8)
    with pytest.raises(ValueError, match="call it as model"):
        model(torch.randn(2, 1, 8, 8))
    with pytest.raises(ValueError, match="one time per image"):
        model(torch.randn(2, 1, 8, 8), torch.tensor([1, 2, 3]))


def test_segmentation_frames_labels_match_the_pixels():
    images, labels = unet.segmentation_frames(40, size=24, max_shapes=3, seed=5)
    assert images.shape == (40, 3, 24, 24) and labels.shape == (40, 24, 24)
    lit = images.amax(1) > 0
    assert torch.equal(lit, labels > 0)                    # every object pixel has its class, nothing else
    assert set(labels.unique().tolist()) == {0, 1, 2, 3}
    again = unet.segmentation_frames(40, size=24, max_shapes=3, seed=5)
    assert torch.equal(again[1], labels)


def test_iou_matches_a_confusion_matrix():
    rng = np.random.default_rng(0)
    pred, target = rng.integers(0, 4, size=(5, 6, 7)), rng.integers(0, 4, size=(5, 6, 7))
    counts = np.zeros((4, 4))
    np.add.at(counts, (target.ravel(), pred.ravel()), 1)
    expected = np.diag(counts) / (counts.sum(0) + counts.sum(1) - np.diag(counts))
    got = unet.iou_per_class(torch.from_numpy(pred), torch.from_numpy(target))
    np.testing.assert_allclose(got.numpy(), expected)
    assert unet.mean_iou(torch.from_numpy(pred), torch.from_numpy(pred)) == 1.0


def test_iou_skips_absent_classes():
    target = torch.zeros(1, 4, 4, dtype=torch.int64)
    target[0, :2] = 2
    assert torch.isnan(unet.iou_per_class(target, target)[[1, 3]]).all()
    assert unet.mean_iou(target, target) == 1.0


def test_distance_to_boundary_by_brute_force():
    _, labels = unet.segmentation_frames(3, size=16, max_shapes=2, seed=1)
    got = unet.distance_to_boundary(labels, max_distance=3).numpy()
    lab = labels.numpy()
    ii, jj = np.meshgrid(np.arange(16), np.arange(16), indexing="ij")
    for n in range(3):
        for i in range(16):
            for j in range(16):
                other = lab[n] != lab[n, i, j]
                d = np.maximum(abs(ii - i), abs(jj - j))[other].min() if other.any() else 99
                assert got[n, i, j] == min(d, 4)
    assert torch.equal(unet.boundary_band(labels, 2), unet.distance_to_boundary(labels, 2) <= 2)


def test_train_segmenter_lowers_the_loss():
    torch.manual_seed(0)
    train = unet.segmentation_frames(32, size=16, seed=0)
    model = unet.UNet(3, unet.NUM_CLASSES, base=4, depth=2)
    history = unet.train_segmenter(model, train, train, steps=30, batch_size=8, eval_every=15)
    assert np.mean(history.loss[-5:]) < np.mean(history.loss[:5])
    assert history.eval_steps == [15, 30] and len(history.test_miou) == 2
    assert unet.predict_labels(model, train[0][:3]).shape == (3, 16, 16)


def test_draw_unet_draws_every_level():
    import matplotlib
    matplotlib.use("Agg")
    ax = unet.draw_unet(depth=3, base=16, size=32)
    texts = [t.get_text() for t in ax.texts]
    assert sum("DoubleConv" in t for t in texts) == 4 and sum("Up: cat" in t for t in texts) == 3
