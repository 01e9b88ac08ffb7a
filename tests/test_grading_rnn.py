import numpy as np
import pytest

from tinysora import rnn
from tinysora.grading import CheckFailed
from tinysora.grading import rnn as grade


def birnn_by_hand(x, fwd, bwd):
    forward = rnn.rnn_forward(x, rnn.RNNParams(*fwd))[0]
    backward = rnn.rnn_forward(x[:, ::-1], rnn.RNNParams(*bwd))[0][:, ::-1]
    return np.concatenate([forward, backward], axis=-1)


def clip_by_hand(grads, max_norm):
    total = np.sqrt(sum((g ** 2).sum() for g in grads))
    return [g * min(1.0, max_norm / (total + 1e-6)) for g in grads]


def gru_by_hand(x_t, h_prev, W_x, W_h, b_x, b_h):
    a_r, a_z, a_n = np.split(x_t @ W_x.T + b_x, 3, axis=-1)
    h_r, h_z, h_n = np.split(h_prev @ W_h.T + b_h, 3, axis=-1)
    r, z = rnn.sigmoid(a_r + h_r), rnn.sigmoid(a_z + h_z)
    n = np.tanh(a_n + r * h_n)
    return (1 - z) * n + z * h_prev


def test_right_answers_pass():
    grade.check_birnn_forward(grade.reference_birnn_forward)
    grade.check_birnn_forward(birnn_by_hand)
    grade.check_clip_by_global_norm(grade.reference_clip_by_global_norm)
    grade.check_clip_by_global_norm(clip_by_hand)
    grade.check_gru_step(grade.reference_gru_step)
    grade.check_gru_step(gru_by_hand)
    grade.check_peephole_lstm_step(grade.reference_peephole_lstm_step)


def test_not_written_yet_is_reported():
    def stub(*args):
        raise NotImplementedError()

    for check in (grade.check_birnn_forward, grade.check_clip_by_global_norm, grade.check_gru_step,
                  grade.check_peephole_lstm_step):
        with pytest.raises(CheckFailed, match="not written yet"):
            check(stub)


def test_forward_only_rnn_is_not_bidirectional():
    with pytest.raises(CheckFailed, match="only the forward states"):
        grade.check_birnn_forward(lambda x, fwd, bwd: rnn.rnn_forward(x, rnn.RNNParams(*fwd))[0])


def test_unflipped_backward_states_are_named():
    def unflipped(x, fwd, bwd):
        return np.concatenate([rnn.rnn_forward(x, rnn.RNNParams(*fwd))[0],
                               rnn.rnn_forward(x[:, ::-1], rnn.RNNParams(*bwd))[0]], axis=-1)

    with pytest.raises(CheckFailed, match="reversed order"):
        grade.check_birnn_forward(unflipped)


def test_per_tensor_and_elementwise_clipping_are_named():
    def per_tensor(grads, max_norm):
        return [g * min(1.0, max_norm / (np.linalg.norm(g) + 1e-6)) for g in grads]

    with pytest.raises(CheckFailed, match="its own norm"):
        grade.check_clip_by_global_norm(per_tensor)
    with pytest.raises(CheckFailed, match="clamps each element"):
        grade.check_clip_by_global_norm(lambda grads, m: [np.clip(g, -m, m) for g in grads])


def test_clipping_small_gradients_up_is_named():
    def always_rescale(grads, max_norm):
        total = np.sqrt(sum((g ** 2).sum() for g in grads))
        return [g * max_norm / total for g in grads]

    with pytest.raises(CheckFailed, match="below max_norm"):
        grade.check_clip_by_global_norm(always_rescale)


def test_gru_mistakes_are_named():
    def swapped_mix(x_t, h_prev, W_x, W_h, b_x, b_h):
        return grade._gru_variant(x_t, h_prev, W_x, W_h, b_x, b_h, keep_is_z=False)

    def cho_reset(x_t, h_prev, W_x, W_h, b_x, b_h):
        return grade._gru_variant(x_t, h_prev, W_x, W_h, b_x, b_h, reset_inside=False)

    with pytest.raises(CheckFailed, match="swapped"):
        grade.check_gru_step(swapped_mix)
    with pytest.raises(CheckFailed, match="before the matrix product"):
        grade.check_gru_step(cho_reset)


def test_plain_lstm_is_not_a_peephole_lstm():
    def plain(x_t, h_prev, c_prev, W_x, W_h, b, p):
        h, c, _ = rnn.lstm_step(x_t, h_prev, c_prev, rnn.LSTMParams(W_x, W_h, b))
        return h, c

    with pytest.raises(CheckFailed, match="plain LSTM step"):
        grade.check_peephole_lstm_step(plain)


def test_output_peephole_on_the_old_cell_is_named():
    def old_cell(x_t, h_prev, c_prev, W_x, W_h, b, p):
        z_i, z_f, z_g, z_o = np.split(x_t @ W_x.T + h_prev @ W_h.T + b, 4, axis=-1)
        i, f = rnn.sigmoid(z_i + p[0] * c_prev), rnn.sigmoid(z_f + p[1] * c_prev)
        c = f * c_prev + i * np.tanh(z_g)
        return rnn.sigmoid(z_o + p[2] * c_prev) * np.tanh(c), c

    with pytest.raises(CheckFailed, match="looks at c_prev"):
        grade.check_peephole_lstm_step(old_cell)
    with pytest.raises(CheckFailed, match="pair"):
        grade.check_peephole_lstm_step(lambda *args: old_cell(*args)[0])
