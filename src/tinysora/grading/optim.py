"""Checks for chapter 02's coding exercises (``tinysora.optim``)."""

from __future__ import annotations

import numpy as np
import torch

from tinysora.grading.core import CheckFailed, call_student, compare_arrays, passed, to_numpy


def reference_nesterov_step(param, grad, buf, lr, momentum):
    """One SGD step with Nesterov momentum, computed by ``torch.optim.SGD(nesterov=True)`` itself."""
    p = torch.tensor(param, requires_grad=True)
    optimizer = torch.optim.SGD([p], lr=lr, momentum=momentum, nesterov=True)
    p.grad = torch.tensor(grad)
    optimizer.state[p] = {"momentum_buffer": torch.tensor(buf)}
    optimizer.step()
    return p.detach().numpy(), optimizer.state[p]["momentum_buffer"].numpy()


def check_nesterov_step(nesterov_step) -> None:
    """``nesterov_step(param, grad, buf, lr, momentum) -> (param, buf)`` as ``torch.optim.SGD(nesterov=True)``."""
    rng = np.random.default_rng(0)
    for _ in range(6):
        shape = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        args = (rng.normal(size=shape), rng.normal(size=shape), rng.normal(size=shape), 0.1, 0.9)
        param, grad, buf, lr, mu = args
        result = call_student(nesterov_step, args, "nesterov_step")
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise CheckFailed(f"nesterov_step should return a pair (param, buf), got {type(result).__name__}")
        new_param, new_buf = reference_nesterov_step(*args)
        got_param = to_numpy(result[0], "the param returned by nesterov_step")
        compare_arrays(result[1], new_buf, "the buf returned by nesterov_step (buf = momentum * buf + grad)")
        if got_param.shape == param.shape and np.allclose(got_param, param - lr * new_buf):
            raise CheckFailed("nesterov_step takes the heavy-ball step p - lr * buf (that is plain momentum, "
                              "optim.SGD(momentum=...)); Nesterov looks ahead: p - lr * (grad + momentum * buf)")
        if got_param.shape == param.shape and np.allclose(got_param, param - lr * grad):
            raise CheckFailed("nesterov_step ignores the momentum buffer: the step is lr * (grad + momentum * buf)")
        compare_arrays(got_param, new_param, "the param returned by nesterov_step")
    passed("nesterov_step matches torch.optim.SGD(nesterov=True) on 6 random steps")


def reference_smoothed_cross_entropy_grad(logits, labels, smoothing):
    """d/d logits of the mean label-smoothed cross-entropy, by torch's autograd."""
    z = torch.tensor(logits, requires_grad=True)
    torch.nn.functional.cross_entropy(z, torch.tensor(labels), label_smoothing=smoothing).backward()
    return z.grad.numpy()


def check_smoothed_cross_entropy_grad(smoothed_cross_entropy_grad) -> None:
    """``smoothed_cross_entropy_grad(logits (N, C), labels (N,), smoothing) -> (N, C)``."""
    rng = np.random.default_rng(0)
    for smoothing in (0.1, 0.2, 0.0, 0.3, 0.05):
        n, c = int(rng.integers(2, 6)), int(rng.integers(3, 7))
        logits, labels = rng.normal(size=(n, c)) * 2, rng.integers(0, c, size=n)
        got = to_numpy(call_student(smoothed_cross_entropy_grad, (logits, labels, smoothing),
                                    "smoothed_cross_entropy_grad"), "the result of smoothed_cross_entropy_grad")
        expected = reference_smoothed_cross_entropy_grad(logits, labels, smoothing)
        probs = _softmax(logits)
        one_hot = np.eye(c)[labels]
        if smoothing:
            mistakes = {
                "smoothed_cross_entropy_grad ignores the smoothing: that is the plain softmax-minus-one-hot "
                "(optim.cross_entropy_grad); the target is (1 - smoothing) * one_hot + smoothing / C":
                    (probs - one_hot) / n,
                "smoothed_cross_entropy_grad spreads the smoothing over the C - 1 wrong classes only; "
                "torch (and Szegedy et al.) spread smoothing / C over all C classes":
                    (probs - ((1 - smoothing) * one_hot + smoothing / (c - 1) * (1 - one_hot))) / n,
            }
            for message, wrong in mistakes.items():
                if got.shape == wrong.shape and np.allclose(got, wrong, atol=1e-9):
                    raise CheckFailed(message)
        if got.shape == expected.shape and np.allclose(got, expected * n):
            raise CheckFailed("smoothed_cross_entropy_grad is N times too large: the loss is a mean over the N "
                              "examples, so divide by N")
        compare_arrays(got, expected, "smoothed_cross_entropy_grad", atol=1e-9)
    passed("smoothed_cross_entropy_grad matches torch's autograd at 5 smoothing values")


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


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
            raise CheckFailed("adamw_step should return a tuple (param, exp_avg, exp_avg_sq), "
                              f"got {type(got).__name__}")
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
