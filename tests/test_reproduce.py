"""Headless reproduction: the table maths, the claim check, and ``reproduce --quick`` end to end on a tiny setup."""

import math
from pathlib import Path

import pandas as pd
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from vpd_lite.corpus import LANGS
from vpd_lite.analysis import StatsAccumulator
from vpd_lite.reproduce import (
    CLAIM,
    Artefacts,
    check_claim,
    format_table,
    main,
    pick_german_component,
    summarise,
    top_german_components,
)

REPO = Path(__file__).resolve().parent.parent


def make_tiny_data(root: Path, n_chars: int = 6000) -> Path:
    """A tiny corpus (slices of the shipped one), a BPE tokenizer and a random-init Llama, plus a quick
    decomposition of it: the layout ``reproduce`` expects under ``root``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from vpd_lite.checkpoint import save_decomposition
    from vpd_lite.decompose import DecomposeConfig, decompose

    texts = {}
    for lang in LANGS:
        for split in ("train", "heldout"):
            src = (REPO / "data" / "corpus" / lang / f"{split}.txt").read_text(encoding="utf-8")[:n_chars]
            src = src[: src.rfind("\n") + 1]
            (root / "corpus" / lang).mkdir(parents=True, exist_ok=True)
            (root / "corpus" / lang / f"{split}.txt").write_text(src, encoding="utf-8")
            texts[lang, split] = src
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|eos|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([t for (_, s), t in texts.items() if s == "train"], trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|eos|>")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=128,
                      eos_token_id=tokenizer.eos_token_id, initializer_range=0.2)  # peaked, not uniform
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(root / "target")
    tokenizer.save_pretrained(root / "target")
    dconfig = DecomposeConfig.quick(steps=5, faithfulness_warmup_steps=5, batch_size=2, seq_len=32,
                                    targets={"*.q_proj": 8, "*.up_proj": 8, "*.down_proj": 8})
    blocks = torch.randint(0, len(tokenizer), (4, 32), generator=torch.Generator().manual_seed(0))
    cm, _ = decompose(model, [blocks[:2], blocks[2:]], dconfig, progress=False)
    save_decomposition(cm, root / "decomposition", dconfig)
    return root


def fake_runs(scalar=(1.0, 0.02, 0.05), lora=(0.5, 0.1, 0.3)) -> pd.DataFrame:
    """Two seeds of one budget; per method (German rise, English rise, other-language rise), before CE 3.0."""
    rows = []
    for method, (de, en, other) in {"scalar": scalar, "lora_r1_all": lora}.items():
        for seed, jitter in ((0, -0.1), (1, 0.1)):
            rows.append({"method": method, "budget": 4, "seed": seed, "uniform": 5.0, "objective_end": 5.5,
                         "s": -1.0 if method == "scalar" else float("nan"),
                         **{f"ce_before_{lang}": 3.0 for lang in LANGS},
                         "ce_after_de": 3.0 + de + jitter, "ce_after_en": 3.0 + en,
                         **{f"ce_after_{lang}": 3.0 + other for lang in ("fr", "es", "it")}})
    return pd.DataFrame(rows)


def hand_stats(rates_de_other: list[tuple[float, float]]):
    """Stats of one module whose component c fires on a fraction rates[c][0] of 100 German tokens and
    rates[c][1] of 100 tokens of each other language."""
    C = len(rates_de_other)
    acc = StatsAccumulator({"m": C}, list(LANGS))
    for lang in LANGS:
        ci = torch.zeros(1, 100, C)
        for c, (r_de, r_other) in enumerate(rates_de_other):
            ci[0, : round(100 * (r_de if lang == "de" else r_other)), c] = 1.0
        acc.update(lang, torch.zeros(1, 100, dtype=torch.long), {"m": ci})
    return acc.finalize()


def test_german_component_rule():
    # c0: German-only but rare; c1: 90% German share and frequent on German; c2: foreign languages in general
    stats = hand_stats([(0.10, 0.0), (0.36, 0.01), (0.5, 0.3)])
    cid, why = pick_german_component(stats, min_share=0.8)
    assert cid == ("m", 1) and "fires on 36.0% of German" in why  # share 0.36 / 0.40 = 90%
    assert pick_german_component(stats, min_share=0.95)[0] == ("m", 0)  # only c0 is >= 95% German
    assert top_german_components(stats, 2) == [("m", 0), ("m", 1)]
    none = hand_stats([(0.3, 0.3), (0.4, 0.2)])  # nothing German-only: fall back to the most specific
    cid, why = pick_german_component(none, min_share=0.8)
    assert cid == ("m", 1) and "no component is >= 80% German" in why


def test_summarise_hand_values():
    s = summarise(fake_runs()).set_index("method")
    assert s.loc["scalar", "n_seeds"] == 2
    assert s.loc["scalar", "de_after"] == pytest.approx(4.0)
    assert s.loc["scalar", "frac_to_uniform"] == pytest.approx(0.5)  # (4 - 3) / (5 - 3)
    assert s.loc["lora_r1_all", "frac_to_uniform"] == pytest.approx(0.25)
    assert s.loc["scalar", "d_en"] == pytest.approx(0.02) and s.loc["lora_r1_all", "d_it"] == pytest.approx(0.3)
    assert s.loc["scalar", "de_after_std"] == pytest.approx(math.sqrt(0.02))
    table = format_table(summarise(fake_runs()))
    assert "| scalar | 4 | 2 | 3.000 | 4.000 | 50% | +0.020 |" in table
    assert table.splitlines()[2].endswith("| 5.500 | -1.00 |") and table.splitlines()[3].endswith("| 5.500 |  |")


def test_check_claim_uses_the_fixed_thresholds():
    # 100% of the way (2 nats of a 2-nat gap), en +0.02, others +0.05; LoRA worse on every axis
    good = check_claim(summarise(fake_runs(scalar=(2.0, 0.02, 0.05))))
    assert good["scalar_meets_goal"] and good["all_lora_worse"] and good["reproduced"]
    assert "REPRODUCED" in good["text"]
    # English damage above 0.05 fails the claim even at 100% German erasure
    bad = check_claim(summarise(fake_runs(scalar=(2.0, 0.06, 0.05))))
    assert not bad["scalar_meets_goal"] and "NOT reproduced" in bad["text"]
    # a LoRA at least as good on all three axes is not "worse"
    tie = check_claim(summarise(fake_runs(scalar=(2.0, 0.02, 0.05), lora=(2.0, 0.0, 0.0))))
    assert tie["lora_worse"] == {"lora_r1_all": False} and not tie["reproduced"]
    assert CLAIM == {"budget": 4, "min_fraction": 0.8, "max_d_en": 0.05, "max_d_other": 0.1}


def test_missing_artefact_gives_a_clear_error(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="target model is missing.*vpd_lite.target train"):
        Artefacts.in_folder(tmp_path).check()
    assert main(["--quick", "--data", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "the target model is missing" in capsys.readouterr().err


def test_reproduce_quick_end_to_end(tmp_path, capsys):
    data = make_tiny_data(tmp_path / "data")
    out = tmp_path / "results"
    assert main(["--quick", "--data", str(data), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| method | German tokens |" in printed and "Scalar edit on 4 German tokens" in printed
    summary = pd.read_csv(out / "erase_german.csv")
    assert set(summary["method"]) == {"scalar", "scalar_top16", "lora_r1_all", "lora_r4_all", "lora_r1_local"}
    assert sorted(summary["budget"].unique()) == [4, 64]
    runs = pd.read_csv(out / "erase_german_runs.csv")
    assert len(runs) == 5 * 2 and runs["ce_before_de"].nunique() == 1
    assert (runs["objective_end"] < runs["objective_start"]).all()  # every method trained
    assert (runs.loc[runs["method"] == "scalar", "s"] != 1.0).all()
    assert (data / "component_stats.safetensors").exists() is False  # stats were harvested, not written to data
    md = (out / "erase_german.md").read_text()
    assert "## The published claim on our model" in md and "python -m vpd_lite.reproduce --quick" in md
    for name in ("tradeoff", "off_target", "top16"):
        assert (out / f"erase_german_{name}.png").stat().st_size > 1000


def test_reproduce_from_scratch_quick(tmp_path, capsys):
    """--from-scratch retrains the target, decomposes, harvests + labels into --work, then erases."""
    data = tmp_path / "data"
    make_tiny_data(data, n_chars=4000)
    work, out = tmp_path / "work", tmp_path / "results"
    assert main(["--quick", "--from-scratch", "--data", str(data), "--work", str(work), "--out", str(out),
                 "--no-figures"]) == 0
    assert (work / "target" / "config.json").exists() and (work / "decomposition" / "decomposition.json").exists()
    assert (work / "component_stats.safetensors").exists() and (work / "labels.json").exists()
    assert len(pd.read_csv(out / "erase_german_runs.csv")) == 10
    assert "[from scratch] training the target" in capsys.readouterr().out
