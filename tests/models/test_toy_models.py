"""Toy models of superposition and the general (non-language-model) decomposition API on them."""

from __future__ import annotations

import math

import pytest
import torch

from vpd_lite.method.checkpoint import load_decomposition, save_decomposition
from vpd_lite.method.components import PLAIN, ComponentModel
from vpd_lite.method.config import DecomposeConfig
from vpd_lite.method.decompose import build_component_model, decompose, init_read_directions_from_data
from vpd_lite.method.evaluate import evaluate_decomposition, format_metrics
from vpd_lite.method.losses import faithfulness_loss, reconstruction_mse
from vpd_lite.method.pgd import PGDConfig
from vpd_lite.models.toy_models import (
    TMSConfig,
    TMSModel,
    component_feature_cosines,
    component_rank1_cosines,
    decompose_tms,
    feature_batches,
    feature_match,
    matrix_objectives,
    one_feature_inputs,
    sparse_features,
    tms_decompose_config,
    train_tms,
    true_feature_directions,
)


@pytest.fixture(scope="module")
def tms():
    model, losses = train_tms(TMSConfig(steps=300, batch_size=256))
    return model, losses


def test_sparse_features_match_the_paper_distribution():
    x = sparse_features(20_000, 5, 0.05, torch.Generator().manual_seed(0))
    present = x > 0
    assert x.shape == (20_000, 5) and float(x.min()) >= 0 and float(x.max()) <= 1
    assert abs(float(present.float().mean()) - 0.05) < 0.005  # each feature present with probability p
    assert abs(float(x[present].mean()) - 0.5) < 0.02  # values uniform in [0, 1]


def test_tms_model_is_relu_of_wt_w_x_plus_b(tms):
    model, losses = tms
    assert losses[-1] < losses[0]
    W, b = model.linear1.weight, model.linear2.bias
    torch.testing.assert_close(model.linear2.weight, W.T)  # tied
    x = sparse_features(16, 5, 0.5, torch.Generator().manual_seed(1))
    torch.testing.assert_close(model(x), torch.relu(x @ W.T @ W + b))
    assert true_feature_directions(model).shape == (2, 5)


def test_a_plain_module_is_decomposed_with_mse(tms, tmp_path):
    model, _ = tms
    config = tms_decompose_config(5, 2, steps=5, batch_size=64, faithfulness_warmup_steps=20, log_every=1)
    cm, history = decompose(model, feature_batches(5, 0.05, 64, seed=0), config, progress=False)
    assert cm.adapter == PLAIN and config.recon_kind(cm) == "mse"
    rows = [r for r in history if "stochastic_recon" in r]
    assert len(rows) == 5 and all(math.isfinite(r["stochastic_recon"]) for r in rows)
    ci = next(iter(cm.causal_importance(cm.target_output_and_inputs(one_feature_inputs(5))[1])[0].values()))
    assert ci.shape == (5, 10)  # positions of a vector model: (B,)

    metrics = evaluate_decomposition(cm, [sparse_features(32, 5, 0.2)], pgd=PGDConfig(n_steps=2), progress=False)
    assert metrics["recon_loss"] == "mse" and "ce" not in metrics and "targets_met" not in metrics
    assert metrics["mse"]["all_ones_delta"] < 1e-10  # components + delta reproduce the target exactly
    assert "MSE" in format_metrics(metrics)

    save_decomposition(cm, tmp_path / "toy", config)
    loaded = load_decomposition(tmp_path / "toy", model)
    x = one_feature_inputs(5)
    for n in cm.module_names:
        torch.testing.assert_close(loaded.components[n].V, cm.components[n].V)
    ones = {n: torch.ones(5, 10) for n in cm.module_names}
    torch.testing.assert_close(loaded.forward_with_masks(x, ones), cm.forward_with_masks(x, ones))


def test_data_init_points_each_read_direction_along_an_input_of_the_batch(tms):
    model, _ = tms
    config = tms_decompose_config(5, 2, C=6)
    cm = build_component_model(model, config)
    norms = {n: cm.components[n].V.norm(dim=0).clone() for n in cm.module_names}
    batch = sparse_features(256, 5, 0.05, torch.Generator().manual_seed(3))
    init_read_directions_from_data(cm, batch, torch.Generator().manual_seed(0))
    _, inputs = cm.target_output_and_inputs(batch)
    for name in cm.module_names:
        V = cm.components[name].V.detach()  # (d_in, C)
        torch.testing.assert_close(V.norm(dim=0), norms[name])  # the random init's scale is kept
        x = inputs[name][inputs[name].norm(dim=1) > 0]
        cos = (V / V.norm(dim=0)).T @ (x / x.norm(dim=1, keepdim=True)).T  # (C, positions)
        assert torch.all(cos.max(dim=1).values > 1 - 1e-5)  # every V_c is the direction of some input
    with pytest.raises(ValueError, match="at least 6 non-zero inputs"):
        init_read_directions_from_data(cm, torch.zeros(64, 5), torch.Generator().manual_seed(0))


def test_restarts_keep_per_matrix_the_run_with_the_lowest_training_loss(tms):
    import dataclasses

    model, _ = tms
    config = tms_decompose_config(5, 2, C=6, steps=4, batch_size=64, faithfulness_warmup_steps=10, seed=7)
    cm, history = decompose_tms(model, config, restarts=2)
    last = history[-1]
    objectives, chosen = last["restart_objectives"], last["chosen_restart"]
    singles = [decompose_tms(model, dataclasses.replace(config, seed=7 + 1000 * k))[0] for k in range(2)]
    for name in cm.module_names:
        k = chosen[name]
        assert objectives[k][name] == min(o[name] for o in objectives)
        torch.testing.assert_close(cm.components[name].V, singles[k].components[name].V)
        torch.testing.assert_close(cm.components[name].U, singles[k].components[name].U)
        for a, b in zip(cm.ci_fns[name].parameters(), singles[k].ci_fns[name].parameters()):
            torch.testing.assert_close(a, b)
    assert objectives[chosen["linear1"]] == pytest.approx(matrix_objectives(singles[chosen["linear1"]], config))
    with pytest.raises(ValueError, match="restarts must be at least 1"):
        decompose_tms(model, config, restarts=0)
    # a decomposition of linear2 alone (input: the hidden space) is scored on the model's own inputs
    only2 = decompose_tms(model, dataclasses.replace(config, targets={"linear2": 6}))[0]
    assert set(matrix_objectives(only2, config)) == {"linear2"}


def test_component_init_is_checked_and_random_by_default():
    assert DecomposeConfig().component_init == "random"  # the language-model recipe is unchanged
    assert tms_decompose_config().component_init == "data"
    with pytest.raises(ValueError, match="component_init"):
        DecomposeConfig(component_init="svd")


def test_a_custom_run_function_is_an_adapter():
    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = TMSModel(5, 2)

        def forward(self, x):
            return {"out": self.inner(x)}

    cm = ComponentModel(Wrapped(), {"inner.linear1": 3}, ci_type="mlp", adapter=lambda m, x: m(x)["out"])
    out, inputs = cm.target_output_and_inputs(torch.rand(4, 5))
    assert out.shape == (4, 5) and inputs["inner.linear1"].shape == (4, 5)


def test_cosines_of_the_true_decomposition_are_one(tms):
    model, _ = tms
    cm = ComponentModel(model, {"linear1": 10, "linear2": 10}, ci_type="mlp", ci_hidden=4)
    W = true_feature_directions(model)
    with torch.no_grad():
        for name, comp in cm.components.items():
            comp.V.zero_()
            comp.U.zero_()
            for i in range(5):
                if name == "linear1":  # writes W_i, reads feature i
                    comp.U[i], comp.V[i, i] = W[:, i], 1.0
                else:  # reads W_i, writes feature i
                    comp.V[:, i], comp.U[i, i] = W[:, i], 1.0
    assert float(faithfulness_loss(cm.components.values()).detach()) < 1e-12
    for name, cos in component_feature_cosines(cm, model).items():
        torch.testing.assert_close(cos[:5].diagonal(), torch.ones(5), atol=1e-6, rtol=0)  # c_i lies on W_i
    for name, cos in component_rank1_cosines(cm, model).items():
        torch.testing.assert_close(cos[:5], torch.eye(5), atol=1e-6, rtol=0)  # and reads/writes feature i only
    report = feature_match(cm, model, n_samples=100)
    assert set(report) == {"linear1", "linear2"}


def test_faithfulness_reductions_differ_by_the_matrix_count_for_equal_sizes(tms):
    model, _ = tms
    cm = ComponentModel(model, {"linear1": 3, "linear2": 3}, ci_type="mlp")
    comps = list(cm.components.values())
    sum_of_means = faithfulness_loss(comps, "matrix_means")
    one_mean = faithfulness_loss(comps, "mean")
    torch.testing.assert_close(sum_of_means, 2 * one_mean)
    with pytest.raises(ValueError, match="reduction"):
        faithfulness_loss(comps, "median")


def test_reconstruction_mse_is_one_mean_over_entries():
    t, o = torch.zeros(4, 5), torch.ones(4, 5)
    o[0, 0] = 3.0
    assert float(reconstruction_mse(t, o)) == pytest.approx((19 + 9) / 20)


@pytest.mark.parametrize("seed", [1, 2])
def test_tms_5_2_learns_all_five_features_as_a_pentagon(seed):
    """Seeds whose training used to drop features (nn.Linear's default init) now learn all five."""
    model, _ = train_tms(TMSConfig(steps=2000, seed=seed))
    W = true_feature_directions(model)
    assert bool((W.norm(dim=0) > 0.8).all())
    from vpd_lite.tutorial.exercises import check_pentagon_angle

    assert check_pentagon_angle(72, W) and not check_pentagon_angle(45, W)


def test_notebook_00_checks_accept_the_right_answer_and_refuse_a_wrong_one():
    from vpd_lite.tutorial.exercises import check_components_on, check_live_count

    report = {"linear1": {"live": 5}, "linear2": {"live": 4}}
    assert check_live_count(5, report, "linear1") and not check_live_count(10, report, "linear1")
    assert not check_live_count("five", report, "linear1")
    ci = {"linear1": torch.eye(5, 10), "linear2": torch.eye(5, 10) * 0.9}
    assert check_components_on(2, ci, feature=2) and not check_components_on(1, ci, feature=2)
    ci["linear2"][2, 1] = ci["linear2"][2, 3] = 0.8  # the neighbours' components, needed for the interference
    assert check_components_on(3, ci, feature=2, module="linear2")
    assert not check_components_on(1, ci, feature=2, module="linear2")
    assert check_components_on(4, ci, feature=2)
    assert str(check_components_on(None, ci, feature=2)).startswith("Not quite")


@pytest.mark.slow
def test_a_targeted_decomposition_recovers_its_features_and_leaves_the_others_to_the_remainder():
    """Ground truth for targeted decomposition: TMS 5-2 (seed 0) decomposed for the capability "features 0 and 1"
    (its batches activate only those; the rest batches only features 2-4). Each matrix ends with exactly one live
    component per capability feature (rank-1 |cos| >= 0.99), and the components hold almost nothing of features
    2-4: the remainder keeps them."""
    from vpd_lite.models.toy_models import decompose_tms_targeted, targeted_feature_match

    model, _ = train_tms(TMSConfig(seed=0))
    cm, _ = decompose_tms_targeted(model, [0, 1], seed=0)
    report = targeted_feature_match(cm, model, [0, 1])
    for name, r in report.items():
        assert r["exact"], (name, r)
        assert max(r["outside"].values()) < 0.05, (name, r["outside"])


def test_restarts_refuse_a_global_ci(tms):
    model, _ = tms
    config = tms_decompose_config(5, 2, C=6, steps=2, ci_type="global_mlp")
    with pytest.raises(ValueError, match="restarts pick the best run per matrix"):
        decompose_tms(model, config, restarts=2)
