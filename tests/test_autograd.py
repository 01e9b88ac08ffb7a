import numpy as np
import pytest
import torch

from tinysora.autograd import Var, numerical_gradient


def test_mlp_gradients_match_torch():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    params = [rng.normal(size=s) for s in [(3, 4), (4,), (4, 2), (2,)]]
    vs = [Var(p) for p in params]
    out = ((Var(x) @ vs[0] + vs[1]).tanh() @ vs[2] + vs[3]).relu()
    ((out - y) ** 2).mean().backward()

    ts = [torch.tensor(p, requires_grad=True) for p in params]
    t_out = torch.relu(torch.tanh(torch.tensor(x) @ ts[0] + ts[1]) @ ts[2] + ts[3])
    ((t_out - torch.tensor(y)) ** 2).mean().backward()
    for v, t in zip(vs, ts):
        np.testing.assert_allclose(v.grad, t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_gradients_match_finite_differences_and_accumulate_over_reuse():
    a = np.array([[0.3, -1.2], [2.0, 0.5]])
    va = Var(a)
    loss = (va * va + va * 3.0 - 1.0).sum()     # va is used three times
    loss.backward()
    f = lambda: float((a * a + a * 3.0 - 1.0).sum())
    np.testing.assert_allclose(va.grad, numerical_gradient(f, a), rtol=1e-6)


def test_broadcast_bias_gradient_is_summed_over_the_batch():
    b = Var(np.zeros(3))
    (Var(np.ones((4, 3))) + b).sum().backward()
    np.testing.assert_array_equal(b.grad, [4.0, 4.0, 4.0])


def test_backward_needs_a_scalar_and_matmul_needs_matrices():
    with pytest.raises(ValueError, match="scalar"):
        Var(np.ones(3)).backward()
    with pytest.raises(ValueError, match="2-D"):
        Var(np.ones(3)) @ Var(np.ones(3))
    with pytest.raises(TypeError, match="constant exponents"):
        Var(np.ones(3)) ** Var(np.ones(3))
