"""The edit scan: the cached, batched scan agrees with editing the full model; prescreen, admissibility, the CLI."""

import pandas as pd
import pytest
import torch
from transformers import LlamaForCausalLM

from vpd_lite.commands.edit_scan import main
from vpd_lite.erase.edit_scan import (
    EditScan,
    ScanConfig,
    admissible_range,
    best_admissible,
    candidates,
    edge_grid,
    edit_curve,
    prescreen,
    residual_cache,
    run_edit_scan,
    scan_curves,
    start_layer,
    tolerances,
)
from vpd_lite.erase.edits import Direction, ScalarEdit
from vpd_lite.method.cross_entropy import language_ce

from . import tiny_models
from .tiny_models import VOCAB, random_direction

LANGS = ("en", "de", "fr")


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    return tiny_models.tiny_llama(seed, initializer_range=0.2)


def direction(model, name: str, c: int = 0, seed: int = 1) -> Direction:
    return random_direction(model, name, c, seed, scale=0.3)


BLOCKS = {lang: torch.randint(0, VOCAB, (3, 16), generator=torch.Generator().manual_seed(i))
          for i, lang in enumerate(LANGS)}
MODULES = ["model.layers.0.self_attn.q_proj", "model.layers.0.mlp.down_proj", "model.layers.1.self_attn.v_proj",
           "model.layers.1.self_attn.o_proj", "model.layers.1.mlp.up_proj"]


@pytest.mark.parametrize("name", MODULES)
def test_scan_agrees_with_scalar_edit_on_the_full_model(name):
    model = tiny_llama()
    d = direction(model, name)
    s_values = [-7.0, -1.0, 0.0, 1.0, 2.5]
    curve = edit_curve(model, d, s_values, BLOCKS, rows_per_batch=4)  # 4 rows: s values split over passes
    assert start_layer(model, name) == int(name.split(".")[2])
    for _, row in curve.iterrows():
        edit = ScalarEdit(model, [d], init=float(row["s"]))
        with edit:
            ref = language_ce(model, BLOCKS)
        for lang in LANGS:
            assert row[f"ce_{lang}"] == pytest.approx(ref[lang], abs=2e-5), (row["s"], lang)
    base = language_ce(model, BLOCKS)
    assert curve.loc[curve["s"] == 1.0, "ce_de"].item() == pytest.approx(base["de"], abs=2e-5)


@pytest.mark.parametrize("name", ["model.layers.0.mlp.down_proj", "model.layers.1.self_attn.v_proj"])
def test_scan_in_small_forward_passes_is_bit_identical(name):
    """Splitting a group's rows over several forward passes (to bound the logits held) changes no bit."""
    model = tiny_llama()
    d = direction(model, name)
    s_values = [-7.0, -1.0, 0.0, 1.0, 2.5]
    whole = edit_curve(model, d, s_values, BLOCKS, rows_per_batch=9, max_positions=10**9)  # 3 s values a pass
    for max_positions in (16, 32):  # one row per pass; two rows per pass (passes cut across s values)
        split = edit_curve(model, d, s_values, BLOCKS, rows_per_batch=9, max_positions=max_positions)
        pd.testing.assert_frame_equal(split, whole, check_exact=True)


def test_residual_cache_is_the_input_of_the_layer():
    model = tiny_llama()
    seen = []
    h = model.model.layers[1].register_forward_pre_hook(lambda m, args, kw: seen.append(
        (args[0] if args else kw["hidden_states"]).clone()), with_kwargs=True)
    with torch.no_grad():
        model(input_ids=BLOCKS["de"])
    h.remove()
    torch.testing.assert_close(residual_cache(model, BLOCKS["de"], 1, batch_size=2), seen[0])
    torch.testing.assert_close(residual_cache(model, BLOCKS["de"], 0), model.model.embed_tokens(BLOCKS["de"]))
    with pytest.raises(IndexError, match="layer 5"):
        residual_cache(model, BLOCKS["de"], 5)


def test_scan_curves_deltas_and_model_left_alone():
    model = tiny_llama()
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    dirs = [direction(model, MODULES[0], 0), direction(model, MODULES[3], 1, seed=2)]
    curves = scan_curves(model, dirs, BLOCKS, [-3.0, 0.0, 2.0])
    assert list(curves["component"].unique()) == [f"{MODULES[0]}:0", f"{MODULES[3]}:1"]
    assert sorted(curves["s"].unique()) == [-3.0, 0.0, 1.0, 2.0]  # s = 1 is always added
    one = curves[curves["s"] == 1.0]
    assert (one[[f"d_{lang}" for lang in LANGS]].abs().to_numpy() == 0).all()
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert not model.model.layers[0]._forward_hooks and len(model.model.layers) == 2


def test_prescreen_rms_and_gradient():
    model = tiny_llama()
    dirs = [direction(model, MODULES[1], 0), direction(model, MODULES[2], 3, seed=5)]
    pre = prescreen(model, dirs, BLOCKS)
    assert list(pre["component"]) == [f"{MODULES[1]}:0", f"{MODULES[2]}:3"]
    # RMS of V_c . x by hand
    got = []
    lin = dict(model.named_modules())[MODULES[1]]
    h = lin.register_forward_hook(lambda m, a, o: got.append(a[0] @ dirs[0].v))
    with torch.no_grad():
        model(input_ids=BLOCKS["fr"])
    h.remove()
    assert pre.loc[0, "rms_fr"] == pytest.approx(float(got[0].pow(2).mean().sqrt()), rel=1e-4)
    # dCE/ds at s = 1 by a central difference
    eps = 1e-2
    ce = {}
    for s in (1 - eps, 1 + eps):
        with ScalarEdit(model, [dirs[1]], init=s):
            ce[s] = language_ce(model, {"de": BLOCKS["de"]})["de"]
    fd = (ce[1 + eps] - ce[1 - eps]) / (2 * eps)
    assert pre.loc[1, "grad_de"] == pytest.approx(fd, rel=2e-2, abs=1e-5)


def hand_curves() -> pd.DataFrame:
    """Two components on s = -4..2: 'a' gains German fast but hurts English beyond s = -2; 'b' is gentle."""
    rows = []
    for key, de, en in (("m:0", [3.0, 2.0, 1.0, 0.5, 0.0, 0.1, 0.3], [0.5, 0.2, 0.04, 0.01, 0.0, 0.0, 0.06]),
                        ("m:1", [1.5, 1.2, 0.8, 0.4, 0.0, 0.0, 0.0], [0.04, 0.03, 0.02, 0.01, 0.0, 0.0, 0.0])):
        for s, g, e in zip([-4.0, -3.0, -2.0, -1.0, 1.0, 1.5, 2.0], de, en):
            rows.append({"component": key, "module": "m", "c": int(key[-1]), "layer": 0, "s": s,
                         "d_en": e, "d_de": g, "d_fr": 0.0})
    return pd.DataFrame(rows)


def test_admissible_range_and_best_component():
    curves = hand_curves()
    tol = tolerances("de", ["en", "de", "fr"])
    assert tol == {"en": 0.05, "fr": 0.1}
    assert admissible_range(curves[curves["component"] == "m:0"], "de", tol) == (-2.0, 1.5)  # 2.0: en 0.06
    assert admissible_range(curves[curves["component"] == "m:1"], "de", tol) == (-4.0, 2.0)
    best = best_admissible(curves, "de")
    assert list(best["component"]) == ["m:1", "m:0"]  # 1.5 at s=-4 beats 1.0 at s=-2
    assert best.loc[0, "gain"] == 1.5 and best.loc[0, "s_best"] == -4.0 and best.loc[0, "worst_other_lang"] == "en"
    assert best.loc[1, "max_gain"] == 3.0
    assert edge_grid(curves[curves["component"] == "m:0"], "de", tol, 0.25) == [-2.75, -2.5, -2.25, 1.75]


def test_candidates_rank_by_activation_ratio_then_gradient():
    pre = pd.DataFrame({"component": ["a", "b", "c", "d"],
                        "rms_de": [1.0, 5.0, 1.0, 1.0], "rms_en": [1.0, 1.0, 0.5, 2.0],
                        "grad_de": [0.0, 0.0, 0.0, 9.0], "grad_en": [1.0, 1.0, 1.0, 1.0]})
    assert candidates(pre, "de", 2) == ["b", "c"]
    assert candidates(pre, "de", 4) == ["b", "c", "a", "d"]
    assert candidates(pre, "de", 1, always=["d"]) == ["b", "d"]
    with pytest.raises(KeyError, match="xx"):
        candidates(pre, "xx", 2)


def test_run_edit_scan_saves_and_loads(tmp_path):
    model = tiny_llama()
    dirs = [direction(model, m, c, seed=c + 1) for c, m in enumerate(MODULES)]
    cfg = ScanConfig(s_grid=(-6.0, -2.0, 0.0, 4.0), refine_step=1.0, n_refine=1, n_candidates=2,
                     target_langs=("de", "fr"))
    scan = run_edit_scan(model, dirs, BLOCKS, cfg, always={"de": [f"{MODULES[4]}:4"]}, progress=False)
    assert f"{MODULES[4]}:4" in scan.candidates["de"] and len(scan.candidates["fr"]) == 2
    assert set(scan.best["target"]) == {"de", "fr"} and len(scan.prescreen) == len(MODULES)
    assert scan.base_ce["de"] == pytest.approx(language_ce(model, {"de": BLOCKS["de"]})["de"], abs=2e-5)
    key = scan.best_for("de").loc[0, "component"]
    assert scan.curve(key)["s"].is_monotonic_increasing
    scan.save(tmp_path)
    back = EditScan.load(tmp_path)
    assert back.candidates == scan.candidates and back.config == scan.config
    pd.testing.assert_frame_equal(back.best, scan.best, check_exact=False, atol=1e-5)
    with pytest.raises(KeyError, match="xx"):
        scan.best_for("xx")
    with pytest.raises(KeyError, match="not among"):
        run_edit_scan(model, dirs, BLOCKS, cfg, always={"de": ["nope:1"]}, progress=False)


@pytest.mark.parametrize("args", [["--candidates", "0"], ["--blocks", "-1"], ["--threads", "0"]])
def test_cli_rejects_bad_numbers(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2 and "error:" in capsys.readouterr().err
