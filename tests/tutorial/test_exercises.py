"""Each exercise check says "Correct:" to the right answer and "Not quite:" (with a hint) to a wrong one."""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch

from vpd_lite.interpret.statistics import StatsAccumulator
from vpd_lite.tutorial import exercises as ex


def right(check) -> bool:
    return bool(check) and str(check).startswith("Correct: ") and "Correct:" in check._repr_html_()


def wrong(check) -> bool:
    return not check and str(check).startswith("Not quite: ") and len(str(check)) > len("Not quite: ") + 10


def lang_stats():
    """Component 0 fires on Italian, component 1 on everything; 60 tokens per language."""
    langs = ["en", "de", "fr", "es", "it"]
    acc = StatsAccumulator({"m": 2}, langs, threshold=0.1, top_k=3)
    for lang in langs:
        ci = torch.zeros(1, 60, 2)
        ci[..., 1] = 1.0
        if lang == "it":
            ci[0, :55, 0] = 1.0
        if lang == "es":
            ci[0, :5, 0] = 1.0
        acc.update(lang, torch.zeros(1, 60, dtype=torch.long), {"m": ci})
    return acc.finalize()


def test_check_type():
    assert right(ex.correct("fine")) and wrong(ex.not_quite("look again at the formula"))
    assert repr(ex.correct("x")) == "Correct: x"


def test_uniform_ce():
    assert right(ex.check_uniform_ce(math.log(4096), 4096))
    assert right(ex.check_uniform_ce("8.318", 4096))
    assert wrong(ex.check_uniform_ce(12.0, 4096))  # ln V in bits
    assert wrong(ex.check_uniform_ce(5.0, 4096)) and wrong(ex.check_uniform_ce(None, 4096))


def test_fully_kept():
    g, s = [1.0, 0.9, 0.4, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0, 0.0, 1.0]
    assert right(ex.check_fully_kept([0, 3, 5], g, s)) and right(ex.check_fully_kept((5, 0, 3), g, s))
    assert wrong(ex.check_fully_kept([0], g, s)) and wrong(ex.check_fully_kept([0, 1], g, s))
    assert wrong(ex.check_fully_kept(None, g, s))


def test_rank1_parameters():
    assert right(ex.check_rank1_parameters(640, 512, 128))
    assert wrong(ex.check_rank1_parameters(512 * 128, 512, 128)) and wrong(ex.check_rank1_parameters("x", 512, 128))


def test_component_language_and_mystery_component():
    stats = lang_stats()
    cid = ex.mystery_component(stats, min_fires=10)
    assert cid == ("m", 0)  # the only component specific to a language other than German
    assert right(ex.check_component_language("it", stats, cid))
    assert right(ex.check_component_language(" Italian ", stats, cid))
    assert wrong(ex.check_component_language("es", stats, cid))
    assert wrong(ex.check_component_language("Klingon", stats, cid)) and wrong(ex.check_component_language(3, stats, cid))


def test_largest_ablation_effect():
    effects = {"en": 0.01, "de": 0.8, "fr": 0.05, "es": 0.0, "it": 0.02}
    assert right(ex.check_largest_ablation_effect("German", effects)) and right(ex.check_largest_ablation_effect("de", effects))
    assert wrong(ex.check_largest_ablation_effect("fr", effects)) and wrong(ex.check_largest_ablation_effect(None, effects))


def test_category():
    profile = {"de": 0.55, "fr": 0.25, "en": 0.1, "es": 0.05, "it": 0.05}
    assert right(ex.check_category("mixed (German, French)", profile))
    assert right(ex.check_category("Mixed(German,French)", profile))
    assert wrong(ex.check_category("German", profile)) and wrong(ex.check_category(None, profile))
    assert right(ex.check_category("German", {"de": 0.9, "en": 0.1}))


def test_category_count():
    labels = [SimpleNamespace(category=c) for c in ["German", "German", "mostly German", "French"]]
    assert right(ex.check_category_count(2, labels, "German"))
    assert wrong(ex.check_category_count(3, labels, "German")) and wrong(ex.check_category_count("two", labels, "German"))



# ---- checks accept the principled answer (and a reasonably rounded one) in quick and in full runs


def test_uniform_ce_accepts_rounded_answers():
    for answer in (8.3, "8.32", 8.318, math.log(4096)):
        assert right(ex.check_uniform_ce(answer, 4096)), answer
    for answer in (8.4, 8.0, 8.2, 12):  # too coarse, wrong, or in bits
        assert wrong(ex.check_uniform_ce(answer, 4096)), answer
    assert "bits" in str(ex.check_uniform_ce(12.0, 4096))
    assert right(ex.check_uniform_ce(6.2, 512)) and wrong(ex.check_uniform_ce(6.0, 512))  # ln 512 = 6.238


def report_with(live: int) -> dict:
    return {"linear1": {"live": live}}


def test_live_count_accepts_five_in_quick_and_full_runs():
    quick, full = report_with(8), report_with(5)  # a short quick-mode run still has 8 live; a finished one 5
    assert right(ex.check_live_count(5, full, "linear1")) and right(ex.check_live_count(5.0, full, "linear1"))
    assert right(ex.check_live_count(5, quick, "linear1"))
    assert "8" in str(ex.check_live_count(5, quick, "linear1"))  # says what the short run found
    assert right(ex.check_live_count(8, quick, "linear1"))  # what this run shows is not wrong either
    assert "5" in str(ex.check_live_count(8, quick, "linear1"))
    for answer in (10, 2, "five"):
        assert wrong(ex.check_live_count(answer, full, "linear1")) and wrong(ex.check_live_count(answer, quick, "linear1"))


def pentagon_model():
    """A TMS 5-2 with an exact pentagon: |W_i| = 1.13, b = -0.25, so each feature leaks into its two neighbours."""
    from vpd_lite.models.toy_models import TMSModel

    model = TMSModel(5, 2)
    angles = torch.arange(5) * 2 * math.pi / 5
    W = 1.13 * torch.stack([torch.cos(angles), torch.sin(angles)])
    with torch.no_grad():
        model.linear1.weight.copy_(W)
        model.linear2.weight.copy_(W.T)
        model.linear2.bias.fill_(-0.25)
    return model


def ci_showing(on_linear2: list[int]) -> dict:
    ci = {"linear1": torch.zeros(5, 10), "linear2": torch.zeros(5, 10)}
    ci["linear1"][2, 0] = 1.0
    ci["linear2"][2, on_linear2] = 1.0
    return ci


def test_components_on_accepts_three_in_quick_and_full_runs():
    model = pentagon_model()
    assert ex.principled_components_on(model, 2, "linear2") == 3
    assert ex.principled_components_on(model, 2, "linear1") == 1
    full, quick = ci_showing([1, 2, 3]), ci_showing([0, 1, 2, 3, 4, 5])  # a short run: CI not yet clean
    for ci in (full, quick):
        assert right(ex.check_components_on(3, ci, feature=2, module="linear2", model=model))
        assert right(ex.check_components_on(1, ci, feature=2, module="linear1", model=model))
        assert wrong(ex.check_components_on(1, ci, feature=2, module="linear2", model=model))
        assert wrong(ex.check_components_on(5 if ci is full else 2, ci, feature=2, module="linear2", model=model))
    assert "6" in str(ex.check_components_on(3, quick, feature=2, module="linear2", model=model))
    assert right(ex.check_components_on(6, quick, feature=2, module="linear2", model=model))


def test_category_is_order_case_and_space_free():
    profile = {"de": 0.55, "fr": 0.25, "en": 0.1, "es": 0.05, "it": 0.05}
    for answer in ("mixed (German, French)", "mixed (French, German)", " MIXED(french,german) ", "mixed (fr, de)",
                   "mixed (French and German)"):
        assert right(ex.check_category(answer, profile)), answer
    for answer in ("mixed (German)", "mixed (German, French, English)", "mostly German", "German", "mixed"):
        assert wrong(ex.check_category(answer, profile)), answer
    assert right(ex.check_category("mostly french", {"fr": 0.6, "de": 0.15, "en": 0.1, "es": 0.1, "it": 0.05}))
    assert right(ex.check_category("All Languages", {lang: 0.2 for lang in ("en", "de", "fr", "es", "it")}))


def test_wrong_answers_do_not_say_which_way_to_go():
    """A repeated wrong try must not turn the exercise into a higher/lower guessing game."""
    labels = [SimpleNamespace(category=c) for c in ["German"] * 7 + ["French"]]
    hints = {str(ex.check_category_count(n, labels, "German")) for n in (3, 12)}
    assert len(hints) == 1  # too low and too high get the same hint
    hint = hints.pop().lower()
    for word in ("more", "fewer", "higher", "lower", "too "):
        assert word not in hint, word
    import pandas as pd

    curve = pd.DataFrame({"s": [-15.0, -10.0, -5.0, 0.0, 1.0], "d_fr": [0.9, 0.3, 0.06, 0.0, 0.0]})
    hints = {str(ex.check_first_move(v, curve)).replace(f"{v:g}", "X") for v in (-2.0, -15.0)}
    assert len(hints) == 1
    hint = hints.pop()
    assert not any(word in hint for word in ("earlier", "further", "long moved", "not moved"))
