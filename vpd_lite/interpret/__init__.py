"""What components do: their ids, statistics over text, ablation effects and labels. Imports the layers below
(``vpd_lite.models``, ``vpd_lite.method``).

Reading order:
    ids         ``ComponentId`` (module name, index), its string key, position buckets, context keys
    statistics  ``ComponentStats`` and ``StatsAccumulator``: firing rates per language, positions, top contexts
    harvest     running a decomposition over text to fill the statistics; ``HarvestPlan``; shipped-or-live loading
    ablation    the change in per-language CE when a component is removed
    contexts    a component's top contexts as HTML, shaded by CI (notebook 02 and the atlas share it)
    labels      offline labeller (a category and a phrase per component) and the optional LLM labeller
"""
