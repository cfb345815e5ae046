"""The whole pipeline on tiny random-init GPT-2 (Conv1D), GPT-NeoX (Pythia) and Llama models.

For each architecture: pick the matrices with ``default_targets``, decompose a few steps, save, load (and refuse
a different model), evaluate, harvest + label, apply a single-scalar edit, and train a LoRA baseline.
"""

from __future__ import annotations

import pytest
import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
)

from vpd_lite.erase.baselines import LORA_METHODS, train_lora
from vpd_lite.erase.edits import ScalarEdit, component_directions, select_target_tokens, uniform_ce
from vpd_lite.interpret.harvest import harvest
from vpd_lite.interpret.labels import label_components
from vpd_lite.interpret.statistics import live_components
from vpd_lite.method.checkpoint import load_decomposition, save_decomposition
from vpd_lite.method.components import linear_weight
from vpd_lite.method.config import DecomposeConfig
from vpd_lite.method.decompose import decompose
from vpd_lite.method.evaluate import evaluate_decomposition
from vpd_lite.method.pgd import PGDConfig
from vpd_lite.models.architectures import ATTENTION_AND_MLP, default_targets

VOCAB, SEQ = 64, 16


def _tiny(arch: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    if arch == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=32, n_embd=16, n_layer=2, n_head=2))
    elif arch == "gpt_neox":
        model = GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=VOCAB, hidden_size=16, num_hidden_layers=2,
                                                 num_attention_heads=2, intermediate_size=32,
                                                 max_position_embeddings=32))
    elif arch == "llama":
        model = LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=16, intermediate_size=32,
                                             num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                             max_position_embeddings=32))
    else:
        raise ValueError(arch)
    return model.eval()


def _batches(n: int = 4, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, VOCAB, (2, SEQ), generator=g) for _ in range(n)]


ARCHS = ["gpt2", "gpt_neox", "llama"]


@pytest.mark.parametrize("arch", ARCHS)
def test_default_targets_cover_every_attention_and_mlp_matrix(arch):
    model = _tiny(arch)
    targets = default_targets(model, c_per_rank=2.0)
    assert list(targets) == list(ATTENTION_AND_MLP[arch])
    modules = dict(model.named_modules())
    for pattern, C in targets.items():
        assert C % 8 == 0
        name = next(n for n in modules if n.endswith(pattern.lstrip("*")))
        d_out, d_in = linear_weight(modules[name])[0].shape
        assert C >= 2 * min(d_out, d_in)


def test_default_targets_rejects_unknown_architecture():
    model = torch.nn.Linear(3, 3)
    with pytest.raises(ValueError, match="model_type"):
        default_targets(model)


@pytest.mark.parametrize("arch", ARCHS)
def test_pipeline_runs_on_architecture(arch, tmp_path):
    model = _tiny(arch)
    config = DecomposeConfig.quick(targets=default_targets(model, c_per_rank=1.0), steps=4, batch_size=2,
                                   seq_len=SEQ, faithfulness_warmup_steps=20, ci_hidden=8)
    batches = _batches()
    cm, history = decompose(model, batches, config, progress=False)
    assert history and len(cm.module_names) == 2 * len(ATTENTION_AND_MLP[arch])

    # save / load round trip: the loaded decomposition computes the same masked logits
    save_decomposition(cm, tmp_path / "dec", config)
    loaded = load_decomposition(tmp_path / "dec", model)
    ids = batches[0]
    _, inputs = cm.target_logits_and_inputs(ids)
    ci, _ = cm.causal_importance(inputs)
    ci2, _ = loaded.causal_importance(loaded.target_logits_and_inputs(ids)[1])
    for n in cm.module_names:
        torch.testing.assert_close(ci[n], ci2[n])
    torch.testing.assert_close(cm.forward_with_masks(ids, ci), loaded.forward_with_masks(ids, ci2))
    with pytest.raises(Exception, match="(?i)fingerprint|different|mismatch"):
        load_decomposition(tmp_path / "dec", _tiny(arch, seed=1))

    # evaluation
    metrics = evaluate_decomposition(cm, batches[:1], pgd=PGDConfig(n_steps=2), progress=False)
    assert metrics["ce"]["target"] > 0 and set(metrics["l0"]) == set(cm.module_names)

    # harvest + offline labels
    stats = harvest(cm, {"en": torch.cat(batches[:2]), "de": torch.cat(batches[2:])}, threshold=0.0,
                    progress=False)
    live = live_components(stats)
    assert live, "a freshly decomposed tiny model should have components with CI > 0"
    labels = label_components(stats, None, components=live[:3])
    assert len(labels) == 3 and all(lbl.label for lbl in labels)

    # single-scalar edit: s = 0 removes exactly the component's contribution from the layer's weight
    module, c = live[0]
    (direction,) = component_directions(cm, [(module, c)])
    layer = dict(model.named_modules())[module]
    x = torch.randn(3, linear_weight(layer)[0].shape[1])
    with torch.no_grad():
        before = layer(x)
        with ScalarEdit(model, [direction]) as edit:
            edit.set_scales(0.0)
            after = layer(x)
    expected = before - (x @ direction.v)[:, None] * direction.u[None, :]
    torch.testing.assert_close(after, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(layer(x), before)  # removed again

    # LoRA baseline localised to the component's matrix trains and lowers the objective
    tokens, mask = select_target_tokens(torch.cat(batches), budget=8)
    peft_model, hist = train_lora(model, LORA_METHODS["lora_r1_local"], cm.module_names, tokens, mask,
                                  edited_module=module)
    assert hist[-1] < hist[0]
    with torch.no_grad():
        assert float(uniform_ce(peft_model(input_ids=tokens).logits, mask)) < hist[0]
