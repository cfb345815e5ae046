"""The comparison of causal-importance (CI) functions on targeted German decompositions: tables from a study.

    python scripts/ci_comparison.py STUDY_OUT --runs KIND-sS=FOLDER ... --out DIR

``STUDY_OUT`` is the ``--out`` folder of ``python -m vpd_lite.across_decompositions`` run on every decomposition of
the comparison, each named ``<ci_type>-s<seed>`` (e.g. ``global_mlp-s3``), with the shipped decomposition first as
the reference. ``--runs`` names, for each run, a folder holding its ``history.json`` (and, where it exists, its
``metrics.json``): the training losses the choosing rule reads (``results/ci_comparison_rule.md``). Writes
``ci_comparison.csv`` (one row per CI kind x run x snippet seed: the columns of ``across_decompositions.csv`` plus
``ci_type``), ``ci_comparison_runs.csv`` (one row per run) and prints the Markdown tables the results page quotes.
Reads only; writes only to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import pandas as pd

KINDS = ("shared_mlp", "global_mlp", "global_transformer")


def ci_type(run: str) -> str | None:
    """The CI kind of a run named ``<kind>-s<seed>``, or None (the reference and anything else)."""
    kind = run.rsplit("-s", 1)[0]
    return kind if kind in KINDS else None


def final_train_loss(history: list[dict]) -> float:
    """Mean over the last fifth of the logged steps of stochastic + adversarial reconstruction on the capability
    (German) batches, nats/token (training text)."""
    rows = [r for r in history if "stochastic_recon" in r]
    last = max(r["step"] for r in rows)
    tail = [r for r in rows if r["step"] > 0.8 * last]
    return statistics.mean(r["stochastic_recon"] + r["adversarial_recon"] for r in tail)


def seconds_per_step(history: list[dict]) -> float:
    """Wall-clock seconds per training step over the run (``elapsed_s`` of the last logged step / its step)."""
    rows = [r for r in history if "elapsed_s" in r and "step" in r]
    return rows[-1]["elapsed_s"] / rows[-1]["step"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("study", type=Path)
    ap.add_argument("--runs", nargs="+", default=[], metavar="NAME=FOLDER")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    folders = dict(item.split("=", 1) for item in args.runs)
    per_snippet = pd.read_csv(args.study / "across_decompositions.csv")
    per_snippet.insert(0, "ci_type", per_snippet["run"].map(ci_type))
    per_snippet = per_snippet[per_snippet["ci_type"].notna()]
    runs = pd.read_csv(args.study / "across_decompositions_runs.csv")
    runs.insert(0, "ci_type", runs["run"].map(ci_type))
    runs = runs[runs["ci_type"].notna()].copy()
    extra = []
    for run in runs["run"]:
        folder = Path(folders[run]) if run in folders else None
        history = json.loads((folder / "history.json").read_text()) if folder else None
        metrics = folder / "metrics.json" if folder else None
        gaps = json.loads(metrics.read_text())["ce_gap"] if metrics and metrics.is_file() else {}
        extra.append({"final_train_loss": final_train_loss(history) if history else None,
                      "s_per_step": seconds_per_step(history) if history else None,
                      "ce_gap_stochastic": gaps.get("stochastic")})
    runs = pd.concat([runs.reset_index(drop=True), pd.DataFrame(extra)], axis=1)
    args.out.mkdir(parents=True, exist_ok=True)
    per_snippet.to_csv(args.out / "ci_comparison.csv", index=False, float_format="%.3f")
    runs.to_csv(args.out / "ci_comparison_runs.csv", index=False, float_format="%.4f")

    print("| CI | run | component | way per snippet (mean) | ΔCE en | worst ΔCE fr/es/it | edge German ΔCE (training, at s) "
          "| final training loss | stochastic gap | rounded-CI gap | PGD gap | L0 | dead | s / step |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for _, r in runs.iterrows():
        ways = per_snippet.loc[per_snippet["run"] == r["run"]].sort_values("seed")["way"]
        way_text = ", ".join(f"{100 * w:.0f}" for w in ways) + f" % ({100 * r['way_mean']:.0f} %)"

        def num(v, fmt):
            return "" if v is None or pd.isna(v) else format(v, fmt)

        print(f"| {r['ci_type']} | {r['run']} | `{r['component']}` | {way_text} | {r['d_en_mean']:+.3f} | "
              f"{r['d_worst_other_mean']:+.3f} | {r['edge_d_de']:+.2f} (s = {r['edge_s']:g}) | "
              f"{num(r['final_train_loss'], '.3f')} | {num(r['ce_gap_stochastic'], '.3f')} | "
              f"{r['ce_gap_ci_rounded']:.3f} | {r['ce_gap_pgd']:.3f} | {r['l0_mean']:.2f} | {r['dead_frac']:.3f} | "
              f"{num(r['s_per_step'], '.2f')} |")
    print()
    meets = per_snippet.groupby("run")["meets_claim"].all()
    for kind in KINDS:
        sub = runs[runs["ci_type"] == kind]
        if sub.empty:
            continue
        k = int(sum(meets.get(run, False) for run in sub["run"]))
        j = int(sub["meets_on_mean"].astype(bool).sum())
        losses = [v for v in sub["final_train_loss"] if v is not None and not pd.isna(v)]
        print(f"- {kind}: {k} of {len(sub)} meet the claim on every snippet; {j} of {len(sub)} on the mean. "
              f"Median edge German ΔCE (training) {statistics.median(sub['edge_d_de']):+.2f} nats/token; "
              f"median final training loss {statistics.median(losses):.3f}" if losses else "")
    print()
    mean_max = pd.read_csv(args.study / "across_decompositions_mean_max.csv")
    similarity = pd.read_csv(args.study / "across_decompositions_similarity.csv")
    for kind in KINDS:
        same = mean_max[(mean_max["run_a"].map(ci_type) == kind) & (mean_max["run_b"].map(ci_type) == kind)
                        & (mean_max["run_a"] != mean_max["run_b"])]
        pairs = similarity[(similarity["run_a"].map(ci_type) == kind) & (similarity["run_b"].map(ci_type) == kind)
                           & (similarity["run_a"] < similarity["run_b"])]
        if same.empty:
            continue
        per_pair = same.groupby(["run_a", "run_b"])[["read", "write", "matrix", "read_random", "write_random"]].mean()
        print(f"- {kind}, whole decompositions ({len(per_pair)} pairs; mean over matrices of the mean max |cos|): "
              f"read {per_pair['read'].mean():.2f}, write {per_pair['write'].mean():.2f}, rank-1 matrix "
              f"{per_pair['matrix'].mean():.2f} (random directions: read {per_pair['read_random'].mean():.2f}, "
              f"write {per_pair['write_random'].mean():.2f}); German components ({len(pairs)} pairs): rank-1 "
              f"cosine mean {pairs['matrix'].mean():.2f} (max {pairs['matrix'].max():.2f}), read "
              f"{pairs['read'].mean():.2f}, write {pairs['write'].mean():.2f}")


if __name__ == "__main__":
    main()
