"""The erase-German experiment's reports as tables for notebook 04, each with a one-line verdict, instead of long
lines of text (a notebook wraps those mid-word).

* :func:`claim_tables` — the published claim checked for every selection rule × objective
  (``vpd_lite.erase.report.claim_report``): a verdict line and three tables (:class:`ClaimTables`): the rules,
  the LoRA baselines at the claim's budget, every seed. The same function reads this run's tables and the
  shipped ones (``results/erase_german.csv`` and ``results/erase_german_runs.csv``, :func:`load_shipped`).
* :func:`picks_table` — what each selection rule picked, its search range of s and why.

All CE numbers are in nats/token on held-out text; "way to ln V" is the fraction of the way from the original
German CE to ln(vocab), in percent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from vpd_lite.erase.baselines import LORA_METHODS
from vpd_lite.erase.protocol import CLAIM, PRIMARY_OBJECTIVE, claim_per_seed
from vpd_lite.erase.report import claim_report
from vpd_lite.models.paths import results_dir

#: The methods' names in the tables.
METHOD_NAMES = {"scalar_edit": "edit-scan rule", "scalar_firing": "earlier rule (firing)",
                "scalar_label": "labeller's most German-only", "lora_r1_all": "LoRA rank 1, all matrices",
                "lora_r4_all": "LoRA rank 4, all matrices", "lora_r1_local": "LoRA rank 1, component's matrix"}


@dataclass
class ClaimTables:
    """The claim's verdict (one line) and its tables.

    ``rules``: one row per selection rule × objective (seed means at the claim's budget); ``lora``: one row per
    LoRA × objective at that budget; ``seeds``: one row per rule × objective × seed (the scalar part of the claim
    on each seed alone). Displays in a notebook as the verdict in bold, then the three tables under headings."""

    verdict: str
    rules: pd.DataFrame
    lora: pd.DataFrame
    seeds: pd.DataFrame
    title: str = ""

    def _repr_html_(self) -> str:
        parts = [f"<p><b>{self.title}</b></p>" if self.title else "", f"<p><b>{self.verdict}</b></p>"]
        for heading, table in (("Each selection rule and objective (seed means)", self.rules),
                               (f"The LoRA baselines at {CLAIM['budget']} German tokens (seed means)", self.lora),
                               ("Every seed on its own", self.seeds)):
            parts.append(f"<p>{heading}</p>" + table.to_html(index=False, na_rep=""))
        return "\n".join(parts)

    def __str__(self) -> str:
        return "\n\n".join([self.title, self.verdict, self.rules.to_string(index=False),
                            self.lora.to_string(index=False), self.seeds.to_string(index=False)]).strip()


def _way(fraction: float) -> float:
    return round(100 * float(fraction))


def claim_tables(runs: pd.DataFrame, summary: pd.DataFrame, title: str = "") -> ClaimTables:
    """The claim on ``runs`` (``protocol.run_sweep`` rows, or ``results/erase_german_runs.csv``) and ``summary``
    (``protocol.summarise``, or ``results/erase_german.csv``) as a verdict line and tables (:class:`ClaimTables`).

    The verdicts are ``vpd_lite.erase.report.claim_report``'s; the verdict line is the primary one (the edit-scan
    rule, the primary objective). Columns: ΔCE in nats/token (held-out), "way to ln V" in percent."""
    claim = claim_report(runs, summary)
    budget = CLAIM["budget"]
    at = summary[summary["budget"] == budget]
    rule_rows, seed_rows = [], []
    for c in claim["checks"]:
        m, o = c["method"], c["objective"]
        r = at[(at["method"] == m) & (at["objective"] == o)].iloc[0]
        rule_rows.append({
            "rule": METHOD_NAMES.get(m, m), "objective": o, "component": _component(runs, m, o),
            "German CE before": round(float(r["de_before"]), 3), "German CE after": round(float(r["de_after"]), 3),
            "way to ln V (%)": _way(c["fraction"]), "ΔCE en": round(c["d_en"], 3),
            "worst ΔCE fr/es/it": round(c["d_other_max"], 3),
            "scalar meets the goal": "yes" if c["scalar_meets_goal"] else "no",
            "every LoRA worse": "yes" if c["all_lora_worse"] else "no",
            "claim": "reproduced" if c["reproduced"] else "not reproduced"})
        for _, s in claim_per_seed(runs, m, o).iterrows():
            seed_rows.append({"rule": METHOD_NAMES.get(m, m), "objective": o, "seed": int(s["seed"]),
                              "s": round(float(s["s"]), 3), "way to ln V (%)": _way(s["frac_to_uniform"]),
                              "ΔCE en": round(float(s["d_en"]), 3),
                              "worst ΔCE fr/es/it": round(float(s["d_worst_other"]), 3),
                              "meets the goal": "yes" if s["meets_goal"] else "no"})
    lora_rows = []
    for _, r in at[at["method"].isin(list(LORA_METHODS))].iterrows():
        others = [x for x in ("d_fr", "d_es", "d_it") if x in r.index]
        lora_rows.append({"LoRA": METHOD_NAMES.get(r["method"], r["method"]), "objective": r.get("objective", ""),
                          "way to ln V (%)": _way(r["frac_to_uniform"]), "ΔCE en": round(float(r["d_en"]), 3),
                          "worst ΔCE fr/es/it": round(float(max(r[x] for x in others)), 3)})
    return ClaimTables(_verdict(claim), pd.DataFrame(rule_rows), pd.DataFrame(lora_rows), pd.DataFrame(seed_rows),
                       title)


def _component(runs: pd.DataFrame, method: str, objective: str) -> str:
    rows = runs[(runs["method"] == method) & (runs["objective"] == objective) & runs["component"].notna()]
    return ", ".join(sorted({str(x) for x in rows["component"]}))


def _verdict(claim: Mapping[str, Any]) -> str:
    """One line: the primary rule's verdict and its three numbers against the claim's thresholds."""
    p = claim.get("primary")
    if not p:
        return f"No edit-scan run with the {PRIMARY_OBJECTIVE} objective at {CLAIM['budget']} tokens: no verdict."
    word = "reproduced" if claim["reproduced"] else "not reproduced"
    return (f"Claim {word}: the edit-scan rule ({p['objective']}, {p['budget']} German tokens) takes German "
            f"{_way(p['fraction']):.0f}% of the way to ln V (claim ≥ {CLAIM['min_fraction']:.0%}), English ΔCE "
            f"{p['d_en']:+.3f} (≤ {CLAIM['max_d_en']}), worst fr/es/it ΔCE {p['d_other_max']:+.3f} "
            f"(≤ {CLAIM['max_d_other']}); every LoRA worse: {'yes' if p['all_lora_worse'] else 'no'}.")


def load_shipped(folder: str | Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """(runs, summary) of the shipped full run (``erase_german_runs.csv``, ``erase_german.csv`` in ``folder``,
    default ``results/``), or None when they are not there."""
    folder = Path(folder) if folder is not None else results_dir()
    runs, summary = folder / "erase_german_runs.csv", folder / "erase_german.csv"
    if not (runs.is_file() and summary.is_file()):
        return None
    return pd.read_csv(runs), pd.read_csv(summary)


def picks_table(rules: Mapping[str, Any], ranges: Mapping[str, tuple[float, float]], why: Mapping[str, str],
                names: Mapping[str, str]) -> pd.DataFrame:
    """One row per selection rule (``names``: {method: rule name}, in order): the component it picked, the
    search range of s fixed for the fit, and why (``EraseSetup.rules``, ``.ranges``, ``.why``)."""
    rows = []
    for m, name in names.items():
        lo, hi = ranges[m]
        module, c = rules[m].component
        rows.append({"rule": name, "component": f"{module}:{c}", "search range of s": f"[{lo:g}, {hi:g}]",
                     "why": why[m]})
    return pd.DataFrame(rows)
