"""Checks for chapter 04's and 05's coding exercises (``tinysora.rnn``)."""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch
from torch import nn

from tinysora.grading.core import CheckFailed, call_student, compare_arrays, passed, to_numpy
from tinysora.rnn import LSTMParams, RNNParams, lstm_step, rnn_forward
from tinysora.rnn import sigmoid as _sigmoid


def _diagnose(got: np.ndarray, candidates: Mapping[str, np.ndarray]) -> None:
    for message, wrong in candidates.items():
        if got.shape == wrong.shape and np.allclose(got, wrong, atol=1e-6):
            raise CheckFailed(message)


def _pair(result, name: str, what: str) -> tuple:
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise CheckFailed(f"{name} should return a pair {what}, got {type(result).__name__}"
                          + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""))
    return result


# ----------------------------------------------------------------------------- chapter 04: bidirectional RNN


def reference_birnn_forward(x, forward_params, backward_params) -> np.ndarray:
    """``nn.RNN(bidirectional=True)``'s output for x (B, T, D): (B, T, 2H), forward states then backward."""
    layer = nn.RNN(x.shape[2], forward_params[0].shape[0], batch_first=True, bidirectional=True).double()
    with torch.no_grad():
        for suffix, (W_xh, W_hh, b_h) in (("", forward_params), ("_reverse", backward_params)):
            getattr(layer, f"weight_ih_l0{suffix}").copy_(torch.tensor(W_xh))
            getattr(layer, f"weight_hh_l0{suffix}").copy_(torch.tensor(W_hh))
            getattr(layer, f"bias_ih_l0{suffix}").copy_(torch.tensor(b_h))
            getattr(layer, f"bias_hh_l0{suffix}").zero_()
        return layer(torch.tensor(x))[0].numpy()


def check_birnn_forward(birnn_forward) -> None:
    """``birnn_forward(x (B, T, D), (W_xh, W_hh, b_h), (W_xh, W_hh, b_h)) -> (B, T, 2H)``."""
    rng = np.random.default_rng(0)

    def weights(h, d):
        return rng.normal(size=(h, d)) * 0.7, rng.normal(size=(h, h)) * 0.5, rng.normal(size=h) * 0.3

    for _ in range(5):
        b, t, d, h = int(rng.integers(1, 4)), int(rng.integers(3, 7)), int(rng.integers(2, 4)), int(rng.integers(4, 6))
        x, fwd, bwd = rng.normal(size=(b, t, d)), weights(h, d), weights(h, d)
        got = to_numpy(call_student(birnn_forward, (x, fwd, bwd), "birnn_forward"), "the result of birnn_forward")
        forward_states = rnn_forward(x, RNNParams(*fwd))[0]
        backward_raw = rnn_forward(x[:, ::-1], RNNParams(*bwd))[0]                 # in reversed time order
        backward_same = rnn_forward(x[:, ::-1], RNNParams(*fwd))[0][:, ::-1]
        _diagnose(got, {
            "birnn_forward returns only the forward states (rnn.rnn_forward): a bidirectional RNN also reads the "
            "sequence from the end and concatenates those states, (B, T, 2H)": forward_states,
            "birnn_forward leaves the backward states in reversed order: flip them back so that position t holds "
            "the state after reading x_T ... x_t": np.concatenate([forward_states, backward_raw], axis=-1),
            "birnn_forward runs the backward direction with the forward weights: each direction has its own":
                np.concatenate([forward_states, backward_same], axis=-1),
            "birnn_forward concatenates backward then forward; torch (and the exercise) put the forward states "
            "first": np.concatenate([backward_raw[:, ::-1], forward_states], axis=-1),
        })
        compare_arrays(got, reference_birnn_forward(x, fwd, bwd), "birnn_forward")
    passed("birnn_forward matches nn.RNN(bidirectional=True) on 5 random inputs")


# ----------------------------------------------------------------------------- chapter 04: gradient clipping


def reference_clip_by_global_norm(grads, max_norm) -> list[np.ndarray]:
    """``torch.nn.utils.clip_grad_norm_`` on copies of ``grads``."""
    tensors = [torch.tensor(g, requires_grad=True) for g in grads]
    for t, g in zip(tensors, grads):
        t.grad = torch.tensor(g)
    nn.utils.clip_grad_norm_(tensors, max_norm)
    return [t.grad.numpy() for t in tensors]


def check_clip_by_global_norm(clip_by_global_norm) -> None:
    """``clip_by_global_norm(grads: list of arrays, max_norm) -> list of arrays`` as ``clip_grad_norm_``."""
    rng = np.random.default_rng(0)
    for scale, max_norm in ((10.0, 1.0), (0.01, 1.0), (3.0, 5.0), (100.0, 0.5)):
        grads = [rng.normal(size=tuple(rng.integers(1, 5, size=rng.integers(1, 3)))) * scale for _ in range(3)]
        grads[1] *= 5                                        # one tensor much larger than the others
        result = call_student(clip_by_global_norm, (grads, max_norm), "clip_by_global_norm")
        if not isinstance(result, (list, tuple)) or len(result) != len(grads):
            raise CheckFailed(f"clip_by_global_norm should return a list of {len(grads)} arrays, one per gradient, "
                              f"got {type(result).__name__}")
        got = [to_numpy(r, "a gradient returned by clip_by_global_norm") for r in result]
        expected = reference_clip_by_global_norm(grads, max_norm)
        per_tensor = [g * min(1.0, max_norm / (np.linalg.norm(g) + 1e-6)) for g in grads]
        clamped = [np.clip(g, -max_norm, max_norm) for g in grads]
        for wrong, message in ((per_tensor, "clip_by_global_norm rescales every tensor by its own norm: the norm "
                                "that is clipped is that of all gradients together, sqrt(sum of all squares), and "
                                "one common factor keeps the update's direction"),
                               (clamped, "clip_by_global_norm clamps each element to [-max_norm, max_norm]; that "
                                "changes the direction of the update. Scale all gradients by max_norm / total norm")):
            same = all(g.shape == w.shape and np.allclose(g, w) for g, w in zip(got, wrong))
            if same and not all(np.allclose(w, e) for w, e in zip(wrong, expected)):
                raise CheckFailed(message)
        if scale < 1 and not all(np.allclose(g, e) for g, e in zip(got, expected)):
            raise CheckFailed("clip_by_global_norm changed gradients whose total norm is below max_norm: leave them "
                              "as they are (the factor is min(1, max_norm / total norm))")
        for g, e in zip(got, expected):
            compare_arrays(g, e, "a gradient returned by clip_by_global_norm")
    passed("clip_by_global_norm matches torch.nn.utils.clip_grad_norm_ on 4 sets of gradients")


# ----------------------------------------------------------------------------- chapter 05: a GRU step


def reference_gru_step(x_t, h_prev, W_x, W_h, b_x, b_h) -> np.ndarray:
    """``nn.GRUCell`` with these weights (blocks r, z, n): x_t (B, D), h_prev (B, H) -> (B, H)."""
    cell = nn.GRUCell(W_x.shape[1], h_prev.shape[1]).double()
    with torch.no_grad():
        for name, value in (("weight_ih", W_x), ("weight_hh", W_h), ("bias_ih", b_x), ("bias_hh", b_h)):
            getattr(cell, name).copy_(torch.tensor(value))
        return cell(torch.tensor(x_t), torch.tensor(h_prev)).numpy()


def _gru_variant(x_t, h_prev, W_x, W_h, b_x, b_h, order=(0, 1), reset_inside=True, keep_is_z=True):
    a, b = x_t @ W_x.T + b_x, h_prev @ W_h.T + b_h                     # (B, 3H) each
    H = h_prev.shape[1]
    blocks = [slice(0, H), slice(H, 2 * H)]
    r = _sigmoid(a[:, blocks[order[0]]] + b[:, blocks[order[0]]])
    z = _sigmoid(a[:, blocks[order[1]]] + b[:, blocks[order[1]]])
    if reset_inside:
        n = np.tanh(a[:, 2 * H:] + r * b[:, 2 * H:])
    else:                                                            # Cho et al.: reset before the matrix product
        n = np.tanh(a[:, 2 * H:] + (r * h_prev) @ W_h[2 * H:].T + b_h[2 * H:])
    return (1 - z) * n + z * h_prev if keep_is_z else z * n + (1 - z) * h_prev


def check_gru_step(gru_step) -> None:
    """``gru_step(x_t (B, D), h_prev (B, H), W_x (3H, D), W_h (3H, H), b_x (3H,), b_h (3H,)) -> (B, H)``."""
    rng = np.random.default_rng(0)
    for _ in range(6):
        batch, d, h = int(rng.integers(1, 4)), int(rng.integers(2, 5)), int(rng.integers(5, 7))
        args = (rng.normal(size=(batch, d)), rng.normal(size=(batch, h)), rng.normal(size=(3 * h, d)),
                rng.normal(size=(3 * h, h)), rng.normal(size=3 * h), rng.normal(size=3 * h))
        got = to_numpy(call_student(gru_step, args, "gru_step"), "the result of gru_step")
        _diagnose(got, {
            "gru_step reads the blocks as z, r, n; torch stacks reset, update, new: rows [0:H], [H:2H], [2H:3H]":
                _gru_variant(*args, order=(1, 0)),
            "gru_step mixes with z and 1 - z swapped: torch keeps the old state with z, h = (1 - z) * n + z * h_prev":
                _gru_variant(*args, keep_is_z=False),
            "gru_step applies the reset gate before the matrix product, W_hn (r * h_prev) (Cho et al.'s form); torch "
            "applies it after: n = tanh(W_in x + b_in + r * (W_hn h_prev + b_hn))":
                _gru_variant(*args, reset_inside=False),
        })
        compare_arrays(got, reference_gru_step(*args), "gru_step")
    passed("gru_step matches nn.GRUCell on 6 random inputs")


# ----------------------------------------------------------------------------- chapter 05: a peephole LSTM step


def reference_peephole_lstm_step(x_t, h_prev, c_prev, W_x, W_h, b, p) -> tuple[np.ndarray, np.ndarray]:
    """LSTM step with peepholes (Gers et al., 2002); blocks in torch's order i, f, g, o; p (3, H) = p_i, p_f, p_o."""
    z_i, z_f, z_g, z_o = np.split(x_t @ W_x.T + h_prev @ W_h.T + b, 4, axis=-1)
    i, f = _sigmoid(z_i + p[0] * c_prev), _sigmoid(z_f + p[1] * c_prev)
    c = f * c_prev + i * np.tanh(z_g)
    o = _sigmoid(z_o + p[2] * c)                                  # the output gate peeks at the NEW cell
    return o * np.tanh(c), c


def check_peephole_lstm_step(peephole_lstm_step) -> None:
    """``peephole_lstm_step(x_t, h_prev, c_prev, W_x (4H, D), W_h (4H, H), b (4H,), p (3, H)) -> (h, c)``."""
    rng = np.random.default_rng(0)
    for _ in range(6):
        batch, d, h = int(rng.integers(1, 4)), int(rng.integers(2, 5)), int(rng.integers(4, 7))
        args = (rng.normal(size=(batch, d)), rng.normal(size=(batch, h)), rng.normal(size=(batch, h)) * 2,
                rng.normal(size=(4 * h, d)), rng.normal(size=(4 * h, h)), rng.normal(size=4 * h),
                rng.normal(size=(3, h)))
        got_h, got_c = (to_numpy(r, f"the {n} returned by peephole_lstm_step")
                        for r, n in zip(_pair(call_student(peephole_lstm_step, args, "peephole_lstm_step"),
                                              "peephole_lstm_step", "(h, c)"), ("h", "c")))
        x_t, h_prev, c_prev, W_x, W_h, b, p = args
        plain_h, plain_c, _ = lstm_step(x_t, h_prev, c_prev, LSTMParams(W_x, W_h, b))
        expected_h, expected_c = reference_peephole_lstm_step(*args)
        if np.allclose(got_h, plain_h) and np.allclose(got_c, plain_c):
            raise CheckFailed("peephole_lstm_step is the plain LSTM step (rnn.lstm_step): the gates must also see the "
                              "cell, p_i * c_prev and p_f * c_prev inside i and f, p_o * c inside o")
        if np.allclose(got_c, expected_c):
            z_o = np.split(x_t @ W_x.T + h_prev @ W_h.T + b, 4, axis=-1)[3]
            if np.allclose(got_h, _sigmoid(z_o + p[2] * c_prev) * np.tanh(got_c)):
                raise CheckFailed("peephole_lstm_step's output gate looks at c_prev; it looks at the new cell c_t, "
                                  "which exists by the time the output gate is computed")
        compare_arrays(got_c, expected_c, "the cell state c of peephole_lstm_step")
        compare_arrays(got_h, expected_h, "the hidden state h of peephole_lstm_step")
    passed("peephole_lstm_step returns the right (h, c) on 6 random inputs")


__all__ = ["check_birnn_forward", "check_clip_by_global_norm", "check_gru_step", "check_peephole_lstm_step",
           "reference_birnn_forward", "reference_clip_by_global_norm", "reference_gru_step",
           "reference_peephole_lstm_step"]
