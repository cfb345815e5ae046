"""A component's top contexts as HTML: each token shaded by the component's CI on it, the firing token boxed.

One definition for every place that shows contexts: notebook 02 (``vpd_lite.tutorial.plots`` re-exports
:func:`contexts_html`) and the static component atlas (``vpd_lite.erase.atlas``). Which contexts are shown, and in
which order, is :meth:`~vpd_lite.interpret.statistics.ComponentStats.contexts`: representative of where the
component fires.
"""

from __future__ import annotations

import html
from typing import Any

from vpd_lite.interpret.ids import ComponentId, component_key, parse_component_id
from vpd_lite.interpret.statistics import ComponentStats
from vpd_lite.models.corpus import lang_name

#: The shade of a token: this colour at opacity = CI.
SHADE_RGB = (221, 132, 82)

#: The style sheet :func:`contexts_html` needs with ``css_classes=True``: classes ``k0`` .. ``k10`` shade a token at
#: CI 0.0 .. 1.0 (rounded to a tenth), ``f`` boxes the firing token.
CONTEXT_CSS = ("".join(f".ctx .k{i}{{background:rgba({SHADE_RGB[0]},{SHADE_RGB[1]},{SHADE_RGB[2]},{i / 10:.1f})}}"
                       for i in range(1, 11))
               + ".ctx span{font-family:monospace}.ctx .f{outline:1px solid #c44e52}")


def contexts_html(stats: ComponentStats, cid: ComponentId, tokenizer: Any | None = None, n: int = 8,
                  show_lang: bool = True, css_classes: bool = False) -> str:
    """HTML of a component's top contexts: each token shaded by the component's CI on it, the firing token boxed,
    with the language of each context (``show_lang=False`` hides it, for the "guess the language" exercise).
    The contexts are :meth:`~vpd_lite.interpret.statistics.ComponentStats.contexts`: representative of where it fires.

    ``n``: at most this many contexts (the first ``n`` keep the language mix). ``css_classes``: shade with the
    classes of :data:`CONTEXT_CSS` (CI rounded to a tenth; a fraction of the bytes, for sites that show many
    components) instead of inline styles with the exact CI. Every token's exact CI is in its tooltip (with
    ``css_classes``, every token with CI 0.00 but the firing one has none). All text is
    HTML-escaped. Raises ``KeyError`` / ``IndexError`` for a component the statistics do not hold."""

    module, c = parse_component_id(cid)
    rows = []
    for ctx in stats.contexts((module, c))[:n]:
        spans = []
        for i, (tok, ci) in enumerate(zip(ctx.tokens, ctx.ci)):
            text = tokenizer.decode([tok]) if tokenizer is not None else f"#{tok} "
            text = html.escape(text).replace("\n", "⏎")  # spaces kept as they are: the cell is pre-wrap
            shade = max(0.0, min(1.0, ci))
            if css_classes and round(shade * 10) == 0 and i != ctx.centre and f"{ci:.2f}" == "0.00":
                spans.append(f"<span>{text}</span>")  # most tokens: no shade, no tooltip (bytes add up)
            elif css_classes:
                cls = f"k{round(shade * 10)}" + (" f" if i == ctx.centre else "")
                spans.append(f'<span class="{cls}" title="CI {ci:.2f}">{text}</span>')
            else:
                box = "outline:1px solid #c44e52;" if i == ctx.centre else ""
                spans.append(f'<span title="CI {ci:.2f}" style="background:rgba({SHADE_RGB[0]},{SHADE_RGB[1]},'
                             f'{SHADE_RGB[2]},{shade:.2f});{box}font-family:monospace">{text}</span>')
        lang = f"<td style='padding-right:8px'><b>{html.escape(lang_name(ctx.lang))}</b></td>" if show_lang else ""
        rows.append(f"<tr>{lang}<td>{ctx.score:.2f}</td><td style='text-align:left;white-space:pre-wrap'>"
                    f"{''.join(spans)}</td></tr>")
    if not rows:
        return f"<p><i>{html.escape(component_key((module, c)))} never fires on the harvested text.</i></p>"
    head = "<th>language</th>" if show_lang else ""
    table_class = " class='ctx'" if css_classes else ""
    return (f"<table{table_class} style='border-collapse:collapse'><tr>{head}<th>CI</th><th style='text-align:left'>"
            "context (shaded by CI, firing token boxed)</th></tr>" + "".join(rows) + "</table>")
