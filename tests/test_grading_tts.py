"""The chapter-10 checks accept right answers and explain wrong ones."""

import numpy as np
import pytest

from tinysora import audio, tts
from tinysora.grading import tts as grade
from tinysora.grading.core import CheckFailed

# ----------------------------------------------------------------------------- BPE un-merge


def unmerge_right(tokens, merges, base_size):
    seq = list(tokens)
    for i in reversed(range(len(merges))):
        out = []
        for t in seq:
            out.extend(merges[i] if t == base_size + i else [t])
        seq = out
    return seq


def unmerge_forward(tokens, merges, base_size):
    seq = list(tokens)
    for i in range(len(merges)):
        out = []
        for t in seq:
            out.extend(merges[i] if t == base_size + i else [t])
        seq = out
    return seq


def unmerge_one_level(tokens, merges, base_size):
    out = []
    for t in tokens:
        out.extend(merges[t - base_size] if t >= base_size else [t])
    return out


def test_bpe_unmerge_accepts_the_right_answer_and_the_package_decoder(capsys):
    grade.check_bpe_unmerge(unmerge_right)
    grade.check_bpe_unmerge(lambda tokens, merges, base: tts.BPE(base, list(merges)).decode(tokens))
    assert "last merge first" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (unmerge_forward, "first to last"),
    (unmerge_one_level, "last first"),
    (lambda tokens, merges, base: list(tokens), "unchanged"),
    (lambda tokens, merges, base: None, "list of ints"),
    (lambda tokens, merges, base: 1 / 0, "ZeroDivisionError"),
])
def test_bpe_unmerge_explains_wrong_answers(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_bpe_unmerge(wrong)


def test_bpe_unmerge_not_written_yet():
    def unmerge(tokens, merges, base_size):
        raise NotImplementedError()
    with pytest.raises(CheckFailed, match="not written yet"):
        grade.check_bpe_unmerge(unmerge)

# ----------------------------------------------------------------------------- chunked causal convolution


def conv_right(x, state, weight, bias, dilation):
    k = weight.shape[-1]
    full = np.concatenate([state, x], 1)
    y = np.stack([np.einsum("oik,ik->o", weight, full[:, s:s + (k - 1) * dilation + 1:dilation]) + bias
                  for s in range(x.shape[1])], 1)
    return y, full[:, full.shape[1] - (k - 1) * dilation:]


def conv_torch_package(x, state, weight, bias, dilation):
    import torch
    conv = tts.CausalConv1d(weight.shape[1], weight.shape[0], weight.shape[2], dilation).double()
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(weight))
        conv.bias.copy_(torch.from_numpy(bias))
        y, s = conv.step(torch.from_numpy(x)[None], torch.from_numpy(state)[None])
    return y[0].numpy(), s[0].numpy()


def conv_no_state(x, state, weight, bias, dilation):
    y, _ = conv_right(x, np.zeros_like(state), weight, bias, dilation)
    return y, conv_right(x, state, weight, bias, dilation)[1]


def conv_old_state(x, state, weight, bias, dilation):
    return conv_right(x, state, weight, bias, dilation)[0], state


def conv_chunk_tail(x, state, weight, bias, dilation):   # the state from the chunk alone (wrong when it is short)
    y, s = conv_right(x, state, weight, bias, dilation)
    ctx = s.shape[1]
    tail = np.concatenate([np.zeros_like(state), x], 1)[:, -ctx:]
    return y, tail


def conv_wrong_state_length(x, state, weight, bias, dilation):
    y, s = conv_right(x, state, weight, bias, dilation)
    return y, np.concatenate([state, x], 1)[:, -(s.shape[1] + 1):]


def test_causal_conv_chunk_accepts_right_answers(capsys):
    grade.check_causal_conv_chunk(conv_right)
    grade.check_causal_conv_chunk(conv_torch_package)
    assert "streams" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (conv_no_state, "ignored the state"),
    (conv_old_state, "returned the old state"),
    (conv_chunk_tail, "shorter than the state"),
    (conv_wrong_state_length, "shape"),
    (lambda x, state, weight, bias, dilation: conv_right(x, state, weight, bias, dilation)[0], "pair"),
    (lambda x, state, weight, bias, dilation: (conv_right(x, state, weight, bias, dilation)[0][:, :-1], state),
     "one output per input frame"),
])
def test_causal_conv_chunk_explains_wrong_answers(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_causal_conv_chunk(wrong)

# ----------------------------------------------------------------------------- fast Griffin-Lim


def fast_gl_right(magnitude, phase, n_iter, alpha, length):
    previous = 0
    for _ in range(n_iter):
        rebuilt = audio.stft(tts.istft(magnitude * phase, 512, 160, length), 512, 160)[:, :magnitude.shape[1]]
        step = rebuilt + alpha * (rebuilt - previous)
        phase = step / np.maximum(np.abs(step), 1e-12)
        previous = rebuilt
    return tts.istft(magnitude * phase, 512, 160, length)


def test_fast_griffin_lim_accepts_the_right_answer(capsys):
    grade.check_fast_griffin_lim(fast_gl_right)
    assert "Perraudin" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (lambda m, p, n, a, length: fast_gl_right(m, p, n, 0.0, length), "plain Griffin-Lim"),
    (lambda m, p, n, a, length: fast_gl_right(m, p, n, -a, length), "sign flipped"),
    (lambda m, p, n, a, length: fast_gl_right(m, p, n - 1, a, length), "one iteration"),
    (lambda m, p, n, a, length: fast_gl_right(m, p, n, a, length)[:-1], "samples"),
    (lambda m, p, n, a, length: tts.griffin_lim(m, n_iter=n, length=length), "off by"),
])
def test_fast_griffin_lim_explains_wrong_answers(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_fast_griffin_lim(wrong)
