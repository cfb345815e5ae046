"""Headless reproduction: the table maths, the claim check, and ``reproduce --quick`` end to end on a tiny setup."""

import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from vpd_lite.commands.reproduce import main
from vpd_lite.erase.protocol import (
    CLAIM,
    EraseConfig,
    check_claim,
    claim_per_seed,
    fit_all,
    format_number,
    summarise,
    top_german_components,
)
from vpd_lite.erase.rebuild import Artefacts, build_setup
from vpd_lite.erase.report import claim_report, format_table
from vpd_lite.erase.selection import pick_by_firing
from vpd_lite.interpret.statistics import StatsAccumulator
from vpd_lite.models.corpus import LANGS

REPO = Path(__file__).resolve().parents[2]


def make_tiny_data(root: Path, n_chars: int = 6000) -> Path:
    """A tiny corpus (slices of the shipped one), a BPE tokenizer and a random-init Llama, plus a quick
    decomposition of it: the layout ``reproduce`` expects under ``root``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from vpd_lite.method.checkpoint import save_decomposition
    from vpd_lite.method.config import DecomposeConfig
    from vpd_lite.method.decompose import decompose

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
    for method, (de, en, other) in {"scalar_edit": scalar, "lora_r1_all": lora}.items():
        for seed, jitter in ((0, -0.1), (1, 0.1)):
            rows.append({"method": method, "objective": "target_ce", "budget": 4, "seed": seed, "uniform": 5.0,
                         "train_objective": 5.5, "lr": float("nan") if method == "scalar_edit" else 0.01,
                         "s": -1.0 if method == "scalar_edit" else float("nan"),
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
    cid, why = pick_by_firing(stats, min_share=0.8)
    assert cid == ("m", 1) and "fires on 36.0% of German" in why  # share 0.36 / 0.40 = 90%
    assert pick_by_firing(stats, min_share=0.95)[0] == ("m", 0)  # only c0 is >= 95% German
    assert top_german_components(stats, 2) == [("m", 0), ("m", 1)]
    none = hand_stats([(0.3, 0.3), (0.4, 0.2)])  # nothing German-only: fall back to the most specific
    cid, why = pick_by_firing(none, min_share=0.8)
    assert cid == ("m", 1) and "no component is >= 80% German" in why


def test_summarise_hand_values():
    s = summarise(fake_runs()).set_index("method")
    assert s.loc["scalar_edit", "n_seeds"] == 2
    assert s.loc["scalar_edit", "de_after"] == pytest.approx(4.0)
    assert s.loc["scalar_edit", "frac_to_uniform"] == pytest.approx(0.5)  # (4 - 3) / (5 - 3)
    assert s.loc["scalar_edit", "frac_min"] == pytest.approx(0.45) and s.loc["scalar_edit", "frac_max"] == pytest.approx(0.55)
    assert s.loc["scalar_edit", "frac_median"] == pytest.approx(0.5)
    assert s.loc["lora_r1_all", "frac_to_uniform"] == pytest.approx(0.25)
    assert s.loc["scalar_edit", "d_en"] == pytest.approx(0.02) and s.loc["lora_r1_all", "d_it"] == pytest.approx(0.3)
    assert s.loc["scalar_edit", "de_after_std"] == pytest.approx(math.sqrt(0.02))
    table = format_table(summarise(fake_runs()))
    assert "| scalar_edit | target_ce | 4 | 2 | 3.000 | 4.000 | 50% | 50% | 45% | 55% | +0.020 |" in table
    assert table.splitlines()[2].endswith("| 5.5000 | -1.00 |  |")
    assert table.splitlines()[3].endswith("| 5.5000 |  | 0.01 |")


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
    # the scan's tolerances are the claim's
    from vpd_lite.erase.edit_scan import tolerances

    assert tolerances("de", list(LANGS)) == {"en": 0.05, "fr": 0.1, "es": 0.1, "it": 0.1}


def test_check_claim_calls_differences_too_small_to_print_a_tie():
    # both move German by about 0% of the way (+0.2% and -0.2%); the LoRA's English ΔCE is higher by 0.0001
    tie = check_claim(summarise(fake_runs(scalar=(0.004, 0.02, 0.05), lora=(-0.004, 0.0201, 0.05))))
    assert tie["lora_worse"] == {"lora_r1_all": False} and not tie["all_lora_worse"]
    assert "lora_r1_all on 4 tokens: 0% of the way" in tie["text"] and "as good as" in tie["text"]
    assert "-> worse than" not in tie["text"] and "-0%" not in tie["text"]
    # a difference that shows in print still counts
    worse = check_claim(summarise(fake_runs(scalar=(0.004, 0.02, 0.05), lora=(-0.004, 0.021, 0.05))))
    assert worse["lora_worse"] == {"lora_r1_all": True} and "-> worse than" in worse["text"]
    assert "-0%" not in format_table(summarise(fake_runs(scalar=(0.004, 0.02, 0.05), lora=(-0.004, 0.02, 0.05))))


def test_format_number_never_prints_a_negative_zero():
    shown = [format_number(v, spec) for v, spec in [(-0.004, ".0%"), (-0.0004, "+.3f"), (-0.4, ".0f"), (-0.006, ".0%"),
                                                      (0.83, ".0%"), (-0.0006, "+.3f"), (float("-inf"), ".0%")]]
    assert shown == ["0%", "+0.000", "0", "-1%", "83%", "-0.001", "-inf%"]


def test_claim_every_seed_and_every_rule():
    runs = fake_runs(scalar=(2.0, 0.02, 0.05))  # seeds: 1.9 and 2.1 nats of a 2-nat gap
    per = claim_per_seed(runs, "scalar_edit", "target_ce")
    assert per["frac_to_uniform"].tolist() == pytest.approx([0.95, 1.05])
    assert per["meets_goal"].tolist() == [True, True]
    report = claim_report(runs, summarise(runs))
    assert report["reproduced"] and report["primary"]["method"] == "scalar_edit"
    assert "seed 0: s = -1.000, 95% of the way" in report["text"] and "median 100%" in report["text"]


def test_missing_artefact_gives_a_clear_error(tmp_path, capsys):
    """An empty --data folder: one line naming what it lacks, and fixes that fill *that* folder (never a command
    that writes to runs/); nothing is made, not even the run or work folder."""
    from vpd_lite.commands.cli import run_main
    from vpd_lite.models.paths import data_dir

    with pytest.raises(FileNotFoundError, match="lacks the corpus .*, the target model .* and the decomposition"):
        Artefacts.in_folder(tmp_path).check()
    assert run_main(main, "reproduce", ["--quick", "--data", str(tmp_path), "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert f"python -m vpd_lite.reproduce: error: {tmp_path} lacks the corpus" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    corpus = data_dir() / "corpus"
    assert f"Leave out --data to use the shipped data, or copy the shipped corpus into it (`cp -r {corpus}" in err
    assert f"--quick --from-scratch --data {tmp_path} --work {tmp_path}`" in err and "runs/" not in err
    assert list(tmp_path.iterdir()) == []
    # with the corpus and the target but no decomposition: decompose that target into that folder
    (tmp_path / "corpus").mkdir()
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=f"VPD_LITE_DATA={tmp_path} python -m vpd_lite.decompose --out "
                                                f"{tmp_path / 'decomposition'}"):
        Artefacts.in_folder(tmp_path).check()
    # --from-scratch needs the corpus only
    Artefacts.in_folder(tmp_path).check(("corpus",))


@pytest.mark.parametrize("args", [["--seeds", "0"], ["--seeds", "-3"], ["--threads", "0"], ["--seeds", "x"]])
def test_bad_numbers_are_refused_up_front(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--quick", *args])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "error:" in err and "Traceback" not in err


class HeldOutTouched(Exception):
    pass


class PoisonedBlocks(dict):
    """Held-out blocks that raise on any access: choosing and fitting must never read them."""

    def _boom(self, *args, **kwargs):
        raise HeldOutTouched("held-out text was read")

    __getitem__ = __iter__ = __len__ = __contains__ = keys = values = items = get = _boom


def test_choosing_and_fitting_never_read_held_out_text(tmp_path, monkeypatch):
    """Selection rules, search ranges, the scalar fits and the LoRA learning-rate sweep run on training text
    only: with held-out blocks that raise when touched, building the choices and fitting still work, and the
    held-out evaluation is the first thing that fails."""
    import vpd_lite.models.corpus as corpus_mod
    from vpd_lite.erase.protocol import evaluate_fits
    from vpd_lite.interpret.harvest import harvest
    from vpd_lite.method.checkpoint import load_decomposition
    from vpd_lite.models.corpus import load_corpus
    from vpd_lite.models.target import load_target

    data = make_tiny_data(tmp_path / "data")
    model, tok = load_target(data / "target")
    cm = load_decomposition(data / "decomposition", model)
    corpus = load_corpus(data / "corpus")
    config = EraseConfig.quick(budgets=(4,), lora_lrs=(1e-2,))
    real = corpus_mod.lang_token_blocks

    def no_heldout(tokenizer, corp, split, *a, **k):
        if split == "heldout":
            return PoisonedBlocks()
        return real(tokenizer, corp, split, *a, **k)

    monkeypatch.setattr(corpus_mod, "lang_token_blocks", no_heldout)
    stats = harvest(cm, real(tok, corpus, "train", 32, 2))
    setup = build_setup(cm, tok, corpus, stats, config, progress=False)
    assert isinstance(setup.heldout, PoisonedBlocks)
    fits = fit_all(setup, config, progress=False)
    assert {f["method"] for f in fits} == set(config.methods) and len(fits) == 7 * 2
    with pytest.raises(HeldOutTouched):
        evaluate_fits(setup, fits, config, progress=False)


def test_reproduce_quick_end_to_end(tmp_path, capsys, monkeypatch):
    data = make_tiny_data(tmp_path / "data")
    monkeypatch.setenv("VPD_LITE_RUNS", str(tmp_path / "runs"))
    # default: a new run folder, and on Linux with 2+ cores the sweep and scan run in worker processes
    assert main(["--quick", "--data", str(data), "--no-figures", "--workers", "2"]) == 0
    printed = capsys.readouterr().out
    (out,) = (tmp_path / "runs").iterdir()
    assert out.name.startswith("reproduce-") and f"results in {out}" in printed
    assert "| method | objective | German tokens |" in printed and "scalar_edit (target_ce) on 4 German tokens" in printed
    summary = pd.read_csv(out / "erase_german.csv")
    assert set(summary["method"]) == {"scalar_edit", "scalar_firing", "scalar_label", "scalar_top16",
                                      "lora_r1_all", "lora_r4_all", "lora_r1_local"}
    assert sorted(summary["budget"].unique()) == [4, 64]
    assert set(summary.loc[summary["budget"] == 4, "objective"]) == {"target_ce", "uniform_ce"}
    assert set(summary.loc[summary["budget"] == 64, "objective"]) == {"target_ce"}
    runs = pd.read_csv(out / "erase_german_runs.csv")
    assert len(runs) == 7 * 3 and runs["ce_before_de"].nunique() == 1
    assert (data / "component_stats.safetensors").exists() is False  # stats were harvested, not written to data
    md = (out / "erase_german.md").read_text()
    assert "## The published claim on our model" in md and "python -m vpd_lite.reproduce --quick" in md
    assert "Written before" in (out / "selection_rule.md").read_text()
    any_lang = pd.read_csv(out / "erase_any_language.csv")
    assert list(any_lang["erased"]) == ["de", "en", "fr", "es", "it"]
    for name in ("edit_scan_best.csv", "edit_scan_curves.csv", "edit_scan_prescreen.csv", "erase_any_language.md"):
        assert (out / name).stat().st_size > 100
    # a rerun in one process gives byte-identical tables: the worker processes change nothing
    again = tmp_path / "again"
    assert main(["--quick", "--data", str(data), "--out", str(again), "--workers", "1"]) == 0
    for name in ("erase_german.csv", "erase_german_runs.csv", "erase_any_language.csv", "edit_scan_best.csv",
                 "edit_scan_curves.csv"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name
    for name in ("erase_german_tradeoff", "erase_german_off_target", "erase_german_top16", "edit_scan_scatter",
                 "edit_scan_dose_response", "erase_any_language"):
        assert (again / f"{name}.png").stat().st_size > 1000, name
    # the decomposition folder alone runs on the shipped target and corpus (here the tiny data stands in for them)
    monkeypatch.setenv("VPD_LITE_DATA", str(data))
    bare, alone = tmp_path / "bare", tmp_path / "alone" / "decomposition"
    shutil.copytree(data / "decomposition", alone)
    assert main(["--quick", "--data", str(alone), "--out", str(bare), "--workers", "1", "--no-figures"]) == 0
    for name in ("erase_german.csv", "erase_german_runs.csv"):
        assert (bare / name).read_bytes() == (out / name).read_bytes(), name


def test_reproduce_from_scratch_quick(tmp_path, capsys):
    """--from-scratch retrains the target, decomposes, harvests + labels into --work, then erases."""
    data = tmp_path / "data"
    make_tiny_data(data, n_chars=4000)
    work, out = tmp_path / "work", tmp_path / "results"
    assert main(["--quick", "--from-scratch", "--data", str(data), "--work", str(work), "--out", str(out),
                 "--no-figures"]) == 0
    assert (work / "target" / "config.json").exists() and (work / "decomposition" / "decomposition.json").exists()
    assert (work / "component_stats.safetensors").exists() and (work / "labels.json").exists()
    assert len(pd.read_csv(out / "erase_german_runs.csv")) == 21
    assert "[from scratch] training the target" in capsys.readouterr().out


def test_shipped_report_says_which_numbers_depend_on_the_machine():
    """The measured machine dependence is in the report the command writes, and the shipped report carries it."""
    from vpd_lite.erase.report import MACHINE_NOTE

    root = Path(__file__).resolve().parents[2]
    shipped = (root / "results" / "erase_german.md").read_text()
    assert f"## Which numbers depend on the machine\n\n{MACHINE_NOTE}\n" in shipped
    assert "142 %" in MACHINE_NOTE and "130 %" in MACHINE_NOTE


def test_from_scratch_refuses_a_decomposition_folder_as_data(tmp_path, capsys):
    """``--from-scratch`` makes its own decomposition: a decomposition folder as ``--data`` is refused in one line
    before any work."""
    (tmp_path / "decomposition.json").write_text("{}")
    with pytest.raises(SystemExit) as exc:
        main(["--quick", "--from-scratch", "--data", str(tmp_path), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "is a decomposition folder" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decomposition.json"]


def test_edit_scan_command_gives_the_same_tables_with_workers(tmp_path, monkeypatch, capsys):
    """``python -m vpd_lite.edit_scan`` scans in worker processes (``--workers``) with the same numbers as in one
    process, and takes a decomposition folder alone (paired with the shipped target and corpus; here the tiny
    data stands in for them)."""
    from vpd_lite.commands.edit_scan import main as edit_scan

    data = make_tiny_data(tmp_path / "data", n_chars=4000)
    one, two, alone = tmp_path / "one", tmp_path / "two", tmp_path / "alone"
    assert edit_scan(["--quick", "--data", str(data), "--out", str(one), "--workers", "1"]) == 0
    assert edit_scan(["--quick", "--data", str(data), "--out", str(two), "--workers", "2"]) == 0
    monkeypatch.setenv("VPD_LITE_DATA", str(data))
    shutil.copytree(data / "decomposition", tmp_path / "run" / "decomposition")
    assert edit_scan(["--quick", "--data", str(tmp_path / "run" / "decomposition"), "--out", str(alone),
                      "--workers", "1"]) == 0
    for name in ("edit_scan_best.csv", "edit_scan_curves.csv", "edit_scan_prescreen.csv"):
        assert (two / name).read_bytes() == (one / name).read_bytes() == (alone / name).read_bytes(), name
    assert "Best components to erase de" in capsys.readouterr().out
