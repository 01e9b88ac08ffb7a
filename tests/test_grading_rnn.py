import numpy as np
import pytest

from tinysora import rnn
from tinysora.grading import CheckFailed
from tinysora.grading import rnn as grade


def test_right_answers_pass():
    grade.check_rnn_step(grade.reference_rnn_step)
    grade.check_softmax_with_temperature(grade.reference_softmax_with_temperature)
    grade.check_lstm_step(grade.reference_lstm_step)
    grade.check_lstm_parameter_count(grade.reference_lstm_parameter_count)
    grade.check_lstm_parameter_count(lambda d, h: np.int64(4 * (h * d + h * h + 2 * h)))


def test_not_written_yet_is_reported():
    def stub(*args):
        raise NotImplementedError()

    for check in (grade.check_rnn_step, grade.check_softmax_with_temperature, grade.check_lstm_step,
                  grade.check_lstm_parameter_count):
        with pytest.raises(CheckFailed, match="not written yet"):
            check(stub)


@pytest.mark.parametrize("wrong, message", [
    (lambda x, h, Wx, Wh, b: x @ Wx.T + h @ Wh.T + b, "forgot the tanh"),
    (lambda x, h, Wx, Wh, b: rnn.sigmoid(x @ Wx.T + h @ Wh.T + b), "sigmoid"),
    (lambda x, h, Wx, Wh, b: np.maximum(x @ Wx.T + h @ Wh.T + b, 0), "ReLU"),
    (lambda x, h, Wx, Wh, b: np.tanh(x @ Wx.T + h @ Wh.T), "forgot the bias"),
    (lambda x, h, Wx, Wh, b: np.tanh(x @ Wx.T + b), "ignores the previous hidden state"),
    (lambda x, h, Wx, Wh, b: np.tanh(x @ Wx + h @ Wh + b), "raised ValueError"),
    (lambda x, h, Wx, Wh, b: np.tanh(x @ Wx.T + h @ Wh + b), "off by"),
])
def test_rnn_step_mistakes_are_named(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_rnn_step(wrong)


def naive(logits, t):
    with np.errstate(all="ignore"):
        e = np.exp(logits / t)
        return e / e.sum(-1, keepdims=True)


@pytest.mark.parametrize("wrong, message", [
    (lambda z, t: rnn.softmax_with_temperature(z * t * t, t), "multiplies the logits"),
    (lambda z, t: rnn.softmax_with_temperature(z, 1.0), "ignores the temperature"),
    (lambda z, t: np.exp(z / t) / np.exp(z / t).sum(0, keepdims=True), "wrong axis"),
    (naive, "overflows"),
    (lambda z, t: z / t, "off by"),
])
def test_softmax_with_temperature_mistakes_are_named(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_softmax_with_temperature(wrong)


def variant(**kwargs):
    return lambda *args: grade._lstm_variant(*args, **kwargs)


@pytest.mark.parametrize("wrong, message", [
    (variant(order=(0, 1, 3, 2)), "i, f, o, g"),
    (variant(order=(1, 0, 2, 3)), "f, i, g, o"),
    (variant(tanh_h=False), r"h = o \* c"),
    (variant(forget=False), "forget gate scales it"),
    (lambda *args: grade.reference_lstm_step(*args)[::-1], r"returns \(c, h\)"),
    (lambda *args: grade.reference_lstm_step(*args)[0], "pair"),
    (lambda *args: (grade.reference_lstm_step(*args)[0], grade.reference_lstm_step(*args)[1] * 2), "cell state c"),
])
def test_lstm_step_mistakes_are_named(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_lstm_step(wrong)


@pytest.mark.parametrize("wrong, message", [
    (lambda d, h: 4 * (h * d + h * h + h), "one bias vector per gate"),
    (lambda d, h: 4 * (h * d + h * h), "forgot the biases"),
    (lambda d, h: h * d + h * h + 2 * h, "counts one gate"),
    (lambda d, h: 3 * (h * d + h * h + 2 * h), "three gates"),
    (lambda d, h: 4 * (h * d + h * h + 2 * h) + h * h, "extra H x H"),
    (lambda d, h: d * h, "expected"),
    (lambda d, h: [1, 2], "one number"),
])
def test_lstm_parameter_count_mistakes_are_named(wrong, message):
    with pytest.raises(CheckFailed, match=message):
        grade.check_lstm_parameter_count(wrong)
