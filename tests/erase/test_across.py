"""The study across decompositions: the similarity maths on hand-made components, the counting, and the command
end to end on two tiny decompositions of one random-init target."""

import dataclasses
import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch

from vpd_lite.commands.across_decompositions import KEPT, _named, main
from vpd_lite.erase.across import (
    AcrossRun,
    answer_lines,
    component_similarity,
    mean_max_cosine,
    recipe_of,
    run_table,
    seed_table,
    similarity_matrix,
    split_runs,
    summary_line,
    variant_line,
)
from vpd_lite.erase.edits import Direction
from vpd_lite.method.checkpoint import save_decomposition
from vpd_lite.method.config import DecomposeConfig
from vpd_lite.method.decompose import decompose
from vpd_lite.models.target import load_target
from tests.erase.test_protocol import make_tiny_data


def test_component_similarity_hand_values():
    u, v = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 2.0])
    same = component_similarity(Direction("m", 0, u, v), Direction("m", 3, 5 * u, v))
    assert same == {"same_matrix": True, "matrix": pytest.approx(1.0), "read": pytest.approx(1.0),
                    "write": pytest.approx(1.0)}
    # both factors negated: the same rank-1 matrix
    assert component_similarity(Direction("m", 0, u, v), Direction("m", 1, -u, -v))["matrix"] == pytest.approx(1.0)
    # one factor negated: the negated matrix, while each direction on its own is the same line
    flipped = component_similarity(Direction("m", 0, u, v), Direction("m", 1, -u, v))
    assert flipped["matrix"] == pytest.approx(-1.0) and flipped["read"] == flipped["write"] == pytest.approx(1.0)
    # a 45-degree write direction: cos = 1/sqrt(2) for the write side and for the matrix
    tilted = component_similarity(Direction("m", 0, u, v), Direction("m", 1, torch.tensor([1.0, 1.0, 0.0]), v))
    assert tilted["write"] == pytest.approx(2 ** -0.5) and tilted["matrix"] == pytest.approx(2 ** -0.5)
    other = component_similarity(Direction("m", 0, u, v), Direction("n", 0, u, v))
    assert other == {"same_matrix": False, "matrix": 0.0, "read": 0.0, "write": 0.0}


class _Layer:
    def __init__(self, V, U):
        self.V, self.U = V, U


class _CM:
    def __init__(self, layers):
        self.components = layers


def test_mean_max_cosine_is_one_for_a_permuted_copy_and_lower_for_random_components():
    g = torch.Generator().manual_seed(0)
    V, U = torch.randn(6, 5, generator=g), torch.randn(5, 4, generator=g)
    perm = torch.tensor([3, 0, 4, 1, 2])
    a = _CM({"m": _Layer(V, U)})
    b = _CM({"m": _Layer(-V[:, perm] * 2, U[perm] * 0.5)})  # reordered, rescaled, sign moved: same components
    live = {"m": torch.arange(5)}
    row = mean_max_cosine(a, b, live, live).iloc[0]
    assert row["read"] == pytest.approx(1.0) and row["write"] == pytest.approx(1.0)
    assert row["matrix"] == pytest.approx(1.0) and row["live_a"] == row["live_b"] == 5
    assert row["read_random"] < 1.0 and row["matrix_random"] < row["matrix"]  # chance level: random directions
    c = _CM({"m": _Layer(torch.randn(6, 5, generator=g), torch.randn(5, 4, generator=g))})
    other = mean_max_cosine(a, c, live, live).iloc[0]
    assert other["matrix"] < 0.9 and other["read"] < 1.0
    # dead components are left out: only live ones count
    only_two = mean_max_cosine(a, c, {"m": torch.tensor([0, 1])}, live).iloc[0]
    assert only_two["live_a"] == 2


def _run(name, target, meets, mean_ok):
    per_seed = pd.DataFrame({"seed": [0, 1, 2], "s": [-5.0, -6.0, -7.0], "s_free": [-5.0, -6.0, -9.0],
                             "frac_to_uniform": [0.9, 0.85, 0.7], "d_en": [0.01] * 3, "d_worst_other": [0.05] * 3,
                             "meets_goal": meets})
    d = Direction("m", 0, torch.ones(2), torch.ones(2))
    return AcrossRun(name, target, 1, d, per_seed, {"scalar_meets_goal": mean_ok, "fraction": 0.82, "d_en": 0.01,
                                                     "d_other_max": 0.05},
                     {"gain": 3.0, "s_best": -5.0, "s_lo": -5.0, "s_hi": 5.0}, pd.DataFrame(), {})


def test_summary_line_counts_every_snippet_and_the_mean_separately():
    runs = [_run("a", "shipped", [True, True, True], True), _run("b", "shipped", [True, False, True], True),
            _run("c", "shipped", [False, False, False], False)]
    assert summary_line(runs) == "1 of 3 decompositions meet the claim on every snippet; 2 of 3 on the mean"
    table = seed_table(runs)
    assert len(table) == 9 and {"run", "target", "component", "seed", "way", "d_en", "d_worst_other"} <= set(table)
    assert table["way"].between(0, 1).all()  # a fraction, not a percentage


def test_recipe_of_names_what_differs_from_the_shipped_recipe():
    import json

    shipped = json.loads(json.dumps(dataclasses.asdict(DecomposeConfig())))
    assert recipe_of(shipped) == "shipped"
    # the seed, where it ran and how often it saved do not make another recipe; a field the record lacks is the default
    moved = shipped | {"seed": 7, "device": "cuda", "checkpoint_every": 0, "log_every": 1}
    assert recipe_of(moved) == "shipped"
    assert recipe_of({k: v for k, v in shipped.items() if k != "use_delta"}) == "shipped"
    faster = shipped | {"use_delta": False, "ci_hidden": 32, "adversarial_routing": "subset"}
    assert recipe_of(faster) == "adversarial_routing=subset, ci_hidden=32, use_delta=False"


def test_a_kept_run_reads_its_recipe_against_the_shipped_recipe_of_today(tmp_path, monkeypatch):
    """A kept run stores its decomposition's config, not only the label of the day it was measured: when the
    shipped recipe changes (here the default CI function), the label read back follows."""
    import json

    from vpd_lite.erase import across

    run = _run("old", "shipped", [True] * 3, True)
    run.decomposition_config = json.loads(json.dumps(dataclasses.asdict(DecomposeConfig(ci_type="shared_mlp"))))
    run.recipe, run.curve = recipe_of(run.decomposition_config), pd.DataFrame({"s": [0.0], "d_de": [0.0]})
    run.save(tmp_path / "kept", "key", {"m": torch.arange(2)})
    assert AcrossRun.load(tmp_path / "kept", "key")[0].recipe == run.recipe != "shipped"
    shipped_then = lambda **kw: DecomposeConfig(**{"ci_type": "shared_mlp", **kw})  # noqa: E731
    monkeypatch.setattr(across, "DecomposeConfig", shipped_then)  # the day the per-matrix CI was the default
    assert AcrossRun.load(tmp_path / "kept", "key")[0].recipe == "shipped"
    record = json.loads((tmp_path / "kept" / "run.json").read_text())
    del record["decomposition_config"]  # kept before configs were stored: the label it was saved with
    (tmp_path / "kept" / "run.json").write_text(json.dumps(record))
    assert AcrossRun.load(tmp_path / "kept", "key")[0].recipe == run.recipe


def test_recipe_variants_are_reported_apart_and_not_counted_with_the_decompositions():
    a, b, t = _run("a", "shipped", [True] * 3, True), _run("b", "shipped", [False] * 3, False), _run("t", "seed 1", [True] * 3, True)
    v = _run("v", "shipped", [True, True, False], True)
    a.target_fingerprint = b.target_fingerprint = v.target_fingerprint = "shipped weights"
    t.target_fingerprint = "other weights"
    v.recipe = "ci_hidden=32"
    same, others, variants = split_runs([a, v, b, t])
    assert [r.name for r in same] == ["a", "b"] and [r.name for r in others] == ["t"] and variants == [v]
    assert summary_line(same) == "1 of 2 decompositions meet the claim on every snippet; 1 of 2 on the mean"
    assert variant_line(v) == ("v (ci_hidden=32): 82% of the way on the mean, 2 of 3 snippets meet the claim, "
                               "the mean meets it")
    # runs of another recipe are counted together when there are several, per kind of target
    w, u = _run("w", "shipped", [False] * 3, False), _run("u", "seed 2", [True] * 3, True)
    w.target_fingerprint, u.target_fingerprint, w.recipe, u.recipe = "shipped weights", "more weights", v.recipe, v.recipe
    assert answer_lines([a, v, b, t, w, u]) == [
        "Decompositions of the shipped target: 1 of 2 decompositions meet the claim on every snippet; 1 of 2 on the mean.",
        "Other targets (each decomposed once): 1 of 1 targets meet the claim on every snippet; 1 of 1 on the mean.",
        "Recipe ci_hidden=32, decompositions of the shipped target: 0 of 2 decompositions meet the claim on every "
        "snippet; 1 of 2 on the mean.",
        "Recipe ci_hidden=32, other targets (each decomposed once): 1 of 1 targets meet the claim on every snippet; "
        "1 of 1 on the mean."]
    assert answer_lines([a, v, b])[-1] == f"Recipe variant {variant_line(v)}."


def _second_decomposition(data: Path, root: Path, seed: int, name: str | None = None, **recipe) -> Path:
    """A copy of the tiny data folder whose decomposition is redone with another seed (and ``recipe``'s
    settings)."""
    other = root / (name or f"seed{seed}")
    shutil.copytree(data / "target", other / "target")
    (other / "corpus").symlink_to(data / "corpus")
    model, _ = load_target(other / "target")
    dconfig = DecomposeConfig.quick(steps=5, faithfulness_warmup_steps=5, batch_size=2, seq_len=32, seed=seed,
                                    targets={"*.q_proj": 8, "*.up_proj": 8, "*.down_proj": 8}, **recipe)
    blocks = torch.randint(0, model.config.vocab_size, (4, 32), generator=torch.Generator().manual_seed(seed))
    cm, _ = decompose(model, [blocks[:2], blocks[2:]], dconfig, progress=False)
    save_decomposition(cm, other / "decomposition", dconfig)
    return other


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny data folder, a second decomposition of its target (seed 1) and one made with another recipe (a
    smaller CI function); tests only read them."""
    root = tmp_path_factory.mktemp("across")
    data = make_tiny_data(root / "data")
    return data, _second_decomposition(data, root, seed=1), _second_decomposition(data, root, 2, "small-ci", ci_hidden=4)


def test_command_end_to_end_on_two_tiny_decompositions(tiny, tmp_path, capsys):
    data, other, variant = tiny
    before = {p: p.stat().st_mtime_ns for p in data.rglob("*") if p.is_file()}
    out = tmp_path / "out"
    assert main(["--quick", f"ref={data}", str(other), str(variant), "--out", str(out), "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    assert "2 decompositions meet the claim on every snippet" in printed  # the variant is not counted with them
    line = next(x for x in printed.splitlines() if x.startswith("Recipe variant small-ci ("))
    assert "ci_hidden=4" in line and "of the way on the mean" in line
    seeds = pd.read_csv(out / "across_decompositions.csv")
    assert list(seeds["run"]) == ["ref", "seed1", "small-ci"]  # quick mode: one snippet seed per run
    assert {"run", "target", "component", "seed", "way", "d_en", "d_worst_other", "meets_claim"} <= set(seeds)
    runs = pd.read_csv(out / "across_decompositions_runs.csv")
    assert runs.loc[0, "vs_reference_matrix"] == pytest.approx(1.0)  # the reference against itself
    recipes = list(runs["recipe"])  # the tiny runs' own settings, against the shipped recipe
    assert recipes[0] == recipes[1] != "shipped" and "ci_hidden=4" in recipes[2] and "ci_hidden" not in recipes[0]
    sim = pd.read_csv(out / "across_decompositions_similarity.csv")
    assert set(sim["run_a"]) == {"ref", "seed1", "small-ci"} and len(sim) == 9
    mm = pd.read_csv(out / "across_decompositions_mean_max.csv")
    assert set(zip(mm["run_a"], mm["run_b"])) == {("ref", "seed1"), ("ref", "small-ci"), ("seed1", "small-ci")}
    assert mm[["read", "write"]].le(1.0 + 1e-9).all().all()
    md = (out / "across_decompositions.md").read_text()
    assert "## Per snippet" in md and "## The rule, written before the held-out numbers" in md
    for name in ("across_decompositions_curves.png", "across_decompositions_similarity.png"):
        assert (out / name).stat().st_size > 1000
    # the inputs were only read (no statistics or anything else written into them)
    assert before == {p: p.stat().st_mtime_ns for p in data.rglob("*") if p.is_file()}


@pytest.mark.parametrize("args, says, code", [
    (["{missing}"], "is not a folder", 2),
    (["a={data}", "a={data}"], "share a name", 2),
    (["../x={data}"], "must be a plain name", 2),
    (["{empty}"], "lacks", 1),
    (["{bad_kept}"], "kept measurements cannot be read", 1),
])
def test_bad_input_is_one_line(tiny, tmp_path, capsys, args, says, code):
    from vpd_lite.commands import cli

    data = tiny[0]
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad_kept").mkdir()
    (tmp_path / "bad_kept" / "run.json").write_text("{not json")
    fill = {"missing": tmp_path / "nope", "data": data, "empty": tmp_path / "empty", "bad_kept": tmp_path / "bad_kept"}
    argv = [a.format(**fill) for a in args] + ["--quick", "--out", str(tmp_path / "out")]
    try:
        got = cli.run_main(main, "across_decompositions", argv)
    except SystemExit as exit_:
        got = exit_.code
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert got == code and len(err) == 1 and says in err[0], err
    assert err[0].startswith("python -m vpd_lite.across_decompositions")
    assert not (tmp_path / "out").exists()


def test_runs_on_other_target_weights_are_not_compared():
    a, b, c = _run("a", "seed 0", [True] * 3, True), _run("b", "seed 0", [True] * 3, True), _run("c", "x", [True] * 3, True)
    a.target_fingerprint = b.target_fingerprint = "same weights"
    c.target_fingerprint = "other weights"
    table = similarity_matrix([a, b, c])
    assert table.loc["a", "b"] == pytest.approx(1.0) and table.isna().loc["a", "c"] and table.isna().loc["c", "b"]
    c.direction = Direction("m", 0, torch.full((2,), float("nan")), torch.full((2,), float("nan")))  # not kept
    assert similarity_matrix([a, b, c]).loc["c", "c"] == 1.0  # a run against itself, whatever it kept
    by_run = run_table([a, b, c], reference=a).set_index("run")  # against the reference too: blank, not a number
    assert by_run.loc["b", "vs_reference_matrix"] == pytest.approx(1.0)
    assert by_run.loc[["c"], ["vs_reference_matrix", "vs_reference_read", "vs_reference_write"]].isna().all().all()


def test_kept_measurements_join_a_later_study_without_their_decomposition(tiny, tmp_path, capsys):
    data, other, _ = tiny
    first, later = tmp_path / "first", tmp_path / "later"
    assert main(["--quick", str(data), str(other), "--out", str(first), "--workers", "1", "--no-figures"]) == 0
    kept = first / KEPT / other.name
    assert (kept / "run.json").is_file()
    capsys.readouterr()
    # the decomposition folder is gone (another machine): its kept measurements stand in for it
    assert main(["--quick", str(data), f"earlier={kept}", "--out", str(later), "--workers", "1",
                 "--no-figures"]) == 0
    printed = capsys.readouterr().out
    assert "[earlier]" in printed and "kept measurements" in printed
    a = pd.read_csv(first / "across_decompositions.csv").set_index("run").loc[[other.name]].reset_index(drop=True)
    b = pd.read_csv(later / "across_decompositions.csv").set_index("run").loc[["earlier"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)  # the same protocol numbers, reused
    runs = pd.read_csv(later / "across_decompositions_runs.csv").set_index("run")
    first_runs = pd.read_csv(first / "across_decompositions_runs.csv").set_index("run")
    assert runs.loc["earlier", "vs_reference_matrix"] == pytest.approx(first_runs.loc[other.name, "vs_reference_matrix"])
    assert runs.loc["earlier", "recipe"] == first_runs.loc[other.name, "recipe"]
    assert pd.isna(runs.loc["earlier", "ref_match"])  # not searched: its decomposition is not at hand
    assert len(pd.read_csv(later / "across_decompositions_mean_max.csv")) == 0  # nor compared whole
    assert "## Measurements reused without their decomposition" in (later / "across_decompositions.md").read_text()
    assert (later / KEPT / "earlier" / "run.json").is_file()  # the later study keeps it too


def test_kept_measurements_measured_otherwise_or_in_the_way_are_refused(tiny, tmp_path, capsys, monkeypatch):
    from vpd_lite.commands import cli

    data, other, _ = tiny
    first = tmp_path / "first"
    assert main(["--quick", str(other), "--out", str(first), "--workers", "1", "--no-figures"]) == 0
    kept = first / KEPT / other.name
    monkeypatch.delenv("VPD_LITE_QUICK", raising=False)
    cases = [  # (arguments, what the one line says)
        ([f"earlier={kept}", "--out", str(tmp_path / "full")], "other protocol settings"),  # quick run, full study
        (["--quick", f"renamed={kept}", "--out", str(first)], f"give it that name ({other.name}="),
        (["--quick", f"earlier={kept}", "--out", str(kept / "inside")], "must not lie inside"),
    ]
    for argv, says in cases:
        capsys.readouterr()
        assert cli.run_main(main, "across_decompositions", argv) == 1
        err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
        assert len(err) == 1 and says in err[0], err
    assert not (tmp_path / "full").exists() and not (kept / "inside").exists()


def test_a_corrupt_saved_run_is_measured_again(tiny, tmp_path, capsys):
    data = tiny[0]
    out = tmp_path / "out"
    assert main(["--quick", str(data), "--out", str(out), "--workers", "1", "--no-figures"]) == 0
    (out / KEPT / "data" / "tensors.safetensors").write_bytes(b"not a safetensors file")
    capsys.readouterr()
    assert main(["--quick", str(data), "--out", str(out), "--workers", "1", "--no-figures"]) == 0
    assert "reused" not in capsys.readouterr().out


def test_a_decomposition_folder_is_paired_with_the_shipped_target_and_corpus(tiny, tmp_path, capsys, monkeypatch):
    """A folder that is itself a decomposition (as ``python -m vpd_lite.decompose --out`` writes) needs no data
    folder around it: alone, it runs on the shipped target and corpus (here the tiny data stands in for the
    shipped data) and gives the same protocol numbers as a data folder that holds it."""
    from vpd_lite.erase.rebuild import Artefacts

    data, other, _ = tiny
    monkeypatch.setenv("VPD_LITE_DATA", str(data))
    alone = tmp_path / other.name / "decomposition"  # a run folder that holds only its decomposition
    shutil.copytree(other / "decomposition", alone)
    arte = Artefacts.in_folder(alone)
    assert (arte.target, arte.corpus, arte.decomposition) == (data / "target", data / "corpus", alone)
    assert Artefacts.in_folder(other / "decomposition").target == other / "target"  # in a data folder: its own
    as_data, bare = tmp_path / "as-data", tmp_path / "bare"
    assert main(["--quick", str(other), "--out", str(as_data), "--workers", "1", "--no-figures"]) == 0
    assert main(["--quick", str(alone), "--out", str(bare), "--workers", "1", "--no-figures"]) == 0
    cols = ["run", "component", "seed", "way", "d_en", "d_worst_other", "meets_claim"]  # run: named after its folder
    pd.testing.assert_frame_equal(pd.read_csv(as_data / "across_decompositions.csv")[cols],
                                  pd.read_csv(bare / "across_decompositions.csv")[cols])
    assert _named(str(data / "decomposition")) == ("shipped", data / "decomposition")


def test_a_decomposition_of_other_weights_or_given_twice_is_refused_before_any_work(tiny, tmp_path, capsys):
    """Each folder is checked before the first protocol runs: a decomposition paired with other target weights
    (a data folder's ``decomposition/`` takes the target beside it), one decomposition given twice, and a run
    folder that holds only ``decomposition/`` (the fix: give that folder itself) each get one line."""
    from vpd_lite.commands import cli

    data, other, _ = tiny
    moved = tmp_path / "moved"
    shutil.copytree(other, moved, symlinks=True)
    model, _ = load_target(moved / "target")
    with torch.no_grad():
        model.model.layers[0].self_attn.q_proj.weight.add_(0.01)
    model.save_pretrained(moved / "target")
    shutil.copytree(other / "decomposition", tmp_path / "only" / "decomposition")
    cases = [([str(data), str(moved)], "was made from other weights than the target"),
             ([str(moved / "decomposition")], "was made from other weights than the target"),
             ([str(data), f"again={data / 'decomposition'}"], "are the same decomposition"),
             ([str(tmp_path / "only")], f"give {tmp_path / 'only' / 'decomposition'} itself")]
    for argv, says in cases:
        capsys.readouterr()
        try:
            code = cli.run_main(main, "across_decompositions", argv + ["--quick", "--out", str(tmp_path / "out")])
        except SystemExit as exit_:
            code = exit_.code
        captured = capsys.readouterr()
        err = [line for line in captured.err.splitlines() if "error:" in line]
        assert code in (1, 2) and len(err) == 1 and says in err[0], err
        assert "[data]" not in captured.out  # no protocol ran, not even on the first folder
    assert not (tmp_path / "out").exists()
