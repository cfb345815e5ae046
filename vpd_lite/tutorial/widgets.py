"""The component browser: pick a matrix and a component, see everything the statistics say about it.

``ComponentBrowser(stats, tokenizer, cm=..., lang_blocks=..., labels=...)`` shows, for the chosen component, a
summary line (label, firing frequency, activation sign), firing rate per language, its CI histogram, the CE
change per language when it is removed (when a ComponentModel and held-out blocks are given), and its
top-activating contexts shaded by CI. It works when driven from code: set ``browser.matrix.value`` /
``browser.component.value`` (or call :meth:`ComponentBrowser.select`) and the outputs update.
Figures are rendered to PNG into an ``ipywidgets.Image`` so they also update without a live front end.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import torch

from vpd_lite.interpret.ablation import ablation_effects, target_ce
from vpd_lite.interpret.ids import ComponentId, component_key, parse_component_id
from vpd_lite.interpret.labels import ComponentLabel
from vpd_lite.interpret.statistics import ComponentStats, live_components
from vpd_lite.tutorial.plots import component_card, contexts_html, figure_png, shorten


class ComponentBrowser:
    """Matrix + component dropdowns over the live components of ``stats``, with linked views."""

    def __init__(
        self,
        stats: ComponentStats,
        tokenizer: Any | None = None,
        cm: Any | None = None,
        lang_blocks: Mapping[str, torch.Tensor] | None = None,
        labels: Sequence[ComponentLabel] | None = None,
        n_contexts: int = 8,
    ) -> None:
        self.stats, self.tokenizer, self.cm, self.lang_blocks = stats, tokenizer, cm, lang_blocks
        self.labels = {lab.component: lab for lab in labels or []}
        self.n_contexts = n_contexts
        self._effects: dict[ComponentId, dict[str, float]] = {}
        self._base_ce: dict[str, float] | None = None
        self._quiet = False  # True while several dropdowns change at once: refresh only at the end
        self._live: dict[str, list[int]] = {}
        for m, c in live_components(stats):
            self._live.setdefault(m, []).append(c)
        if not self._live:
            raise ValueError("no live components in these stats: nothing to browse")
        self.matrix = widgets.Dropdown(options=list(self._live), description="matrix", layout={"width": "420px"})
        self.component = widgets.Dropdown(description="component", layout={"width": "720px"})
        self.summary = widgets.HTML()
        self.figure = widgets.Image(format="png")
        self.contexts = widgets.HTML()
        self._set_component_options(self.matrix.value)
        self.matrix.observe(self._on_matrix, names="value")
        self.component.observe(self._on_component, names="value")
        self.widget = widgets.VBox([widgets.HBox([self.matrix, self.component]), self.summary, self.figure, self.contexts])
        self._refresh()

    # ------------------------------------------------------------------------------------------------ state
    @property
    def selected(self) -> ComponentId:
        """The component currently shown."""
        return (self.matrix.value, int(self.component.value))

    def select(self, cid: ComponentId | str) -> None:
        """Show ``cid`` (a (module, index) tuple or ``"module:index"``)."""
        module, c = parse_component_id(cid)
        if c not in self._live.get(module, []):
            raise ValueError(f"{component_key((module, c))} is not a live component of these stats")
        self._quiet = True
        try:
            self.matrix.value = module
            self.component.value = c
        finally:
            self._quiet = False
        self._refresh()

    def _option_text(self, module: str, c: int) -> str:
        lab = self.labels.get(component_key((module, c)))
        freq = float(self.stats.firing_frequency(module)[c])
        text = lab.label if lab is not None else f"fires on {freq:.2%} of tokens"
        return f"{c}: {shorten(text, 90)}"

    def _set_component_options(self, module: str) -> None:
        freq = self.stats.firing_frequency(module)
        order = sorted(self._live[module], key=lambda c: (-float(freq[c]), c))
        self.component.options = [(self._option_text(module, c), c) for c in order]
        self.component.value = order[0]

    def _on_matrix(self, change) -> None:
        quiet, self._quiet = self._quiet, True
        try:
            self._set_component_options(change["new"])
        finally:
            self._quiet = quiet
        if not quiet:
            self._refresh()

    def _on_component(self, change) -> None:
        if change["new"] is not None and not self._quiet:
            self._refresh()

    # ----------------------------------------------------------------------------------------------- views
    def effects(self, cid: ComponentId) -> dict[str, float] | None:
        """Ablation ΔCE per language of ``cid`` (cached), or None without a ComponentModel and blocks."""
        if self.cm is None or self.lang_blocks is None:
            return None
        if cid not in self._effects:
            if self._base_ce is None:
                self._base_ce = target_ce(self.cm, self.lang_blocks)
            self._effects[cid] = ablation_effects(self.cm, [cid], self.lang_blocks, base_ce=self._base_ce)[cid]
        return self._effects[cid]

    def _refresh(self) -> None:
        if self.component.value is None:
            return
        cid = self.selected
        stats = self.stats
        lab = self.labels.get(component_key(cid))
        sign = {1: "positive", -1: "negative", 0: "none"}[stats.activation_sign(cid)]
        lines = [
            f"<b>{html.escape(component_key(cid))}</b>",
            html.escape(lab.label) + f" <i>[{html.escape(lab.category)}]</i>" if lab is not None else "",
            f"fires on {stats.n_fires(cid)} of {stats.n_tokens} tokens "
            f"({float(stats.firing_frequency(cid[0])[cid[1]]):.2%}); mean CI {float(stats.mean_ci(cid[0])[cid[1]]):.3f}; "
            f"activation sign {sign} (mean {stats.mean_activation(cid):+.3f})",
        ]
        effects = self.effects(cid)
        if effects is not None:
            lines.append("removing it changes held-out CE by " + ", ".join(f"{k} {v:+.3f}" for k, v in effects.items())
                         + " nats/token")
        self.summary.value = "<br>".join(line for line in lines if line)
        self.figure.value = figure_png(component_card(stats, cid, effects))
        self.contexts.value = contexts_html(stats, cid, self.tokenizer, self.n_contexts)

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
