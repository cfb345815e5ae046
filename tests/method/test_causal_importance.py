"""Leaky hard sigmoids (values and gradients by hand) and the three CI function families."""

import pytest
import torch

from vpd_lite.method.causal_importance import (
    ComponentMLPCI,
    SharedMLPCI,
    VectorMLPCI,
    lower_leaky_hard_sigmoid,
    make_ci_fn,
    upper_leaky_hard_sigmoid,
)

Z = [-2.0, -0.5, 0.0, 0.3, 1.0, 1.5, 3.0]


def test_lower_leaky_forward_is_clamp():
    z = torch.tensor(Z)
    assert torch.equal(lower_leaky_hard_sigmoid(z, 0.01), torch.tensor([0.0, 0.0, 0.0, 0.3, 1.0, 1.0, 1.0]))


def test_lower_leaky_gradient_by_hand():
    z = torch.tensor(Z, requires_grad=True)
    # upstream gradient -1 everywhere: descent would push z up -> leaks below 0 with alpha
    (g,) = torch.autograd.grad(lower_leaky_hard_sigmoid(z, 0.01), z, torch.full((7,), -1.0))
    assert torch.allclose(g, torch.tensor([-0.01, -0.01, -1.0, -1.0, -1.0, 0.0, 0.0]))
    # upstream gradient +2: would push z further down below 0 -> blocked there
    (g,) = torch.autograd.grad(lower_leaky_hard_sigmoid(z, 0.01), z, torch.full((7,), 2.0))
    assert torch.allclose(g, torch.tensor([0.0, 0.0, 2.0, 2.0, 2.0, 0.0, 0.0]))


def test_upper_leaky_values_and_gradient_by_hand():
    z = torch.tensor(Z, requires_grad=True)
    y = upper_leaky_hard_sigmoid(z, 0.1)
    assert torch.allclose(y, torch.tensor([0.0, 0.0, 0.0, 0.3, 1.0, 1.05, 1.2]))
    (g,) = torch.autograd.grad(y.sum(), z)
    assert torch.allclose(g, torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0, 0.1, 0.1]))


def test_shared_mlp_shape_and_dependence_on_the_whole_vector():
    f = SharedMLPCI(d_in=6, C=5, hidden=4, generator=torch.Generator().manual_seed(0))
    x = torch.randn(2, 3, 6)
    out = f(x)
    assert out.shape == (2, 3, 5)
    x2 = x.clone()
    x2[..., 0] += 1.0  # one input coordinate changes every component's pre-activation
    assert (f(x2) - out).abs().min() > 0


def test_component_mlp_reads_only_its_own_activation():
    f = ComponentMLPCI(C=4, hidden=3, generator=torch.Generator().manual_seed(0))
    a = torch.randn(2, 5, 4)
    out = f(torch.zeros(2, 5, 7), a)
    assert out.shape == (2, 5, 4)
    a2 = a.clone()
    a2[..., 2] += 1.0
    diff = (f(None, a2) - out).abs().amax(dim=(0, 1))
    assert diff[2] > 0 and torch.all(diff[[0, 1, 3]] == 0)
    # by hand for component 0 at one position
    h = torch.nn.functional.gelu(a[0, 0, 0] * f.w1[0] + f.b1[0])
    assert torch.allclose(out[0, 0, 0], (h * f.w2[0]).sum() + f.b2[0])
    with pytest.raises(ValueError, match="component activations"):
        f(torch.zeros(1, 4))


def test_vector_mlp_is_one_mlp_per_component_on_the_whole_input():
    f = VectorMLPCI(d_in=6, C=4, hidden=3, generator=torch.Generator().manual_seed(0))
    x = torch.randn(2, 5, 6)
    out = f(x)
    assert out.shape == (2, 5, 4)
    # by hand for component 1 at one position: its own weights, the whole input vector
    h = torch.nn.functional.gelu(x[0, 0] @ f.w1[1] + f.b1[1])
    assert torch.allclose(out[0, 0, 1], (h * f.w2[1]).sum() + f.b2[1])
    # two inputs that a component reads equally (same V^T x for V = e_0 + e_1) get different pre-activations
    same_act = torch.tensor([[1.0, 0, 0, 0, 0, 0], [0, 1.0, 0, 0, 0, 0]])
    assert (f(same_act)[0] - f(same_act)[1]).abs().max() > 0


def test_make_ci_fn():
    assert isinstance(make_ci_fn("shared_mlp", 4, 3, 2), SharedMLPCI)
    assert isinstance(make_ci_fn("mlp", 4, 3, 2), ComponentMLPCI)
    assert isinstance(make_ci_fn("vector_mlp", 4, 3, 2), VectorMLPCI)
    with pytest.raises(ValueError, match="unknown ci_type 'nope'"):
        make_ci_fn("nope", 4, 3, 2)


@pytest.mark.parametrize("which", ["both", "lower", "upper"])
def test_fused_sigmoids_match_the_separate_ones(which):
    from vpd_lite.method.causal_importance import leaky_hard_sigmoids

    g = torch.Generator().manual_seed(0)
    z = torch.cat([torch.randn(200, generator=g) * 2, torch.tensor([-1.0, 0.0, 0.5, 1.0, 2.0])])
    up_l, up_u = torch.randn(205, generator=g), torch.randn(205, generator=g)
    grads = []
    for fused in (True, False):
        zz = z.clone().requires_grad_(True)
        if fused:
            lo, hi = leaky_hard_sigmoids(zz, 0.05)
        else:
            lo, hi = lower_leaky_hard_sigmoid(zz, 0.05), upper_leaky_hard_sigmoid(zz, 0.05)
        assert torch.equal(lo, lower_leaky_hard_sigmoid(z, 0.05)) and torch.allclose(hi, upper_leaky_hard_sigmoid(z, 0.05))
        loss = {"both": (lo * up_l).sum() + (hi * up_u).sum(), "lower": (lo * up_l).sum(), "upper": (hi * up_u).sum()}
        (gz,) = torch.autograd.grad(loss[which], zz)
        grads.append(gz)
    assert torch.allclose(grads[0], grads[1], atol=1e-7)
