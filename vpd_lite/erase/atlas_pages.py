"""The HTML of the component atlas (:mod:`vpd_lite.erase.atlas`): the index table, one page per component, the
style sheet and the small script that sorts and filters the table and draws the figures.

Plain f-strings; every text is HTML-escaped. The pages read without JavaScript (text and tables); the figures
are plotly figures (drawn by the ``plotly.min.js`` copied into the site) whose numbers are also in the tables.
The output depends only on the data: the same data gives byte-identical pages.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from vpd_lite.erase.protocol import format_number
from vpd_lite.interpret.contexts import CONTEXT_CSS
from vpd_lite.interpret.ids import parse_component_id
from vpd_lite.interpret.labels import percent
from vpd_lite.models.corpus import LANG_COLOURS, LANGS, lang_name

_OTHER = "#777777"

CSS = """*{box-sizing:border-box}
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;padding:12px 16px 40px;
max-width:1180px;color:#222;background:#fff}
body.wide{max-width:1720px}
h1{font-size:1.45em;margin:.4em 0;overflow-wrap:anywhere}p,li{overflow-wrap:break-word}h2{font-size:1.15em;margin:1.4em 0 .3em;border-bottom:1px solid #ddd}
h3{font-size:1em;margin:.8em 0 .2em}
a{color:#1f5fa8}code{background:#f3f3f3;padding:0 3px;border-radius:3px}
.look{color:#444;margin:.2em 0 .5em}.look b{color:#222}
.scroll{overflow-x:auto;max-width:100%}
.tablebox{overflow:auto;max-width:100%;max-height:85vh;border:1px solid #eee}
table{border-collapse:collapse;font-size:.92em}
th,td{padding:3px 7px;border-bottom:1px solid #eee;text-align:right;vertical-align:top}
th{background:#f7f7f7;position:sticky;top:0;z-index:1}#atlas th{cursor:pointer}
td.t,th.t{text-align:left}td.t a{white-space:nowrap}#atlas td{white-space:nowrap}
#atlas td.lab{min-width:18em;max-width:34em;text-align:left;white-space:normal}
th button{font:inherit;font-weight:bold;border:0;background:none;cursor:pointer;padding:0;color:#1f5fa8;text-align:inherit}
th[aria-sort=ascending] button::after{content:" \\25B2"}th[aria-sort=descending] button::after{content:" \\25BC"}
.bar{display:inline-block;width:42px;height:9px;background:#eee;vertical-align:middle;margin-right:4px}
.bar i{display:block;height:100%}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,340px),1fr));gap:10px 22px}
.fig{width:100%;min-height:40px}
.note{color:#555;font-style:italic}
#searchform{margin:.6em 0}#search{font:inherit;padding:4px 8px;width:min(100%,26em)}
.tok code{margin-right:4px;white-space:pre}
""" + "".join(f".L-{k}{{background:{v}}}" for k, v in LANG_COLOURS.items()) + "\n" + CONTEXT_CSS + "\n"

JS_HEAD = """(function () {
  "use strict";
  function isObj(x) { return x !== null && typeof x === "object" && !Array.isArray(x); }
  function allObj(a) { return Array.isArray(a) && a.every(isObj); }
  // a figure's own parts merged into the parts its kind shares (as vpd_lite.erase.atlas_pages.with_shared)
  function merge(base, over) {
    if (isObj(base) && isObj(over)) {
      var out = Object.assign({}, base);
      Object.keys(over).forEach(function (k) { out[k] = k in base ? merge(base[k], over[k]) : over[k]; });
      return out;
    }
    if (allObj(base) && allObj(over) && base.length === over.length) {
      return over.map(function (o, i) { return merge(base[i], o); });
    }
    return over;
  }
"""

JS_BODY = """  function draw() {
    if (!window.Plotly) { return; }
    document.querySelectorAll("div.fig").forEach(function (el) {
      var f = JSON.parse(el.nextElementSibling.textContent);
      if (f.kind) { f = merge(SHARED[f.kind], f); }
      var l = f.layout;
      l.height = l.height || 270; l.showlegend = !!l.showlegend; l.font = {size: 12};
      l.margin = Object.assign({l: 62, r: 12, t: 14, b: 48}, l.margin || {});
      l.paper_bgcolor = l.plot_bgcolor = "#fff";
      l.xaxis.fixedrange = l.yaxis.fixedrange = true;
      window.Plotly.newPlot(el, f.data, l, {displayModeBar: false, responsive: true});
    });
  }
  function table() {
    var t = document.getElementById("atlas");
    if (!t) { return; }
    var body = t.tBodies[0], rows = Array.prototype.slice.call(body.rows);
    // what a search looks in: the component's id and its label (with the category), as the cells show them
    var said = rows.map(function (r) { return (r.cells[0].textContent + " " + r.cells[4].textContent).toLowerCase(); });
    var form = document.getElementById("searchform"), box = document.getElementById("search");
    var count = document.getElementById("count");
    form.hidden = false;
    form.addEventListener("submit", function (e) { e.preventDefault(); });
    function filter() {
      var q = box.value.trim().toLowerCase(), n = 0;
      rows.forEach(function (r, i) {
        var ok = !q || said[i].indexOf(q) >= 0;
        r.hidden = !ok; if (ok) { n += 1; }
      });
      count.textContent = n + " of " + rows.length + " components shown";
    }
    box.addEventListener("input", filter);
    Array.prototype.forEach.call(t.tHead.rows[0].cells, function (th, i) {
      var b = document.createElement("button");
      b.type = "button"; b.textContent = th.textContent; b.title = "sort by this column";
      th.textContent = ""; th.appendChild(b);
      th.addEventListener("click", function () {  // anywhere in the header cell, the button included
        var numeric = th.getAttribute("data-type") === "num";
        var cur = th.getAttribute("aria-sort");
        var dir = cur ? (cur === "ascending" ? -1 : 1) : (numeric ? -1 : 1);
        Array.prototype.forEach.call(t.tHead.rows[0].cells, function (o) { o.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
        function val(r) {
          var c = r.cells[i], v = c.getAttribute("data-v");
          if (numeric) { return v === null || v === "" ? null : parseFloat(v); }
          return (v === null ? c.textContent : v).toLowerCase();
        }
        var keyed = rows.map(function (r, k) { return [val(r), k, r]; });
        keyed.sort(function (a, b) {
          if (a[0] === b[0]) { return a[1] - b[1]; }
          if (a[0] === null) { return 1; }
          if (b[0] === null) { return -1; }
          return (a[0] < b[0] ? -1 : 1) * dir;
        });
        keyed.forEach(function (k) { body.appendChild(k[2]); });
        rows = keyed.map(function (k) { return k[2]; });
      });
    });
    filter();
  }
  document.addEventListener("DOMContentLoaded", function () { table(); draw(); });
})();
"""


# ------------------------------------------------------------------------------------------ small helpers
def esc(text: Any) -> str:
    """``str(text)`` escaped for the text of an element (``&``, ``<``, ``>``)."""
    return html.escape(str(text), quote=False)


def attr(text: Any) -> str:
    """``str(text)`` escaped for an attribute value in double quotes (quotes too)."""
    return html.escape(str(text), quote=True)


def _r(x: float, digits: int = 4) -> float | None:
    """``x`` rounded to ``digits`` significant digits (small JSON); None for nan/inf."""
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def _colour(lang: str) -> str:
    return LANG_COLOURS.get(lang, _OTHER)


def _token(text: str) -> str:
    return f"<code>{esc(repr(text))}</code>"


def _is_dicts(x: Any) -> bool:
    return isinstance(x, list) and all(isinstance(v, dict) for v in x)


def unshared(value: Any, shared: Any) -> Any:
    """What of ``value`` (a figure's JSON) differs from ``shared`` (the parts every figure of its kind has): dicts
    key by key, lists of dicts of the same length item by item, anything else whole. :func:`with_shared` (and
    ``merge`` in ``atlas.js``) puts the two together again. A dict key of ``shared`` that ``value`` lacks would
    come back on merging, so ``ValueError`` is raised for one."""
    if isinstance(value, dict) and isinstance(shared, dict):
        if set(shared) - set(value):
            raise ValueError(f"the figure lacks the shared keys {sorted(set(shared) - set(value))}")
        return {k: unshared(v, shared[k]) if k in shared else v for k, v in value.items()
                if k not in shared or v != shared[k]}
    if _is_dicts(value) and _is_dicts(shared) and len(value) == len(shared):
        return [unshared(v, b) for v, b in zip(value, shared)]
    return value


def with_shared(over: Any, shared: Any) -> Any:
    """The inverse of :func:`unshared`: ``shared`` with ``over`` merged in (what ``merge`` in ``atlas.js`` does)."""
    if isinstance(over, dict) and isinstance(shared, dict):
        return {**shared, **{k: with_shared(v, shared[k]) if k in shared else v for k, v in over.items()}}
    if _is_dicts(over) and _is_dicts(shared) and len(over) == len(shared):
        return [with_shared(v, b) for v, b in zip(over, shared)]
    return over


def figure_div(fig: Mapping[str, Any], label: str, kind: str | None = None) -> str:
    """A ``div`` that ``atlas.js`` draws ``fig`` ({"data", "layout"}, plotly's JSON form, on top of the shared
    defaults in ``atlas.js``) into; the JSON sits in the script element right after it. With a ``kind`` of
    :data:`SHARED_FIGURES` the JSON holds only what differs from the parts every figure of that kind shares, which
    ``atlas.js`` holds once (a site of a few thousand pages is megabytes smaller)."""
    if kind is not None:
        fig = {"kind": kind, **unshared(dict(fig), SHARED_FIGURES[kind])}
    payload = json.dumps(fig, separators=(",", ":"), sort_keys=True, ensure_ascii=False).replace("</", "<\\/")
    return (f'<div class="fig" role="img" aria-label="{attr(label)}"></div>'
            f'<script type="application/json">{payload}</script>')


def _layout(xtitle: str, ytitle: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {"xaxis": {"title": {"text": xtitle}}, "yaxis": {"title": {"text": ytitle}}}
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(layout.get(k), dict):
            layout[k] = {**layout[k], **v}
        else:
            layout[k] = v
    return layout


def look(text: str) -> str:
    """The one sentence under a figure saying what to look for."""
    return f'<p class="look"><b>What to look for.</b> {esc(text)}</p>'


# ------------------------------------------------------------------------------------------ figures
def rates_figure(langs: Sequence[str], rates: Mapping[str, float]) -> dict[str, Any]:
    """Bars: firing rate per language (percent of that language's tokens)."""
    return {"data": [{"type": "bar", "x": [lang_name(k) for k in langs], "y": [_r(100 * rates[k]) for k in langs],
                      "marker": {"color": [_colour(k) for k in langs]},
                      "hovertemplate": "%{x}: fires on %{y:.2f}% of tokens<extra></extra>"}],
            "layout": _layout("language", "fires on (% of its tokens)", yaxis={"rangemode": "tozero"})}


def ci_hist_figure(hist: Sequence[float], threshold: float) -> dict[str, Any]:
    """Bars: tokens per CI bin (log count scale) with the firing threshold as a dashed line."""
    n = len(hist)
    centres = [_r((i + 0.5) / n) for i in range(n)]
    return {"data": [{"type": "bar", "x": centres, "y": [x if x > 0 else None for x in hist], "width": 1 / n,
                      "marker": {"color": "#555555"},
                      "hovertemplate": "CI %{x:.2f}: %{y:,} tokens<extra></extra>"}],
            "layout": _layout("causal importance (CI)", "tokens (log scale)",
                              xaxis={"range": [0, 1]}, yaxis={"type": "log"},
                              shapes=[{"type": "line", "x0": threshold, "x1": threshold, "yref": "paper", "y0": 0,
                                       "y1": 1, "line": {"color": "#c44e52", "dash": "dash", "width": 1}}],
                              annotations=[{"x": threshold, "yref": "paper", "y": 1, "xanchor": "left",
                                            "text": f"firing threshold {threshold:g}", "showarrow": False,
                                            "font": {"size": 11, "color": "#c44e52"}}])}


#: The removal figure's y axis spans at least ± this (nats/token: the German claim's English tolerance), so that a
#: removal that changes next to nothing draws as small bars instead of filling the plot with its own noise.
ABLATION_MIN_RANGE = 0.05

#: Below this largest |ΔCE| (nats/token) a component's page says its removal changes next to nothing on this text.
ABLATION_SMALL = 0.01


def signed(x: float, digits: int = 4) -> str:
    """``x`` with its sign and ``digits`` decimals (:func:`vpd_lite.erase.protocol.format_number`: no negative
    zero), and a zero without a sign: "0.0000", not "-0.0000" or "+0.0000"."""
    text = format_number(x, f"+.{digits}f")
    return text.lstrip("+") if float(text) == 0 else text


def ablation_figure(effects: Mapping[str, float]) -> dict[str, Any]:
    """Bars: ΔCE per language (nats/token) when the component is removed; the y axis spans at least
    ±:data:`ABLATION_MIN_RANGE`."""
    langs = list(effects)
    values = [effects[k] for k in langs]
    lo = min([-ABLATION_MIN_RANGE] + [1.1 * v for v in values])
    hi = max([ABLATION_MIN_RANGE] + [1.1 * v for v in values])
    return {"data": [{"type": "bar", "x": [lang_name(k) for k in langs], "y": [_r(v) for v in values],
                      "marker": {"color": [_colour(k) for k in langs]},
                      "hovertemplate": "%{x}: %{y:+.4f} nats/token<extra></extra>"}],
            "layout": _layout("language (held-out text)", "ΔCE when removed (nats/token)",
                              yaxis={"range": [_r(lo), _r(hi)], "tickformat": ".2f", "zeroline": True})}


def dose_figure(curve: Any, langs: Sequence[str], s_best: float | None) -> dict[str, Any]:
    """Lines: ΔCE per language against the prefactor s (s = 1 as trained, 0 removed)."""
    s = [_r(float(v), 5) for v in curve["s"]]
    data = [{"type": "scatter", "mode": "lines+markers", "name": lang_name(k), "x": s,
             "y": [_r(float(v)) for v in curve[f"d_{k}"]], "line": {"color": _colour(k), "width": 2},
             "marker": {"size": 4}, "hovertemplate": f"{lang_name(k)}: s %{{x}}, ΔCE %{{y:+.3f}}<extra></extra>"}
            for k in langs if f"d_{k}" in curve]
    shapes = [{"type": "line", "x0": x, "x1": x, "yref": "paper", "y0": 0, "y1": 1,
               "line": {"color": "#999999", "dash": "dot", "width": 1}} for x in (0, 1)]
    notes = [{"x": 0, "yref": "paper", "y": 1, "text": "removed", "showarrow": False, "xanchor": "right",
              "font": {"size": 11, "color": "#666"}},
             {"x": 1, "yref": "paper", "y": 1, "text": "as trained", "showarrow": False, "xanchor": "left",
              "font": {"size": 11, "color": "#666"}}]
    if s_best is not None:
        shapes.append({"type": "line", "x0": s_best, "x1": s_best, "yref": "paper", "y0": 0, "y1": 1,
                       "line": {"color": _colour("de"), "dash": "dash", "width": 1}})
    return {"data": data, "layout": _layout("prefactor s (1 = as trained, 0 = removed)",
                                            "ΔCE (nats/token)", height=300, showlegend=True,
                                            legend={"orientation": "h", "y": -0.28}, shapes=shapes,
                                            annotations=notes, margin={"b": 80})}


#: The parts shared by every figure of a kind, held once in ``atlas.js``: a figure drawn from typical data, of which
#: :func:`unshared` keeps in a page only what differs (the bars' heights, the removal axis's range).
SHARED_FIGURES: dict[str, dict[str, Any]] = {
    "rates": rates_figure(LANGS, dict.fromkeys(LANGS, 0.0)),
    "hist": ci_hist_figure([0.0] * 20, 0.1),
    "removal": ablation_figure(dict.fromkeys(LANGS, 0.0)),
}

#: ``atlas.js``: draws the figures (their kinds' shared parts merged in) and makes the index sortable and searchable.
JS = (JS_HEAD + "  var SHARED = " + json.dumps(SHARED_FIGURES, separators=(",", ":"), sort_keys=True,
                                             ensure_ascii=False) + ";\n" + JS_BODY)


# ------------------------------------------------------------------------------------------ pages
def _head(title: str, prefix: str, plotly: bool = True) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(title)}</title>"
            f'<link rel="stylesheet" href="{prefix}atlas.css">'
            + (f'<script src="{prefix}plotly.min.js" defer></script>' if plotly else "")
            + f'<script src="{prefix}atlas.js" defer></script>'
            "</head><body>\n")


def _noscript() -> str:
    return ('<noscript><p class="note">The figures need JavaScript; the firing rates and removal effects they '
            "show are also in the tables, and the text says what each figure is for.</p></noscript>")


def index_html(data: Any) -> str:
    """The index page: every component of ``data`` (an ``AtlasData``) in one sortable, filterable table."""
    langs = data.langs
    heads = [("component", "t", "txt"), ("layer", "", "num"), ("matrix", "t", "txt"), ("index", "", "num"),
             ("label", "t", "txt"), ("fires on (all tokens)", "", "num")]
    heads += [(f"{lang_name(k)} firing", "", "num") for k in langs]
    heads += [("language specificity", "", "num"), ("mean CI", "", "num"), ("removed: largest ΔCE", "", "num"),
              ("edit scan: best German ΔCE", "", "num"), ("edit scan: worst other ΔCE", "", "num")]
    th = "".join(f'<th class="{c}" data-type="{t}" scope="col">{esc(h)}</th>' for h, c, t in heads)
    rows = []
    for f in data.components:
        module, c = f.cid
        parts = module.split(".")
        layer = next((p for p in parts if p.isdigit()), "")
        label = f.label.label if f.label is not None else ""
        category = f.label.category if f.label is not None else ""
        cells = [f'<td class="t"><a href="components/{attr(page_name(f.cid))}">{esc(f.key)}</a></td>',
                 f'<td data-v="{attr(layer)}">{esc(layer)}</td>',
                 f'<td class="t">{esc(parts[-1])}</td>', f'<td data-v="{c}">{c}</td>',
                 f'<td class="lab">{esc(label)}{f" <i>[{esc(category)}]</i>" if category else ""}</td>',
                 f'<td data-v="{_r(f.frequency)}">{percent(f.frequency)}</td>']
        for k in langs:
            share = f.profile.get(k, 0.0)
            cells.append(f'<td data-v="{_r(f.rates[k])}" title="{attr(percent(share))} of its firing rate">'
                         f'<span class="bar"><i class="L-{attr(k)}" style="width:{100 * share:.0f}%"></i></span>'
                         f"{percent(f.rates[k])}</td>")
        cells.append(f'<td data-v="{_r(f.specificity)}">{f.specificity:.2f} {esc(f.top_lang)}</td>')
        cells.append(f'<td data-v="{_r(f.mean_ci)}">{f.mean_ci:.4f}</td>')
        if f.ablation:
            worst = max(f.ablation, key=lambda k: (f.ablation[k], k))
            shown = signed(f.ablation[worst], 3)  # the language only where one gets measurably worse
            cells.append(f'<td data-v="{_r(f.ablation[worst])}">{shown}'
                         f'{" " + esc(worst) if float(shown) > 0 else ""}</td>')
        else:
            cells.append('<td data-v="">–</td>')
        if f.scan_best is not None:
            b = f.scan_best
            cells.append(f'<td data-v="{_r(float(b["gain"]))}">{float(b["gain"]):+.3f}</td>')
            cells.append(f'<td data-v="{_r(float(b["worst_other"]))}">{float(b["worst_other"]):+.3f} '
                         f'{esc(b["worst_other_lang"])}</td>')
        else:
            cells += ['<td data-v="">–</td>', '<td data-v="">–</td>']
        rows.append("<tr>" + "".join(cells) + "</tr>")
    n = len(data.components)
    where = f"{data.decomposition.parent.name}/{data.decomposition.name}"
    intro = (f"<p>{n} components of the decomposition in <code>{esc(where)}</code>"
             + (f" (all {data.n_live} live ones" if n == data.n_live else f" (of its {data.n_live} live ones")
             + f"; a component is live when it fires, i.e. its causal importance (CI) exceeds {data.threshold:g}, "
             f"on at least one of the {data.n_tokens:,} harvested tokens). Click a component for its page.</p>")
    how = ("<ul>"
           f"<li>Statistics: {esc(data.stats_how)}. Labels: {esc(data.labels_how)}.</li>"
           "<li>Firing per language: the fraction of that language's tokens it fires on; the bar shows that "
           "language's share of its firing rate (rates, so a language with more text does not look more "
           "important).</li>"
           "<li>Removal (ablation): the change in held-out cross-entropy when the component is taken out, "
           f"{esc(data.ablation_how)}, for {esc(data.ablated_how)}"
           + ("" if data.n_ablated == len(data.components) else
              " (the most frequent ones and every one the edit scan scanned; build without <code>--ablate</code> "
              "for every one)") + ". The column <i>removed: largest ΔCE</i> gives the language that gets worst and "
           "by how much (nats/token).</li>"
           "<li>Language specificity: the share of its firing rate on its top language (1 = only that "
           "language).</li>"
           "<li>Edit scan: the change in German cross-entropy (nats/token, training text) at the best scaling of the "
           "component that keeps English within +0.05 and the other languages within +0.1, and the largest "
           "change in another language there. "
           + (f"Source: {esc(data.scan_how)}." if data.scan_how.startswith("the shipped edit scan (") else
              f"Not shown here: {esc(data.scan_how)}.") + "</li></ul>")
    search = ('<form id="searchform" hidden><label for="search">Search labels and ids: </label>'
              '<input id="search" type="search" placeholder="e.g. German, v_proj, und" autocomplete="off"> '
              '<span id="count" aria-live="polite"></span></form>')
    return (_head("Component atlas", "", plotly=False).replace("<body>", '<body class="wide">')
            + "<h1>Component atlas</h1>\n" + intro + how + _noscript() + search
            + '<div class="tablebox"><table id="atlas"><thead><tr>' + th + "</tr></thead><tbody>\n"
            + "\n".join(rows) + "\n</tbody></table></div>\n</body></html>\n")


def page_name(cid: Any) -> str:
    """File name of a component's page: ``model.layers.0.mlp.down_proj-113.html`` (no ``:``, which some file
    systems and hosts refuse)."""
    module, c = parse_component_id(cid)
    return f"{re.sub(r'[^A-Za-z0-9._-]', '_', module)}-{c}.html"


def _token_list(items: Sequence[tuple[str, float]] | None, fmt: str) -> str:
    if not items:
        return ""
    return '<p class="tok">' + "".join(f'{_token(t)}<span class="note">{fmt.format(v)}</span> ' for t, v in items) + "</p>"


def component_html(data: Any, f: Any) -> str:
    """The page of one component ``f`` (a ``ComponentFacts``) of ``data`` (an ``AtlasData``)."""
    langs = data.langs
    module, c = f.cid
    kind = module.rsplit(".", 1)[-1]
    lab = f.label
    out = [_head(f"{f.key} · component atlas", "../"),
           '<p><a href="../index.html">← all components</a></p>',
           f"<h1>{esc(f.key)}</h1>"]
    out.append(f"<p><b>{esc(lab.label)}</b> <i>[{esc(lab.category)}]</i></p>" if lab is not None else
               '<p class="note">No label.</p>')
    out.append(_noscript())
    # --- the label's evidence
    profile = ", ".join(f"{esc(lang_name(k))} {v:.0%}" for k, v in sorted(f.profile.items(), key=lambda kv: -kv[1]))
    fires_on = "".join(f"{_token(t)}<span class='note'>×{n}</span> " for t, n in f.fires_on)
    sign = "positive" if f.sign > 0 else "negative"
    out.append("<h2>The label and its evidence</h2><div class='scroll'><table>"
               f"<tr><th class='t'>fires on</th><td class='t'>{f.n_fires:,} of {data.n_tokens:,} harvested tokens "
               f"({percent(f.frequency)}; CI above {data.threshold:g})</td></tr>"
               f"<tr><th class='t'>share of its firing rate per language</th><td class='t'>{profile}</td></tr>"
               f"<tr><th class='t'>language specificity</th><td class='t'>{f.specificity:.2f} "
               f"({esc(lang_name(f.top_lang))})</td></tr>"
               f"<tr><th class='t'>tokens it fires on most</th><td class='t tok'>{fires_on or '–'}</td></tr>"
               f"<tr><th class='t'>firings at the first position of a block</th><td class='t'>"
               f"{f.first_position_share:.0%}</td></tr>"
               f"<tr><th class='t'>mean CI over all tokens</th><td class='t'>{f.mean_ci:.4f}</td></tr>"
               f"<tr><th class='t'>activation V<sub>c</sub>ᵀx where it fires</th><td class='t'>mostly {sign}</td></tr>"
               f"<tr><th class='t'>label made by</th><td class='t'>{esc(data.labels_how)}"
               f"{' (' + esc(lab.source) + ')' if lab is not None else ''}</td></tr>"
               "</table></div>")
    # --- firing and CI
    rate_rows = "".join(f"<tr><td class='t'>{esc(lang_name(k))}</td><td>{percent(f.rates[k])}</td>"
                        f"<td>{f.profile.get(k, 0.0):.0%}</td></tr>" for k in langs)
    out.append("<h2>Where it fires</h2><div class='figs'><div>"
               "<h3>Firing rate per language</h3>" + figure_div(rates_figure(langs, f.rates), "firing rate per language", "rates")
               + look("one tall bar means a single-language component; bars of similar height mean it fires on "
                      "every language (punctuation, numbers, common sub-words).")
               + "<div class='scroll'><table><tr><th class='t'>language</th><th>fires on</th><th>share of its firing"
                 "</th></tr>" + rate_rows + "</table></div></div><div>"
               "<h3>Causal importance over all harvested tokens</h3>"
               + figure_div(ci_hist_figure(f.ci_hist, data.threshold), "histogram of the component's CI", "hist")
               + look("most tokens sit in the leftmost bar (CI 0: not needed there; note the log scale) and a separate "
                      "group near CI 1 holds the tokens that need it; few tokens in between means the component is "
                      "close to on/off, which makes it easy to read.")
               + "</div></div>")
    out.append("<h2>Top contexts</h2><p>Each token shaded by the component's CI on it, the firing token boxed. The "
               "contexts represent where it fires: at most one per text block, no repeats, each language in "
               "proportion to its share of the firing, ties at CI 1 broken by the size of the activation.</p>"
               f"<div class='scroll'>{f.contexts_html}</div>"
               + look("the language column should agree with the shares above, and the shaded tokens should have "
                      "something in common (a word class, a part of words, a position)."))
    # --- removal
    out.append("<h2>What removing it does</h2>")
    if f.ablation is not None:
        abl_rows = "".join(f"<tr><td class='t'>{esc(lang_name(k))}</td><td>{signed(v)}</td></tr>"
                           for k, v in f.ablation.items())
        small = max(abs(v) for v in f.ablation.values()) < ABLATION_SMALL
        out.append("<div class='figs'><div>" + figure_div(ablation_figure(f.ablation), "ΔCE per language when removed", "removal")
                   + look("a bar above zero means that language got worse without the component; a component that "
                          "really is about one language hurts that language most and leaves the others near zero. "
                          f"The axis spans at least ±{ABLATION_MIN_RANGE:g} nats/token, so bars that stay near zero "
                          "are changes too small to read on this much text.")
                   + (f"<p class='note'>Every change is below {ABLATION_SMALL:g} nats/token: on this text, removing "
                      "this component changes next to nothing.</p>" if small else "")
                   + "</div><div><div class='scroll'><table><tr><th class='t'>language</th><th>ΔCE when removed "
                     "(nats/token)</th></tr>" + abl_rows + "</table></div>"
                   f"<p class='note'>The target with this one component taken out of its matrix (W − U<sub>c</sub>"
                   f"V<sub>c</sub>ᵀ), {esc(data.ablation_how)}.</p></div></div>")
    else:
        out.append(f"<p class='note'>Not measured in this build (it measured {esc(data.ablated_how)}: the most "
                   "frequent ones and every one the edit scan scanned). Build the atlas without "
                   "<code>--ablate</code>, or with <code>--components</code> naming this one, to measure it.</p>")
    # --- reads and writes
    read_words, write_words = data.read_write_how.get(kind, ("", ""))
    out.append("<h2>What it reads and writes</h2>")
    if f.reads is not None:
        out.append(f"<h3>Reads: tokens that drive it most</h3><p>Its read direction V<sub>c</sub> applied to "
                   f"{esc(read_words)}, oriented by the sign of its activation where it fires.</p>"
                   + _token_list(f.reads, " {:.2f}"))
    else:
        out.append("<p class='note'>What it reads in terms of tokens is not available for this matrix.</p>")
    if f.writes is not None:
        out.append(f"<h3>Writes: tokens it promotes</h3><p>Its write direction U<sub>c</sub> (times the sign of its "
                   f"activation), {esc(write_words)}. The numbers are logit changes per unit of activation.</p>"
                   + _token_list(f.writes, " {:+.2f}"))
    else:
        out.append(f"<p class='note'>Output tokens: {esc(write_words)}.</p>")
    # --- dose response
    out.append("<h2>Dose-response: scaling it up and down</h2>")
    if f.scan_curve is not None:
        b = f.scan_best
        s_best = float(b["s_best"]) if b is not None else None
        out.append(figure_div(dose_figure(f.scan_curve, langs, s_best), "ΔCE per language against the prefactor s")
                   + look("s = 0 is the component removed and negative s pushes it the other way; a component that "
                          "erases German cleanly lifts the German line while the others stay near zero.")
                   + "<p class='note'>From the edit scan (training text): the component's weight U<sub>c</sub>"
                     "V<sub>c</sub>ᵀ scaled by s.</p>")
        if b is not None:
            out.append(f"<p>Best edit for erasing German: s = {float(b['s_best']):+.2f} raises German CE by "
                       f"{float(b['gain']):+.3f} nats/token; the largest change in another language there is "
                       f"{float(b['worst_other']):+.3f} ({esc(lang_name(str(b['worst_other_lang'])))}).</p>")
    else:
        why = ("the edit scan fully scans only the most promising components for each language, and not this one"
               if data.scan_how.startswith("the shipped edit scan (") else data.scan_how)
        out.append(f"<p class='note'>Not scanned: {esc(why)}.</p>")
    # --- other decompositions
    out.append("<h2>In other decompositions</h2>")
    near = [m for m in f.nearest if m["kind"] == "nearest"]
    picks = [m for m in f.nearest if m["kind"] == "pick"]
    if near or picks:
        rows = "".join(f"<tr><td class='t'>{esc(m['decomposition'])}</td><td class='t'>{esc(m['component'])}"
                       f"{' (its German pick)' if m['kind'] == 'pick' else ''}</td><td>{m['matrix']:.2f}</td>"
                       f"<td>{m['read']:.2f}</td><td>{m['write']:.2f}</td></tr>"
                       for m in near + sorted(picks, key=lambda m: -m["matrix"]))
        out.append("<div class='scroll'><table><tr><th class='t'>decomposition</th><th class='t'>component</th>"
                   "<th>|cos| of the rank-1 matrices</th><th>|cos| read</th><th>|cos| write</th></tr>" + rows
                   + "</table></div>" + look("a |cosine| near 1 means the other decomposition found the same "
                                             "component; near 0, nothing like it.")
                   + f"<p class='note'>Compared with: {esc(data.nearest_how)}.</p>")
    else:
        out.append(f"<p class='note'>Not available for this component: {esc(data.nearest_how)}"
                   + ("" if data.nearest_how.startswith("no other") else
                      "; the kept picks are in other matrices") + ".</p>")
    out.append("</body></html>\n")
    return "\n".join(out)

