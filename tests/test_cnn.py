import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.signal import convolve2d
from torch import nn

from tinysora import cnn


def random_conv_case(rng, dilation=True):
    b, c_in, c_out = rng.integers(1, 3), rng.integers(1, 4), rng.integers(1, 4)
    kh, kw = rng.integers(1, 4, size=2)
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    padding = (int(rng.integers(0, 3)), int(rng.integers(0, 3)))
    dil = (int(rng.integers(1, 3)), int(rng.integers(1, 3))) if dilation else (1, 1)
    h = rng.integers(dil[0] * (kh - 1) + 1, 11)
    w = rng.integers(dil[1] * (kw - 1) + 1, 11)
    x = rng.normal(size=(b, c_in, h, w))
    weight, bias = rng.normal(size=(c_out, c_in, kh, kw)), rng.normal(size=c_out)
    return x, weight, bias, stride, padding, dil


def torch_conv(x, weight, bias, stride, padding, dilation):
    return F.conv2d(torch.tensor(x), torch.tensor(weight), torch.tensor(bias), stride, padding, dilation).numpy()


@pytest.mark.parametrize("seed", range(12))
def test_conv2d_matches_torch_with_stride_padding_dilation(seed):
    x, weight, bias, stride, padding, dilation = random_conv_case(np.random.default_rng(seed))
    np.testing.assert_allclose(cnn.conv2d(x, weight, bias, stride, padding, dilation),
                               torch_conv(x, weight, bias, stride, padding, dilation), atol=1e-10)


@pytest.mark.parametrize("seed", range(6))
def test_loop_conv2d_matches_torch(seed):
    rng = np.random.default_rng(seed)
    k, s, p = int(rng.integers(1, 4)), int(rng.integers(1, 3)), int(rng.integers(0, 2))
    x, weight, bias = rng.normal(size=(2, 3, 7, 8)), rng.normal(size=(4, 3, k, k)), rng.normal(size=4)
    np.testing.assert_allclose(cnn.conv2d_loops(x, weight, bias, s, p),
                               torch_conv(x, weight, bias, s, p, 1), atol=1e-10)


@pytest.mark.parametrize("seed", range(6))
def test_im2col_equals_torch_unfold(seed):
    x, weight, _, stride, padding, dilation = random_conv_case(np.random.default_rng(seed))
    ours = cnn.im2col(x, weight.shape[2:], stride, padding, dilation)
    theirs = F.unfold(torch.tensor(x), tuple(weight.shape[2:]), dilation, padding, stride).numpy()
    np.testing.assert_allclose(ours, theirs)


def test_true_convolution_flips_the_kernel():
    rng = np.random.default_rng(0)
    image, kernel = rng.normal(size=(7, 6)), rng.normal(size=(3, 2))
    np.testing.assert_allclose(cnn.convolve2d_true(image, kernel), convolve2d(image, kernel, mode="valid"), atol=1e-12)
    # deep learning's convolution is the true one with a flipped kernel
    np.testing.assert_allclose(cnn.conv2d(image[None, None], kernel[None, None])[0, 0],
                               convolve2d(image, kernel[::-1, ::-1], mode="valid"), atol=1e-12)


@pytest.mark.parametrize("size, k, s, p, d", [(224, 3, 1, 1, 1), (28, 5, 2, 0, 1), (10, 3, 3, 2, 2), (7, 7, 1, 3, 1)])
def test_conv_output_size_matches_torch(size, k, s, p, d):
    out = nn.Conv2d(1, 1, k, s, p, d)(torch.zeros(1, 1, size, size))
    assert cnn.conv_output_size(size, k, s, p, d) == out.shape[-1]


def test_conv_output_size_explains_bad_arguments():
    with pytest.raises(ValueError, match="spans 5 pixels"):
        cnn.conv_output_size(4, 3, dilation=2)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        cnn.conv_output_size(8, 3, stride=0)
    with pytest.raises(TypeError, match="kernel_size must be an int"):
        cnn.conv_output_size(8, 3.0)


def test_conv2d_explains_channel_mismatch():
    with pytest.raises(ValueError, match="x has 3 channels but weight expects C_in=2"):
        cnn.conv2d(np.zeros((1, 3, 5, 5)), np.zeros((4, 2, 3, 3)))
    with pytest.raises(ValueError, match="4-D"):
        cnn.conv2d(np.zeros((3, 5, 5)), np.zeros((4, 3, 3, 3)))
    with pytest.raises(TypeError, match="torch tensor"):
        cnn.conv2d(torch.zeros(1, 3, 5, 5), np.zeros((4, 3, 3, 3)))


def test_batchnorm_matches_torch_in_train_and_eval():
    rng = np.random.default_rng(0)
    ours, theirs = cnn.BatchNorm2d(4, momentum=0.2), nn.BatchNorm2d(4, momentum=0.2).double()
    ours.gamma, ours.beta = rng.normal(size=4), rng.normal(size=4)
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(ours.gamma))
        theirs.bias.copy_(torch.tensor(ours.beta))
    for _ in range(4):
        x = rng.normal(3.0, 2.0, size=(5, 4, 3, 6))
        np.testing.assert_allclose(ours(x), theirs(torch.tensor(x)).detach().numpy(), atol=1e-10)
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), atol=1e-12)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), atol=1e-12)
    ours.eval(), theirs.eval()
    x = rng.normal(size=(2, 4, 3, 3))
    np.testing.assert_allclose(ours(x), theirs(torch.tensor(x)).detach().numpy(), atol=1e-10)


def test_batchnorm_normalises_each_channel_over_batch_and_space():
    x = np.random.default_rng(1).normal(5.0, 3.0, size=(8, 3, 4, 4))
    out = cnn.BatchNorm2d(3)(x)
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0, atol=1e-10)
    np.testing.assert_allclose(out.var(axis=(0, 2, 3)), 1, atol=1e-3)


def test_batchnorm_rejects_bad_arguments():
    with pytest.raises(ValueError, match="momentum"):
        cnn.BatchNorm2d(3, momentum=0.0)
    with pytest.raises(ValueError, match="x has 2 channels"):
        cnn.BatchNorm2d(3)(np.zeros((2, 2, 2, 2)))
    with pytest.raises(ValueError, match="more than one value per channel"):
        cnn.BatchNorm2d(3)(np.zeros((1, 3, 1, 1)))


@pytest.mark.parametrize("kernel, stride, padding",
                         [(2, None, 0), (3, 2, 1), (3, 1, 1), (2, 1, 0), ((2, 3), (1, 2), (1, 0))])
def test_max_pool2d_matches_torch(kernel, stride, padding):
    x = np.random.default_rng(0).normal(size=(2, 3, 9, 11))
    theirs = F.max_pool2d(torch.tensor(x), kernel, stride, padding).numpy()
    np.testing.assert_allclose(cnn.max_pool2d(x, kernel, stride, padding), theirs)


def test_max_pool2d_rejects_too_much_padding():
    with pytest.raises(ValueError, match="at most half"):
        cnn.max_pool2d(np.zeros((1, 1, 6, 6)), 2, padding=2)


@pytest.mark.parametrize("size", [1, 2, 3, (4, 5), (9, 11), (5, 7), (2, 1)])
def test_adaptive_avg_pool2d_matches_torch(size):
    x = np.random.default_rng(0).normal(size=(2, 3, 9, 11))
    np.testing.assert_allclose(cnn.adaptive_avg_pool2d(x, size),
                               F.adaptive_avg_pool2d(torch.tensor(x), size).numpy(), atol=1e-12)


def test_dropout_matches_torch_given_torch_mask_and_is_identity_in_eval():
    torch.manual_seed(0)
    x = torch.rand(4, 50, dtype=torch.float64) + 0.5     # no zeros, so the mask can be read off
    layer = nn.Dropout(0.3)
    out = layer(x)
    mask = (out != 0).numpy()
    ours = cnn.Dropout(0.3)
    np.testing.assert_allclose(ours(x.numpy(), mask=mask), out.numpy(), atol=1e-12)
    ours.eval(), layer.eval()
    np.testing.assert_allclose(ours(x.numpy()), layer(x).numpy())


def test_inverted_dropout_keeps_the_expectation():
    x = np.ones((400, 500))
    out = cnn.Dropout(0.4, seed=0)(x)
    assert abs((out == 0).mean() - 0.4) < 0.01
    assert abs(out.mean() - 1.0) < 0.01


def test_dropout_rejects_bad_p():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        cnn.Dropout(1.0)


@pytest.mark.parametrize("layers", [
    [3, 3],
    [(3, 1, 1), (2, 2), (3, 1, 1), (2, 2)],
    [(3, 2, 1, 2), (5, 1, 2, 1), (2, 2), (3, 1, 0, 3)],
    [(7, 2, 3), (3, 2, 1), (3, 1, 1), (3, 1, 1)],
])
def test_receptive_field_equals_the_gradient_of_a_one_hot(layers):
    specs = cnn._as_specs(layers)
    model = nn.Sequential(*[nn.Conv2d(1, 1, s.kernel_size, s.stride, s.padding, s.dilation) for s in specs])
    field = cnn.receptive_field(layers)
    height, width, grad = cnn.receptive_field_by_gradient(model, 1, 121)
    assert height == width == field.size
    # and the field sits where `start` and `jump` say: centre = start + index * jump
    rows = np.nonzero(grad.sum(1))[0]
    out_size = model(torch.zeros(1, 1, 121, 121)).shape[-1]
    assert (rows[0] + rows[-1]) / 2 == pytest.approx(field.start + (out_size // 2) * field.jump)


def test_receptive_field_of_the_classifier_and_its_linearised_copy():
    model = cnn.CNNClassifier(1, 10, channels=(8, 8, 8))
    specs = cnn.layer_specs(model)
    assert len(specs) == 6                       # 3 x (conv, pool); BN, ReLU, adaptive pool skipped
    field = cnn.receptive_field(model)
    assert (field.size, field.jump) == (22, 8)   # 1 +2 +1 (x1) +2x2 +1x2 +2x4 +1x4
    height, width, _ = cnn.receptive_field_by_gradient(model.features[:-1], 1, 64)
    assert height == width == field.size


def test_receptive_field_by_gradient_warns_about_the_border():
    with pytest.raises(ValueError, match="larger image_size"):
        cnn.receptive_field_by_gradient(nn.Conv2d(1, 1, 9), 1, 9)


def test_cnn_classifier_shapes_and_any_input_size():
    model = cnn.CNNClassifier(1, 10, channels=(8, 16), hidden=32, pooled=2)
    for size in [(8, 8), (40, 75), (17, 33)]:
        assert model(torch.zeros(3, 1, *size)).shape == (3, 10)
    names = [type(m).__name__ for m in model.head]
    assert names == ["Flatten", "Linear", "ReLU", "Dropout", "Linear"]
    block = [type(m).__name__ for m in model.features[0].children()]
    assert block == ["Conv2d", "BatchNorm2d", "ReLU", "MaxPool2d"]
    assert isinstance(model.features[-1], nn.AdaptiveAvgPool2d)


def test_cnn_classifier_rejects_bad_arguments():
    with pytest.raises(ValueError, match="channels"):
        cnn.CNNClassifier(channels=())
    with pytest.raises(ValueError, match="dropout"):
        cnn.CNNClassifier(dropout=1.0)
    with pytest.raises(ValueError, match="B, C, H, W"):
        cnn.CNNClassifier()(torch.zeros(1, 8, 8))


def test_confusion_matrix_counts_pairs():
    counts = cnn.confusion_matrix([0, 0, 1, 2, 2], [0, 1, 1, 2, 0], 3)
    np.testing.assert_array_equal(counts, [[1, 1, 0], [0, 1, 0], [1, 0, 1]])
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        cnn.confusion_matrix([0, 3], [0, 0], 3)


def test_sliding_kernel_schematic_checks_its_fit():
    import matplotlib
    matplotlib.use("Agg")
    from tinysora.plotting import draw_sliding_kernel

    ax = draw_sliding_kernel(5, 5, 3, (1, 2))
    assert len(ax.patches) == 25 + 9 + 9
    with pytest.raises(ValueError, match="does not fit"):
        draw_sliding_kernel(5, 5, 3, (3, 0))
