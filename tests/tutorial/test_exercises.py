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

