"""Checks for chapter 04's and 05's coding exercises (``tinysora.rnn``)."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from tinysora.grading.core import CheckFailed, call_student, compare_arrays, passed, to_numpy
from tinysora.rnn import LSTMParams, RNNParams, lstm_parameter_count, lstm_step, rnn_step
from tinysora.rnn import sigmoid as _sigmoid
from tinysora.rnn import softmax_with_temperature as _softmax_t


def _diagnose(got: np.ndarray, candidates: Mapping[str, np.ndarray]) -> None:
    for message, wrong in candidates.items():
        if got.shape == wrong.shape and np.allclose(got, wrong, atol=1e-6):
            raise CheckFailed(message)


# ----------------------------------------------------------------------------- chapter 04: one RNN step


def reference_rnn_step(x_t, h_prev, W_xh, W_hh, b_h) -> np.ndarray:
    return rnn_step(x_t, h_prev, RNNParams(W_xh, W_hh, b_h))


def check_rnn_step(student) -> None:
    """``rnn_step(x_t (B, D), h_prev (B, H), W_xh (H, D), W_hh (H, H), b_h (H,)) -> (B, H)``."""
    rng = np.random.default_rng(0)
    for _ in range(6):
        batch, d, h = int(rng.integers(1, 5)), int(rng.integers(2, 5)), int(rng.integers(5, 8))  # d != h
        args = (rng.normal(size=(batch, d)), rng.normal(size=(batch, h)), rng.normal(size=(h, d)) * 0.5,
                rng.normal(size=(h, h)) * 0.5, rng.normal(size=h))
        x_t, h_prev, W_xh, W_hh, b_h = args
        got = to_numpy(call_student(student, args, "rnn_step"), "the result of rnn_step")
        pre = x_t @ W_xh.T + h_prev @ W_hh.T + b_h
        _diagnose(got, {
            "rnn_step forgot the tanh: h_t = tanh(W_xh x_t + W_hh h_prev + b_h)": pre,
            "rnn_step uses a sigmoid; the RNN's activation is tanh (centred on 0, range (-1, 1))": _sigmoid(pre),
            "rnn_step uses a ReLU; the seed's RNN uses tanh": np.maximum(pre, 0),
            "rnn_step forgot the bias b_h": np.tanh(pre - b_h),
            "rnn_step ignores the previous hidden state h_prev: the W_hh h_prev term carries the context":
                np.tanh(x_t @ W_xh.T + b_h),
        })
        compare_arrays(got, reference_rnn_step(*args), "rnn_step")
    passed("rnn_step matches the reference on 6 random inputs")


# ----------------------------------------------------------------------------- chapter 04: temperature


def reference_softmax_with_temperature(logits, temperature) -> np.ndarray:
    return _softmax_t(logits, temperature)


def check_softmax_with_temperature(student) -> None:
    """``softmax_with_temperature(logits (..., V), temperature) -> probabilities (..., V)``."""
    rng = np.random.default_rng(0)
    for temperature in (1.0, 0.5, 2.0, 0.25, 1.7):
        logits = rng.normal(size=(int(rng.integers(1, 4)), int(rng.integers(3, 8)))) * 2
        got = to_numpy(call_student(student, (logits, temperature), "softmax_with_temperature"),
                       "the result of softmax_with_temperature")
        mistakes = {
            "softmax_with_temperature normalises over the wrong axis: probabilities must sum to 1 over the "
            "last axis (the vocabulary)": np.exp(logits / temperature) / np.exp(logits / temperature).sum(0, keepdims=True),
        }
        if temperature != 1.0:
            mistakes.update({
                "softmax_with_temperature multiplies the logits by the temperature; divide by it "
                "(a low temperature must sharpen the distribution)": _softmax_t(logits * temperature, 1.0),
                "softmax_with_temperature ignores the temperature: use softmax(logits / temperature)":
                    _softmax_t(logits, 1.0),
            })
        _diagnose(got, mistakes)
        compare_arrays(got, reference_softmax_with_temperature(logits, temperature), "softmax_with_temperature")
    large = np.array([[300.0, 310.0, 320.0]])
    with np.errstate(all="ignore"):
        got = to_numpy(call_student(student, (large, 0.1), "softmax_with_temperature"),
                       "the result of softmax_with_temperature")
    if not np.isfinite(got).all():
        raise CheckFailed("softmax_with_temperature overflows for logits around 300 at temperature 0.1: subtract "
                          "the maximum of (logits / temperature) before exponentiating")
    compare_arrays(got, reference_softmax_with_temperature(large, 0.1), "softmax_with_temperature on large logits")
    passed("softmax_with_temperature matches the reference at 5 temperatures and is stable")


# ----------------------------------------------------------------------------- chapter 05: one LSTM step


def reference_lstm_step(x_t, h_prev, c_prev, W_x, W_h, b) -> tuple[np.ndarray, np.ndarray]:
    h, c, _ = lstm_step(x_t, h_prev, c_prev, LSTMParams(W_x, W_h, b))
    return h, c


def _lstm_variant(x_t, h_prev, c_prev, W_x, W_h, b, order=(0, 1, 2, 3), tanh_h=True, forget=True):
    """An LSTM step with the gate blocks read in another order, or with a known mistake."""
    z = np.split(x_t @ W_x.T + h_prev @ W_h.T + b, 4, axis=-1)
    z_i, z_f, z_g, z_o = (z[k] for k in order)
    i, f, g, o = _sigmoid(z_i), _sigmoid(z_f), np.tanh(z_g), _sigmoid(z_o)
    c = (f * c_prev if forget else c_prev) + i * g
    return (o * np.tanh(c) if tanh_h else o * c), c


def check_lstm_step(student) -> None:
    """``lstm_step(x_t, h_prev, c_prev, W_x (4H, D), W_h (4H, H), b (4H,)) -> (h, c)``, gates (i, f, g, o)."""
    rng = np.random.default_rng(0)
    for _ in range(6):
        batch, d, h = int(rng.integers(1, 4)), int(rng.integers(2, 5)), int(rng.integers(5, 7))
        args = (rng.normal(size=(batch, d)), rng.normal(size=(batch, h)), rng.normal(size=(batch, h)),
                rng.normal(size=(4 * h, d)), rng.normal(size=(4 * h, h)), rng.normal(size=4 * h))
        result = call_student(student, args, "lstm_step")
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise CheckFailed(f"lstm_step should return a pair (h, c), got {type(result).__name__}"
                              + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""))
        got_h = to_numpy(result[0], "h returned by lstm_step")
        got_c = to_numpy(result[1], "c returned by lstm_step")
        expected_h, expected_c = reference_lstm_step(*args)
        for order, name in (((0, 1, 3, 2), "i, f, o, g (the seed's i, f, o, c_tilde)"), ((1, 0, 2, 3), "f, i, g, o"),
                            ((0, 2, 1, 3), "i, g, f, o")):
            wrong_h, wrong_c = _lstm_variant(*args, order=order)
            if np.allclose(got_h, wrong_h) and np.allclose(got_c, wrong_c):
                raise CheckFailed(f"lstm_step reads the gate blocks as {name}; torch stacks them as input, forget, "
                                  "candidate (g), output: rows [0:H], [H:2H], [2H:3H], [3H:4H]")
        if np.allclose(got_c, expected_c):
            if np.allclose(got_h, _lstm_variant(*args, tanh_h=False)[0]):
                raise CheckFailed("lstm_step returns h = o * c; the cell is squashed first: h = o * tanh(c)")
        if np.allclose(got_c, _lstm_variant(*args, forget=False)[1]):
            raise CheckFailed("lstm_step keeps all of c_prev; the forget gate scales it: c = f * c_prev + i * g")
        if np.allclose(got_h, expected_c) and np.allclose(got_c, expected_h):
            raise CheckFailed("lstm_step returns (c, h); return (h, c)")
        compare_arrays(got_c, expected_c, "the cell state c of lstm_step")
        compare_arrays(got_h, expected_h, "the hidden state h of lstm_step")
    passed("lstm_step returns the right (h, c) on 6 random inputs")


# ----------------------------------------------------------------------------- chapter 05: counting parameters


def reference_lstm_parameter_count(input_size: int, hidden_size: int) -> int:
    return lstm_parameter_count(input_size, hidden_size)


def check_lstm_parameter_count(student) -> None:
    """``lstm_parameter_count(input_size, hidden_size) -> int``, equal to ``nn.LSTM``'s."""
    for d, h in ((3, 5), (16, 64), (128, 32), (300, 512), (1, 1)):
        expected = reference_lstm_parameter_count(d, h)
        got = call_student(student, (d, h), "lstm_parameter_count")
        try:
            value = float(np.asarray(got, dtype=np.float64))
        except (TypeError, ValueError):
            raise CheckFailed(f"lstm_parameter_count should return one number, got {type(got).__name__}") from None
        if value == expected:
            continue
        hints = {
            4 * (h * d + h * h + h): "counts one bias vector per gate; torch's nn.LSTM keeps two (bias_ih and bias_hh)",
            4 * (h * d + h * h): "forgot the biases (two vectors of size H per gate in torch)",
            h * d + h * h + 2 * h: "counts one gate; an LSTM has four (input, forget, candidate, output)",
            3 * (h * d + h * h + 2 * h): "counts three gates; with the candidate there are four blocks of weights",
            4 * (h * d + h * h + 2 * h) + h * h: "counts an extra H x H matrix: each gate has one W_x (H x D) and one W_h (H x H)",
        }
        hint = hints.get(int(value), "")
        raise CheckFailed(f"lstm_parameter_count({d}, {h}) returned {value:g}, expected {expected}"
                          + (f": it {hint}" if hint else ""))
    passed("lstm_parameter_count equals nn.LSTM's count for 5 sizes")


__all__ = ["check_rnn_step", "check_softmax_with_temperature", "check_lstm_step", "check_lstm_parameter_count",
           "reference_rnn_step", "reference_softmax_with_temperature", "reference_lstm_step",
           "reference_lstm_parameter_count"]
