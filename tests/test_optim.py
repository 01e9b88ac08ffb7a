import numpy as np
import pytest
import torch

from tinysora import mlp, optim


@pytest.mark.parametrize("reduction", optim.REDUCTIONS)
def test_mse_loss_matches_torch(reduction):
    a, b = torch.randn(4, 3), torch.randn(4, 3)
    torch.testing.assert_close(optim.mse_loss(a, b, reduction), torch.nn.functional.mse_loss(a, b, reduction=reduction))


def test_mse_loss_rejects_mismatched_shapes_and_reductions():
    with pytest.raises(ValueError, match="same shape"):
        optim.mse_loss(torch.zeros(4), torch.zeros(4, 1))
    with pytest.raises(ValueError, match="reduction"):
        optim.mse_loss(torch.zeros(4), torch.zeros(4), "avg")


def _train_pair(ours, theirs, steps=30):
    torch.manual_seed(0)
    a = mlp.MLP([3, 8, 1], "tanh")
    b = mlp.MLP([3, 8, 1], "tanh")
    b.load_state_dict(a.state_dict())
    opt_a, opt_b = ours(a.parameters()), theirs(b.parameters())
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    for _ in range(steps):
        for model, opt in ((a, opt_a), (b, opt_b)):
            opt.zero_grad()
            optim.mse_loss(model(x), y).backward()
            opt.step()
        for p, q in zip(a.parameters(), b.parameters()):
            torch.testing.assert_close(p, q, atol=1e-6, rtol=0)


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_follows_torch_adam_step_for_step(weight_decay):
    _train_pair(lambda p: optim.Adam(p, lr=1e-2, weight_decay=weight_decay),
                lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=weight_decay))


@pytest.mark.parametrize("betas", [(0.5, 0.9), (0.0, 0.99)])
def test_adam_follows_torch_adam_for_other_betas(betas):
    _train_pair(lambda p: optim.Adam(p, lr=1e-2, betas=betas), lambda p: torch.optim.Adam(p, lr=1e-2, betas=betas))


def test_sgd_follows_torch_sgd():
    _train_pair(lambda p: optim.SGD(p, lr=1e-2, weight_decay=0.01),
                lambda p: torch.optim.SGD(p, lr=1e-2, weight_decay=0.01))


def test_sgd_momentum_follows_torch_sgd_momentum():
    _train_pair(lambda p: optim.SGD(p, lr=1e-2, weight_decay=0.01, momentum=0.9),
                lambda p: torch.optim.SGD(p, lr=1e-2, weight_decay=0.01, momentum=0.9))
    with pytest.raises(ValueError, match="momentum"):
        optim.SGD([torch.zeros(1, requires_grad=True)], momentum=1.0)


def test_cross_entropy_and_its_gradient_match_torch():
    logits, labels = torch.randn(6, 5, dtype=torch.float64, requires_grad=True), torch.randint(0, 5, (6,))
    loss = torch.nn.functional.cross_entropy(logits, labels)
    loss.backward()
    assert abs(optim.cross_entropy(logits.detach().numpy(), labels.numpy()) - loss.item()) < 1e-12
    torch.testing.assert_close(torch.tensor(optim.cross_entropy_grad(logits.detach().numpy(), labels.numpy())),
                               logits.grad)
    big = np.array([[1000.0, 0.0, -1000.0]])
    assert np.isfinite(optim.cross_entropy(big, np.array([2]))) and np.allclose(optim.softmax(big).sum(), 1)


def test_cross_entropy_rejects_bad_labels():
    with pytest.raises(ValueError, match="labels must lie"):
        optim.cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="logits must be"):
        optim.cross_entropy_grad(np.zeros(3), np.array([0]))


@pytest.mark.parametrize("kwargs, message", [(dict(lr=0), "learning rate"), (dict(weight_decay=-1), "weight_decay"),
                                             (dict(betas=(0.9, 1.0)), "betas"), (dict(eps=0), "eps")])
def test_adam_rejects_bad_hyperparameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        optim.Adam([torch.zeros(1, requires_grad=True)], **kwargs)


def test_optimisers_skip_parameters_without_gradients():
    p = torch.ones(2, requires_grad=True)
    optim.Adam([p]).step()
    optim.SGD([p]).step()
    assert torch.equal(p, torch.ones(2))


def test_computation_graph_schematic_needs_one_operation_per_edge():
    import matplotlib
    matplotlib.use("Agg")
    from tinysora.plotting import draw_computation_graph

    assert len(draw_computation_graph(["x", "y", "L"], ["f", "g"]).patches) == 3
    with pytest.raises(ValueError, match="operation"):
        draw_computation_graph(["x", "y"], ["f", "g"])
