"""Which component to edit, and over which range of prefactors: three rules, all on training text only.

Held-out text is never an input to anything here: each rule reads component statistics, labels or an edit scan,
all of which are computed from the training split.

* :func:`pick_by_edit` (the primary rule, :data:`EDIT_RULE`): what the scalar edit *does*, measured by the
  edit scan (``vpd_lite.erase.edit_scan``) on training text.
* :func:`pick_by_firing` (the earlier rule): where the component *fires* (causal importance above threshold).
* :func:`pick_by_label`: the offline labeller's most single-language component.

:func:`search_range` gives the range of ``s`` the single-scalar fit may search, fixed from the same scan before
any fit runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vpd_lite.erase.edit_scan import EditScan
from vpd_lite.interpret.ids import ComponentId, component_key, parse_component_id
from vpd_lite.interpret.labels import label_components
from vpd_lite.interpret.statistics import ComponentStats, language_specificity
from vpd_lite.models.corpus import lang_name

#: The primary selection rule and the fit's search range, in words. Written (and committed) before any held-out
#: number of this protocol was computed; results/ and the notebook quote it.
EDIT_RULE = (
    "Selection rule (training text only). For the language to erase, the edit scan measures, on training-split "
    "text of all five languages, the next-token CE of the scalar edit W' = W + (s - 1) U_c V_c^T of each scanned "
    "component at every s of a grid from -30 to 10. A value of s is admissible when every other language's "
    "training ΔCE stays within the claim's tolerances (English <= 0.05 nats/token, every other language <= 0.1; "
    "when English is the language erased, every other language <= 0.1). The admissible range of a component "
    "is the run of admissible grid values around s = 1. The rule picks the component with the largest "
    "training ΔCE of the erased language anywhere in its admissible range (ties: the s closest to 1). "
    "Search range of the fit: the single scalar is then fitted on the budgeted tokens only inside that "
    "admissible range, so a snippet whose CE no admissible s brings to ln V gets the admissible s that comes "
    "closest instead of running to the edge of the grid."
)


def pick_by_edit(scan: EditScan, lang: str = "de") -> tuple[ComponentId, str]:
    """The primary rule (:data:`EDIT_RULE`): the scanned component with the largest training ΔCE of ``lang``
    (the language to erase) inside its admissible range. Returns (component, a sentence saying why)."""
    best = scan.best_for(lang)
    r = best.iloc[0]
    cid = parse_component_id(r["component"])
    why = (f"{r['component']}: largest training ΔCE of {lang} inside the tolerances, {r['gain']:+.3f} nats/token "
           f"at s = {r['s_best']:g} (worst other language {r['worst_other_lang']} {r['worst_other']:+.3f}); "
           f"admissible s from {r['s_lo']:g} to {r['s_hi']:g}; best of {len(best)} scanned components")
    return cid, why


def search_range(scan: EditScan, component: ComponentId | str, lang: str = "de") -> tuple[float, float]:
    """(s_lo, s_hi): the admissible range of ``component`` for erasing ``lang`` in the training-text scan —
    the fit's search range (see :data:`EDIT_RULE`). Raises ``KeyError`` if the component was not scanned."""
    key = component if isinstance(component, str) else component_key(component)
    best = scan.best_for(lang)
    row = best[best["component"] == key]
    if row.empty:
        raise KeyError(f"component {key} was not scanned for erasing {lang!r}")
    return float(row.iloc[0]["s_lo"]), float(row.iloc[0]["s_hi"])


def pick_by_firing(stats: ComponentStats, min_share: float = 0.8, lang: str = "de") -> tuple[ComponentId, str]:
    """The earlier rule: among components whose share of firing rate on ``lang`` is >= ``min_share`` (the
    labeller's "German-only"), the one that fires on the most ``lang`` tokens. Falls back to the top of
    ``language_specificity`` when none qualifies. Returns (component, a sentence saying why)."""

    name = lang_name(lang)
    ranked = language_specificity(stats, lang)
    li = stats.langs.index(lang)
    qualified = [(cid, s) for cid, s in ranked if s >= min_share]
    if qualified:
        best = max(qualified, key=lambda cs: (float(stats.firing_rate(cs[0][0])[li, cs[0][1]]), cs[1]))
        rate = float(stats.firing_rate(best[0][0])[li, best[0][1]])
        return best[0], (f"{component_key(best[0])}: {best[1]:.0%} of its firing rate on {name} (>= "
                         f"{min_share:.0%}), fires on {rate:.1%} of {name} training tokens, the most of "
                         f"{len(qualified)} such components")
    cid, score = ranked[0]
    return cid, f"{component_key(cid)}: no component is >= {min_share:.0%} {name}; most {name}-specific ({score:.0%})"


def pick_by_label(labels: Sequence[Any] | None, stats: ComponentStats | None = None,
                  lang: str = "de") -> tuple[ComponentId, str]:
    """The labeller's most ``lang``-only component: among labels whose category is that language (e.g.
    "German"), the highest specificity (share of firing rate on it), ties by more firings.

    ``labels``: ``vpd_lite.interpret.labels.ComponentLabel`` objects (e.g. ``load_labels()``); when None they are made
    from ``stats`` by the offline labeller. Falls back to the top of ``language_specificity`` when no label has
    that category."""

    if labels is None:
        if stats is None:
            raise ValueError("pick_by_label needs labels or stats")
        labels = label_components(stats)
    name = lang_name(lang)
    mine = [lab for lab in labels if lab.category == name]
    if mine:
        best = max(mine, key=lambda lab: (lab.specificity, lab.n_fires, lab.component))
        return parse_component_id(best.component), (
            f"{best.component}: the labeller's most {name}-only component ({best.specificity:.0%} of its firing "
            f"rate on {name}; {best.n_fires} firings) of {len(mine)} labelled {name}")
    if stats is None:
        raise ValueError(f"no label has category {name!r} and no stats were given to fall back on")
    cid, score = language_specificity(stats, lang)[0]
    return cid, f"{component_key(cid)}: no label says {name}; the most {lang}-specific component ({score:.0%})"
