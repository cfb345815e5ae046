"""The edit explorer: it responds to slider / dropdown changes, its slider covers where effects live, its
dose-response curve is the language CE at the grid points, continuations stop at end-of-text and never show a
special token, and the model is left intact."""

from types import SimpleNamespace

import pytest
import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from vpd_lite.erase.edits import Direction, ScalarEdit
from vpd_lite.method.cross_entropy import language_ce
from vpd_lite.tutorial.edit_widget import (
    FIGURE_CLASS,
    FIGURE_TITLE,
    EditExplorer,
    dose_response,
    explorer_figure,
    greedy_continuation,
)

VOCAB = 48
EOS = 0


class CharTokenizer:
    """One token per character code modulo the vocabulary; id 0 is the special token ``<eos>``."""

    eos_token_id = EOS

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(ch) % VOCAB or 1 for ch in text]}

    def decode(self, ids, skip_special_tokens=False):
        return " ".join("<eos>" if i == EOS else str(int(i)) for i in ids if not (skip_special_tokens and i == EOS))


class ScriptedLM(nn.Module):
    """A stand-in causal LM whose greedy next token after a sequence of length L is ``script[L - prompt_len]``
    (then ``filler`` forever)."""

    def __init__(self, script, prompt_len, filler=5, vocab=VOCAB, eos=EOS):
        super().__init__()
        self.script, self.prompt_len, self.filler = list(script), prompt_len, filler
        self.config = SimpleNamespace(eos_token_id=eos, vocab_size=vocab, max_position_embeddings=None)
        self.vocab = vocab

    def forward(self, input_ids):
        i = input_ids.shape[1] - self.prompt_len
        nxt = self.script[i] if i < len(self.script) else self.filler
        logits = torch.zeros(*input_ids.shape, self.vocab)
        logits[:, -1, nxt] = 1.0
        return SimpleNamespace(logits=logits)


def setup():
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                      initializer_range=0.2, eos_token_id=EOS)
    model = LlamaForCausalLM(cfg).eval()
    g = torch.Generator().manual_seed(1)
    dirs = [Direction("model.layers.0.mlp.down_proj", 0, 2 * torch.randn(32, generator=g), torch.randn(64, generator=g)),
            Direction("model.layers.0.self_attn.v_proj", 3, 2 * torch.randn(32, generator=g), torch.randn(32, generator=g))]
    blocks = {lang: torch.randint(1, VOCAB, (2, 16), generator=g) for lang in ("en", "de")}
    return model, [("first", dirs[0]), ("second", dirs[1])], blocks


def bar_values(fig, name_prefix="s = "):
    bars = [t for t in fig.data if t.type == "bar" and t.name.startswith(name_prefix) and "original" not in t.name]
    return list(bars[0].y)


# ------------------------------------------------------------------------------------------ continuations
def test_continuation_stops_at_end_of_text_and_hides_special_tokens():
    tok = CharTokenizer()
    prompt = "ab"
    model = ScriptedLM([7, 8, EOS, 9, 10], prompt_len=2)
    text = greedy_continuation(model, tok, prompt, max_new_tokens=10)
    assert text == "7 8"  # stopped at end-of-text: nothing after it, and the token itself is not shown
    assert "<eos>" not in text


def test_continuation_without_end_of_text_runs_to_the_budget():
    model = ScriptedLM([7, 8], prompt_len=2, filler=5)
    assert greedy_continuation(model, CharTokenizer(), "ab", max_new_tokens=4) == "7 8 5 5"


def test_continuation_with_the_shipped_tokenizer_never_prints_endoftext():
    from vpd_lite.models.target import EOS_TOKEN, load_target

    model, tokenizer = load_target()
    prompt = "Wenn das System startet,"
    n = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    hallo = tokenizer(" Hallo", add_special_tokens=False)["input_ids"]
    scripted = ScriptedLM(hallo + [tokenizer.eos_token_id] + hallo, prompt_len=n, vocab=len(tokenizer),
                          eos=tokenizer.eos_token_id)
    assert greedy_continuation(scripted, tokenizer, prompt, max_new_tokens=20) == " Hallo"
    # and the real model, edited hard, never shows the special token either
    for text in (greedy_continuation(model, tokenizer, p, 24) for p in ("Hallo", "The", "\n\n")):
        assert EOS_TOKEN not in text


# ------------------------------------------------------------------------------------------ the widget
def test_slider_covers_where_effects_live_in_fine_steps():
    model, cands, blocks = setup()
    ex = EditExplorer(model, CharTokenizer(), cands, blocks, max_new_tokens=2)
    assert ex.slider.description == "s"
    assert ex.slider.min <= -15 and ex.slider.max >= 5
    assert ex.slider.step <= 0.25
    assert (ex.slider.max - ex.slider.min) / ex.slider.step >= 80  # fine steps
    assert ex.slider.layout.width == "760px"  # a track long enough to hit them
    assert ex.slider.value == 1.0  # starts at the original model
    assert FIGURE_CLASS in ex.output._dom_classes
    assert ex.figure.layout.title.text.startswith(FIGURE_TITLE)


def test_the_figure_is_set_on_the_output_widget_never_captured(monkeypatch):
    """The explorer puts its figure into its Output widget's ``outputs`` and never captures a ``display`` with
    ``with output:``: a capture makes nbclient (nbmake) send the captured output back to the kernel on the channel
    it waits on for the cell's reply, and that wait could then sit until the cell timeout (120 s in the test
    command) before going on: jupyter/nbclient#312."""
    import ipywidgets
    import plotly.io as pio

    def refuse(self):
        raise AssertionError("the explorer captured output with `with output:`")

    monkeypatch.setattr(ipywidgets.Output, "__enter__", refuse)
    monkeypatch.setattr(pio.renderers, "default", "plotly_mimetype")  # what a kernel in JupyterLab gets
    model, cands, blocks = setup()
    ex = EditExplorer(model, CharTokenizer(), cands, blocks, max_new_tokens=2)
    first = ex.output.outputs
    ex.show(0, -4.0)
    (shown,) = ex.output.outputs
    assert shown["output_type"] == "display_data" and "application/vnd.plotly.v1+json" in shown["data"]
    assert shown != first[0]  # redrawn for the new s, replacing the old figure


def test_widget_updates_on_slider_and_dropdown():
    model, cands, blocks = setup()
    base = language_ce(model, blocks)
    ex = EditExplorer(model, CharTokenizer(), cands, blocks, max_new_tokens=6)
    assert ex.ce == base  # s starts at 1: the unedited model
    first_fig, first_text = ex.figure, ex.text.value
    assert "When the system starts," in first_text
    assert bar_values(first_fig) == [base[lang] for lang in base]

    ex.slider.value = -12.5  # as a user would
    assert ex.ce["de"] != base["de"] and ex.figure is not first_fig
    assert bar_values(ex.figure) == [ex.ce[lang] for lang in ex.ce]
    assert "-12.50" in ex.figure.layout.title.text
    vlines = [sh for sh in ex.figure.layout.shapes if sh.x0 == sh.x1]
    assert any(sh.x0 == -12.5 for sh in vlines)  # the curve's marker line moved to the new s
    after_slider = dict(ex.ce)
    ex.dropdown.value = 1
    assert ex.component == ("model.layers.0.self_attn.v_proj", 3)
    assert ex.ce != after_slider

    ex.slider.value = 1.0
    assert ex.ce == base  # back to the unedited model
    assert language_ce(model, blocks) == base  # no hook left behind


def test_curve_is_the_language_ce_at_the_grid_points():
    model, cands, blocks = setup()
    grid = [-15.0, -3.0, 0.0, 1.0, 5.0]
    ex = EditExplorer(model, CharTokenizer(), cands, blocks, max_new_tokens=2, grid=grid)
    curve = ex.curve()
    direction = cands[0][1]
    for i, s in enumerate(grid):
        with ScalarEdit(model, [direction], init=s):
            want = language_ce(model, blocks)
        for lang in blocks:
            assert curve[lang][i] == pytest.approx(want[lang], abs=1e-6)
    assert [curve[lang][grid.index(1.0)] for lang in blocks] == pytest.approx([ex.base_ce[lang] for lang in blocks])
    # the figure draws exactly that curve, and marks the current s with the bars' values
    lines = {t.name: list(t.y) for t in ex.figure.data if t.type == "scatter" and t.mode == "lines"}
    assert lines == {lang: curve[lang] for lang in blocks}
    ex.slider.value = -3.0
    markers = [t for t in ex.figure.data if t.type == "scatter" and t.mode == "markers"][0]
    assert list(markers.x) == [-3.0, -3.0]
    assert list(markers.y) == pytest.approx([curve[lang][1] for lang in blocks], abs=1e-6)
    assert language_ce(model, blocks) == ex.base_ce  # dose_response left no hook


def test_precomputed_curves_are_used():
    model, cands, blocks = setup()
    grid = [-1.0, 1.0]
    given = {cands[0][1].component: {"en": [9.0, 3.0], "de": [8.0, 3.5]}}
    ex = EditExplorer(model, CharTokenizer(), cands, blocks, max_new_tokens=2, grid=grid, curves=given)
    assert ex.curve() == {"en": [9.0, 3.0], "de": [8.0, 3.5]}
    assert dose_response(model, cands[1][1], blocks, grid)["en"][1] == pytest.approx(ex.base_ce["en"], abs=1e-6)


def test_figure_without_curve_has_bars_only():
    fig = explorer_figure("m:0", -2.0, {"de": 5.0, "en": 3.0}, {"de": 4.0, "en": 3.0}, 8.3)
    assert [t.type for t in fig.data] == ["bar", "bar"]


def test_continuations_follow_the_edit():
    model, cands, blocks = setup()
    ex = EditExplorer(model, CharTokenizer(), cands, blocks, max_new_tokens=8)
    plain = dict(ex.continuations)
    assert plain["de"] == greedy_continuation(model, CharTokenizer(), ex.prompts["de"], 8)
    changed = False
    for s in (-12.0, 0.0, 4.0):
        ex.show(0, s)
        changed |= ex.continuations != plain
    assert changed
    ex.show(0, 1.0)
    assert ex.continuations == plain


def test_explorer_title_second_line_is_readable():
    """The "look for" line under the explorer's title is drawn at 12 px, not as a <sup> (about 10 px)."""
    fig = explorer_figure("m:0", -2.0, {"de": 5.0, "en": 3.0}, {"de": 4.0, "en": 3.0}, 8.3)
    title = fig.layout.title.text
    assert "<sup>" not in title and "font-size:12px" in title and "look for" in title
