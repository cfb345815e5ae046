"""Online paths, exercised on local stand-ins: a hub-style dataset folder and a from_pretrained folder."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

from vpd_lite.method.checkpoint import load_decomposition
from vpd_lite.method.config import DecomposeConfig
from vpd_lite.models.corpus import _load_hub, load_corpus
from vpd_lite.models.recipes import RECIPES, Recipe, run_recipe
from vpd_lite.models.target import train_tokenizer

SENTENCES = {
    "en": "The weather is nice today and we walk to the market together.",
    "de": "Das Wetter ist heute schön und wir gehen zusammen auf den Markt.",
}


def _hub_style_folder(tmp_path):
    """train.jsonl / test.jsonl with 'text' and 'labels' columns, like papluca/language-identification."""
    folder = tmp_path / "hub_dataset"
    folder.mkdir()
    for split, n in (("train", 30), ("test", 6)):
        rows = [{"labels": lang, "text": f"{s} ({i})"} for i in range(n) for lang, s in SENTENCES.items()]
        rows.append({"labels": "ja", "text": "今日は天気がいいです。"})
        (folder / f"{split}.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows))
    return folder


def test_hub_loader_maps_columns_and_splits(tmp_path):
    corpus = load_corpus(_hub_style_folder(tmp_path), ("en", "de"), lang_column="labels")
    assert set(corpus) == {"en", "de"}
    assert corpus["de"]["train"].num_rows == 30 and corpus["de"]["heldout"].num_rows == 6
    assert corpus["de"]["train"].column_names == ["text"]
    assert all("Wetter" in t for t in corpus["de"]["heldout"]["text"])


def test_hub_loader_names_missing_columns_and_languages(tmp_path):
    folder = _hub_style_folder(tmp_path)
    with pytest.raises(ValueError, match="lacks columns"):
        _load_hub(str(folder), ("en",))  # default lang column "lang" is absent
    with pytest.raises(ValueError, match="no 'fr' rows"):
        _load_hub(str(folder), ("fr",), lang_column="labels")


def test_unreachable_hub_name_is_a_clear_error():
    with pytest.raises(FileNotFoundError, match="could not be loaded"):
        load_corpus("nobody-owns-this/vpd-lite-missing-dataset")


def test_pythia_recipe_is_complete():
    r = RECIPES["pythia-70m"]
    assert r.model == "EleutherAI/pythia-70m" and r.corpus and r.lang_column == "labels"
    assert r.decompose.device == "auto"


def test_recipe_runs_on_local_model_and_dataset(tmp_path):
    data = _hub_style_folder(tmp_path)
    tokenizer = train_tokenizer(list(SENTENCES.values()) * 5, vocab_size=300)
    torch.manual_seed(0)
    model = GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=len(tokenizer), hidden_size=16, num_hidden_layers=1,
                                             num_attention_heads=2, intermediate_size=32,
                                             max_position_embeddings=64))
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    recipe = Recipe(model=str(tmp_path / "model"), corpus=str(data), lang_column="labels", c_per_rank=1.0)
    recipe.decompose = DecomposeConfig.quick(
        steps=3, batch_size=2, seq_len=16, faithfulness_warmup_steps=5, ci_hidden=8, device="cpu")
    recipe.langs = ("en", "de")
    metrics = run_recipe(recipe, tmp_path / "out", progress=False)
    assert metrics["ce"]["target"] > 0
    cm = load_decomposition(tmp_path / "out", GPTNeoXForCausalLM.from_pretrained(tmp_path / "model"))
    assert any("query_key_value" in n for n in cm.module_names)


def test_device_cuda_without_cuda_is_refused_before_any_work(monkeypatch, capsys):
    import vpd_lite.commands.recipes as recipes
    from vpd_lite.commands.cli import run_main

    def never(*args, **kwargs):
        raise AssertionError("the run started")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(recipes, "run_recipe", never)
    assert run_main(recipes.main, "recipes", ["pythia-70m", "--device", "cuda"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: device 'cuda' requested but CUDA is not available" in err


def test_offline_recipe_fails_fast_with_one_line(monkeypatch, capsys):
    """No network and no offline mode: one failed connection attempt, then one line (no minute of retries)."""
    import socket

    import transformers
    from huggingface_hub import constants

    import vpd_lite.commands.recipes as recipes
    from vpd_lite.commands.cli import run_main

    def refuse(*args, **kwargs):
        raise OSError("Name or service not known")

    def never(*args, **kwargs):
        raise AssertionError("from_pretrained was called")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", never)
    assert run_main(recipes.main, "recipes", ["pythia-70m"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "model 'EleutherAI/pythia-70m' is not a local folder" in err
    assert "huggingface.co cannot be reached" in err
