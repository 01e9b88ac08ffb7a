import numpy as np
import pytest

from tinysora import optim
from tinysora.grading import CheckFailed
from tinysora.grading import optim as grade
from tinysora.grading.optim import _adam_l2


def right_adamw(param, grad, m, v, step, lr, betas, eps, wd):
    b1, b2 = betas
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * grad ** 2
    param = param * (1 - lr * wd) - lr * (m / (1 - b1 ** step)) / (np.sqrt(v / (1 - b2 ** step)) + eps)
    return param, m, v


def right_nesterov(param, grad, buf, lr, momentum):
    buf = momentum * buf + grad
    return param - lr * (grad + momentum * buf), buf


def right_smoothed_grad(logits, labels, smoothing):
    probs = optim.softmax(logits)
    target = (1 - smoothing) * np.eye(logits.shape[1])[labels] + smoothing / logits.shape[1]
    return (probs - target) / len(labels)


def test_right_answers_pass():
    grade.check_adamw_step(right_adamw)
    grade.check_nesterov_step(right_nesterov)
    grade.check_smoothed_cross_entropy_grad(right_smoothed_grad)


def test_heavy_ball_momentum_is_not_nesterov():
    def heavy_ball(param, grad, buf, lr, momentum):
        buf = momentum * buf + grad
        return param - lr * buf, buf

    with pytest.raises(CheckFailed, match="plain momentum"):
        grade.check_nesterov_step(heavy_ball)


def test_nesterov_with_a_wrong_buffer_is_caught():
    with pytest.raises(CheckFailed, match="buf returned"):
        grade.check_nesterov_step(lambda p, g, b, lr, mu: (p - lr * g, b))


def test_package_cross_entropy_grad_is_rejected_for_smoothing():
    with pytest.raises(CheckFailed, match="ignores the smoothing"):
        grade.check_smoothed_cross_entropy_grad(lambda z, y, s: optim.cross_entropy_grad(z, y))


def test_smoothed_grad_without_the_mean_is_named():
    with pytest.raises(CheckFailed, match="N times too large"):
        grade.check_smoothed_cross_entropy_grad(lambda z, y, s: right_smoothed_grad(z, y, s) * len(y))


def test_adam_l2_instead_of_adamw_is_named():
    def l2(param, grad, m, v, step, lr, betas, eps, wd):
        b1, b2 = betas
        g = grad + wd * param
        return _adam_l2(param, grad, m, v, step, lr, b1, b2, eps, wd), b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g ** 2

    with pytest.raises(CheckFailed, match="exp_avg|L2"):
        grade.check_adamw_step(l2)


def test_missing_second_bias_correction_is_named():
    def seed_version(param, grad, m, v, step, lr, betas, eps, wd):
        b1, b2 = betas
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad ** 2
        return param * (1 - lr * wd) - lr * (m / (1 - b1 ** step)) / (np.sqrt(v) + eps), m, v

    with pytest.raises(CheckFailed, match="second bias correction"):
        grade.check_adamw_step(seed_version)


def test_wrong_return_type_is_explained():
    with pytest.raises(CheckFailed, match="tuple"):
        grade.check_adamw_step(lambda *args: args[0])
