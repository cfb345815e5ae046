"""Tests of vpd_lite.tutorial.widgets: the component browser responds to programmatic changes."""

from __future__ import annotations

import pytest
import torch

from vpd_lite.interpret.ablation import ablation_effect
from vpd_lite.interpret.harvest import harvest
from vpd_lite.interpret.labels import LabelConfig, label_components
from vpd_lite.interpret.statistics import StatsAccumulator
from vpd_lite.tutorial.widgets import ComponentBrowser

LANGS = ["en", "de"]


def make_stats():
    """Two modules; "a": comp 0 German, comp 1 everywhere (more often), comp 2 dead; "b": comp 1 English."""
    acc = StatsAccumulator({"a": 3, "b": 2}, LANGS, threshold=0.1, top_k=2, context_left=1, context_right=1)
    for lang in LANGS:
        ids = torch.tensor([[1, 2, 3, 4]]) if lang == "en" else torch.tensor([[5, 6, 7, 8]])
        a = torch.zeros(1, 4, 3)
        a[0, 1, 0] = 0.8 if lang == "de" else 0.0
        a[0, :, 1] = 0.5
        b = torch.zeros(1, 4, 2)
        b[0, 2, 1] = 0.9 if lang == "en" else 0.0
        acc.update(lang, ids, {"a": a, "b": b})
    return acc.finalize()


def test_browser_follows_dropdowns():
    stats = make_stats()
    browser = ComponentBrowser(stats, labels=label_components(stats, config=LabelConfig(min_fires=1)))
    assert list(browser.matrix.options) == ["a", "b"]
    assert [v for _, v in browser.component.options] == [1, 0]  # most frequent first, dead comp 2 absent
    assert browser.selected == ("a", 1)
    first = (browser.summary.value, bytes(browser.figure.value), browser.contexts.value)
    assert "a:1" in first[0] and first[1].startswith(b"\x89PNG")
    browser.component.value = 0
    assert browser.selected == ("a", 0)
    second = (browser.summary.value, bytes(browser.figure.value), browser.contexts.value)
    assert "a:0" in second[0] and "German" in second[0]
    assert all(x != y for x, y in zip(first, second))
    browser.matrix.value = "b"
    assert browser.selected == ("b", 1) and [v for _, v in browser.component.options] == [1]
    assert "b:1" in browser.summary.value and "English" in browser.summary.value
    assert "<b>English</b>" in browser.contexts.value
    browser.select("a:0")
    assert browser.selected == ("a", 0) and "a:0" in browser.summary.value
    with pytest.raises(ValueError, match="not a live component"):
        browser.select(("a", 2))


def test_browser_shows_ablation_effects_with_a_component_model():
    from transformers import LlamaConfig, LlamaForCausalLM

    from vpd_lite.method.components import ComponentModel

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2)).eval()
    cm = ComponentModel(model, {"*.mlp.down_proj": 4}, seed=0)
    g = torch.Generator().manual_seed(1)
    blocks = {lang: torch.randint(0, 32, (2, 8), generator=g) for lang in LANGS}
    stats = harvest(cm, blocks, threshold=0.0, top_k=2, progress=False)
    browser = ComponentBrowser(stats, cm=cm, lang_blocks=blocks)
    assert "removing it changes held-out CE by en" in browser.summary.value
    cid = browser.selected
    assert cid in browser._effects  # computed once and cached
    effects = browser.effects(cid)
    assert set(effects) == set(LANGS)
    assert effects == pytest.approx(ablation_effect(cm, cid, blocks))
    others = [v for _, v in browser.component.options if v != cid[1]]
    assert others, "threshold 0 with random CI functions should leave several live components"
    before = browser.summary.value
    browser.component.value = others[0]
    assert set(browser._effects) == {cid, browser.selected}
    assert browser.summary.value != before


def test_browser_needs_live_components():
    acc = StatsAccumulator({"a": 2}, LANGS)
    acc.update("en", torch.tensor([[1, 2]]), {"a": torch.zeros(1, 2, 2)})
    with pytest.raises(ValueError, match="no live components"):
        ComponentBrowser(acc.finalize())


def test_browser_renders_once_per_change():
    browser = ComponentBrowser(make_stats())
    calls = []
    render = browser._refresh
    browser._refresh = lambda: (calls.append(browser.selected), render())
    browser.select(("b", 1))
    assert calls == [("b", 1)]
    browser.matrix.value = "a"
    assert calls[1:] == [("a", 1)]
    browser.component.value = 0
    assert calls[2:] == [("a", 0)]


def test_headless_kernel_execution_leaves_no_widget_errors(tmp_path):
    """Build and drive the browser inside a real (headless) kernel, as nbmake does; no error may reach the outputs."""
    import nbformat
    from nbclient import NotebookClient

    from vpd_lite.models.paths import REPO_ROOT

    make_stats().save(tmp_path / "stats.safetensors")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(  # the kernel runs in tmp_path: make this checkout importable even if not installed
            f"import sys\nsys.path.insert(0, {str(REPO_ROOT)!r})\n"
            "from vpd_lite.interpret.statistics import ComponentStats\nfrom vpd_lite.tutorial.widgets import ComponentBrowser\n"
            f"browser = ComponentBrowser(ComponentStats.load({str(tmp_path / 'stats.safetensors')!r}))\nbrowser"),
        nbformat.v4.new_code_cell("browser.matrix.value = 'b'\nbrowser.select('a:0')\nprint(browser.selected)"),
    ]
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in nb.cells for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o for o in outputs if o.output_type == "stream" and o.name == "stderr" and "Error" in o.text]
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs)
    assert any(o.output_type == "stream" and "('a', 0)" in o.text for o in outputs)


def test_dropdown_labels_are_cut_at_word_boundaries_never_inside_a_number():
    import dataclasses
    import re

    stats = make_stats()
    labels = label_components(stats, config=LabelConfig(min_fires=1))
    long = "All languages (it 49%, en 15%, de 14%, es 13%, fr 10%); top tokens ' di', ' per', '2'; fires on 1.45% of tokens"
    labels = [dataclasses.replace(lab, label=long) for lab in labels]
    browser = ComponentBrowser(stats, labels=labels)
    for text, c in browser.component.options:
        shown = text.split(": ", 1)[1]
        assert shown.endswith("…") and long.startswith(shown[:-1].rstrip())
        numbers = set(re.findall(r"\d+(?:\.\d+)?%?", long))
        assert all(n in numbers for n in re.findall(r"\d+(?:\.\d+)?%?", shown))
        assert long[len(shown[:-1])] in " ;,"  # the cut is at a word boundary
