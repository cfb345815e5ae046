"""The erase-German explorer responds to programmatic dropdown / slider changes and leaves the model intact."""

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from vpd_lite.edit_widget import EditExplorer, greedy_continuation
from vpd_lite.edits import Direction, language_ce

VOCAB = 48


class CharTokenizer:
    """Minimal tokenizer: one token per character code modulo the vocabulary (decode shows the ids)."""

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(ch) % VOCAB for ch in text]}

    def decode(self, ids):
        return " ".join(str(int(i)) for i in ids)


def setup():
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                      initializer_range=0.2)
    model = LlamaForCausalLM(cfg).eval()
    g = torch.Generator().manual_seed(1)
    dirs = [Direction("model.layers.0.mlp.down_proj", 0, 2 * torch.randn(32, generator=g), torch.randn(64, generator=g)),
            Direction("model.layers.0.self_attn.v_proj", 3, 2 * torch.randn(32, generator=g), torch.randn(32, generator=g))]
    blocks = {lang: torch.randint(0, VOCAB, (2, 16), generator=g) for lang in ("en", "de")}
    return model, [("first", dirs[0]), ("second", dirs[1])], blocks


def test_widget_updates_on_slider_and_dropdown():
    model, cands, blocks = setup()
    base = language_ce(model, blocks)
    ex = EditExplorer(model, CharTokenizer(), cands, blocks, max_new_tokens=6)
    assert ex.ce == base  # s starts at 1: the unedited model
    first_png, first_text = ex.chart.value, ex.text.value
    assert first_png[:4] == b"\x89PNG" and "When the system starts," in first_text

    ex.slider.value = -2.0  # as a user would
    assert ex.ce["de"] != base["de"] and ex.chart.value != first_png
    after_slider = dict(ex.ce)
    ex.dropdown.value = 1
    assert ex.component == ("model.layers.0.self_attn.v_proj", 3)
    assert ex.ce != after_slider

    ex.slider.value = 1.0
    assert ex.ce == base  # back to the unedited model
    assert language_ce(model, blocks) == base  # no hook left behind


def test_continuations_follow_the_edit():
    model, cands, blocks = setup()
    ex = EditExplorer(model, CharTokenizer(), cands, blocks, max_new_tokens=8)
    plain = dict(ex.continuations)
    assert plain["de"] == greedy_continuation(model, CharTokenizer(), ex.prompts["de"], 8)
    changed = False
    for s in (-2.0, 0.0, 2.0):
        ex.show(0, s)
        changed |= ex.continuations != plain
    assert changed
    ex.show(0, 1.0)
    assert ex.continuations == plain
