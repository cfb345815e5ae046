"""Tokenizer, target model round trips, training determinism, the CE helpers and the shipped data/target."""

from __future__ import annotations

import json
import math
import string
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

from tests.models.target_worker import write_small_corpus
from vpd_lite.models.corpus import load_corpus
from vpd_lite.models.paths import target_dir
from vpd_lite.models.target import (
    TargetConfig,
    _lr_factor,
    build_model,
    evaluate_target,
    heldout_ce,
    load_target,
    save_target,
    train_target,
    train_tokenizer,
    uniform_ce,
    unigram_ce,
)


@pytest.fixture(scope="module")
def small_corpus_dir(tmp_path_factory) -> Path:
    """The first lines of every language of the shipped corpus, written to a temporary folder."""
    return write_small_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def small_corpus(small_corpus_dir):
    return load_corpus(small_corpus_dir)


@pytest.fixture(scope="module")
def tiny_tokenizer(small_corpus):
    return train_tokenizer((t for lang in small_corpus for t in small_corpus[lang]["train"]["text"]), 300)


# ------------------------------------------------------------------------------------------ tokenizer
def test_tokenizer_has_the_asked_size_and_round_trips_any_text(tiny_tokenizer, tmp_path):
    tok = tiny_tokenizer
    assert len(tok) == 300
    assert tok.eos_token == tok.bos_token == tok.pad_token == "<|endoftext|>" and tok.eos_token_id == 0
    text = "Größe, très ½ — ñandú però 東京"  # bytes outside the training text still encode
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids) == text
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path, local_files_only=True)
    assert again(text, add_special_tokens=False)["input_ids"] == ids
    assert again.eos_token_id == 0


def test_tokenizer_training_is_deterministic(small_corpus, tiny_tokenizer):
    texts = [t for lang in small_corpus for t in small_corpus[lang]["train"]["text"]]
    assert train_tokenizer(texts, 300).get_vocab() == tiny_tokenizer.get_vocab()


def test_tokenizer_rejects_too_small_vocab():
    with pytest.raises(ValueError, match="258"):
        train_tokenizer(["abc"], 100)


# ------------------------------------------------------------------------------------------ config
def test_config_rejects_inconsistent_shapes(tiny_tokenizer):
    with pytest.raises(ValueError, match="divisible"):
        TargetConfig(hidden_size=130, num_attention_heads=4)
    with pytest.raises(ValueError, match="max_position_embeddings"):
        TargetConfig(seq_len=256, max_position_embeddings=128)
    with pytest.raises(ValueError, match="vocab_size"):
        TargetConfig().model_config(tiny_tokenizer)  # 300 tokens vs 4096


def test_default_config_is_the_intended_llama():
    cfg = TargetConfig()
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads,
            cfg.num_key_value_heads, cfg.vocab_size, cfg.max_position_embeddings) == (2, 128, 512, 4, 4, 4096, 128)


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    cfg = TargetConfig(steps=110, warmup_steps=10, min_lr_ratio=0.1)
    assert _lr_factor(0, cfg) == pytest.approx(0.1)
    assert _lr_factor(9, cfg) == pytest.approx(1.0)
    assert _lr_factor(10, cfg) == pytest.approx(1.0)
    assert _lr_factor(60, cfg) == pytest.approx(0.55)  # half way: 0.1 + 0.9 * 0.5
    assert _lr_factor(110, cfg) == pytest.approx(0.1)


# --------------------------------------------------------------------------------------- round trip
def test_save_then_load_target_gives_the_same_logits(tiny_tokenizer, tmp_path):
    cfg = TargetConfig.quick()
    model = build_model(cfg, tiny_tokenizer, seed=5).eval()
    save_target(model, tiny_tokenizer, cfg, [{"step": 0, "lr": 1e-3, "loss": 5.0}], tmp_path / "t", seed=5)
    assert {"config.json", "model.safetensors", "tokenizer.json", "loss_curve.csv", "loss_curve.json",
            "loss_curve.png", "training_config.json"} <= {p.name for p in (tmp_path / "t").iterdir()}
    loaded, tok = load_target(tmp_path / "t")
    x = torch.tensor([tok("Der Hund schläft.", add_special_tokens=False)["input_ids"]])
    with torch.no_grad():
        assert torch.equal(model(input_ids=x).logits, loaded(input_ids=x).logits)
    # the plain transformers loaders work too
    plain = AutoModelForCausalLM.from_pretrained(tmp_path / "t", local_files_only=True)
    with torch.no_grad():
        assert torch.equal(plain(input_ids=x).logits, loaded(input_ids=x).logits)
    assert json.loads((tmp_path / "t" / "training_config.json").read_text())["seed"] == 5
    # saving again replaces the folder atomically and leaves no temporary folders behind
    save_target(model, tiny_tokenizer, cfg, [], tmp_path / "t", seed=6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]


def test_load_target_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_target(str(tmp_path / "nothing"))


# -------------------------------------------------------------------------------------- training
def test_training_is_deterministic_per_seed(small_corpus, tiny_tokenizer):
    cfg = TargetConfig.quick()
    runs = [train_target(cfg, small_corpus, seed=s, tokenizer=tiny_tokenizer, progress=False, save=False)
            for s in (0, 0, 1)]
    (m0, _, h0), (m1, _, h1), (m2, _, h2) = runs
    assert [h["loss"] for h in h0] == [h["loss"] for h in h1]
    for (name, a), b in zip(m0.state_dict().items(), m1.state_dict().values()):
        assert torch.equal(a, b), name
    assert [h["loss"] for h in h0] != [h["loss"] for h in h2]
    assert not torch.equal(m0.model.layers[0].mlp.up_proj.weight, m2.model.layers[0].mlp.up_proj.weight)
    assert len(h0) == cfg.steps and "heldout_ce" in h0[-1]


def test_train_target_saves_model_tokenizer_and_curve(small_corpus, tmp_path):
    cfg = TargetConfig.quick()
    model, tok, hist = train_target(cfg, small_corpus, out_dir=tmp_path / "target", seed=0, progress=False)
    assert len(tok) == cfg.vocab_size  # trained a tokenizer from the corpus
    loaded, _ = load_target(tmp_path / "target")
    assert torch.equal(loaded.model.embed_tokens.weight, model.model.embed_tokens.weight)
    rows = (tmp_path / "target" / "loss_curve.csv").read_text().splitlines()
    assert rows[0] == "step,lr,loss,heldout_ce" and len(rows) == cfg.steps + 1


# ------------------------------------------------------------------------------------ CE helpers
def _char_tokenizer() -> PreTrainedTokenizerFast:
    chars = " " + string.ascii_lowercase + string.ascii_uppercase  # 53 symbols + eos = 54 tokens
    vocab = {"<eos>": 0, **{c: i + 1 for i, c in enumerate(chars)}}
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.BPE(vocab=vocab, merges=[])),
                                   eos_token="<eos>")


def test_unigram_ce_matches_a_hand_computation(tmp_path):
    (tmp_path / "en").mkdir()
    (tmp_path / "en" / "train.txt").write_text("ab\n")  # tokens a b eos: each count 1, n = 3
    (tmp_path / "en" / "heldout.txt").write_text("ba\n")  # block [b a eos] -> targets a, eos
    corpus = load_corpus(tmp_path, langs=("en",))
    tok = _char_tokenizer()
    # p(a) = p(eos) = (1 + 1) / (3 + 54)
    assert unigram_ce(tok, corpus, "en", seq_len=3) == pytest.approx(math.log(57 / 2))
    assert uniform_ce(tok) == pytest.approx(math.log(54))


def test_heldout_ce_of_a_flat_model_is_ln_vocab(small_corpus, tiny_tokenizer):
    model = build_model(TargetConfig.quick(), tiny_tokenizer).eval()
    with torch.no_grad():
        model.model.embed_tokens.weight.zero_()  # tied: all logits 0 -> uniform prediction
    ce = heldout_ce(model, tiny_tokenizer, small_corpus, "de", seq_len=32, max_blocks=3)
    assert ce == pytest.approx(math.log(300), rel=1e-6)
    with pytest.raises(ValueError, match="'xx'"):
        heldout_ce(model, tiny_tokenizer, small_corpus, "xx", seq_len=32)


def test_heldout_ce_matches_the_model_loss(small_corpus, tiny_tokenizer):
    model = build_model(TargetConfig.quick(), tiny_tokenizer, seed=1).eval()
    from vpd_lite.models.corpus import chunk, encode_texts

    blocks = chunk(encode_texts(tiny_tokenizer, small_corpus["fr"]["heldout"]["text"]), 32)[:2]
    with torch.no_grad():
        expected = model(input_ids=blocks, labels=blocks).loss.item()  # mean over the 2 * 31 targets
    assert heldout_ce(model, tiny_tokenizer, small_corpus, "fr", seq_len=32, max_blocks=2) == pytest.approx(
        expected, rel=1e-5)


# --------------------------------------------------------------------------------- shipped model
shipped = pytest.mark.skipif(not (target_dir() / "model.safetensors").is_file(), reason="no data/target yet")


@shipped
def test_shipped_target_loads_offline_and_is_small():
    assert (target_dir() / "model.safetensors").stat().st_size <= 25 * 2**20
    model, tok = load_target()
    assert len(tok) == model.config.vocab_size == 4096
    assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 128
    assert not model.training


@shipped
def test_shipped_target_meets_the_quality_bar():
    model, tok = load_target()
    rows = {r["lang"]: r for r in evaluate_target(model, tok, load_corpus())}
    for lang, r in rows.items():
        assert r["model_ce"] < r["unigram_ce"] < r["uniform_ce"], r
    assert rows["de"]["model_ce"] <= 0.75 * rows["de"]["unigram_ce"], rows["de"]
