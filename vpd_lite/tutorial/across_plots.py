"""Figures of the study across decompositions (``results/across_decompositions_*``): each run's German component's
dose-response side by side (:func:`curves_figure`), and how alike the picked components are
(:func:`similarity_figure`); both drawn in ``vpd_lite.erase.figures`` (the study writes them as PNGs) and named
here for the notebooks.

Inputs are the study's CSV tables (``vpd_lite.commands.across_decompositions`` writes them), so the notebook draws the shipped
answer without recomputing any decomposition. ΔCE is in nats/token on training text; cosines are unitless.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from vpd_lite.erase.figures import curves_figure, similarity_figure  # noqa: F401  (named here for the notebooks)


#: The study's tables in ``results/`` (written by ``python -m vpd_lite.across_decompositions --out results``).
STUDY_FILES = {"seeds": "across_decompositions.csv", "runs": "across_decompositions_runs.csv",
               "curves": "across_decompositions_curves.csv", "similarity": "across_decompositions_similarity.csv",
               "mean_max": "across_decompositions_mean_max.csv"}


def load_study(folder: str | os.PathLike) -> dict[str, pd.DataFrame] | None:
    """The study's tables in ``folder`` as ``{"seeds", "runs", "curves", "similarity", "mean_max": DataFrame}``,
    or None when one of them is missing (e.g. a plain install without ``results/``)."""
    folder = Path(folder)
    if not all((folder / name).is_file() for name in STUDY_FILES.values()):
        return None
    return {key: pd.read_csv(folder / name) for key, name in STUDY_FILES.items()}


def _worst_of_means(g: pd.DataFrame) -> float:
    """The claim's worst other language: the largest of the French, Spanish and Italian seed means (the mean of
    each seed's worst when the per-language columns are missing)."""
    cols = [c for c in ("d_fr", "d_es", "d_it") if c in g]
    return float(g[cols].mean().max()) if cols else float(g["d_worst_other"].mean())


def verdict_table(seeds: pd.DataFrame) -> pd.DataFrame:
    """One row per run (``across_decompositions.csv`` rows grouped): its component, the way to ln V per snippet
    seed as whole percent, English ΔCE and the worst of French, Spanish and Italian (seed means, nats/token, as
    the claim reads them), and how many snippets meet the claim: the table the notebook shows."""
    rows = []
    for run, g in seeds.groupby("run", sort=False):
        g = g.sort_values("seed")
        rows.append({"run": run, "target": g["target"].iloc[0], "component": g["component"].iloc[0],
                     "way per snippet": " / ".join(f"{w:.0%}" for w in g["way"]),
                     "way (mean)": f"{g['way'].mean():.0%}", "English ΔCE": f"{g['d_en'].mean():+.3f}",
                     "worst fr/es/it ΔCE": f"{_worst_of_means(g):+.3f}",
                     "snippets meeting the claim": f"{int(g['meets_claim'].sum())} of {len(g)}"})
    return pd.DataFrame(rows)


def recipe_notes(runs: pd.DataFrame) -> str:
    """Markdown naming the runs made with another recipe than the first run's, grouped by what their recipe
    changes (the ``recipe`` column of ``across_decompositions_runs.csv``); empty when every run used one recipe or
    the table has no such column."""
    if "recipe" not in runs or runs.empty:
        return ""
    ref = runs["recipe"].iloc[0]
    other = runs[runs["recipe"] != ref]
    if other.empty:
        return ""
    groups = other.groupby("recipe", sort=False)["run"].apply(list)
    items = "; ".join(f"{', '.join(f'**{r}**' for r in names)}: {recipe}" for recipe, names in groups.items())
    return (f"Made with another recipe than the first row's ({ref}): {items}. The study counts each recipe's "
            "decompositions apart (its k-of-n lines), never together.")
