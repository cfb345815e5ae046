"""peft LoRA baselines: only LoRA parameters train, the base model is untouched, the budget is respected."""

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from vpd_lite.erase.baselines import (
    LORA_METHODS,
    LoraTrainConfig,
    TrainedLora,
    lora_model,
    lora_parameters,
    train_lora,
)
from vpd_lite.erase.edits import select_target_tokens, uniform_ce

VOCAB = 64
MODULES = [f"model.layers.{i}.{m}" for i in range(2)
           for m in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                     "mlp.up_proj", "mlp.down_proj")]


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64)
    return LlamaForCausalLM(cfg).eval()


BLOCKS = torch.randint(0, VOCAB, (6, 16), generator=torch.Generator().manual_seed(0))


def test_lora_model_starts_equal_and_leaves_the_base_alone():
    model = tiny_llama()
    x = BLOCKS[:2]
    with torch.no_grad():
        base = model(input_ids=x).logits
        wrapped = lora_model(model, MODULES[:3], rank=4, seed=0)
        torch.testing.assert_close(wrapped(input_ids=x).logits, base)
    assert not any("lora" in n for n, _ in model.named_parameters())  # a copy was wrapped
    trainable = {n for n, p in wrapped.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert len(lora_parameters(wrapped)) == 2 * 3
    a = lora_parameters(lora_model(model, MODULES[:1], 1, seed=0))[0]
    b = lora_parameters(lora_model(model, MODULES[:1], 1, seed=1))[0]
    c = lora_parameters(lora_model(model, MODULES[:1], 1, seed=0))[0]
    assert torch.equal(a, c) and not torch.equal(a, b)


@pytest.mark.parametrize("name", sorted(LORA_METHODS))
def test_each_baseline_trains_only_lora_params_and_lowers_the_objective(name):
    spec = LORA_METHODS[name]
    model = tiny_llama()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tokens, mask = select_target_tokens(BLOCKS, 16, seed=0)
    peft_model, hist = train_lora(model, spec, MODULES, tokens, mask, edited_module=MODULES[4], seed=0,
                                  config=LoraTrainConfig(steps=25, lr=1e-2))
    assert hist[-1] < hist[0]
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    base_weights = {n: p for n, p in peft_model.named_parameters() if "lora_" not in n}
    for n, p in base_weights.items():
        key = n.removeprefix("base_model.model.").replace(".base_layer", "")
        assert torch.equal(p, before[key]), n  # frozen base weights did not move
    wrapped = {n.split(".lora_")[0].removeprefix("base_model.model.") for n, _ in peft_model.named_parameters()
               if "lora_A" in n}
    assert wrapped == ({MODULES[4]} if spec.local else set(MODULES))
    ranks = {p.shape[0] for n, p in peft_model.named_parameters() if "lora_A" in n}
    assert ranks == {spec.rank}


@pytest.mark.parametrize("name", sorted(LORA_METHODS))
def test_trained_lora_rewrapped_computes_exactly_what_the_trained_model_did(name):
    model = tiny_llama()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    tokens, mask = select_target_tokens(BLOCKS, 16, seed=0)
    peft_model, _ = train_lora(model, LORA_METHODS[name], MODULES, tokens, mask, edited_module=MODULES[4], seed=3,
                               config=LoraTrainConfig(steps=5, lr=1e-2))
    kept = TrainedLora.of(peft_model)
    assert kept.n_params == sum(p.numel() for p in lora_parameters(peft_model))
    again = kept.wrap(model)
    with torch.no_grad():
        assert torch.equal(again(input_ids=BLOCKS).logits, peft_model(input_ids=BLOCKS).logits)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="do not fit"):
        TrainedLora(kept.targets, kept.rank + 1, kept.lora).wrap(model)


def test_only_budgeted_positions_enter_the_objective():
    """Text after the last budgeted target of a block does not change the objective; text before it does."""
    model = tiny_llama()
    tokens, mask = select_target_tokens(BLOCKS, 20, seed=0)  # blocks of 16: 15 targets + 5 targets
    assert mask.sum(1).tolist() == [15, 5] and int(mask.sum()) == 20
    after, inside = tokens.clone(), tokens.clone()
    after[1, 6:] = (after[1, 6:] + 1) % VOCAB  # beyond token 5, the last target of row 1
    inside[1, 3] = (inside[1, 3] + 1) % VOCAB
    with torch.no_grad():
        l0, l1, l2 = (float(uniform_ce(model(input_ids=t).logits, mask)) for t in (tokens, after, inside))
    assert l1 == pytest.approx(l0, abs=1e-6)
    assert abs(l2 - l0) > 1e-6


def test_local_lora_needs_the_edited_module_and_bad_targets_raise():
    model = tiny_llama()
    tokens, mask = select_target_tokens(BLOCKS, 4, seed=0)
    with pytest.raises(ValueError, match="edited_module"):
        train_lora(model, LORA_METHODS["lora_r1_local"], MODULES, tokens, mask)
    with pytest.raises(KeyError, match="model.nope"):
        lora_model(model, ["model.nope"], 1)
    with pytest.raises(ValueError, match="rank"):
        lora_model(model, MODULES[:1], 0)


def test_lr_sweep_keeps_the_lr_with_the_lowest_training_objective():
    from vpd_lite.erase.baselines import train_lora_lr_sweep
    from vpd_lite.erase.edits import objective_on_all

    model = tiny_llama()
    sets = [select_target_tokens(BLOCKS, 4, seed=s) for s in (0, 1)]
    cfg = LoraTrainConfig(steps=10, objective="target_ce", batch_rows=None)
    lr, scores, models = train_lora_lr_sweep(model, LORA_METHODS["lora_r1_all"], MODULES, sets, [1e-4, 3e-2],
                                             seeds=[0, 1], config=cfg)
    assert set(scores) == {1e-4, 3e-2} and scores[lr] == min(scores.values()) and len(models) == 2
    mean = sum(objective_on_all(m, t, k, "target_ce") for m, (t, k) in zip(models, sets)) / 2
    assert mean == pytest.approx(scores[lr], rel=1e-6)
