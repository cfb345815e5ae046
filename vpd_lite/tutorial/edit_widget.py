"""The edit explorer: pick a component, turn its prefactor s, watch CE per language move.

``EditExplorer(model, tokenizer, candidates, eval_blocks)`` shows a dropdown of components (with their
labels), a slider ``s`` over [-15, 5] in steps of 0.25 (``W' = W + (s - 1) U_c V_c^T`` on that one component:
s = 1 is the original model, s = 0 removes the component, negative s flips it), and one plotly figure:

* top: CE per language (nats/token) at the current s next to the original model, with ln(vocab) dashed;
* bottom: the selected component's dose-response curve, CE per language against s on a grid, with the
  current s marked (the markers are the bars above).

Under the figure, greedy continuations of a German and an English prompt under the edit (they stop at
end-of-text and never show special tokens). The explorer works when driven from code: set
``explorer.dropdown.value`` / ``explorer.slider.value`` (or call :meth:`EditExplorer.show`) and ``ce``,
``continuations``, ``figure`` (a ``plotly.graph_objects.Figure``) and the displayed output update. The figure
is shown in an ``ipywidgets.Output`` with the CSS class ``vpd-edit-explorer-figure`` and a title starting
with "Edit explorer", so a browser test can find it.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from torch import Tensor, nn

from vpd_lite.erase.edits import (
    Direction,
    ScalarEdit,
    component_directions,
    uniform_level,
)
from vpd_lite.models.corpus import LANG_COLOURS
from vpd_lite.interpret.ids import ComponentId, component_key
from vpd_lite.method.components import position_limit
from vpd_lite.method.cross_entropy import language_ce

#: Prompts for the continuations (same spirit as ``vpd_lite.models.target.SAMPLE_PROMPTS``).
DEFAULT_PROMPTS = {"de": "Wenn das System startet,", "en": "When the system starts,"}


#: The slider: the range where the effects of one-component edits live on the shipped model, in fine steps.
S_MIN, S_MAX, S_STEP = -15.0, 5.0, 0.25


#: The s grid of the dose-response curve (21 points, includes s = 1, the original model).
CURVE_GRID: tuple[float, ...] = tuple(float(s) for s in range(-15, 6))


FIGURE_CLASS = "vpd-edit-explorer-figure"


FIGURE_TITLE = "Edit explorer"


def _eos_ids(model: nn.Module, tokenizer: Any) -> set[int]:
    ids = {getattr(tokenizer, "eos_token_id", None), getattr(getattr(model, "config", None), "eos_token_id", None)}
    out: set[int] = set()
    for i in ids:
        out.update(i if isinstance(i, (list, tuple)) else [i])
    return {int(i) for i in out if i is not None}


@torch.no_grad()
def greedy_continuation(model: nn.Module, tokenizer: Any, prompt: str, max_new_tokens: int = 16) -> str:
    """Greedy continuation of ``prompt``: the decoded text of the new tokens only.

    Generation stops at the first end-of-text token (``tokenizer.eos_token_id`` or the model config's
    ``eos_token_id``), which is not part of the text, and the text is decoded with
    ``skip_special_tokens=True``, so no special token is ever printed. At most ``max_new_tokens`` tokens.
    """
    ids = torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"]])  # (1, T)
    start = ids.shape[1]
    eos = _eos_ids(model, tokenizer)
    max_len = position_limit(model)
    for _ in range(max_new_tokens):
        window = ids[:, -max_len:] if max_len else ids
        nxt = model(input_ids=window).logits[:, -1].argmax(-1, keepdim=True)  # (1, 1)
        if int(nxt) in eos:
            break
        ids = torch.cat([ids, nxt], dim=1)
    return tokenizer.decode(ids[0, start:].tolist(), skip_special_tokens=True)


@torch.no_grad()
def dose_response(model: nn.Module, direction: Direction, blocks: Mapping[str, Tensor],
                  grid: Sequence[float] = CURVE_GRID) -> dict[str, list[float]]:
    """CE per language (nats/token) of the one-component edit at every ``s`` of ``grid``.

    ``blocks[lang]``: LongTensor (N, T). Returns ``{lang: [CE at grid[0], CE at grid[1], ...]}``, each value
    exactly ``language_ce`` of the model edited to that s (the model is left unedited afterwards).
    """
    out: dict[str, list[float]] = {lang: [] for lang in blocks}
    edit = ScalarEdit(model, [direction])
    with edit:
        for s in grid:
            edit.set_scales(float(s))
            for lang, ce in language_ce(model, blocks).items():
                out[lang].append(ce)
    return out


def explorer_figure(component: str, s: float, ce: Mapping[str, float], base_ce: Mapping[str, float],
                    uniform: float, grid: Sequence[float] | None = None,
                    curve: Mapping[str, Sequence[float]] | None = None) -> go.Figure:
    """The explorer's figure: CE bars per language at ``s`` vs the original model (top) and, when given, the
    dose-response ``curve`` ({lang: CE per grid point}, nats/token) over ``grid`` with ``s`` marked (bottom).
    Both panels share one CE axis from 0 to above the largest value shown (bars, curve and ln(vocab))."""
    langs = list(ce)
    rows = 2 if curve is not None else 1
    fig = make_subplots(rows=rows, cols=1, vertical_spacing=0.16, row_heights=[0.45, 0.55] if rows == 2 else None,
                        subplot_titles=["CE per language at this s (grey: original model, s = 1)",
                                        "dose-response: CE per language against s (dotted line: this s)"][:rows])
    fig.add_bar(x=langs, y=[base_ce[lang] for lang in langs], name="s = 1 (original)", marker_color="#bbbbbb",
                hovertemplate="%{x}: %{y:.3f} nats/token<extra>s = 1</extra>", row=1, col=1)
    fig.add_bar(x=langs, y=[ce[lang] for lang in langs], name=f"s = {s:.2f} (coloured bars)",
                marker_color=[LANG_COLOURS.get(lang, "#555555") for lang in langs],
                hovertemplate="%{x}: %{y:.3f} nats/token<extra>s = " + f"{s:.2f}</extra>", row=1, col=1)
    fig.add_hline(y=uniform, line_dash="dash", line_color="black", row=1, col=1,
                  annotation_text="ln(vocab): knows nothing", annotation_position="top left")
    fig.update_yaxes(title_text="CE (nats/token)", row=1, col=1)
    if curve is not None:
        grid = list(grid if grid is not None else CURVE_GRID)
        for lang in langs:
            color = LANG_COLOURS.get(lang, "#555555")
            fig.add_scatter(x=grid, y=list(curve[lang]), mode="lines", name=lang, line_color=color,
                            legendgroup=lang, showlegend=True, row=2, col=1,
                            hovertemplate=f"{lang}: " + "s = %{x}: %{y:.3f} nats/token<extra></extra>")
        fig.add_scatter(x=[s] * len(langs), y=[ce[lang] for lang in langs], mode="markers", name="this s",
                        marker={"color": [LANG_COLOURS.get(lang, "#555555") for lang in langs], "size": 9,
                                "line": {"color": "black", "width": 1}}, showlegend=False, row=2, col=1,
                        hovertemplate="%{y:.3f} nats/token<extra>this s</extra>")
        fig.add_vline(x=s, line_dash="dot", line_color="black", row=2, col=1)
        fig.add_hline(y=uniform, line_dash="dash", line_color="black", row=2, col=1)
        fig.update_xaxes(title_text="s (prefactor of the component)", row=2, col=1)
        fig.update_yaxes(title_text="CE (nats/token)", row=2, col=1)
    # one fixed CE axis for both panels, from 0 to above the largest value shown (bars, curve, ln V): a bar past
    # ln(vocab) stays on screen, and moving the slider does not rescale the axis
    shown = [uniform, *ce.values(), *base_ce.values()]
    if curve is not None:
        shown += [float(v) for lang in langs for v in curve[lang]]
    top = 1.08 * max(v for v in shown if v == v)
    for row in range(1, rows + 1):
        fig.update_yaxes(range=[0.0, top], row=row, col=1)
    fig.update_layout(
        title={"text": f"{FIGURE_TITLE}: {html.escape(component)} at s = {s:.2f}<br><span style='font-size:12px'>"
                       "look for: only the German bar rising to the dashed line while the others stay at their "
                       "grey bars</span>",
               "font": {"size": 14}},
        barmode="group", height=620 if rows == 2 else 360, width=780, margin={"t": 90, "b": 50},
        legend={"orientation": "h", "y": -0.12}, template="plotly_white",
    )
    return fig


class EditExplorer:
    """Dropdown of candidate components + slider for their prefactor s, with live CE bars, the component's
    dose-response curve and greedy continuations.

    candidates: ``[(label, Direction)]`` in display order; eval_blocks: ``{lang: LongTensor (N, T)}`` (keep
    them small: every slider move re-evaluates them, and each new component computes its curve on them, once).
    curves: optional precomputed dose-response curves ``{component: {lang: CE per grid point}}`` on ``grid``
    (for example from a scan); components without one get it computed by :func:`dose_response`.
    """

    def __init__(self, model: nn.Module, tokenizer: Any, candidates: Sequence[tuple[str, Direction]],
                 eval_blocks: Mapping[str, Tensor], prompts: Mapping[str, str] | None = None,
                 max_new_tokens: int = 16, grid: Sequence[float] = CURVE_GRID,
                 curves: Mapping[ComponentId, Mapping[str, Sequence[float]]] | None = None) -> None:
        if not candidates:
            raise ValueError("no candidate components to explore")
        self.model, self.tokenizer = model, tokenizer
        self.candidates = list(candidates)
        self.eval_blocks = dict(eval_blocks)
        self.prompts = dict(prompts or DEFAULT_PROMPTS)
        self.max_new_tokens = max_new_tokens
        self.grid = [float(s) for s in grid]
        self.curves: dict[ComponentId, dict[str, list[float]]] = {
            tuple(k): {lang: list(v) for lang, v in c.items()} for k, c in (curves or {}).items()}
        self.uniform = uniform_level(int(model.config.vocab_size))
        self.base_ce = language_ce(model, self.eval_blocks)
        self.ce: dict[str, float] = dict(self.base_ce)
        self.continuations: dict[str, str] = {}
        self.figure: go.Figure | None = None
        self._muted = False
        self.dropdown = widgets.Dropdown(
            options=[(f"{i + 1}. {label}"[:110], i) for i, (label, _) in enumerate(self.candidates)],
            value=0, description="component", layout={"width": "760px"})
        self.slider = widgets.FloatSlider(
            value=1.0, min=S_MIN, max=S_MAX, step=S_STEP, description="s", continuous_update=False,
            readout_format=".2f", layout={"width": "760px"})
        self.output = widgets.Output(layout={"width": "800px"})
        self.output.add_class(FIGURE_CLASS)
        self.text = widgets.HTML()
        self.dropdown.observe(self._on_change, names="value")
        self.slider.observe(self._on_change, names="value")
        self.widget = widgets.VBox([self.dropdown, self.slider, self.output, self.text])
        self.update()

    @property
    def direction(self) -> Direction:
        """The direction currently selected in the dropdown."""
        return self.candidates[int(self.dropdown.value)][1]

    @property
    def component(self) -> ComponentId:
        return self.direction.component

    def curve(self) -> dict[str, list[float]]:
        """The selected component's dose-response curve on ``self.grid`` (computed once per component)."""
        if self.component not in self.curves:
            self.curves[self.component] = dose_response(self.model, self.direction, self.eval_blocks, self.grid)
        return self.curves[self.component]

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
        s = float(self.slider.value)
        edit = ScalarEdit(self.model, [self.direction], init=s)
        with edit:
            self.ce = language_ce(self.model, self.eval_blocks)
            self.continuations = {lang: greedy_continuation(self.model, self.tokenizer, p, self.max_new_tokens)
                                  for lang, p in self.prompts.items()}
        module, c = self.component
        self.figure = explorer_figure(f"{module}:{c}", s, self.ce, self.base_ce, self.uniform, self.grid,
                                      self.curve())
        self.output.outputs = (_display_output(self.figure),)
        rows = "".join(
            f"<tr><td><b>{html.escape(lang)}</b></td><td>{html.escape(self.prompts[lang])}"
            f"<span style='color:#c0392b'>{html.escape(text)}</span></td></tr>"
            for lang, text in self.continuations.items())
        self.text.value = f"<p>Greedy continuations under the edit (red):</p><table>{rows}</table>"

    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)


def _display_output(figure: go.Figure) -> dict[str, Any]:
    """``figure`` as one display output of an ``ipywidgets.Output``: what ``display(figure)`` inside
    ``with output:`` would add (plotly's own mime bundle for the current renderer). The explorer sets its Output's
    ``outputs`` to it instead of capturing a ``display`` call: a capture makes a headless runner (nbclient, so
    nbmake) send the captured output back to the kernel on the channel it is waiting on for the cell's reply,
    and that wait can then miss the reply and sit until its timeout (jupyter/nbclient#312)."""
    return {"output_type": "display_data", "data": figure._repr_mimebundle_(), "metadata": {}}


def component_candidates(cm: nn.Module, components: Sequence[ComponentId], labels: Sequence[Any] | None = None,
                         notes: Mapping[str, str] | None = None) -> list[tuple[str, Direction]]:
    """``(label, Direction)`` for each of ``components`` (in order), for :class:`EditExplorer`.

    The label is ``"<matrix>:<index> — <label>"`` with the label from ``labels``
    (``vpd_lite.interpret.labels.ComponentLabel``) or else from ``notes`` (``{"matrix:index": text}``)."""

    by_key = {lab.component: lab.label for lab in labels or []}
    notes = dict(notes or {})
    dirs = component_directions(cm, list(components))
    out = []
    for cid, d in zip(components, dirs):
        key = component_key(cid)
        text = by_key.get(key) or notes.get(key, "")
        out.append((f"{key} — {text}" if text else key, d))
    return out
