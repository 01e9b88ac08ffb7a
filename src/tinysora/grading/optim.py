"""Checks for chapter 02's coding exercises (``tinysora.optim``, ``tinysora.autograd``)."""

from __future__ import annotations

import numpy as np
import torch

from tinysora.grading.core import CheckFailed, call_student, check_function, compare_arrays, passed


def reference_mse_grad(prediction: np.ndarray, target: np.ndarray) -> np.ndarray:
    return 2.0 * (prediction - target) / prediction.size


def check_mse_grad(mse_grad) -> None:
    """``mse_grad(prediction, target)`` = d mean((prediction - target)**2) / d prediction."""
    def inputs(rng):
        shape = tuple(rng.integers(1, 6, size=rng.integers(1, 3)))
        return rng.normal(size=shape), rng.normal(size=shape)

    check_function(mse_grad, reference_mse_grad, inputs, name="mse_grad", trials=6)


def reference_adamw_step(param, grad, exp_avg, exp_avg_sq, step, lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                         weight_decay=1e-2):
    """One AdamW step on NumPy arrays, computed by ``torch.optim.AdamW`` itself."""
    p = torch.tensor(param, requires_grad=True)
    optimizer = torch.optim.AdamW([p], lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
    p.grad = torch.tensor(grad)
    optimizer.state[p] = {"step": torch.tensor(float(step - 1)), "exp_avg": torch.tensor(exp_avg),
                          "exp_avg_sq": torch.tensor(exp_avg_sq)}
    optimizer.step()
    state = optimizer.state[p]
    return p.detach().numpy(), state["exp_avg"].numpy(), state["exp_avg_sq"].numpy()


def check_adamw_step(adamw_step) -> None:
    """``adamw_step(param, grad, exp_avg, exp_avg_sq, step, lr, betas, eps, weight_decay)`` returns
    the new ``(param, exp_avg, exp_avg_sq)`` exactly as ``torch.optim.AdamW`` would."""
    rng = np.random.default_rng(0)
    for trial in range(6):
        shape = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        step = 1 if trial == 0 else int(rng.integers(2, 50))
        moments = (np.zeros(shape), np.zeros(shape)) if step == 1 else (
            rng.normal(size=shape) * 0.1, rng.uniform(0.01, 0.5, size=shape))
        args = (rng.normal(size=shape), rng.normal(size=shape), *moments, step, 1e-2, (0.9, 0.999), 1e-8, 0.1)
        expected = reference_adamw_step(*args)
        got = call_student(adamw_step, args, "adamw_step")
        if not isinstance(got, (tuple, list)) or len(got) != 3:
            raise CheckFailed(f"adamw_step should return a tuple (param, exp_avg, exp_avg_sq), got {type(got).__name__}")
        names = ("exp_avg", "exp_avg_sq", "param")
        for name, g, e in zip(names, (got[1], got[2], got[0]), (expected[1], expected[2], expected[0])):
            try:
                compare_arrays(g, e, f"the returned {name}", atol=1e-9, rtol=1e-7)
            except CheckFailed as failure:
                hint = ""
                if name == "param":
                    hint = _diagnose_adamw(got[0], args)
                raise CheckFailed(f"at step {step}: {failure}{hint}") from None
    passed("adamw_step matches torch.optim.AdamW on 6 random steps (including step 1)")


def _diagnose_adamw(got_param, args) -> str:
    """Name the usual AdamW mistakes by recomputing the step with each one made on purpose."""
    param, grad, m, v, step, lr, (b1, b2), eps, wd = args
    m_new = b1 * m + (1 - b1) * grad
    v_new = b2 * v + (1 - b2) * grad ** 2
    m_hat, v_hat = m_new / (1 - b1 ** step), v_new / (1 - b2 ** step)
    candidates = {
        "; it looks like the weight decay was added to the gradient (that is Adam's L2), "
        "not applied to the parameter directly":
            _adam_l2(param, grad, m, v, step, lr, b1, b2, eps, wd),
        "; it looks like the second bias correction (1 - beta2**t) is missing":
            param * (1 - lr * wd) - lr * m_hat / (np.sqrt(v_new) + eps),
        "; it looks like the weight decay is missing":
            param - lr * m_hat / (np.sqrt(v_hat) + eps),
        "; it looks like the decay is not multiplied by the learning rate":
            param * (1 - wd) - lr * m_hat / (np.sqrt(v_hat) + eps),
    }
    for hint, candidate in candidates.items():
        if np.allclose(np.asarray(got_param, dtype=float), candidate, rtol=1e-7, atol=1e-9):
            return hint
    return ""


def _adam_l2(param, grad, m, v, step, lr, b1, b2, eps, wd):
    grad = grad + wd * param
    m_new = b1 * m + (1 - b1) * grad
    v_new = b2 * v + (1 - b2) * grad ** 2
    return param - lr * (m_new / (1 - b1 ** step)) / (np.sqrt(v_new / (1 - b2 ** step)) + eps)
