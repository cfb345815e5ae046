"""The erase-German explorer: pick a component, turn its prefactor s, watch CE per language move.

``EditExplorer(model, tokenizer, candidates, eval_blocks)`` shows a dropdown of components (ranked by
German-specificity, with their labels), a slider for s in [-2, 2] (W' = W + (s - 1) U_c V_c^T on that one
component), a bar chart of held-out CE per language against the unedited model and ln(vocab), and greedy
German and English continuations under the edit. It works when driven from code: set
``explorer.dropdown.value`` / ``explorer.slider.value`` (or call :meth:`EditExplorer.show`) and ``ce``,
``continuations``, the chart and the text update. The chart is a PNG in an ``ipywidgets.Image``, so it also
updates without a live front end.
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from torch import Tensor, nn

from vpd_lite.edits import ComponentId, Direction, ScalarEdit, language_ce, uniform_level

#: Prompts for the continuations (same spirit as ``vpd_lite.target.SAMPLE_PROMPTS``).
DEFAULT_PROMPTS = {"de": "Wenn das System startet,", "en": "When the system starts,"}


@torch.no_grad()
def greedy_continuation(model: nn.Module, tokenizer: Any, prompt: str, max_new_tokens: int = 16) -> str:
    """Greedy continuation of ``prompt`` (decoded text of the new tokens only)."""
    ids = torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"]])  # (1, T)
    start = ids.shape[1]
    max_len = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    for _ in range(max_new_tokens):
        window = ids[:, -max_len:] if max_len else ids
        nxt = model(input_ids=window).logits[:, -1].argmax(-1, keepdim=True)  # (1, 1)
        ids = torch.cat([ids, nxt], dim=1)
    return tokenizer.decode(ids[0, start:].tolist())


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


class EditExplorer:
    """Dropdown of candidate components + slider for their prefactor s, with live CE bars and continuations.

    candidates: ``[(label, Direction)]`` in display order (e.g. most German-specific first);
    eval_blocks: ``{lang: LongTensor (N, T)}`` held-out blocks (keep them small: every slider move
    re-evaluates them).
    """

    def __init__(self, model: nn.Module, tokenizer: Any, candidates: Sequence[tuple[str, Direction]],
                 eval_blocks: Mapping[str, Tensor], prompts: Mapping[str, str] | None = None,
                 max_new_tokens: int = 16) -> None:
        if not candidates:
            raise ValueError("no candidate components to explore")
        self.model, self.tokenizer = model, tokenizer
        self.candidates = list(candidates)
        self.eval_blocks = dict(eval_blocks)
        self.prompts = dict(prompts or DEFAULT_PROMPTS)
        self.max_new_tokens = max_new_tokens
        self.uniform = uniform_level(int(model.config.vocab_size))
        self.base_ce = language_ce(model, self.eval_blocks)
        self.ce: dict[str, float] = dict(self.base_ce)
        self.continuations: dict[str, str] = {}
        self._muted = False
        self.dropdown = widgets.Dropdown(
            options=[(f"{i + 1}. {label}"[:110], i) for i, (label, _) in enumerate(self.candidates)],
            value=0, description="component", layout={"width": "760px"})
        self.slider = widgets.FloatSlider(value=1.0, min=-2.0, max=2.0, step=0.1, description="s",
                                          continuous_update=False, readout_format=".1f")
        self.chart = widgets.Image(format="png")
        self.text = widgets.HTML()
        self.dropdown.observe(self._on_change, names="value")
        self.slider.observe(self._on_change, names="value")
        self.widget = widgets.VBox([self.dropdown, self.slider, self.chart, self.text])
        self.update()

    @property
    def direction(self) -> Direction:
        """The direction currently selected in the dropdown."""
        return self.candidates[int(self.dropdown.value)][1]

    @property
    def component(self) -> ComponentId:
        return self.direction.component

    def show(self, index: int, s: float) -> None:
        """Select candidate ``index`` and set s (the same as moving the widgets by hand)."""
        self._muted = True  # one redraw for both changes
        try:
            self.dropdown.value = int(index)
            self.slider.value = float(s)
        finally:
            self._muted = False
        self.update()

    def _on_change(self, change: Any) -> None:
        if not self._muted:
            self.update()

    def update(self) -> None:
        """Recompute CE per language and the continuations under the current edit; redraw."""
        edit = ScalarEdit(self.model, [self.direction], init=float(self.slider.value))
        with edit:
            self.ce = language_ce(self.model, self.eval_blocks)
            self.continuations = {lang: greedy_continuation(self.model, self.tokenizer, p, self.max_new_tokens)
                                  for lang, p in self.prompts.items()}
        self.chart.value = _png(self._figure())
        rows = "".join(
            f"<tr><td><b>{html.escape(lang)}</b></td><td>{html.escape(self.prompts[lang])}"
            f"<span style='color:#c0392b'>{html.escape(text)}</span></td></tr>"
            for lang, text in self.continuations.items())
        self.text.value = f"<table>{rows}</table>"

    def _figure(self):
        langs = list(self.ce)
        fig, ax = plt.subplots(figsize=(5.5, 3.0))
        x = range(len(langs))
        ax.bar([i - 0.2 for i in x], [self.base_ce[lang] for lang in langs], 0.4, color="#bbbbbb", label="s = 1")
        ax.bar([i + 0.2 for i in x], [self.ce[lang] for lang in langs], 0.4, color="#c0392b",
               label=f"s = {self.slider.value:.1f}")
        ax.axhline(self.uniform, ls="--", color="black", lw=1, label="ln(vocab), uniform")
        ax.set_xticks(list(x), langs)
        ax.set_ylabel("held-out CE (nats/token)")
        module, c = self.component
        ax.set_title(f"{module}:{c} at s = {self.slider.value:.1f}: does only German rise?", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        return fig

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)


def german_candidates(cm: nn.Module, stats: Any, labels: Sequence[Any] | None = None, n: int = 20,
                      lang: str = "de") -> list[tuple[str, Direction]]:
    """The ``n`` most German-specific components as ``(label, Direction)``, labels from ``labels`` if given
    (``vpd_lite.labelling.ComponentLabel``), else the specificity score."""
    from vpd_lite.analysis import component_key, language_specificity
    from vpd_lite.edits import component_directions

    by_key = {lab.component: lab.label for lab in labels or []}
    ranked = language_specificity(stats, lang)[:n]
    dirs = component_directions(cm, [cid for cid, _ in ranked])
    return [(f"{component_key(cid)} — {by_key.get(component_key(cid), f'{score:.0%} German-specific')}", d)
            for (cid, score), d in zip(ranked, dirs)]
