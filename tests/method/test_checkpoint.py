"""Checkpoint round trip, and refusal of a different model, a missing file or a corrupted file."""

import json

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from vpd_lite.method.checkpoint import (
    atomic_write_json,
    load_decomposition,
    load_training_state,
    read_component_tensors,
    read_metadata,
    save_decomposition,
    target_fingerprint,
)
from vpd_lite.method.components import ComponentModel
from vpd_lite.method.config import DecomposeConfig

TARGETS = {"*.q_proj": 4, "*.up_proj": 6, "*.down_proj": 6}


def tiny(seed: int) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(vocab_size=40, hidden_size=16, intermediate_size=24, num_hidden_layers=1,
                                        num_attention_heads=2, num_key_value_heads=2)).eval()


@pytest.fixture()
def saved(tmp_path):
    model = tiny(0)
    cm = ComponentModel(model, TARGETS, ci_hidden=5, seed=11)
    with torch.no_grad():
        for p in cm.trainable_parameters():
            p.add_(torch.randn_like(p))
    save_decomposition(cm, tmp_path / "dec", DecomposeConfig(targets=TARGETS, ci_hidden=5),
                       metrics={"l0_mean": 1.5}, history=[{"step": 1, "loss": 2.0}], training_state={"step": 3})
    return cm, model, tmp_path / "dec"


def test_round_trip(saved):
    cm, model, path = saved
    assert sorted(p.name for p in path.iterdir()) == ["components.safetensors", "decomposition.json",
                                                      "history.json", "metrics.json", "training_state.pt"]
    cm2 = load_decomposition(path, model)
    assert cm2.module_names == cm.module_names and cm2.C_per_module == cm.C_per_module
    for a, b in zip(cm.trainable_parameters(), cm2.trainable_parameters()):
        assert torch.equal(a, b)
    ids = torch.randint(0, 40, (2, 5))
    _, inputs = cm.target_logits_and_inputs(ids)
    assert all(torch.equal(cm.causal_importance(inputs)[0][n], cm2.causal_importance(inputs)[0][n])
               for n in cm.module_names)
    meta = read_metadata(path)
    assert meta["config"]["ci_hidden"] == 5 and meta["target_fingerprint"] == target_fingerprint(model, cm.module_names)
    assert json.loads((path / "metrics.json").read_text()) == {"l0_mean": 1.5}
    assert load_training_state(path) == {"step": 3}
    assert not [p for p in path.iterdir() if p.name.endswith(".tmp")]


def test_refuses_a_different_model(saved):
    _, _, path = saved
    with pytest.raises(ValueError, match="different target model"):
        load_decomposition(path, tiny(1))  # same architecture, other weights
    other = LlamaForCausalLM(LlamaConfig(vocab_size=40, hidden_size=8, intermediate_size=24, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2))
    with pytest.raises(ValueError, match="different target model"):
        load_decomposition(path, other)
    from transformers import GPT2Config, GPT2LMHeadModel

    with pytest.raises(ValueError, match="does not fit this model"):
        load_decomposition(path, GPT2LMHeadModel(GPT2Config(vocab_size=40, n_embd=16, n_layer=1, n_head=2)))


def test_refuses_missing_files(saved, tmp_path):
    _, model, path = saved
    with pytest.raises(FileNotFoundError, match="not found"):
        load_decomposition(tmp_path / "nowhere", model)
    (path / "components.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="components.safetensors is missing"):
        load_decomposition(path, model)
    (path / "decomposition.json").unlink()
    with pytest.raises(FileNotFoundError, match="decomposition.json is missing"):
        load_decomposition(path, model)


def test_the_factors_read_without_a_model_are_the_saved_ones(saved):
    cm, _, path = saved
    meta, tensors = read_component_tensors(path)
    assert meta["module_names"] == cm.module_names
    for n in cm.module_names:
        assert torch.equal(tensors[f"comps.{n}.V"], cm.components[n].V.detach())
        assert torch.equal(tensors[f"comps.{n}.U"], cm.components[n].U.detach())


def test_refuses_corrupted_files(saved):
    _, model, path = saved
    blob = bytearray((path / "components.safetensors").read_bytes())
    blob[-3] ^= 0xFF  # flip bits in the last tensor's data
    (path / "components.safetensors").write_bytes(bytes(blob))
    with pytest.raises(ValueError, match="corrupted"):
        load_decomposition(path, model)
    with pytest.raises(ValueError, match="corrupted"):
        read_component_tensors(path)  # without a model too (the atlas reads other decompositions' factors so)
    (path / "decomposition.json").write_text('{"format_version": 1, "module_na')
    with pytest.raises(ValueError, match="corrupted"):
        load_decomposition(path, model)
    atomic_write_json(path / "decomposition.json", {"format_version": 1})
    with pytest.raises(ValueError, match="no 'module_names'"):
        load_decomposition(path, model)
