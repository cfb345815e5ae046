"""Float dtypes x functions: decompose, evaluate, harvest, edits and save/load on float32, float64 and bfloat16
targets on the CPU; a model moved to another dtype after wrapping; position limits; sequences with nothing to
predict."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from vpd_lite.erase.edits import ScalarEdit, component_directions
from vpd_lite.interpret.harvest import harvest
from vpd_lite.method.checkpoint import load_decomposition, save_decomposition
from vpd_lite.method.components import ComponentModel
from vpd_lite.method.config import DecomposeConfig
from vpd_lite.method.cross_entropy import next_token_ce
from vpd_lite.method.decompose import decompose
from vpd_lite.method.evaluate import evaluate_decomposition
from vpd_lite.method.pgd import PGDConfig

VOCAB, SEQ = 64, 8
DTYPES = [torch.float32, torch.float64, torch.bfloat16]
TARGETS = {"*.self_attn.q_proj": 4, "*.mlp.up_proj": 6, "*.mlp.down_proj": 6}


def _llama(dtype: torch.dtype, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                         max_position_embeddings=32))
    return model.to(dtype).eval()


def _gpt2(n_positions: int = 32) -> torch.nn.Module:
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_positions=n_positions, n_embd=16, n_layer=1,
                                      n_head=2)).eval()


def _batches(n: int = 3, T: int = SEQ) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.randint(0, VOCAB, (2, T), generator=g) for _ in range(n)]


def _config(**kw) -> DecomposeConfig:
    base = dict(targets=TARGETS, steps=3, batch_size=2, seq_len=SEQ, faithfulness_warmup_steps=5, ci_hidden=8,
                checkpoint_every=0, log_every=1, device="cpu", ci_global_d_model=16, ci_global_blocks=1,
                ci_global_heads=2, ci_global_mlp_ratio=2)
    return DecomposeConfig(**(base | kw))


@pytest.fixture(scope="module", params=DTYPES, ids=lambda d: str(d).replace("torch.", ""))
def decomposed(request):
    dtype = request.param
    model = _llama(dtype)
    cm, history = decompose(model, _batches(), _config(), progress=False)
    return dtype, model, cm, history


def test_decompose_trains_in_every_dtype(decomposed):
    dtype, model, cm, history = decomposed
    rows = [r for r in history if "stochastic_recon" in r]
    assert len(rows) == 3 and all(math.isfinite(r[k]) for r in rows for k in ("stochastic_recon", "minimality"))
    assert next(model.parameters()).dtype == dtype  # the target is never converted
    expected = torch.float64 if dtype == torch.float64 else torch.float32  # trainable factors: never bf16
    assert all(c.V.dtype == expected and c.U.dtype == expected for c in cm.components.values())


def test_evaluate_in_every_dtype(decomposed):
    dtype, _, cm, _ = decomposed
    m = evaluate_decomposition(cm, _batches(1), pgd=PGDConfig(n_steps=2), progress=False)
    assert all(math.isfinite(v) for v in m["ce"].values()) and all(math.isfinite(v) for v in m["kl"].values())
    # all components plus the delta reproduce the target: KL ~ 0 (bf16 rounding allows a little)
    assert m["kl"]["all_ones_delta"] < (1e-2 if dtype == torch.bfloat16 else 1e-5)


def test_harvest_in_every_dtype(decomposed):
    _, _, cm, _ = decomposed
    b = _batches(2)
    stats = harvest(cm, {"en": b[0], "de": b[1]}, threshold=0.0, progress=False)
    assert stats is not None


def test_scalar_edit_in_every_dtype(decomposed):
    dtype, model, cm, _ = decomposed
    name = cm.module_names[0]
    (direction,) = component_directions(cm, [(name, 0)])
    ids = _batches(1)[0]
    with torch.no_grad():
        before = model(input_ids=ids).logits
        with ScalarEdit(model, [direction]) as edit:
            edit.set_scales(0.0)
            after = model(input_ids=ids).logits
        again = model(input_ids=ids).logits
    assert after.dtype == dtype and torch.isfinite(after.float()).all()
    torch.testing.assert_close(again, before)  # the edit is gone again


def test_save_load_in_every_dtype(decomposed, tmp_path):
    dtype, model, cm, _ = decomposed
    save_decomposition(cm, tmp_path / "dec", _config())
    loaded = load_decomposition(tmp_path / "dec", model)
    ids = _batches(1)[0]
    ci, _ = cm.causal_importance(cm.target_output_and_inputs(ids)[1])
    ci2, _ = loaded.causal_importance(loaded.target_output_and_inputs(ids)[1])
    for n in cm.module_names:
        torch.testing.assert_close(ci2[n], ci[n])
    with torch.no_grad():
        torch.testing.assert_close(loaded.forward_with_masks(ids, ci2), cm.forward_with_masks(ids, ci))


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16], ids=["float64", "bfloat16"])
def test_model_moved_after_wrapping_is_followed(dtype):
    """A ComponentModel built on a float32 GPT-2 whose model is then moved with .to(dtype): the frozen weights
    are read from the model, so all components + delta still reproduce the target's logits."""
    model = _gpt2()
    cm = ComponentModel(model, {"*.mlp.c_fc": 8, "*.attn.c_proj": 8}, ci_hidden=8)
    model.to(dtype)
    ids = _batches(1)[0]
    logits, inputs = cm.target_output_and_inputs(ids)
    assert logits.dtype == dtype
    ones = {n: torch.ones(2, SEQ, cm.C_per_module[n]) for n in cm.module_names}
    dones = {n: torch.ones(2, SEQ) for n in cm.module_names}
    with torch.no_grad():
        out = cm.forward_with_masks(ids, ones, delta_masks=dones)
    assert out.dtype == dtype
    tol = dict(rtol=5e-2, atol=5e-2) if dtype == torch.bfloat16 else dict(rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(out, logits, **tol)
    ci, _ = cm.causal_importance(inputs)
    assert all(torch.isfinite(g).all() for g in ci.values())


def test_sequences_longer_than_the_position_limit_are_refused_before_any_work():
    model = _gpt2(n_positions=32)
    with pytest.raises(ValueError, match="position limit of 32"):
        decompose(model, _batches(T=40), _config(targets={"*.mlp.c_fc": 4}, seq_len=40,
                                                 faithfulness_warmup_steps=10**9), progress=False)
    cm = ComponentModel(model, {"*.mlp.c_fc": 4})
    with pytest.raises(ValueError, match="position limit"):
        evaluate_decomposition(cm, _batches(1, T=40), progress=False)


def test_sequences_with_nothing_to_predict_are_refused():
    model = _llama(torch.float32)
    cm = ComponentModel(model, TARGETS, ci_hidden=8)
    one = torch.zeros(2, 1, dtype=torch.long)
    with pytest.raises(ValueError, match="nothing to predict"):
        evaluate_decomposition(cm, [one], progress=False)
    with pytest.raises(ValueError, match="nothing to predict"):
        next_token_ce(torch.zeros(2, 1, VOCAB), one)
