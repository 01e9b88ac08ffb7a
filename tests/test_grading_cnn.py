import numpy as np
import pytest
from scipy.signal import convolve2d, correlate2d

from tinysora import cnn
from tinysora.grading import CheckFailed
from tinysora.grading import cnn as grade


def test_right_answers_pass():
    grade.check_convolve2d(grade.reference_convolve2d)
    grade.check_convolve2d(cnn.convolve2d_true)
    grade.check_max_pool2d(grade.reference_max_pool2d)
    grade.check_max_pool2d(lambda x, k, s: cnn.max_pool2d(x, k, s))
    grade.check_receptive_field(grade.reference_receptive_field)


def test_not_written_yet_is_reported():
    def stub(*args):
        raise NotImplementedError()

    for check in (grade.check_convolve2d, grade.check_max_pool2d, grade.check_receptive_field):
        with pytest.raises(CheckFailed, match="not written yet"):
            check(stub)


@pytest.mark.parametrize("wrong, message", [
    (lambda image, kernel: correlate2d(image, kernel, mode="valid"), "cross-correlation"),
    (lambda image, kernel: correlate2d(image, kernel[::-1], mode="valid"), "upside down only"),
    (lambda image, kernel: correlate2d(image, kernel[:, ::-1], mode="valid"), "left-right only"),
    (lambda image, kernel: np.convolve(image.ravel(), kernel.ravel(), "full"), "returned shape"),
    (lambda image, kernel: convolve2d(image, kernel, mode="full"), "'full' convolution"),
    (lambda image, kernel: image[:2, :2], "returned shape"),
    (lambda image, kernel: "no", "should be an array"),
])
def test_convolve2d_mistakes_are_named(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_convolve2d(wrong)


def avg_pool(x, k, s):
    return cnn.sliding_windows(x, k, s).mean(axis=(-2, -1))


@pytest.mark.parametrize("wrong, message", [
    (avg_pool, "averages each window"),
    (lambda x, k, s: cnn.max_pool2d(x, k, k), "steps by the kernel size"),
    (lambda x, k, s: cnn.max_pool2d(x, k, 1), "one pixel at a time"),
    (lambda x, k, s: cnn.max_pool2d(x, k, s).max(axis=1, keepdims=True), "channel count stays 3"),
    (lambda x, k, s: cnn.max_pool2d(x, k, s) + 1e-3, "off by"),
    (lambda x, k, s: x[0], "returned shape"),
])
def test_max_pool2d_mistakes_are_named(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_max_pool2d(wrong)


def ignores_strides(layers):
    return 1 + sum(k - 1 for k, _ in layers)


def own_stride_too(layers):
    size, jump = 1, 1
    for k, s in layers:
        jump *= s
        size += (k - 1) * jump
    return size


@pytest.mark.parametrize("wrong, message", [
    (ignores_strides, "ignores the strides"),
    (own_stride_too, "its own stride too"),
    (lambda layers: int(np.prod([k for k, _ in layers])), "do not multiply"),
    (lambda layers: 7, "expected"),
    (lambda layers: "big", "one number"),
])
def test_receptive_field_mistakes_are_named(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_receptive_field(wrong)
