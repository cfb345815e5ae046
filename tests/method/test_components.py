"""Decomposed layers: hand-computed forwards, exact reconstruction with all masks at 1, routing, restoration."""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from vpd_lite.method.components import ComponentModel, LinearComponents, linear_weight, match_modules

LLAMA_TARGETS = {"*.q_proj": 8, "*.k_proj": 8, "*.v_proj": 8, "*.o_proj": 8, "*.gate_proj": 12,
                 "*.up_proj": 12, "*.down_proj": 12}


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
                                        num_attention_heads=2, num_key_value_heads=2)).eval()


def tiny_gpt2(seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    return GPT2LMHeadModel(GPT2Config(vocab_size=50, n_embd=16, n_layer=2, n_head=2, n_positions=32)).eval()


def test_match_modules_glob_regex_and_errors():
    m = tiny_llama()
    found = match_modules(m, {"model.layers.0.*.q_proj": 3, "re:model\\.layers\\.1\\.mlp\\.(up|down)_proj": 5})
    assert found == {"model.layers.0.self_attn.q_proj": 3, "model.layers.1.mlp.up_proj": 5,
                     "model.layers.1.mlp.down_proj": 5}
    with pytest.raises(ValueError, match="matched no"):
        match_modules(m, {"*.nonexistent": 4})
    with pytest.raises(ValueError, match="C must be >= 1"):
        match_modules(m, {"*.q_proj": 0})


def test_linear_components_forward_by_hand():
    W = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])  # (d_out 3, d_in 2)
    b = torch.tensor([0.5, -0.5, 1.0])
    comp = LinearComponents(W, b, C=2)
    with torch.no_grad():
        comp.V.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))  # V_0 = e0, V_1 = 2 e1
        comp.U.copy_(torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, -1.0]]))
    x = torch.tensor([[2.0, 3.0]])
    mask = torch.tensor([[0.5, 1.0]])
    # a = x V = [2, 6]; y = 0.5*2*U_0 + 1*6*U_1 + b = [1,1,1] + [0,6,-6] + b
    assert torch.allclose(comp(x, mask), torch.tensor([[1.5, 6.5, -4.0]]))
    # sum_c U_c V_c^T = [1,1,1]^T [1,0] + [0,1,-1]^T [0,2]
    assert torch.allclose(comp.component_weight(), torch.tensor([[1.0, 0.0], [1.0, 2.0], [1.0, -2.0]]))
    # delta mask d: + d * x (W - VU^T)^T; with all masks 1 the layer equals the original
    ones = torch.ones(1, 2)
    assert torch.allclose(comp(x, ones, torch.ones(1)), x @ W.T + b)
    d = torch.tensor([0.25])
    expected = comp(x, mask) + 0.25 * (x @ comp.delta().T)
    assert torch.allclose(comp(x, mask, d), expected, atol=1e-6)


def test_routed_forward_matches_dense_where_and_gradients():
    torch.manual_seed(1)
    comp = LinearComponents(torch.randn(5, 4), torch.randn(5), C=6)
    x = torch.randn(3, 7, 4, requires_grad=True)
    mask = torch.rand(3, 7, 6)
    dmask = torch.rand(3, 7)
    route = torch.rand(3, 7) < 0.5
    dense = torch.where(route.unsqueeze(-1), comp(x, mask, dmask), comp.original(x))
    routed = comp.routed_forward(x, mask, route, dmask)
    assert torch.allclose(dense, routed, atol=1e-6)
    gd = torch.autograd.grad(dense.square().sum(), [x, comp.U, comp.V])
    gr = torch.autograd.grad(routed.square().sum(), [x, comp.U, comp.V])
    for a, b in zip(gd, gr):
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("builder,targets", [(tiny_llama, LLAMA_TARGETS), (tiny_gpt2, {"*.c_attn": 20, "*.c_proj": 10, "*.c_fc": 24})])
def test_all_ones_with_delta_reproduces_target_and_model_is_restored(builder, targets):
    model = builder()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    ids = torch.randint(0, 50, (2, 9), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(input_ids=ids).logits
    cm = ComponentModel(model, targets, ci_hidden=4, seed=3)
    assert all(not p.requires_grad for p in model.parameters())
    logits, inputs = cm.target_logits_and_inputs(ids)
    assert torch.allclose(logits, ref)
    B, T = ids.shape
    ones = {n: torch.ones(B, T, C) for n, C in cm.C_per_module.items()}
    dones = {n: torch.ones(B, T) for n in cm.module_names}
    with torch.no_grad():
        out = cm.forward_with_masks(ids, ones, delta_masks=dones)
        routed = cm.forward_with_masks(ids, ones, routing={n: torch.rand(B, T) < 0.5 for n in cm.module_names},
                                       delta_masks=dones)
        # random components without delta are NOT the target: the masks really are applied
        no_delta = cm.forward_with_masks(ids, ones)
    assert torch.allclose(out, ref, atol=1e-5)
    assert torch.allclose(routed, ref, atol=1e-5)
    assert not torch.allclose(no_delta, ref, atol=1e-3)
    # restored: no instance-level forward left, same outputs, unchanged weights
    for name in cm.module_names:
        assert "forward" not in cm._modules_by_name[name].__dict__
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, ref)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_conv1d_weight_is_transposed_and_inputs_cached():
    model = tiny_gpt2()
    cm = ComponentModel(model, {"transformer.h.0.mlp.c_fc": 8})
    conv = model.transformer.h[0].mlp.c_fc
    w, _ = linear_weight(conv)
    assert w.shape == (conv.nf, 16) and torch.equal(w, conv.weight.T)
    ids = torch.randint(0, 50, (2, 5))
    _, inputs = cm.target_logits_and_inputs(ids)
    x = inputs["transformer.h.0.mlp.c_fc"]
    assert x.shape == (2, 5, 16)
    assert torch.allclose(conv(x), x @ w.T + conv.bias, atol=1e-6)


def test_masked_restores_forward_even_on_error():
    model = tiny_llama()
    cm = ComponentModel(model, {"*.q_proj": 4}, ci_hidden=4)
    ids = torch.randint(0, 50, (1, 4))
    bad = {"model.layers.0.self_attn.q_proj": torch.ones(1, 4, 3)}  # wrong C -> shape error inside
    with pytest.raises(RuntimeError):
        cm.forward_with_masks(ids, bad)
    assert "forward" not in model.model.layers[0].self_attn.q_proj.__dict__
    with pytest.raises(KeyError, match="not decomposed"):
        cm.forward_with_masks(ids, {"model.layers.0.mlp.up_proj": torch.ones(1, 4, 4)})


def test_causal_importance_shapes_and_ranges():
    model = tiny_llama()
    for ci_type in ("shared_mlp", "mlp"):
        cm = ComponentModel(model, LLAMA_TARGETS, ci_type=ci_type, ci_hidden=4)
        _, inputs = cm.target_logits_and_inputs(torch.randint(0, 50, (2, 6)))
        lower, upper = cm.causal_importance(inputs)
        for n, C in cm.C_per_module.items():
            assert lower[n].shape == (2, 6, C) and upper[n].shape == (2, 6, C)
            assert lower[n].min() >= 0 and lower[n].max() <= 1
            assert (upper[n] >= lower[n] - 1e-7).all()
    with pytest.raises(ValueError, match="unknown ci_type"):
        ComponentModel(model, LLAMA_TARGETS, ci_type="transformer")


@pytest.mark.parametrize("builder, targets", [(tiny_llama, LLAMA_TARGETS), (tiny_gpt2, {"*.c_attn": 8, "*.c_fc": 12})])
def test_final_hidden_feeds_the_head_to_the_same_logits(builder, targets):
    cm = ComponentModel(builder(), targets, seed=0)
    head = cm.output_head()
    assert head is cm.model.get_output_embeddings()
    ids = torch.randint(0, 50, (2, 7), generator=torch.Generator().manual_seed(1))
    masks = {n: torch.rand(2, 7, C, generator=torch.Generator().manual_seed(2)) for n, C in cm.C_per_module.items()}
    with torch.no_grad():
        hidden = cm.final_hidden_with_masks(ids, masks)
        logits = cm.forward_with_masks(ids, masks)
    assert hidden.shape == (2, 7, 16)
    assert torch.allclose(head(hidden), logits, atol=1e-5)
    assert "forward" not in head.__dict__  # the head is restored


class _ScaledLogits(torch.nn.Module):
    """A causal LM whose logits are 2 * head(hidden): the blockwise head path must not be used for it."""

    def __init__(self) -> None:
        super().__init__()
        self.inner = tiny_llama()

    def get_output_embeddings(self) -> torch.nn.Module:
        return self.inner.lm_head

    def forward(self, input_ids, use_cache=False):
        out = self.inner(input_ids=input_ids, use_cache=use_cache)
        out.logits = 2 * out.logits
        return out


def test_output_head_is_none_when_logits_are_not_the_plain_head():
    cm = ComponentModel(_ScaledLogits(), {"*.q_proj": 4}, seed=0)
    assert cm.output_head() is None
    with pytest.raises(RuntimeError, match="forward_with_masks"):
        cm.final_hidden_with_masks(torch.zeros(1, 3, dtype=torch.long), {})
    decomposed_head = ComponentModel(tiny_llama(), {"lm_head": 4, "*.q_proj": 4}, seed=0)
    assert decomposed_head.output_head() is None  # a decomposed head is never bypassed


def test_train_mode_never_reaches_the_frozen_target():
    """decompose() calls cm.train(); GPT-2's dropout (0.1) must stay off in the target, or its outputs -- the
    reconstruction target -- would be noisy and the all-ones model could never match them."""
    cm = ComponentModel(tiny_gpt2().train(), {"*.c_fc": 8}, seed=0)
    assert not cm.model.training  # a target handed over in train mode is put in eval mode
    cm.train()
    assert cm.training and cm.cis.training and not cm.model.training
    assert not any(m.training for m in cm.model.modules())
    ids = torch.randint(0, 50, (2, 9), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        assert torch.equal(cm.model(ids).logits, cm.model(ids).logits)
    assert cm.output_head() is not None
