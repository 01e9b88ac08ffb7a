import numpy as np
import pytest

from tinysora.grading import CheckFailed
from tinysora.grading import optim as grade
from tinysora.grading.optim import _adam_l2


def right_adamw(param, grad, m, v, step, lr, betas, eps, wd):
    b1, b2 = betas
    m = b1 * m + (1 - b1) * grad
    v = b2 * v + (1 - b2) * grad ** 2
    param = param * (1 - lr * wd) - lr * (m / (1 - b1 ** step)) / (np.sqrt(v / (1 - b2 ** step)) + eps)
    return param, m, v


def test_right_answers_pass():
    grade.check_mse_grad(grade.reference_mse_grad)
    grade.check_adamw_step(right_adamw)


def test_mse_grad_with_sum_instead_of_mean_is_a_scale_error():
    with pytest.raises(CheckFailed, match="times"):
        grade.check_mse_grad(lambda p, t: 2.0 * (p - t))


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
