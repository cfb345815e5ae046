"""Each loss against a value computed by hand."""

import math

import pytest
import torch

from vpd_lite.method.components import LinearComponents
from vpd_lite.method.losses import (
    annealed_p,
    faithfulness_loss,
    head_reconstruction_kl,
    importance_minimality_loss,
    reconstruction_kl,
    target_distribution,
)


def test_faithfulness_loss_by_hand():
    c1 = LinearComponents(torch.tensor([[1.0, 2.0]]), None, C=1)
    c2 = LinearComponents(torch.tensor([[3.0], [0.0]]), None, C=1)
    with torch.no_grad():
        c1.V.copy_(torch.tensor([[1.0], [1.0]]))  # V U = [[1, 1]] -> delta [0, 1] -> mean sq 0.5
        c1.U.fill_(1.0)
        c2.V.fill_(2.0)  # V U = [[2, 2]] -> W^T - = [1, -2] -> mean sq 2.5
        c2.U.fill_(1.0)
    assert torch.isclose(faithfulness_loss([c1, c2]), torch.tensor(3.0))


def test_reconstruction_kl_by_hand():
    t = torch.tensor([[[0.0, math.log(3.0)], [0.0, 0.0]]])  # p = [1/4, 3/4], [1/2, 1/2]
    m = torch.tensor([[[0.0, 0.0], [0.0, math.log(3.0)]]])  # q = [1/2, 1/2], [1/4, 3/4]
    kl1 = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    kl2 = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    expected = (kl1 + kl2) / 2
    assert math.isclose(float(reconstruction_kl(t, m)), expected, rel_tol=1e-5)
    assert math.isclose(float(reconstruction_kl(None, m, target_distribution(t))), expected, rel_tol=1e-5)
    assert abs(float(reconstruction_kl(t, t))) < 1e-6
    # gradient only on the masked side
    m.requires_grad_(True)
    reconstruction_kl(t, m).backward()
    assert m.grad is not None and m.grad.abs().sum() > 0


def test_importance_minimality_by_hand():
    # one matrix, N = 2 tokens, C = 2; p = 1, eps = 0, beta = 0.5
    g = torch.tensor([[[1.0, 0.5]], [[1.0, 0.0]]])  # (B=2, T=1, C=2)
    q = [2.0, 0.5]
    expected = sum(qc / 2 + 0.5 * (qc / 2) * math.log2(1 + qc) for qc in q)
    got = importance_minimality_loss({"a": g}, p=1.0, beta=0.5, eps=0.0)
    assert math.isclose(float(got), expected, rel_tol=1e-6)
    # p = 2 squares the CI; two matrices add up
    q2 = [2.0, 0.25]
    expected2 = sum(qc / 2 + 0.5 * (qc / 2) * math.log2(1 + qc) for qc in q2)
    got2 = importance_minimality_loss({"a": g, "b": g}, p=2.0, beta=0.5, eps=0.0)
    assert math.isclose(float(got2), 2 * expected2, rel_tol=1e-6)


def test_annealed_p():
    assert annealed_p(0.0) == 2.0 and annealed_p(1.0) == 0.4
    assert math.isclose(annealed_p(0.5), 1.2)
    assert annealed_p(0.1, start_frac=0.2) == 2.0
    assert math.isclose(annealed_p(0.5, start_frac=0.0, end_frac=0.5), 0.4)
    assert math.isclose(annealed_p(0.25, p_start=2.0, p_end=1.0, end_frac=0.5), 1.5)


def test_reconstruction_kl_gradient_matches_the_naive_formula():
    torch.manual_seed(0)
    t, z = torch.randn(3, 5, 11), torch.randn(3, 5, 11, requires_grad=True)
    naive = (torch.softmax(t, -1) * (torch.log_softmax(t, -1) - torch.log_softmax(z, -1))).sum(-1).mean()
    (g_naive,) = torch.autograd.grad(naive, z)
    fused = reconstruction_kl(t, z)
    (g_fused,) = torch.autograd.grad(2.0 * fused, z)
    assert torch.isclose(fused.detach(), naive.detach(), atol=1e-6)
    assert torch.allclose(g_fused, 2.0 * g_naive, atol=1e-7)


@pytest.mark.parametrize("block_elements", [11, 3 * 11, 2**20])  # one row per block, a ragged split, one block
@pytest.mark.parametrize("bias", [False, True])
def test_head_kl_equals_the_full_logits_kl(block_elements, bias):
    torch.manual_seed(0)
    head = torch.nn.Linear(6, 11, bias=bias).requires_grad_(False)
    t = torch.randn(3, 5, 11)
    h = torch.randn(3, 5, 6, requires_grad=True)
    full = reconstruction_kl(t, head(h))
    (g_full,) = torch.autograd.grad(3.0 * full, h)
    blockwise = head_reconstruction_kl(h, head, target_distribution(t), block_elements=block_elements)
    (g_block,) = torch.autograd.grad(3.0 * blockwise, h)
    assert torch.isclose(blockwise.detach(), full.detach(), atol=1e-6)
    assert torch.allclose(g_block, g_full, atol=1e-6)


def test_head_kl_refuses_a_trainable_head_and_wrong_shapes():
    head = torch.nn.Linear(6, 11)
    target = target_distribution(torch.randn(2, 4, 11))
    with pytest.raises(ValueError, match="frozen"):
        head_reconstruction_kl(torch.randn(2, 4, 6), head, target)
    head.requires_grad_(False)
    with pytest.raises(ValueError, match="shape"):
        head_reconstruction_kl(torch.randn(2, 3, 6), head, target)
