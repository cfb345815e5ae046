"""The German edit across decompositions: is the single-component erasure a property of the model, or the luck of
one decomposition?

The same protocol (:mod:`vpd_lite.erase.protocol`, unchanged: the edit-scan rule and search range on training
text, the primary objective, the claim's budget and snippet seeds, held-out measurement, the thresholds in
``CLAIM``) runs on several decompositions, each in a folder laid out like ``data/``:

1. :func:`erase_with` runs the protocol's single-scalar part on one folder and returns an :class:`AcrossRun`
   (the component picked, the per-seed rows, the verdicts, the component's training-text dose-response curve
   and how far each snippet's own fit would go).
2. :func:`component_similarity` compares two picked components (their rank-1 matrices and, separately, their
   read and write directions); :func:`mean_max_cosine` compares two whole decompositions of one target as the
   VPD paper does (mean, over live components, of the best cosine in the other decomposition).
3. :func:`seed_table`, :func:`run_table`, :func:`similarity_matrix`, :func:`summary_line` and
   :func:`study_markdown` turn the runs into the tables and report of ``results/across_decompositions.*``
   (written by ``python -m vpd_lite.across_decompositions``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from vpd_lite.erase.edits import Direction, fit_single_scalar, select_target_tokens, uniform_level
from vpd_lite.erase.protocol import (
    CLAIM,
    PRIMARY_OBJECTIVE,
    EraseConfig,
    EraseSetup,
    check_claim,
    claim_per_seed,
    run_sweep,
    summarise,
)
from vpd_lite.erase.selection import EDIT_RULE
from vpd_lite.interpret.ids import component_key
from vpd_lite.interpret.statistics import ComponentStats, live_components
from vpd_lite.method.checkpoint import atomic_write_json
from vpd_lite.method.config import DecomposeConfig
from vpd_lite.method.devices import torch_threads

#: The method whose component and verdict the study follows: the single scalar picked by the edit-scan rule.
METHOD = "scalar_edit"


def study_config(base: EraseConfig | None = None) -> EraseConfig:
    """``base`` (default: the full protocol's ``EraseConfig()``) cut to what the study fits: the edit-scan rule's
    single scalar, the primary objective, the claim's budget, every snippet seed; no LoRA. The edit scan and
    the choices stay the protocol's own (``any_language`` is kept, since it also sets which languages the scan
    ranks, and that can move the German pick's refined range); the study just never erases the other
    languages."""
    base = EraseConfig() if base is None else base
    return replace(base, methods=(METHOD,), objectives=(PRIMARY_OBJECTIVE,), budgets=(CLAIM["budget"],),
                   every_budget_objectives=())


@dataclass
class AcrossRun:
    """What the protocol gave on one decomposition.

    ``name``: the run's label; ``target`` / ``decomposition_seed``: the target model (``"shipped"`` or
    ``"seed k"``) and the decomposition's seed; ``direction``: the component the rule picked; ``per_seed``: one
    row per snippet seed (``seed, s, frac_to_uniform, d_en, d_worst_other, meets_goal``, the held-out ΔCE
    ``d_de, d_fr, d_es, d_it``, and ``s_free``, the s the snippet's own fit reaches over the scan's whole grid); ``claim``: :func:`check_claim` on the seed means;
    ``edge``: the component's row of the scan's best-admissible table (German training ΔCE ``gain`` at
    ``s_best``, admissible range ``s_lo``..``s_hi``, and ``ln_v``, ln of the vocabulary size); ``curve``: its training-text dose-response rows;
    ``quality``: the decomposition's held-out ``metrics.json`` figures; ``seconds``: the protocol's wall-clock time; ``target_fingerprint``: the decomposition's record of
    its target (runs with equal fingerprints share a basis and their components can be compared); ``recipe``:
    how the decomposition's training settings differ from the shipped recipe (:func:`recipe_of`);
    ``decomposition_config``: the decomposition's recorded config (``decomposition.json``'s ``config``), kept
    with the run so that its recipe is computed against the shipped recipe of the day it is read, not of the
    day it was measured; ``without_decomposition``: the run was reused from kept measurements without its decomposition at hand (the
    study command sets it), so it takes no part in comparisons that need the whole decomposition."""

    name: str
    target: str
    decomposition_seed: int | None
    direction: Direction
    per_seed: pd.DataFrame
    claim: dict[str, Any]
    edge: dict[str, float]
    curve: pd.DataFrame
    quality: dict[str, float]
    seconds: float = float("nan")  # how long the protocol took on this run (wall clock)
    target_fingerprint: str = ""  # which target weights were decomposed: runs compare components only when equal
    recipe: str = "shipped"  # the decomposition's settings against the shipped recipe (recipe_of)
    decomposition_config: dict[str, Any] | None = None  # its recorded config: the recipe is computed from it anew
    without_decomposition: bool = False  # reused from kept measurements, its decomposition not at hand (not saved)

    @property
    def component(self) -> str:
        return component_key(self.direction.component)

    def save(self, folder: str | Path, key: str, live: Mapping[str, Tensor], settings: str = "") -> None:
        """Write the run (and ``live``, its live components per matrix) into ``folder`` under ``key``, a string
        naming the decomposition and the protocol settings it was run with (see :meth:`load`); ``settings``:
        the protocol settings alone, recorded so that a study reusing the run without its decomposition can
        check it was measured the same way."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "run.json").unlink(missing_ok=True)  # until rewritten last, the folder holds no reusable run
        self.per_seed.to_csv(folder / "per_seed.csv", index=False)
        self.curve.to_csv(folder / "curve.csv", index=False)
        tensors = {"u": self.direction.u.contiguous(), "v": self.direction.v.contiguous(),
                   **{f"live/{m}": t.contiguous() for m, t in live.items()}}
        save_file(tensors, str(folder / "tensors.safetensors"))
        claim = {k: v for k, v in self.claim.items() if isinstance(v, (bool, int, float, str))}
        record = {"key": key, "name": self.name, "target": self.target, "decomposition_seed": self.decomposition_seed,
                  "module": self.direction.module, "c": self.direction.c, "claim": claim, "edge": self.edge,
                  "quality": self.quality, "seconds": self.seconds, "target_fingerprint": self.target_fingerprint,
                  "recipe": self.recipe, "decomposition_config": self.decomposition_config, "settings": settings}
        atomic_write_json(folder / "run.json", record)  # last: its presence says the folder is complete

    @staticmethod
    def settings_of(folder: str | Path) -> str:
        """The protocol settings a run kept in ``folder`` was measured with (``""`` when not recorded or
        unreadable)."""
        try:
            return str(json.loads((Path(folder) / "run.json").read_text()).get("settings", ""))
        except (OSError, ValueError, AttributeError):
            return ""

    @classmethod
    def load(cls, folder: str | Path, key: str | None) -> tuple["AcrossRun", dict[str, Tensor]] | None:
        """(run, live) saved by :meth:`save` with the same ``key`` (``None``: whatever key it was saved with, for
        kept measurements whose decomposition is not at hand; the caller then checks :meth:`settings_of`), or
        None (nothing saved, another key, or an unreadable file: the caller then runs the protocol again). The
        recipe is :func:`recipe_of` the recorded decomposition config; a record kept without one reads as the
        recipe label it was saved with (measured against the shipped recipe of that day), or ``"unknown"``."""
        folder = Path(folder)
        try:
            record = json.loads((folder / "run.json").read_text())
            if key is not None and record.get("key") != key:
                return None
            tensors = load_file(str(folder / "tensors.safetensors"))
            live = {k.removeprefix("live/"): t for k, t in tensors.items() if k.startswith("live/")}
            d = Direction(record["module"], int(record["c"]), tensors["u"], tensors["v"])
            run = cls(record["name"], record["target"], record["decomposition_seed"], d,
                      pd.read_csv(folder / "per_seed.csv"), record["claim"], record["edge"],
                      pd.read_csv(folder / "curve.csv"), record["quality"], float(record["seconds"]),
                      record["target_fingerprint"], record.get("recipe", "unknown"), record.get("decomposition_config"))
            if run.decomposition_config is not None:
                run.recipe = recipe_of(run.decomposition_config)
        except Exception:  # noqa: BLE001 - any unreadable part (also a corrupt tensors file): measure again
            return None
        return run, live


def target_label(target_dir: str | Path, shipped_dir: str | Path | None = None) -> str:
    """``"shipped"`` when ``target_dir`` holds the same weights as ``shipped_dir``, else ``"seed k"`` from its
    ``training_config.json`` (``"unknown"`` without one)."""
    target_dir = Path(target_dir)
    if shipped_dir is not None:
        a, b = target_dir / "model.safetensors", Path(shipped_dir) / "model.safetensors"
        if a.is_file() and b.is_file() and _sha(a) == _sha(b):
            return "shipped"
    try:
        return f"seed {json.loads((target_dir / 'training_config.json').read_text())['seed']}"
    except (OSError, ValueError, KeyError):
        return "unknown"


#: Settings of a decomposition run that do not change what it learns (where it runs, how often it saves or logs)
#: or that the study varies on purpose (the seed): left out of :func:`recipe_of`.
_NOT_RECIPE = frozenset({"seed", "device", "checkpoint_every", "checkpoint_dir", "log_every"})


def recipe_of(config: Mapping[str, Any]) -> str:
    """How a decomposition's recorded config (``decomposition.json``'s ``config``) differs from the shipped recipe,
    ``DecomposeConfig()``: ``"shipped"`` when it does not, else ``"field=value, ..."`` sorted by field. A field the
    record lacks (written before the field existed) counts as the default; the seed, the device and how often
    or where the run saved or logged do not count (a time budget or bf16 does: they change what is learned)."""
    default = json.loads(json.dumps(dataclasses.asdict(DecomposeConfig())))
    diff = [f"{k}={config[k]}" for k in sorted(default)
            if k not in _NOT_RECIPE and k in config and config[k] != default[k]]
    return ", ".join(diff) if diff else "shipped"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def decomposition_quality(folder: str | Path) -> dict[str, float]:
    """The held-out quality figures of a decomposition folder's ``metrics.json`` (empty when it has none):
    ``ce_gap_ci_rounded`` and ``ce_gap_pgd`` (nats/token above the target), ``l0_mean`` (components per token
    per matrix), ``dead_frac`` (fraction of components that never fire) and ``steps``."""
    path = Path(folder) / "metrics.json"
    if not path.is_file():
        return {}
    m = json.loads(path.read_text())
    return {"ce_gap_ci_rounded": float(m["ce_gap"]["ci_rounded"]), "ce_gap_pgd": float(m["ce_gap"]["pgd"]),
            "l0_mean": float(m["l0_mean"]), "dead_frac": float(m["dead_frac"]),
            "steps": float(m.get("training", {}).get("steps", float("nan")))}


def erase_with(setup: EraseSetup, config: EraseConfig, name: str, target: str, decomposition_seed: int | None,
               quality: Mapping[str, float] | None = None, target_fingerprint: str = "",
               progress: bool = True) -> AcrossRun:
    """Run the study's part of the protocol on one decomposition's ``setup`` (made by
    ``vpd_lite.erase.rebuild.build_setup`` from training text) and collect what the study reports.

    ``config`` should come from :func:`study_config`. The fits and held-out CE are the protocol's
    (:func:`vpd_lite.erase.protocol.run_sweep`); ``s_free`` is an extra fit of each snippet over the scan's whole
    grid of s (-30..10 by default), to show how far the snippet would push were the search range not limited
    by the other languages. Nothing here reads held-out text except the protocol's own measurement."""
    runs = run_sweep(setup, config, progress=progress)
    per_seed = claim_per_seed(runs, METHOD, PRIMARY_OBJECTIVE)
    claim = check_claim(summarise(runs), method=METHOD, objective=PRIMARY_OBJECTIVE)
    d = setup.rules[METHOD]
    lo, hi = min(config.scan.s_grid), max(config.scan.s_grid)
    free = []
    with torch_threads(config.threads):
        for seed in per_seed["seed"]:
            tokens, mask = select_target_tokens(setup.train["de"], CLAIM["budget"], seed=int(seed))
            free.append(fit_single_scalar(setup.model, d, tokens, mask, PRIMARY_OBJECTIVE, lo, hi, config.search)[0])
    per_seed["s_free"] = free
    fits = runs[(runs["method"] == METHOD) & (runs["budget"] == CLAIM["budget"])].set_index("seed")
    for lang in ("de", "fr", "es", "it"):
        if f"ce_after_{lang}" in fits:
            per_seed[f"d_{lang}"] = [float(fits.loc[s, f"ce_after_{lang}"] - fits.loc[s, f"ce_before_{lang}"])
                                     for s in per_seed["seed"]]
    best = setup.scan.best_for("de")
    row = best[best["component"] == component_key(d.component)].iloc[0]
    edge = {k: float(row[k]) for k in ("gain", "s_best", "s_lo", "s_hi", "d_en", "worst_other")}
    edge["ln_v"] = uniform_level(setup.vocab_size)
    return AcrossRun(name=name, target=target, decomposition_seed=decomposition_seed, direction=d,
                     per_seed=per_seed, claim=claim, edge=edge, curve=setup.scan.curve(d.component),
                     quality=dict(quality or {}), target_fingerprint=target_fingerprint)


# ------------------------------------------------------------------------------------------ similarity
def _unit(x: Tensor) -> Tensor:
    return x.double() / x.double().norm(dim=0, keepdim=True).clamp_min(1e-30)


def component_similarity(a: Direction, b: Direction) -> dict[str, float]:
    """How alike two components are: ``matrix``, the cosine similarity of their rank-1 matrices ``U_c V_cᵀ``
    (flattened; it equals cos(u_a, u_b)·cos(v_a, v_b), so it is signed: -1 is the same matrix negated), and the
    absolute cosines of the ``read`` (V_c, d_in) and ``write`` (U_c, d_out) directions on their own (a
    component's sign can move between its two factors). 0 for all three when they belong to different
    matrices (the cosine is undefined across shapes; ``same_matrix`` says so)."""
    if a.module != b.module:
        return {"same_matrix": False, "matrix": 0.0, "read": 0.0, "write": 0.0}
    cu = float(_unit(a.u) @ _unit(b.u))
    cv = float(_unit(a.v) @ _unit(b.v))
    return {"same_matrix": True, "matrix": cu * cv, "read": abs(cv), "write": abs(cu)}


def best_match(direction: Direction, cm: nn.Module, live: Mapping[str, Tensor]) -> dict[str, Any]:
    """The live component of ``cm`` in ``direction``'s matrix whose rank-1 matrix is most alike (largest
    |cosine|): ``{"component": key, "matrix": |cos| of the rank-1 matrices, "read": |cos|, "write": |cos|}``.
    ``cm`` must decompose the same target weights as the decomposition ``direction`` comes from; an empty
    dict when the matrix has no live component."""
    idx = live.get(direction.module, torch.zeros(0, dtype=torch.long))
    if direction.module not in cm.components or len(idx) == 0:
        return {}
    layer = cm.components[direction.module]
    cv = (_unit(layer.V.detach()[:, idx]).T @ _unit(direction.v.reshape(-1, 1))).abs().flatten()
    cu = (_unit(layer.U.detach()[idx].T).T @ _unit(direction.u.reshape(-1, 1))).abs().flatten()
    j = int((cv * cu).argmax())
    return {"component": component_key((direction.module, int(idx[j]))), "matrix": float(cv[j] * cu[j]),
            "read": float(cv[j]), "write": float(cu[j])}


def live_by_module(stats: ComponentStats) -> dict[str, Tensor]:
    """{module: indices (long) of its components that fire on at least one harvested token}."""
    out: dict[str, list[int]] = {m: [] for m in stats.modules}
    for m, c in live_components(stats):
        out[m].append(c)
    return {m: torch.tensor(cs, dtype=torch.long) for m, cs in out.items()}


def _mean_max(Va: Tensor, Ua: Tensor, Vb: Tensor, Ub: Tensor) -> dict[str, float]:
    """Mean max |cosine| between the columns of (Va, Ua) and of (Vb, Ub) — read (d_in, n) and write (d_out, n)
    directions — and of their rank-1 matrices, averaged over both directions of comparison."""
    cv = (_unit(Va).T @ _unit(Vb)).abs()  # (n_a, n_b)
    cu = (_unit(Ua).T @ _unit(Ub)).abs()

    def both(c: Tensor) -> float:
        return 0.5 * (float(c.max(1).values.mean()) + float(c.max(0).values.mean()))

    return {"read": both(cv), "write": both(cu), "matrix": both(cv * cu)}


def mean_max_cosine(cm_a: nn.Module, cm_b: nn.Module, live_a: Mapping[str, Tensor],
                    live_b: Mapping[str, Tensor], seed: int = 0) -> pd.DataFrame:
    """The VPD paper's cross-seed similarity, per decomposed matrix: for each live component of one
    decomposition, the largest absolute cosine with any live component of the other (read directions V,
    write directions U, and the rank-1 matrices U_c V_cᵀ), averaged over live components and over both
    directions of comparison (a→b and b→a). One row per matrix both decompose: ``module, live_a, live_b, read,
    write, matrix`` and the chance level ``read_random, write_random, matrix_random`` (the same numbers with
    b's live components replaced by as many random Gaussian directions, drawn from ``seed``). Both
    decompositions must be of the same target (same weights; see ``AcrossRun.target_fingerprint``).

    Source: the VPD paper's "mean max cosine similarity" between decompositions from different seeds."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for module in [m for m in cm_a.components if m in cm_b.components]:
        la, lb = live_a[module], live_b[module]
        A, B = cm_a.components[module], cm_b.components[module]
        row: dict[str, Any] = {"module": module, "live_a": len(la), "live_b": len(lb)}
        if len(la) == 0 or len(lb) == 0:
            rows.append(row | {k: float("nan") for k in ("read", "write", "matrix", "read_random", "write_random",
                                                         "matrix_random")})
            continue
        Va, Ua = A.V.detach()[:, la].double(), A.U.detach()[la].T.double()  # (d_in, n_a), (d_out, n_a)
        Vb, Ub = B.V.detach()[:, lb].double(), B.U.detach()[lb].T.double()
        row |= _mean_max(Va, Ua, Vb, Ub)
        rand = _mean_max(Va, Ua, torch.randn(Vb.shape, generator=g, dtype=torch.float64),
                         torch.randn(Ub.shape, generator=g, dtype=torch.float64))
        row |= {f"{k}_random": v for k, v in rand.items()}
        rows.append(row)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ tables
def per_pair_mean_max(mean_max: pd.DataFrame) -> pd.DataFrame:
    """:func:`mean_max_cosine`'s rows (one per pair × matrix, with ``run_a``, ``run_b``) averaged over the
    matrices: one row per pair of decompositions (read, write, matrix and their chance levels)."""
    cols = [c for c in ("read", "write", "matrix", "read_random", "write_random", "matrix_random") if c in mean_max]
    return mean_max.groupby(["run_a", "run_b"], sort=False)[cols].mean().reset_index()


def seed_table(runs: Sequence[AcrossRun]) -> pd.DataFrame:
    """One row per run × snippet seed: ``run, target, decomposition_seed, component, seed, s, s_free, way``
    (fraction of the way from base German CE to ln V, held-out), ``d_en``, ``d_worst_other`` (held-out ΔCE,
    nats/token), ``meets_claim`` and, when measured, ``d_de, d_fr, d_es, d_it``."""
    rows = []
    for r in runs:
        for _, p in r.per_seed.iterrows():
            rows.append({"run": r.name, "target": r.target, "decomposition_seed": r.decomposition_seed,
                         "component": r.component, "seed": int(p["seed"]), "s": float(p["s"]),
                         "s_free": float(p["s_free"]), "way": float(p["frac_to_uniform"]), "d_en": float(p["d_en"]),
                         "d_worst_other": float(p["d_worst_other"]), "meets_claim": bool(p["meets_goal"]),
                         **{c: float(p[c]) for c in ("d_de", "d_fr", "d_es", "d_it") if c in p}})
    return pd.DataFrame(rows)


def _vs(a: AcrossRun, b: AcrossRun) -> dict[str, Any]:
    """:func:`component_similarity` of two runs' picked components; NaN cosines for runs on different target
    weights (no shared basis), 1 for a run against itself."""
    if a is b:
        return {"same_matrix": True, "matrix": 1.0, "read": 1.0, "write": 1.0}
    if a.target_fingerprint != b.target_fingerprint:
        return {"same_matrix": a.direction.module == b.direction.module} | dict.fromkeys(
            ("matrix", "read", "write"), float("nan"))
    return component_similarity(a.direction, b.direction)


def run_table(runs: Sequence[AcrossRun], reference: AcrossRun | None = None,
              matches: Mapping[str, Mapping[str, Any]] | None = None) -> pd.DataFrame:
    """One row per run: its recipe (:func:`recipe_of`), the component and its matrix, the verdict on the seed means and on every seed, the
    training-text edge of the component (German ΔCE ``edge_d_de`` at ``edge_s``, admissible ``s_lo``..``s_hi``),
    the decomposition's quality, with ``reference`` the component's similarity to the reference run's component
    (:func:`component_similarity`; NaN for a run on other target weights, which shares no basis), and with ``matches``
    ({run: :func:`best_match` of the reference's component in that run}) the run's closest component to the
    reference's (``ref_match``, ``ref_match_matrix``, ``ref_match_read``, ``ref_match_write``)."""
    rows = []
    for r in runs:
        c = r.claim
        row = {"run": r.name, "target": r.target, "decomposition_seed": r.decomposition_seed, "recipe": r.recipe,
               "component": r.component, "matrix": r.direction.module,
               "way_mean": c["fraction"], "d_en_mean": c["d_en"], "d_worst_other_mean": c["d_other_max"],
               "meets_on_mean": bool(c["scalar_meets_goal"]), "seeds_meeting": int(r.per_seed["meets_goal"].sum()),
               "n_seeds": len(r.per_seed), "edge_d_de": r.edge["gain"], "edge_s": r.edge["s_best"],
               "s_lo": r.edge["s_lo"], "s_hi": r.edge["s_hi"], **r.quality}
        if reference is not None:
            sim = _vs(r, reference)
            row.update({f"vs_reference_{k}": v for k, v in sim.items()})
        m = (matches or {}).get(r.name)
        if m:
            row.update({"ref_match": m["component"], "ref_match_matrix": m["matrix"], "ref_match_read": m["read"],
                        "ref_match_write": m["write"]})
        rows.append(row)
    return pd.DataFrame(rows)


def similarity_matrix(runs: Sequence[AcrossRun], kind: str = "matrix") -> pd.DataFrame:
    """Runs × runs table of :func:`component_similarity`'s ``kind`` (``matrix``, ``read`` or ``write``) between
    the picked components. Runs on different targets (``target_fingerprint``) get NaN: no shared basis; a run
    against itself is 1."""
    names = [r.name for r in runs]
    out = pd.DataFrame(index=names, columns=names, dtype=float)
    for a in runs:
        for b in runs:
            out.loc[a.name, b.name] = _vs(a, b)[kind]
    return out


def split_runs(runs: Sequence[AcrossRun]) -> tuple[list[AcrossRun], list[AcrossRun], list[AcrossRun]]:
    """The runs in three groups, each in the given order: (decompositions of the first run's target weights with
    its recipe, decompositions of other targets with its recipe, recipe variants: any run whose ``recipe``
    differs from the first run's). Only runs of one recipe are counted together in :func:`summary_line`."""
    ref = runs[0]
    variants = [r for r in runs if r.recipe != ref.recipe]
    same_target, other_targets = _by_target([r for r in runs if r.recipe == ref.recipe], ref.target_fingerprint)
    return same_target, other_targets, variants


def _by_target(runs: Sequence[AcrossRun], fingerprint: str) -> tuple[list[AcrossRun], list[AcrossRun]]:
    """(the runs decomposing the target weights with ``fingerprint``, the others), each in the given order."""
    return ([r for r in runs if r.target_fingerprint == fingerprint],
            [r for r in runs if r.target_fingerprint != fingerprint])


def summary_line(runs: Sequence[AcrossRun], which: str = "decompositions") -> str:
    """'k of n <which> meet the claim on every snippet; j of n on the mean'."""
    n = len(runs)
    k = sum(bool(r.per_seed["meets_goal"].all()) for r in runs)
    j = sum(bool(r.claim["scalar_meets_goal"]) for r in runs)
    return f"{k} of {n} {which} meet the claim on every snippet; {j} of {n} on the mean"


def variant_line(run: AcrossRun) -> str:
    """One line on a run of another recipe: its name, what its recipe changes, and its verdict."""
    met = int(run.per_seed["meets_goal"].sum())
    return (f"{run.name} ({run.recipe}): {run.claim['fraction']:.0%} of the way on the mean, {met} of "
            f"{len(run.per_seed)} snippets meet the claim, the mean {'meets' if run.claim['scalar_meets_goal'] else 'misses'} it")


def answer_lines(runs: Sequence[AcrossRun]) -> list[str]:
    """The study's answer, one line per group of runs that share a recipe and a kind of target: first the first
    run's recipe (decompositions of its target, then of other targets: :func:`summary_line`), then every other
    recipe in order of appearance, its runs counted together the same way, or a :func:`variant_line` when it has
    only one run."""
    same, others, variants = split_runs(runs)
    lines = [f"Decompositions of the {runs[0].target} target: {summary_line(same)}."]
    if others:
        lines.append(f"Other targets (each decomposed once): {summary_line(others, 'targets')}.")
    recipes = list(dict.fromkeys(r.recipe for r in variants))
    for recipe in recipes:
        group = [r for r in variants if r.recipe == recipe]
        if len(group) == 1:
            lines.append(f"Recipe variant {variant_line(group[0])}.")
            continue
        same_target, other_target = _by_target(group, runs[0].target_fingerprint)
        if same_target:
            lines.append(f"Recipe {recipe}, decompositions of the {runs[0].target} target: "
                         f"{summary_line(same_target)}.")
        if other_target:
            lines.append(f"Recipe {recipe}, other targets (each decomposed once): "
                         f"{summary_line(other_target, 'targets')}.")
    return lines


def study_markdown(runs: Sequence[AcrossRun], mean_max: pd.DataFrame, command: str,
                   matches: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """The study's markdown report: the answer (:func:`answer_lines`), the
    per-run and per-snippet tables, the quality of each decomposition, the whole-decomposition similarity
    (``mean_max`` from :func:`mean_max_cosine`, one row per pair × matrix), the runs reused without their
    decomposition, each run's protocol time and the rule. ``runs[0]`` is the reference."""
    by_run = run_table(runs, reference=runs[0], matches=matches)
    seeds = seed_table(runs)
    lines = [
        "# The German edit across decompositions and targets",
        "",
        f"Command: `{command}`  ",
        f"Reference (first run): {runs[0].name}, component {runs[0].component}. Protocol unchanged: the edit-scan "
        f"rule and its search range on training text, objective target_ce, {CLAIM['budget']} German tokens per "
        f"snippet, snippet seeds {sorted(set(seeds['seed']))}, held-out measurement, the claim's thresholds "
        f"(>= {CLAIM['min_fraction']:.0%} of the way to ln V, English ΔCE <= {CLAIM['max_d_en']}, every other "
        f"language <= {CLAIM['max_d_other']} nats/token).",
        "",
        "## Answer",
        "",
        *[f"- {line}" for line in answer_lines(runs)],
    ]
    lines += ["", "## Per run", "", markdown_table(by_run, ["run", "target", "decomposition_seed", "recipe", "component", "way_mean",
                                                  "d_en_mean", "d_worst_other_mean", "meets_on_mean",
                                                  "seeds_meeting", "edge_d_de", "edge_s", "s_lo", "s_hi"]),
              "", "`way_*`: fraction of the way from the base German CE to ln V (held-out); `d_*`: held-out ΔCE in "
              "nats/token; `edge_d_de`: the component's largest German ΔCE on training text inside its admissible "
              "range (at `edge_s`; admissible s from `s_lo` to `s_hi`), how selective it is.",
              "", "## Each run's component against the reference's", "",
              markdown_table(by_run, ["run", "component", "vs_reference_matrix", "vs_reference_read",
                                      "vs_reference_write", "ref_match", "ref_match_matrix", "ref_match_read",
                                      "ref_match_write"]),
              "", "`vs_reference_*`: cosine of the rank-1 matrices (signed: -1 is the same matrix negated) and "
              "|cosine| of the read and write directions between this run's component and the reference's (0 when "
              "in another matrix, blank for a decomposition of other target weights: no shared basis); `ref_match`: this run's live component most alike the reference's (same "
              "matrix; only for decompositions of the same target), with its |cosines|.",
              "", "## Per snippet", "", markdown_table(seeds, list(seeds.columns)),
              "", "`s_free`: where the snippet's own fit would put s on the edit scan's whole grid of s if the "
              "other languages did not limit the search range; when it lies outside [s_lo, s_hi], the fit stopped at "
              "the range's edge.", ""]
    quality = [c for c in ("ce_gap_ci_rounded", "ce_gap_pgd", "l0_mean", "dead_frac", "steps") if c in by_run]
    if quality:
        lines += ["## Quality of each decomposition (held-out, from its metrics.json)", "",
                  markdown_table(by_run, ["run"] + quality), ""]
    if len(mean_max):
        per_pair = per_pair_mean_max(mean_max)
        lines += ["## Whole decompositions of one target: mean max cosine similarity", "",
                  "For each live component, the best |cosine| in the other decomposition, averaged over live "
                  "components, both directions and the matrices (the VPD paper, in the README's References, reports "
                  "about 0.52 for read and 0.48 for write directions between two seeds). `*_random`: the same with "
                  "the second decomposition's live components replaced by as many random directions (chance level).",
                  "", markdown_table(per_pair, list(per_pair.columns)), ""]
    reused = [r.name for r in runs if r.without_decomposition]
    if reused:
        lines += ["## Measurements reused without their decomposition", "",
                  f"Reused from an earlier run of the study, without their decompositions at hand: {', '.join(reused)}. "
                  "Their protocol results are as measured then; they take no part in the "
                  "whole-decomposition comparison, and their closest component to the reference's is not searched.",
                  ""]
    lines += ["## Run times (the protocol on each run, wall clock)", "",
              ", ".join(f"{r.name} {r.seconds:.0f} s" for r in runs), "",
              "## The rule, written before the held-out numbers", "",
              "Written before any held-out number of the protocol was computed; nothing here reads held-out text "
              "except the measurement.", "", EDIT_RULE, ""]
    return "\n".join(lines)


#: Columns that hold counts or seeds: printed without decimals.
INTEGER_COLUMNS = frozenset({"decomposition_seed", "seed", "steps", "seeds_meeting", "n_seeds", "live_a", "live_b"})


def markdown_table(df: pd.DataFrame, cols: Sequence[str]) -> str:
    """The ``cols`` of ``df`` that it has, as a markdown table (floats to 3 decimals, counts and seeds whole,
    NaN blank, booleans yes/no)."""
    cols = [c for c in cols if c in df.columns]

    def cell(col: str, v: Any) -> str:
        if isinstance(v, bool):
            return "yes" if v else "no"
        if isinstance(v, float) and v != v:
            return ""
        if col in INTEGER_COLUMNS:
            return str(int(v))
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    rows += ["| " + " | ".join(cell(c, df[c].iloc[i]) for c in cols) + " |" for i in range(len(df))]
    return "\n".join(rows)
