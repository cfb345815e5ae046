"""Stochastic masks and uniform-k-subset routing: formulas by hand, shapes and statistics."""

import torch

from vpd_lite.method.masks import (
    delta_stochastic_masks,
    mask_from_sources,
    remainder_mask,
    stochastic_masks,
    uniform_k_subset_routing,
)


def test_mask_from_sources_by_hand():
    g = torch.tensor([0.0, 0.25, 1.0, 0.5])
    s = torch.tensor([0.4, 0.4, 0.0, 1.0])
    # m = g + (1-g) s
    assert torch.allclose(mask_from_sources(g, s), torch.tensor([0.4, 0.55, 1.0, 1.0]))


def test_stochastic_masks_use_the_generator_draws():
    g = torch.tensor([[[0.0, 0.5, 1.0]]]).expand(2, 4, 3)
    m = stochastic_masks({"a": g}, torch.Generator().manual_seed(7))["a"]
    u = torch.rand(g.shape, generator=torch.Generator().manual_seed(7))
    assert torch.allclose(m, g + (1 - g) * u)
    assert torch.all(m[..., 2] == 1.0)  # CI 1: always kept
    assert torch.all(m >= g) and torch.all(m <= 1)
    d = delta_stochastic_masks(["a", "b"], (2, 4), torch.Generator().manual_seed(0))
    assert d["a"].shape == (2, 4) and torch.all((d["b"] >= 0) & (d["b"] < 1))


def test_remainder_mask_is_u_on_capability_batches_and_one_on_the_rest():
    u = torch.rand(2, 5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(remainder_mask(u, False), u)
    assert torch.equal(remainder_mask(u, True), torch.ones(2, 5))
    gen = torch.Generator().manual_seed(3)
    before = gen.get_state()
    pinned = delta_stochastic_masks(["a", "b"], (2, 4), gen, remainder_on=True)
    assert all(torch.equal(m, torch.ones(2, 4)) for m in pinned.values())
    assert torch.equal(gen.get_state(), before)  # nothing drawn on a rest batch: the run's random stream is unchanged
    drawn = delta_stochastic_masks(["a"], (2, 4), torch.Generator().manual_seed(3))["a"]
    assert torch.equal(drawn, torch.rand(2, 4, generator=torch.Generator().manual_seed(3)))


def test_uniform_k_subset_routing_statistics():
    names = [f"m{i}" for i in range(4)]
    r = uniform_k_subset_routing(names, (200, 50), torch.Generator().manual_seed(0))
    assert set(r) == set(names) and all(v.shape == (200, 50) and v.dtype == torch.bool for v in r.values())
    k = torch.stack([r[n] for n in names], -1).sum(-1)  # matrices routed per position
    assert k.min() >= 1 and k.max() <= 4
    freq = torch.bincount(k.reshape(-1), minlength=5)[1:].float() / k.numel()
    assert torch.allclose(freq, torch.full((4,), 0.25), atol=0.02)  # k ~ U{1..4}
    per_matrix = torch.stack([r[n].float().mean() for n in names])
    assert torch.allclose(per_matrix, torch.full((4,), 5 / 8), atol=0.02)  # E[k]/n = (n+1)/(2n)
    # same seed, same routing
    r2 = uniform_k_subset_routing(names, (200, 50), torch.Generator().manual_seed(0))
    assert all(torch.equal(r[n], r2[n]) for n in names)
