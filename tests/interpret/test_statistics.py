"""Tests of vpd_lite.interpret.statistics: hand-computed statistics, accumulation, save/load, specificity and ablation."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from vpd_lite.interpret.ablation import ablation_effect, ablation_effects, component_removed
from vpd_lite.interpret.ids import component_key, context_key, parse_component_id, position_bucket
from vpd_lite.interpret.statistics import (
    ComponentStats,
    StatsAccumulator,
    language_specificity,
    live_components,
    proportional_quota,
)
from vpd_lite.method.cross_entropy import lm_cross_entropy

# One module "m" with C = 2 components; one block of T = 4 tokens per language.
CI_EN = torch.tensor([[[0.0, 0.5], [0.2, 0.05], [0.9, 0.0], [0.1, 0.3]]])  # (1, 4, 2)
IDS_EN = torch.tensor([[5, 6, 7, 8]])
ACT_EN = torch.tensor([[[1.0, -1.0], [-2.0, -3.0], [-4.0, 5.0], [6.0, 7.0]]])
CI_DE = torch.tensor([[[0.0, 0.0], [0.0, 0.6], [0.0, 0.7], [0.0, 0.0]]])
IDS_DE = torch.tensor([[9, 6, 6, 2]])
ACT_DE = torch.tensor([[[0.0, 0.0], [0.0, 2.0], [0.0, 3.0], [0.0, 0.0]]])


def hand_stats(top_k: int = 2) -> ComponentStats:
    acc = StatsAccumulator({"m": 2}, ["en", "de"], threshold=0.1, top_k=top_k, context_left=1, context_right=1, n_bins=10)
    acc.update("en", IDS_EN, {"m": CI_EN}, {"m": ACT_EN})
    acc.update("de", IDS_DE, {"m": CI_DE}, {"m": ACT_DE})
    return acc.finalize({"source": "hand"})


def test_component_id_round_trip_and_errors():
    cid = ("model.layers.0.mlp.up_proj", 17)
    assert component_key(cid) == "model.layers.0.mlp.up_proj:17"
    assert parse_component_id(component_key(cid)) == cid
    assert parse_component_id(("a.b", "3")) == ("a.b", 3)
    for bad in ["noindex", "mod:", ":3", "mod:x", "mod:-1"]:
        with pytest.raises(ValueError):
            parse_component_id(bad)


def test_position_bucket():
    pos = torch.tensor([0, 1, 2, 3, 4, 7, 8, 127, 128, 1000])
    assert position_bucket(pos).tolist() == [0, 1, 2, 2, 3, 3, 4, 7, 8, 8]


def test_hand_computed_counts_rates_and_histogram():
    s = hand_stats()
    assert s.tokens_per_lang == {"en": 4, "de": 4}
    # comp 0 fires on en t=1 (0.2) and t=2 (0.9); 0.1 is not above the threshold. comp 1: en t=0, t=3; de t=1, t=2.
    assert s.fire_counts["m"].tolist() == [[2, 2], [0, 2]]
    assert torch.allclose(s.firing_rate("m"), torch.tensor([[0.5, 0.5], [0.0, 0.5]], dtype=torch.float64))
    assert torch.allclose(s.firing_frequency("m"), torch.tensor([0.25, 0.5], dtype=torch.float64))
    assert torch.allclose(s.mean_ci("m"), torch.tensor([1.2 / 8, 2.15 / 8], dtype=torch.float64), atol=1e-6)
    # CI histogram, 10 bins on [0, 1]: comp 0 has five zeros, 0.1 -> bin 1, 0.2 -> bin 2, 0.9 -> bin 9
    assert s.ci_hist["m"][0].tolist() == [5, 1, 1, 0, 0, 0, 0, 0, 0, 1]
    assert s.ci_hist["m"].sum(1).tolist() == [8, 8]
    # positions: comp 0 fires at t=1 (bucket 1) and t=2 (bucket 2); comp 1 at t=0, 3 (en) and 1, 2 (de)
    assert s.pos_fire["m"][0, :3].tolist() == [0, 1, 1]
    assert s.pos_fire["m"][1, :3].tolist() == [1, 1, 2]
    assert s.language_profile(("m", 1)) == {"en": 0.5, "de": 0.5}
    assert s.language_profile(("m", 0)) == {"en": 1.0, "de": 0.0}


def test_activation_sign_and_mean():
    s = hand_stats()
    # comp 0 fires with activations -2, -4; comp 1 with -1, 7, 2, 3
    assert s.activation_sign(("m", 0)) == -1
    assert s.mean_activation(("m", 0)) == pytest.approx(-3.0)
    assert s.activation_sign(("m", 1)) == 1
    assert s.mean_activation(("m", 1)) == pytest.approx(11 / 4)


def test_top_tokens_and_contexts():
    s = hand_stats(top_k=3)
    assert s.top_tokens(("m", 1)) == [(6, 2), (5, 1), (8, 1)]
    assert s.top_tokens(("m", 0)) == [(6, 1), (7, 1)]
    ctx = s.contexts(("m", 0))
    # comp 0 fires in one block only: one context (one per block), at its best firing token; windows are 1 + 1 + 1
    assert [c.score for c in ctx] == pytest.approx([0.9])
    assert ctx[0].tokens == [6, 7, 8] and ctx[0].centre == 1 and ctx[0].lang == "en" and ctx[0].position == 2
    assert ctx[0].ci == pytest.approx([0.2, 0.9, 0.1], abs=1e-3)
    # comp 1 fires half on en, half on de (by rate): one context from each language's block, best first
    top1 = s.contexts(("m", 1))
    assert [c.lang for c in top1] == ["de", "en"]
    assert top1[0].tokens == [6, 6, 2] and top1[0].position == 2
    assert top1[1].tokens == [5, 6] and top1[1].centre == 0  # t=0: nothing to the left


def test_context_ties_at_ci_one_are_broken_by_activation():
    ci = torch.ones(1, 6, 1)
    acts = torch.tensor([0.5, -0.2, 3.0, -7.0, 1.0, 2.0]).reshape(1, 6, 1)
    acc = StatsAccumulator({"m": 1}, ["en"], top_k=3, context_left=0, context_right=0)
    acc.update("en", torch.arange(6).reshape(1, 6), {"m": ci}, {"m": acts})
    (ctx,) = acc.finalize().contexts(("m", 0))
    assert ctx.position == 3 and ctx.score == pytest.approx(1.0)  # |-7| is the largest activation
    key = context_key(torch.tensor([0.5, 0.5, 0.5000001]), torch.tensor([0.0, 100.0, 0.0]))
    assert key.argsort().tolist() == [0, 1, 2]  # activation only breaks exact CI ties


def test_contexts_one_per_block_no_duplicate_windows():
    ids = torch.tensor([[1, 2, 3, 4], [1, 2, 3, 4], [5, 6, 7, 8]])  # blocks 0 and 1 hold the same text
    ci = torch.zeros(3, 4, 1)
    ci[:, 1] = 0.9
    ci[:, 2] = 0.8
    acc = StatsAccumulator({"m": 1}, ["en"], top_k=5, context_left=1, context_right=1)
    acc.update("en", ids, {"m": ci})
    ctx = acc.finalize().contexts(("m", 0))
    assert sorted(tuple(c.tokens) for c in ctx) == [(1, 2, 3), (5, 6, 7)]
    assert all(c.position == 1 for c in ctx)
    # the same window in two languages (a URL, a command name) is shown once
    acc = StatsAccumulator({"m": 1}, ["en", "de"], top_k=5, context_left=1, context_right=1)
    acc.update("en", ids[:1], {"m": ci[:1]})
    acc.update("de", ids[:1], {"m": ci[:1] * 0.9})
    ctx = acc.finalize().contexts(("m", 0))
    assert [(tuple(c.tokens), c.lang) for c in ctx] == [((1, 2, 3), "en")]


def test_contexts_follow_the_language_profile():
    """A component that fires mostly on German shows mostly German contexts, even when every CI is 1 and the
    other language's tokens come later (the old top-k kept whichever ties it met last)."""
    de = torch.zeros(19, 8, 1)
    de[:, 3] = 1.0  # fires once in each of 19 German blocks
    it = torch.ones(10, 8, 1)  # fires everywhere in 10 Italian blocks: 80 tokens against 19
    acc = StatsAccumulator({"m": 1}, ["de", "it"], top_k=10)
    acc.update("de", torch.arange(19 * 8).reshape(19, 8) % 50, {"m": de})
    acc.update("it", torch.arange(80).reshape(10, 8) % 50 + 50, {"m": it})
    s = acc.finalize()
    # firing rate: de 19/152 = 0.125, it 80/80 = 1 -> it share 0.89: about 9 of 10 contexts Italian
    assert [c.lang for c in s.contexts(("m", 0))].count("it") == 9
    acc2 = StatsAccumulator({"m": 1}, ["de", "it"], top_k=10)
    de2 = torch.ones(19, 8, 1)
    it2 = torch.zeros(10, 8, 1)
    it2[0, 0] = 1.0
    acc2.update("de", torch.arange(19 * 8).reshape(19, 8) % 50, {"m": de2})
    acc2.update("it", torch.arange(80).reshape(10, 8) % 50 + 50, {"m": it2})
    langs = [c.lang for c in acc2.finalize().contexts(("m", 0))]
    assert langs.count("de") >= 9 and len(langs) == 10


def test_proportional_quota():
    assert proportional_quota([0.5, 0.5], [10, 10], 4) == [2, 2]
    assert proportional_quota([0.98, 0.02], [30, 30], 20) == [20, 0]
    assert proportional_quota([0.9, 0.1], [30, 30], 20) == [18, 2]
    assert proportional_quota([0.5, 0.5], [1, 10], 4) == [1, 1]  # short group: the mix stays proportional
    assert proportional_quota([0.0, 1.0], [5, 0], 4) == [0, 0]
    assert proportional_quota([0.0, 0.0], [5, 5], 4) == [0, 0]
    assert sum(proportional_quota([0.3, 0.3, 0.4], [9, 9, 9], 7)) == 7


def test_dead_component_has_no_contexts_and_is_not_live():
    acc = StatsAccumulator({"m": 3}, ["en"], threshold=0.1, top_k=2)
    ci = torch.zeros(2, 5, 3)
    ci[0, 1, 0] = 0.8
    ci[1, 4, 2] = 0.05  # below threshold: never fires, but CI > 0
    acc.update("en", torch.arange(10).reshape(2, 5), {"m": ci})
    s = acc.finalize()
    assert live_components(s) == [("m", 0)]
    assert s.contexts(("m", 1)) == [] and s.contexts(("m", 2)) == []
    assert s.activation_sign(("m", 1)) == 0
    assert s.ctx_tokens["m"].shape[0] == 1  # only the live component keeps context rows


def test_batches_accumulate_like_one_batch():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 50, (6, 16), generator=g)
    ci = {"a": torch.rand(6, 16, 4, generator=g) ** 3, "b": torch.rand(6, 16, 3, generator=g) ** 3}
    acts = {k: torch.randn(v.shape, generator=g) for k, v in ci.items()}
    whole = StatsAccumulator({"a": 4, "b": 3}, ["en"], top_k=5)
    whole.update("en", ids, ci, acts)
    parts = StatsAccumulator({"a": 4, "b": 3}, ["en"], top_k=5)
    for sl in (slice(0, 2), slice(2, 5), slice(5, 6)):
        parts.update("en", ids[sl], {k: v[sl] for k, v in ci.items()}, {k: v[sl] for k, v in acts.items()})
    s1, s2 = whole.finalize(), parts.finalize()
    for m in ("a", "b"):
        for name in ComponentStats._PER_MODULE:
            if name != "ctx_pos":  # same scores; positions too except for exact CI ties (none with random CI)
                assert torch.allclose(getattr(s1, name)[m].double(), getattr(s2, name)[m].double(), atol=1e-6), (m, name)
    assert torch.equal(s1.token_freq, s2.token_freq)


def test_accumulator_rejects_bad_input():
    acc = StatsAccumulator({"m": 2}, ["en"])
    with pytest.raises(KeyError, match="'xx'"):
        acc.update("xx", IDS_EN, {"m": CI_EN})
    with pytest.raises(ValueError, match="shape"):
        acc.update("en", IDS_EN, {"m": CI_EN[..., :1]})
    with pytest.raises(KeyError, match="'m'"):
        acc.update("en", IDS_EN, {"other": CI_EN})
    with pytest.raises(ValueError, match="threshold"):
        StatsAccumulator({"m": 2}, ["en"], threshold=1.5)


def test_save_load_round_trip(tmp_path):
    s = hand_stats(top_k=3)
    path = s.save(tmp_path / "sub" / "stats.safetensors")
    t = ComponentStats.load(path)
    assert t.modules == s.modules and t.langs == s.langs and t.meta == {"source": "hand"}
    assert t.tokens_per_lang == s.tokens_per_lang and t.threshold == s.threshold
    for name in ComponentStats._PER_MODULE:
        assert torch.equal(getattr(t, name)["m"], getattr(s, name)["m"]), name
    assert t.contexts(("m", 0)) == s.contexts(("m", 0))
    assert list(tmp_path.joinpath("sub").iterdir()) == [path]  # no temp files left behind


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        ComponentStats.load(tmp_path / "missing.safetensors")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(ValueError, match="not a readable"):
        ComponentStats.load(bad)
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"x": torch.zeros(2)}, str(foreign))
    with pytest.raises(ValueError, match="no vpd-lite"):
        ComponentStats.load(foreign)


def test_language_specificity_ranks_and_filters():
    s = hand_stats()
    ranked = language_specificity(s, "de", min_fires=1, min_rate=0.0)
    assert ranked == [(("m", 1), pytest.approx(0.5)), (("m", 0), 0.0)]
    ranked_en = dict(language_specificity(s, "en", min_fires=1, min_rate=0.0))
    assert ranked_en[("m", 0)] == pytest.approx(1.0) and ranked_en[("m", 1)] == pytest.approx(0.5)
    # comp 0 fires on only 2 English tokens: with min_fires=3 it is too rare to be scored
    assert dict(language_specificity(s, "en", min_fires=3, min_rate=0.0))[("m", 0)] == 0.0
    with pytest.raises(KeyError, match="'fr'"):
        language_specificity(s, "fr")


def test_specificity_corrects_for_amount_of_text():
    # comp 0 fires on 10 of 100 English tokens and 10 of 20 German tokens: equal counts, German rate 5x higher
    acc = StatsAccumulator({"m": 1}, ["en", "de"], threshold=0.1)
    ci_en = torch.zeros(1, 100, 1)
    ci_en[0, :10] = 1.0
    ci_de = torch.zeros(1, 20, 1)
    ci_de[0, :10] = 1.0
    acc.update("en", torch.zeros(1, 100, dtype=torch.long), {"m": ci_en})
    acc.update("de", torch.zeros(1, 20, dtype=torch.long), {"m": ci_de})
    (cid, score), = language_specificity(acc.finalize(), "de")
    assert score == pytest.approx(0.5 / (0.5 + 0.1))


# ----------------------------------------------------------------------------------------------- ablation
def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=16)
    return LlamaForCausalLM(cfg).eval()


def fake_cm(model, module: str, C: int = 4):
    """Just the attributes ablation needs: the wrapped model and one module's rank-1 factors (V (d_in,C), U (C,d_out))."""
    w = model.get_submodule(module).weight
    g = torch.Generator().manual_seed(1)
    comp = SimpleNamespace(V=torch.randn(w.shape[1], C, generator=g), U=torch.randn(C, w.shape[0], generator=g))
    return SimpleNamespace(model=model, components={module: comp})


def test_component_removed_edits_one_matrix_and_restores_exactly():
    model = tiny_llama()
    module = "model.layers.0.mlp.down_proj"
    cm = fake_cm(model, module)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with component_removed(cm, (module, 2)) as edited:
        w = edited.get_submodule(module).weight
        expected = before[module + ".weight"] - torch.outer(cm.components[module].U[2], cm.components[module].V[:, 2])
        assert torch.allclose(w, expected, atol=1e-6)
        changed = [k for k, v in edited.state_dict().items() if not torch.equal(v, before[k])]
        assert changed == [module + ".weight"]
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with pytest.raises(IndexError):
        with component_removed(cm, (module, 4)):
            pass
    with pytest.raises(KeyError):
        with component_removed(cm, ("model.layers.0.mlp.up_proj", 0)):
            pass


def test_lm_cross_entropy_matches_manual():
    model = tiny_llama()
    blocks = torch.randint(0, 32, (3, 8), generator=torch.Generator().manual_seed(2))
    logits = model(blocks).logits[:, :-1]
    manual = F.cross_entropy(logits.reshape(-1, 32), blocks[:, 1:].reshape(-1)).item()
    assert lm_cross_entropy(model, blocks, batch_size=2) == pytest.approx(manual, rel=1e-5)


def test_lm_cross_entropy_holds_at_most_logit_positions_per_pass(monkeypatch):
    """By default each forward pass sees at most LOGIT_POSITIONS token positions (bounded logits memory),
    whatever the number of blocks, and the mean is the same as in one pass."""
    import vpd_lite.method.cross_entropy as ce_mod

    monkeypatch.setattr(ce_mod, "LOGIT_POSITIONS", 16)
    model = tiny_llama()
    blocks = torch.randint(0, 32, (7, 5), generator=torch.Generator().manual_seed(3))
    seen = []
    handle = model.register_forward_pre_hook(lambda m, a, k: seen.append(k["input_ids"].numel()), with_kwargs=True)
    try:
        value = lm_cross_entropy(model, blocks)
    finally:
        handle.remove()
    assert seen == [15, 15, 5]  # 3 blocks of 5 positions per pass, then the last one
    assert value == pytest.approx(lm_cross_entropy(model, blocks, batch_size=7), rel=1e-6)
    assert lm_cross_entropy(model, blocks[:, :2].repeat(1, 20)) > 0  # one block longer than the bound still runs


def test_ablation_effect_equals_manual_edit():
    model = tiny_llama()
    module = "model.layers.0.self_attn.v_proj"
    cm = fake_cm(model, module)
    g = torch.Generator().manual_seed(3)
    blocks = {"en": torch.randint(0, 32, (2, 8), generator=g), "de": torch.randint(0, 32, (2, 8), generator=g)}
    effect = ablation_effect(cm, f"{module}:1", blocks)
    manual = copy.deepcopy(model)
    with torch.no_grad():
        manual.get_submodule(module).weight -= torch.outer(cm.components[module].U[1], cm.components[module].V[:, 1])
    for lang, b in blocks.items():
        assert effect[lang] == pytest.approx(lm_cross_entropy(manual, b) - lm_cross_entropy(model, b), abs=1e-5)
    assert any(abs(v) > 1e-4 for v in effect.values())
    # a component with a zero write direction changes nothing
    cm.components[module].U[0] = 0.0
    assert all(v == 0.0 for v in ablation_effects(cm, [(module, 0)], blocks)[(module, 0)].values())


# ------------------------------------------------------------------------------- with the real VPD core
def tiny_component_model():
    from vpd_lite.method.components import ComponentModel

    return ComponentModel(tiny_llama(), {"*.mlp.down_proj": 6, "*.self_attn.q_proj": 4}, seed=0)


def test_harvest_matches_the_component_model():
    from vpd_lite.interpret.harvest import harvest

    cm = tiny_component_model()
    g = torch.Generator().manual_seed(4)
    blocks = {"en": torch.randint(0, 32, (3, 8), generator=g), "de": torch.randint(0, 32, (2, 8), generator=g)}
    stats = harvest(cm, blocks, threshold=0.05, top_k=3, batch_size=2, progress=False, meta={"k": "v"})
    assert stats.modules == cm.module_names and stats.meta == {"k": "v"}
    assert stats.tokens_per_lang == {"en": 24, "de": 16}
    for li, (lang, b) in enumerate(blocks.items()):
        _, inputs = cm.target_logits_and_inputs(b)
        ci, _ = cm.causal_importance(inputs)
        for m in cm.module_names:
            assert torch.equal(stats.fire_counts[m][li], (ci[m] > 0.05).sum((0, 1)).double()), (lang, m)
            assert torch.allclose(stats.ci_sum[m][li], ci[m].sum((0, 1)).double(), atol=1e-4)
    # the best context of a live component sits where its CI is highest
    m = cm.module_names[0]
    c = int(stats.fire_counts[m].sum(0).argmax())
    best = stats.contexts((m, c))[0]
    _, inputs = cm.target_logits_and_inputs(blocks[best.lang])
    ci, _ = cm.causal_importance(inputs)
    assert best.score == pytest.approx(float(ci[m][..., c].detach().max()), abs=1e-5)


def test_removal_equals_masking_the_component_out():
    """W - U_c V_cᵀ in the weight == all components and the delta on, component c's mask 0 (the core's masks)."""
    cm = tiny_component_model()
    module = "model.layers.0.mlp.down_proj"
    ids = torch.randint(0, 32, (2, 8), generator=torch.Generator().manual_seed(5))
    mask = torch.ones(2, 8, 6)
    mask[..., 3] = 0.0
    masked = cm.forward_with_masks(ids, {module: mask}, delta_masks={module: torch.ones(2, 8)})
    with component_removed(cm, (module, 3)) as edited:
        removed = edited(ids).logits
    assert torch.allclose(masked, removed, atol=1e-5)
    assert not torch.allclose(removed, cm.model(ids).logits, atol=1e-4)


def test_fingerprint_and_load_or_harvest(tmp_path):
    from vpd_lite.interpret.harvest import decomposition_fingerprint, harvest, load_or_harvest

    cm = tiny_component_model()
    blocks = {"en": torch.randint(0, 32, (2, 8), generator=torch.Generator().manual_seed(6))}
    fp = decomposition_fingerprint(cm)
    assert fp == decomposition_fingerprint(cm) and len(fp) == 64
    path = tmp_path / "stats.safetensors"
    shipped = harvest(cm, blocks, top_k=2, progress=False, meta={"decomposition_fingerprint": fp, "tag": "shipped"})
    shipped.save(path)
    stats, how = load_or_harvest(cm, blocks, path, progress=False)
    assert stats.meta["tag"] == "shipped" and how.startswith("shipped statistics")
    with torch.no_grad():
        cm.components["model.layers.0.mlp.down_proj"].V[0, 0] += 1.0
    assert decomposition_fingerprint(cm) != fp
    stats, how = load_or_harvest(cm, blocks, path, progress=False)  # stale file: harvested afresh
    assert "tag" not in stats.meta and how.startswith("harvested live")
    assert stats.meta["decomposition_fingerprint"] == decomposition_fingerprint(cm)


def test_load_or_decompose(tmp_path):
    from vpd_lite.method.checkpoint import save_decomposition
    from vpd_lite.tutorial.notebook import load_or_decompose

    cm = tiny_component_model()
    with pytest.raises(FileNotFoundError, match="vpd_lite.decompose"):
        load_or_decompose(cm.model, None, None, path=tmp_path / "none", quick=False)
    same, how = load_or_decompose(cm.model, None, None, path=tmp_path / "none", quick=True, fallback=cm)
    assert same is cm and "demo" in how
    save_decomposition(cm, tmp_path / "dec")
    loaded, how = load_or_decompose(cm.model, None, None, path=tmp_path / "dec", quick=False)
    assert how.startswith("shipped decomposition")
    assert torch.equal(loaded.components["model.layers.0.mlp.down_proj"].U, cm.components["model.layers.0.mlp.down_proj"].U)


def test_shipped_statistics_show_representative_contexts():
    """On the shipped statistics, a component whose firing is >= 95 % German shows >= 90 % German top contexts,
    and no component shows the same context window twice."""
    from vpd_lite.models.paths import data_dir

    path = data_dir() / "component_stats.safetensors"
    if not path.is_file():
        pytest.skip(f"no shipped statistics at {path}")
    stats = ComponentStats.load(path)
    german = [cid for cid in live_components(stats) if stats.language_profile(cid)["de"] >= 0.95]
    assert german, "the shipped statistics hold no German component"
    for cid in german:
        contexts = stats.contexts(cid)
        assert contexts, cid
        share = sum(c.lang == "de" for c in contexts) / len(contexts)
        assert share >= 0.9, (component_key(cid), [c.lang for c in contexts])
    for cid in live_components(stats):
        windows = [tuple(c.tokens) for c in stats.contexts(cid)]
        assert len(windows) == len(set(windows)), component_key(cid)


def test_any_prefix_of_the_contexts_keeps_the_language_mix():
    from vpd_lite.interpret.statistics import Context, interleave_by_language

    ctx = [Context([1], [1.0], 0, "es", 0, 1.0) for _ in range(6)] + [Context([2], [1.0], 0, "en", 0, 1.0)] * 2
    langs = [c.lang for c in interleave_by_language(ctx)]
    assert sorted(langs) == sorted(c.lang for c in ctx)
    assert langs[:4].count("en") == 1 and langs[:8].count("en") == 2  # not six Spanish first
