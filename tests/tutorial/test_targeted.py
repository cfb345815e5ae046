"""Tests of notebook 05's tutorial pieces: the remainder-mask exercise's check (``coding.check_remainder_mask``) and
``vpd_lite.tutorial.targeted`` (the shipped comparison read with or without the targeted seed table; the figures)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch

from tests.tutorial.test_coding import crash, solution, stub
from vpd_lite.method.masks import remainder_mask
from vpd_lite.tutorial import coding, targeted

RESULTS = Path(__file__).resolve().parents[2] / "results"


def test_the_solution_the_library_and_an_answer_written_differently_pass():
    for fn in (solution("05_targeted_german.ipynb", "remainder_mask"),
               lambda u, stream: remainder_mask(u, stream == "rest"),
               lambda u, stream: torch.where(torch.tensor(stream == "rest"), torch.ones_like(u), u),
               lambda u, stream: u * (stream == "capability") + (stream != "capability")):
        result = coding.check_remainder_mask(fn)
        assert result and str(result).startswith("Correct:"), str(result)


def test_plausible_wrong_answers_are_refused_with_the_input_that_failed():
    wrong = [(lambda u, s: torch.ones_like(u), ["capability batch", "your mask is 1"]),
             (lambda u, s: u, ["rest batch", "your mask is u"]),
             (lambda u, s: torch.ones_like(u) if s == "capability" else u, ["capability batch"]),
             (lambda u, s: u if s == "capability" else torch.zeros_like(u), ["rest batch", "switched off"]),
             (lambda u, s: 1 - u if s == "capability" else torch.ones_like(u), ["g = 0"]),
             (lambda u, s: u if s == "capability" else torch.ones(u.shape[-1]), ["shape", "(3, 1, 5)"]),
             (lambda u, s: u if s == "capability" else 1, ["int 1"])]
    for fn, words in wrong:
        text = str(coding.check_remainder_mask(fn))
        assert text.startswith("Not quite:") and "u = [" in text and all(w in text for w in words), (words, text)


def test_the_stub_a_forgotten_return_and_a_crash_get_their_own_messages():
    text = str(coding.check_remainder_mask(stub))
    assert "not written yet" in text and "None" in text

    def forgot(u, stream):
        mask = u if stream == "capability" else torch.ones_like(u)  # noqa: F841

    text = str(coding.check_remainder_mask(forgot))
    assert "not written yet" not in text and "returned None" in text and "`return` missing" in text
    assert "raised RuntimeError: boom" in str(coding.check_remainder_mask(crash))


def _seed_rows(run: str, target: str = "shipped") -> pd.DataFrame:
    return pd.DataFrame({"run": run, "target": target, "decomposition_seed": 0, "component": "m.layers.1.v:3",
                         "seed": [0, 1], "s": -5.0, "s_free": -6.0, "way": [0.7, 0.9], "d_en": 0.01,
                         "d_worst_other": 0.05, "meets_claim": [False, True], "d_de": 3.0, "d_fr": 0.05,
                         "d_es": 0.02, "d_it": 0.03})


def test_the_comparison_reads_whichever_table_exists(tmp_path):
    assert targeted.load_comparison(tmp_path) == (None, targeted.load_comparison(tmp_path)[1])
    pd.concat([_seed_rows("shipped"), _seed_rows("target-seed1", "seed 1")]).to_csv(tmp_path / targeted.ACROSS_FILE,
                                                                                    index=False)
    seeds, note = targeted.load_comparison(tmp_path)
    assert targeted.TARGETED_FILE in note and "not shipped yet" in note
    assert list(dict.fromkeys(seeds["kind"])) == ["full decomposition", "retrained target"]
    pd.concat([_seed_rows("shipped"), _seed_rows("tpd-seed1"), _seed_rows("tpd-target-seed1", "seed 1")]).to_csv(
        tmp_path / targeted.TARGETED_FILE, index=False)
    seeds, note = targeted.load_comparison(tmp_path)
    assert note is None
    assert list(dict.fromkeys(seeds["run"])) == ["targeted shipped", "tpd-seed1", "tpd-target-seed1", "shipped",
                                                 "target-seed1"]
    assert (seeds.groupby("run", sort=False)["kind"].first().tolist()
            == ["targeted decomposition", "targeted decomposition", "targeted, retrained target",
                "full decomposition", "retrained target"])
    fig = targeted.plot_comparison(seeds)
    assert "80%" in fig.axes[0].get_xlabel() and len(fig.axes[0].get_yticklabels()) == 5


def test_the_shipped_study_loads_and_draws():
    seeds, _ = targeted.load_comparison(RESULTS)
    assert seeds is not None and set(seeds["kind"]) >= {"full decomposition", "retrained target"}
    targeted.plot_comparison(seeds)


def test_the_figures_draw_from_small_inputs():
    history = [{"step": 0}] + [{"step": s, "stochastic_recon": 0.5, "adversarial_recon": 1.0,
                                "rest_stochastic_recon": 0.1, "l0_mean": 9.0, "rest_l0_mean": 5.0} for s in (1, 5)]
    assert len(targeted.plot_targeted_history(history).axes) == 2
    metrics = {"ce_gap": {"ci_rounded": 0.1, "stochastic": 0.2, "pgd": 0.4}, "l0_mean": 8.0, "dead_frac": 0.2,
               "rest": {"ce_gap": {"ci_rounded_remainder": 0.06}},
               "targets_met": {"a": True, "b": True, "c": True, "d": True, "e": False}}
    table = targeted.quality_table(metrics)
    assert list(table["met"]) == ["yes", "–"] + ["yes"] * 3 + ["no"] and table["this run"].iloc[-1] == 0.06
    assert table["gate"].iloc[1] == "none" and table["this run"].iloc[1] == 0.2  # the stochastic gap: no gate
    targeted.plot_quality(metrics)
    heldout = pd.DataFrame({"s": [1.0, -6.0], "ce_en": [5.0, 5.01], "ce_de": [4.6, 8.0]})
    fig = targeted.plot_heldout_ce(heldout, 8.318)
    assert "German" in fig.axes[0].get_title()
    legend = fig.legends[0]  # the edited bars' entry shows every language's colour, as the bars do
    assert [t.get_text() for t in legend.get_texts()][1] == "edited (s = -6.00)"
    assert "remainder" in targeted.two_streams_picture().axes[0].get_title()
