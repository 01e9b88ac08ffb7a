import numpy as np
import pytest
import torch
from torch import nn

from tinysora import mlp


@pytest.mark.parametrize("name, module", [("relu", nn.ReLU()), ("sigmoid", nn.Sigmoid()), ("tanh", nn.Tanh()),
                                          ("gelu", nn.GELU())])
def test_activations_match_torch(name, module):
    z = np.linspace(-30, 30, 301)
    np.testing.assert_allclose(mlp.ACTIVATIONS[name](z), module(torch.tensor(z)).numpy(), atol=1e-12)


def test_dense_matches_nn_linear():
    layer = nn.Linear(5, 3).double()
    x = np.random.default_rng(0).normal(size=(4, 5))
    ours = mlp.dense(x, layer.weight.detach().numpy().T, layer.bias.detach().numpy())
    np.testing.assert_allclose(ours, layer(torch.tensor(x)).detach().numpy(), atol=1e-12)


def test_dense_explains_a_transposed_weight():
    with pytest.raises(ValueError, match="weights.T"):
        mlp.dense(np.zeros((2, 5)), np.zeros((3, 5)), np.zeros(3))


def test_dense_rejects_wrong_bias_and_unknown_activation():
    with pytest.raises(ValueError, match="biases"):
        mlp.dense(np.zeros((2, 5)), np.zeros((5, 3)), np.zeros(4))
    with pytest.raises(ValueError, match="unknown activation"):
        mlp.dense(np.zeros((2, 5)), np.zeros((5, 3)), np.zeros(3), "swish")


@pytest.mark.parametrize("sizes", [[4, 3], [8, 16, 2], [5, 7, 7, 3]])
@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_numpy_forward_equals_torch_forward(sizes, activation):
    model = mlp.MLP(sizes, activation).double()
    x = torch.randn(6, sizes[0], dtype=torch.float64)
    ours = mlp.mlp_forward(x.numpy(), mlp.numpy_layers(model), activation)
    np.testing.assert_allclose(ours, model(x).detach().numpy(), atol=1e-12)


@pytest.mark.parametrize("sizes", [[64, 10], [64, 32, 10], [3, 5, 5, 5, 1]])
def test_parameter_count_formula(sizes):
    assert mlp.count_parameters(mlp.MLP(sizes)) == mlp.mlp_parameter_count(sizes)


def test_ffn_keeps_shape_and_widens_fourfold():
    ffn = mlp.FFN(8)
    assert ffn.up.out_features == 32
    x = torch.randn(2, 3, 8)
    assert ffn(x).shape == x.shape
    assert mlp.count_parameters(ffn) == 2 * 8 * 32 + 32 + 8


@pytest.mark.parametrize("sizes", [[4], [4, 0, 2], [4, -1]])
def test_mlp_rejects_bad_sizes(sizes):
    with pytest.raises(ValueError, match="sizes"):
        mlp.MLP(sizes)


def test_init_dense_bounds_like_nn_linear():
    weights, biases = mlp.init_dense(100, 20, np.random.default_rng(0))
    assert weights.shape == (100, 20) and np.abs(weights).max() <= 0.1 and np.abs(biases).max() <= 0.1
    with pytest.raises(ValueError, match="positive"):
        mlp.init_dense(0, 3, np.random.default_rng(0))


@pytest.mark.parametrize("scheme, variance", [("pytorch", lambda i, o: 1 / (3 * i)),
                                              ("xavier", lambda i, o: 2 / (i + o)),
                                              ("kaiming", lambda i, o: 2 / i)])
def test_init_schemes_have_their_variance(scheme, variance):
    model = mlp.initialise_(mlp.MLP([400, 300, 10]), scheme)
    weight = model.net[0].weight
    assert abs(weight.var().item() / variance(400, 300) - 1) < 0.05
    assert (model.net[0].bias == 0).all()


def test_constant_init_and_unknown_scheme():
    model = mlp.initialise_(mlp.MLP([3, 4, 2]), "constant", value=0.5)
    assert (model.net[0].weight == 0.5).all()
    with pytest.raises(ValueError, match="unknown init scheme"):
        mlp.initialise_(model, "orthogonal")


def test_kaiming_keeps_relu_activations_while_xavier_shrinks_them():
    x = torch.randn(512, 256)
    deep = [256] * 16
    kaiming = mlp.activation_stds(mlp.initialise_(mlp.MLP(deep), "kaiming"), x)
    xavier = mlp.activation_stds(mlp.initialise_(mlp.MLP(deep), "xavier"), x)
    assert len(kaiming) == 15 and 0.5 < kaiming[-1] / kaiming[0] < 2
    assert xavier[-1] / xavier[0] < 0.01


def test_schematic_draws_one_circle_per_shown_unit():
    import matplotlib
    matplotlib.use("Agg")
    from tinysora.plotting import draw_mlp

    ax = draw_mlp([3, 8, 2], max_drawn=6)
    assert len(ax.patches) == 3 + 6 + 2
    with pytest.raises(ValueError, match="sizes"):
        draw_mlp([3])
