import numpy as np
import pytest
import torch
from torch import nn

from tinysora import data, rnn


@pytest.fixture
def one_thread():
    """Tiny recurrent layers train faster on one thread than on several competing ones."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def torch_run(module, x, dhs, state):
    """Outputs and gradients of sum(outputs * dhs) from a torch module, in float64."""
    x = torch.tensor(x, requires_grad=True)
    state = tuple(torch.tensor(s[None], requires_grad=True) for s in state)
    out, _ = module(x, state[0] if len(state) == 1 else state)
    (out * torch.tensor(dhs)).sum().backward()
    return out.detach().numpy(), x.grad.numpy(), [s.grad[0].numpy() for s in state]


@pytest.mark.parametrize("batch, steps, d, h", [(1, 1, 2, 3), (3, 7, 4, 5), (2, 12, 6, 2)])
def test_numpy_rnn_forward_and_bptt_equal_torch(batch, steps, d, h):
    rng = np.random.default_rng(steps)
    x, h0, dhs = rng.normal(size=(batch, steps, d)), rng.normal(size=(batch, h)), rng.normal(size=(batch, steps, h))
    params = rnn.RNNParams.init(d, h, seed=1)
    hs, cache = rnn.rnn_forward(x, params, h0)
    grads = rnn.rnn_backward(dhs, cache)
    module = rnn.rnn_params_to_torch(params)
    out, dx, (dh0,) = torch_run(module, x, dhs, (h0,))
    np.testing.assert_allclose(hs, out, atol=1e-12)
    np.testing.assert_allclose(grads["x"], dx, atol=1e-12)
    np.testing.assert_allclose(grads["h0"], dh0, atol=1e-12)
    np.testing.assert_allclose(grads["W_xh"], module.weight_ih_l0.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(grads["W_hh"], module.weight_hh_l0.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(grads["b_h"], module.bias_ih_l0.grad.numpy(), atol=1e-12)
    np.testing.assert_allclose(grads["b_h"], module.bias_hh_l0.grad.numpy(), atol=1e-12)


@pytest.mark.parametrize("batch, steps, d, h", [(1, 1, 2, 3), (3, 7, 4, 5), (2, 12, 6, 2)])
def test_numpy_lstm_forward_and_bptt_equal_torch(batch, steps, d, h):
    rng = np.random.default_rng(steps)
    x, dhs = rng.normal(size=(batch, steps, d)), rng.normal(size=(batch, steps, h))
    h0, c0 = rng.normal(size=(batch, h)), rng.normal(size=(batch, h))
    params = rnn.LSTMParams.init(d, h, seed=2)
    hs, cs, cache = rnn.lstm_forward(x, params, h0, c0)
    grads = rnn.lstm_backward(dhs, cache)
    module = rnn.lstm_params_to_torch(params)
    out, dx, (dh0, dc0) = torch_run(module, x, dhs, (h0, c0))
    np.testing.assert_allclose(hs, out, atol=1e-12)
    for ours, theirs in [(grads["x"], dx), (grads["h0"], dh0), (grads["c0"], dc0),
                         (grads["W_x"], module.weight_ih_l0.grad.numpy()),
                         (grads["W_h"], module.weight_hh_l0.grad.numpy()),
                         (grads["b"], module.bias_ih_l0.grad.numpy())]:
        np.testing.assert_allclose(ours, theirs, atol=1e-12)


def test_conversion_from_torch_sums_the_two_biases():
    torch.manual_seed(0)
    module = nn.RNN(3, 4, batch_first=True).double()
    params = rnn.rnn_params_from_torch(module)
    np.testing.assert_allclose(params.b_h, (module.bias_ih_l0 + module.bias_hh_l0).detach().numpy())
    x = np.random.default_rng(0).normal(size=(2, 5, 3))
    np.testing.assert_allclose(rnn.rnn_forward(x, params)[0], module(torch.tensor(x))[0].detach().numpy(), atol=1e-12)
    lstm = nn.LSTM(3, 4, batch_first=True).double()
    lparams = rnn.lstm_params_from_torch(lstm)
    np.testing.assert_allclose(rnn.lstm_forward(x, lparams)[0], lstm(torch.tensor(x))[0].detach().numpy(), atol=1e-12)


def test_round_trip_through_torch_keeps_the_function():
    params = rnn.LSTMParams.init(3, 4, seed=5)
    back = rnn.lstm_params_from_torch(rnn.lstm_params_to_torch(params))
    for name in ("W_x", "W_h", "b"):
        np.testing.assert_allclose(getattr(back, name), getattr(params, name))


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_torch_from_scratch_layers_equal_torch_modules(kind):
    x = torch.randn(3, 6, 4, dtype=torch.float64)
    if kind == "rnn":
        params = rnn.RNNParams.init(4, 5, seed=0)
        ours, theirs = rnn.RNN.from_params(params), rnn.rnn_params_to_torch(params)
        back = rnn.rnn_params_from_torch(ours)
        np.testing.assert_allclose(back.W_hh, params.W_hh)
    else:
        params = rnn.LSTMParams.init(4, 5, seed=0)
        ours, theirs = rnn.LSTM.from_params(params), rnn.lstm_params_to_torch(params)
        back = rnn.lstm_params_from_torch(ours)
        np.testing.assert_allclose(back.W_h, params.W_h)
    torch.testing.assert_close(ours(x)[0], theirs(x)[0])


def test_lstm_gate_blocks_follow_torch_order():
    params = rnn.LSTMParams.init(2, 3, seed=0)
    W_xf, _, _ = params.gate("f")
    np.testing.assert_array_equal(W_xf, params.W_x[3:6])
    with pytest.raises(ValueError, match="unknown gate"):
        params.gate("c")


def test_lstm_parameter_count_equals_torch():
    for d, h in [(1, 1), (16, 64), (100, 7)]:
        assert rnn.lstm_parameter_count(d, h) == sum(p.numel() for p in nn.LSTM(d, h).parameters())


def test_shape_errors_are_explained():
    params = rnn.RNNParams.init(3, 4)
    with pytest.raises(ValueError, match="input_size=3"):
        rnn.rnn_forward(np.zeros((2, 5, 4)), params)
    with pytest.raises(ValueError, match="h0 must be"):
        rnn.rnn_forward(np.zeros((2, 5, 3)), params, np.zeros((3, 4)))
    with pytest.raises(ValueError, match="W_hh must be"):
        rnn.RNNParams(np.zeros((4, 3)), np.zeros((3, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="4 \\* hidden"):
        rnn.LSTMParams(np.zeros((5, 3)), np.zeros((5, 1)), np.zeros(5))
    with pytest.raises(ValueError, match="single-layer"):
        rnn.rnn_params_from_torch(nn.RNN(3, 4, num_layers=2))
    with pytest.raises(TypeError, match="nn.LSTM"):
        rnn.lstm_params_from_torch(nn.GRU(3, 4))
    with pytest.raises(ValueError, match="x_t must be"):
        rnn.rnn_step(np.zeros((2, 4)), np.zeros((2, 4)), params)
    with pytest.raises(ValueError, match="c_prev must have"):
        rnn.lstm_step(np.zeros((2, 3)), np.zeros((2, 4)), np.zeros((2, 5)), rnn.LSTMParams.init(3, 4))


def test_vanishing_gradient_in_rnn_not_in_lstm_with_open_forget_gate():
    torch.manual_seed(0)
    x = torch.randn(16, 40, 8)
    norms_rnn = rnn.input_gradient_norms(nn.RNN(8, 32, batch_first=True), x)
    lstm = nn.LSTM(8, 32, batch_first=True)
    with torch.no_grad():
        lstm.bias_hh_l0[32:64] += 4.0
    norms_lstm = rnn.input_gradient_norms(lstm, x)
    assert norms_rnn.shape == (40,)
    assert norms_rnn[0] < 1e-6 * norms_rnn[-1]
    assert norms_lstm[0] > 1e-2 * norms_lstm[-1]


def test_numpy_bptt_shows_the_same_decay():
    params = rnn.RNNParams.init(4, 16, seed=0)
    x = np.random.default_rng(0).normal(size=(8, 30, 4))
    hs, cache = rnn.rnn_forward(x, params)
    dhs = np.zeros_like(hs)
    dhs[:, -1] = 1.0
    norms = np.linalg.norm(rnn.rnn_backward(dhs, cache)["x"], axis=-1).mean(0)
    module = rnn.rnn_params_to_torch(params)
    np.testing.assert_allclose(norms, rnn.input_gradient_norms(module, torch.tensor(x)), rtol=1e-8)


def test_char_vocab_round_trip_and_teacher_forcing_pairs():
    texts = ["a red circle moves left", "红色的圆向左移动"]
    vocab = rnn.CharVocab(texts)
    assert vocab.decode(vocab.encode(texts[1])) == texts[1]
    inputs, targets = rnn.encode_texts(texts, vocab)
    assert inputs.shape == targets.shape == (2, len(texts[0]) + 1)
    assert inputs[1, 0] == vocab.BOUNDARY and targets[1, len(texts[1])] == vocab.BOUNDARY
    assert (targets[1, len(texts[1]) + 1:] == -100).all()
    assert torch.equal(inputs[0, 1:], targets[0, :-1])   # targets are the inputs shifted by one
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.encode("?")


def test_char_lm_learns_captions_and_generates_valid_ones(one_thread):
    torch.manual_seed(0)
    texts = data.make_clips(200, frames=1, height=8, width=8, seed=0).captions_en
    vocab = rnn.CharVocab(texts)
    model = rnn.CharLM(len(vocab), embed=16, hidden=64, cell="lstm")
    losses = rnn.train_char_lm(model, texts, vocab, steps=250, batch_size=32, lr=1e-2)
    assert losses[-1] < 0.3 * losses[0]
    samples = rnn.generate(model, vocab, 20, temperature=0.5, seed=0)
    assert np.mean([data.parse_caption(s) is not None for s in samples]) >= 0.5
    greedy = rnn.generate(model, vocab, 3, greedy=True)
    assert greedy[0] == greedy[1] == greedy[2]
    assert rnn.generate(model, vocab, 1, prompt="a blue", greedy=True)[0].startswith("a blue")


def test_generate_is_reproducible_and_checks_temperature():
    vocab = rnn.CharVocab(["ab"])
    model = rnn.CharLM(len(vocab), 4, 8)
    assert rnn.generate(model, vocab, 5, seed=3) == rnn.generate(model, vocab, 5, seed=3)
    with pytest.raises(ValueError, match="greedy=True"):
        rnn.generate(model, vocab, 1, temperature=0.0)


def test_softmax_with_temperature():
    logits = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(rnn.softmax_with_temperature(logits, 1.0).sum(-1), 1.0)
    cold, hot = rnn.softmax_with_temperature(logits, 0.1), rnn.softmax_with_temperature(logits, 10.0)
    assert cold[0, 2] > 0.99 and hot.max() < 0.4
    np.testing.assert_allclose(rnn.softmax_with_temperature(logits, 2.0),
                               torch.softmax(torch.tensor(logits) / 2.0, -1).numpy())


def test_memory_task_puts_the_label_first_and_distractors_after():
    x, y = rnn.make_memory_task(100, 12, n_symbols=3, n_distractors=5, seed=0)
    assert x.shape == (100, 12) and torch.equal(x[:, 0], y)
    assert (x[:, 1:] >= 3).all() and (x[:, 1:] < 8).all()
    x2, _ = rnn.make_memory_task(100, 12, n_symbols=3, n_distractors=5, seed=0)
    assert torch.equal(x, x2)


def test_lstm_solves_a_short_memory_task(one_thread):
    torch.manual_seed(0)
    train, test = rnn.make_memory_task(2000, 10, seed=0), rnn.make_memory_task(300, 10, seed=1)
    model = rnn.SequenceClassifier(8, 4, hidden=32, cell="lstm", forget_bias=3.0)
    log = rnn.train_sequence_classifier(model, train, test, steps=150, lr=1e-2, eval_every=50)
    assert log.test_accuracy[-1] > 0.9
    assert model.rnn.bias_hh_l0.shape == (128,)


def test_rnn_and_lstm_schematics_draw_and_check_their_arguments():
    import matplotlib
    matplotlib.use("Agg")
    from tinysora.plotting import draw_lstm_cell, draw_unrolled_rnn

    assert len(draw_unrolled_rnn(3).patches) == 2 * 3          # a cell and a read-out box per step
    assert draw_lstm_cell().get_title().startswith("An LSTM cell")
    with pytest.raises(ValueError, match="tokens"):
        draw_unrolled_rnn(3, tokens=["a", "b"])
