"""Checks for chapter 10's coding exercises (``tinysora.tts``).

* :func:`tinysora.grading.tts.check_bpe_unmerge` -- decode BPE tokens by undoing the merges, last merge first.
* :func:`tinysora.grading.tts.check_causal_conv_chunk` -- a causal convolution on one chunk, with a carried state.
* :func:`tinysora.grading.tts.check_fast_griffin_lim` -- Griffin-Lim with Perraudin et al.'s momentum.
"""

from __future__ import annotations

import numpy as np

from tinysora import audio
from tinysora.grading.core import CheckFailed, call_student, compare_arrays, passed, to_numpy
from tinysora.tts import istft

# ----------------------------------------------------------------------------- BPE decode by un-merging


def reference_bpe_unmerge(tokens, merges, base_size: int) -> list[int]:
    """Undo merge i (token base_size + i -> its pair) for i from the last merge down to the first."""
    seq = [int(t) for t in tokens]
    for i in range(len(merges) - 1, -1, -1):
        new_id, out = base_size + i, []
        for t in seq:
            out.extend(merges[i] if t == new_id else (t,))
        seq = [int(t) for t in out]
    return seq


def _forward_unmerge(tokens, merges, base_size):
    seq = [int(t) for t in tokens]
    for i in range(len(merges)):
        out = []
        for t in seq:
            out.extend(merges[i] if t == base_size + i else (t,))
        seq = [int(t) for t in out]
    return seq


def _bpe_case(rng: np.random.Generator):
    """Random nested merges over a small base (later merges reuse earlier tokens), and a token sequence."""
    base = int(rng.integers(3, 6))
    merges = []
    for i in range(int(rng.integers(4, 8))):
        top = base + i
        a, b = int(rng.integers(top)), int(rng.integers(top))
        if i >= 2 and rng.random() < 0.7:          # make nesting likely: use the newest token
            a = top - 1
        merges.append((a, b))
    tokens = [int(t) for t in rng.integers(0, base + len(merges), size=int(rng.integers(5, 10)))]
    tokens[0] = base + len(merges) - 1                                   # the deepest token is always in
    return tokens, merges, base


def check_bpe_unmerge(unmerge) -> None:
    """``unmerge(tokens: list[int], merges: list[(a, b)], base_size: int) -> list[int]`` of codes."""
    name = "bpe_unmerge"
    rng = np.random.default_rng(0)
    for _ in range(6):
        tokens, merges, base = _bpe_case(rng)
        expected = reference_bpe_unmerge(tokens, merges, base)
        got = call_student(unmerge, (tokens, merges, base), name)
        try:
            got = [int(t) for t in got]
        except (TypeError, ValueError):
            raise CheckFailed(f"{name} should return a list of ints, but it returned {type(got).__name__}") from None
        if got == expected:
            continue
        if got == [int(t) for t in tokens]:
            raise CheckFailed(f"{name} returned the tokens unchanged: every token >= base_size stands for a "
                              "merged pair and must be replaced by it")
        if any(t >= base for t in got):
            order = " (you undid them first to last)" if got == _forward_unmerge(tokens, merges, base) else ""
            raise CheckFailed(f"{name} left token {max(got)} >= base_size={base} in the output{order}: a later merge "
                              "can contain earlier merged tokens, so undo the merges last first, down to the codes")
        raise CheckFailed(f"{name} gave {got} for tokens {tokens} with merges {merges}, expected {expected}")
    passed(f"{name} decodes nested merges, last merge first, back to the codes")


# ----------------------------------------------------------------------------- chunked causal convolution


def reference_causal_conv_chunk(x, state, weight, bias, dilation: int):
    """x (C_in, t), state (C_in, (k-1) d), weight (C_out, C_in, k), bias (C_out,) -> (y (C_out, t), new state)."""
    x, state = np.asarray(x, dtype=np.float64), np.asarray(state, dtype=np.float64)
    weight, bias = np.asarray(weight, dtype=np.float64), np.asarray(bias, dtype=np.float64)
    k = weight.shape[-1]
    context = (k - 1) * dilation
    full = np.concatenate([state, x], axis=1)                            # (C_in, context + t)
    t = x.shape[1]
    y = np.stack([sum(weight[:, :, j] @ full[:, s + j * dilation] for j in range(k)) + bias for s in range(t)], 1)
    return y, full[:, full.shape[1] - context:]


def _conv_case(rng: np.random.Generator):
    c_in, c_out = int(rng.integers(2, 4)), int(rng.integers(2, 4))
    k, d = int(rng.integers(2, 4)), int(rng.integers(1, 3))
    weight = rng.normal(size=(c_out, c_in, k))
    bias = rng.normal(size=c_out)
    return c_in, weight, bias, d, (k - 1) * d


def check_causal_conv_chunk(conv_chunk) -> None:
    """``conv_chunk(x (C_in, t), state (C_in, (k-1) d), weight, bias, dilation) -> (y (C_out, t), new_state)``.

    Fed a signal chunk by chunk (some chunks shorter than the state), the outputs must equal the
    causal convolution of the whole signal.
    """
    name = "causal_conv_chunk"
    rng = np.random.default_rng(0)
    for trial in range(4):
        c_in, weight, bias, d, context = _conv_case(rng)
        signal = rng.normal(size=(c_in, 13))
        whole, _ = reference_causal_conv_chunk(signal, np.zeros((c_in, context)), weight, bias, d)
        sizes = [1, 4, 2, 6] if trial % 2 else [5, 1, 7]
        state, pieces, start = np.zeros((c_in, context)), [], 0
        for size in sizes:
            chunk = signal[:, start:start + size]
            out = call_student(conv_chunk, (chunk, state, weight, bias, d), name)
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                raise CheckFailed(f"{name} should return a pair (y, new_state), got {type(out).__name__}")
            y, new_state = to_numpy(out[0], "y"), to_numpy(out[1], "new_state")
            exp_y, exp_state = reference_causal_conv_chunk(chunk, state, weight, bias, d)
            if y.shape != exp_y.shape:
                raise CheckFailed(f"{name} returned y of shape {y.shape} for a chunk of {size} frames, expected "
                                  f"{exp_y.shape}: one output per input frame of the chunk")
            if not np.allclose(y, exp_y, atol=1e-8):
                zero_state, _ = reference_causal_conv_chunk(chunk, np.zeros_like(state), weight, bias, d)
                if start > 0 and np.allclose(y, zero_state, atol=1e-8):
                    raise CheckFailed(f"{name} ignored the state: each chunk was padded with zeros, so the first "
                                      f"{context} outputs of every chunk miss the end of the previous chunk")
                compare_arrays(y, exp_y, f"{name}'s y (chunk {len(pieces) + 1})", atol=1e-8)
            if new_state.shape != exp_state.shape:
                raise CheckFailed(f"{name} returned a state of shape {new_state.shape}, expected {exp_state.shape}: "
                                  f"keep the last (k - 1) * dilation = {context} input frames")
            if not np.allclose(new_state, exp_state, atol=1e-12):
                if np.allclose(new_state, state):
                    raise CheckFailed(f"{name} returned the old state: the new state is the last {context} "
                                      "frames of (old state + this chunk)")
                raise CheckFailed(f"{name}'s new state is not the last {context} frames of the old state followed "
                                  "by the chunk (a chunk shorter than the state keeps part of the old one)")
            pieces.append(y)
            state = new_state
            start += size
        compare_arrays(np.concatenate(pieces, 1), whole, f"{name}, chunk by chunk,", atol=1e-8)
    passed(f"{name} streams: its chunks give exactly the causal convolution of the whole signal")


# ----------------------------------------------------------------------------- fast Griffin-Lim


def reference_fast_griffin_lim(magnitude, phase, n_iter: int, alpha: float, length: int) -> np.ndarray:
    """Perraudin et al. (2013): rebuilt ``c[n]``, then the phase of ``c[n] + alpha (c[n] - c[n-1])``, ``c[0] = 0``."""
    magnitude = np.asarray(magnitude, dtype=np.float64)
    phase = np.asarray(phase)
    previous = np.zeros_like(magnitude, dtype=np.complex128)
    for _ in range(n_iter):
        rebuilt = audio.stft(istft(magnitude * phase, 512, 160, length), 512, 160)[:, :magnitude.shape[1]]
        accelerated = rebuilt + alpha * (rebuilt - previous)
        phase = accelerated / np.maximum(np.abs(accelerated), 1e-12)
        previous = rebuilt
    return istft(magnitude * phase, 512, 160, length)


def _plain_griffin_lim(magnitude, phase, n_iter, length):
    return reference_fast_griffin_lim(magnitude, phase, n_iter, 0.0, length)


def _gl_case(rng: np.random.Generator):
    n_frames = int(rng.integers(8, 14))
    length = (n_frames - 1) * 160
    wave = rng.normal(size=length) * np.sin(np.linspace(0, 30, length)) ** 2
    magnitude = np.abs(audio.stft(wave, 512, 160))
    phase = np.exp(2j * np.pi * rng.random(magnitude.shape))
    return magnitude, phase, int(rng.integers(3, 6)), float(rng.uniform(0.5, 0.99)), length


def check_fast_griffin_lim(fast_gl) -> None:
    """``fast_gl(magnitude (257, T), phase (257, T) unit complex, n_iter, alpha, length) -> wave (length,)``.

    n_fft 512, hop 160 (:func:`tinysora.audio.stft` and :func:`tinysora.tts.istft`).
    """
    name = "fast_griffin_lim"
    rng = np.random.default_rng(0)
    for _ in range(3):
        magnitude, phase, n_iter, alpha, length = _gl_case(rng)
        expected = reference_fast_griffin_lim(magnitude, phase, n_iter, alpha, length)
        got = to_numpy(call_student(fast_gl, (magnitude, phase, n_iter, alpha, length), name), f"the result of {name}")
        if got.shape != expected.shape:
            raise CheckFailed(f"{name} returned shape {got.shape}, expected a waveform of {length} samples")
        if np.allclose(got, expected, atol=1e-6):
            continue
        if np.allclose(got, _plain_griffin_lim(magnitude, phase, n_iter, length), atol=1e-6):
            raise CheckFailed(f"{name} is plain Griffin-Lim: alpha is not used; take the phase of "
                              "c_n + alpha (c_n - c_(n-1)), not of c_n")
        if np.allclose(got, reference_fast_griffin_lim(magnitude, phase, n_iter, -alpha, length), atol=1e-6):
            raise CheckFailed(f"{name} has the momentum's sign flipped: step further along c_n - c_(n-1), "
                              "c_n + alpha (c_n - c_(n-1))")
        if np.allclose(got, reference_fast_griffin_lim(magnitude, phase, n_iter - 1, alpha, length), atol=1e-6) or \
                np.allclose(got, reference_fast_griffin_lim(magnitude, phase, n_iter + 1, alpha, length), atol=1e-6):
            raise CheckFailed(f"{name} ran one iteration too few or too many: n_iter rebuilds, then one last istft")
        compare_arrays(got, expected, name, atol=1e-6)
    passed(f"{name} matches Perraudin et al.'s fast Griffin-Lim on 3 random spectrograms")
