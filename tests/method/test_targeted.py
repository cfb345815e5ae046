"""Targeted decomposition (tPD): two data streams, the remainder masked on the capability's batches and pinned on
the rest's, no faithfulness loss or warm-up, minimality weighted on the rest; saved, loaded and evaluated."""

from __future__ import annotations

import math

import pytest
import torch

from tests.method.test_decompose import batches, cfg, tiny
from vpd_lite.method import decompose as decompose_mod
from vpd_lite.method.checkpoint import load_decomposition, read_metadata, recorded_capability
from vpd_lite.method.config import DecomposeConfig
from vpd_lite.method.decompose import build_component_model, decompose, targeted_step
from vpd_lite.method.evaluate import evaluate_rest, evaluate_targeted


def tcfg(**kw) -> DecomposeConfig:
    return cfg(capability="letters", faithfulness_warmup_steps=0, **kw)


def rest_batches(n: int = 8):
    g = torch.Generator().manual_seed(1)
    return [torch.randint(0, 40, (4, 16), generator=g) for _ in range(n)]


def test_the_two_streams_are_required_together():
    with pytest.raises(ValueError, match="needs rest_batches"):
        decompose(tiny(), batches(), tcfg(), progress=False)
    with pytest.raises(ValueError, match="set config.capability"):
        decompose(tiny(), batches(), cfg(), progress=False, rest_batches=rest_batches())
    with pytest.raises(ValueError, match="needs use_delta=True"):
        tcfg(use_delta=False)
    with pytest.raises(ValueError, match="no rest_batches"):
        decompose(tiny(), batches(), tcfg(), progress=False, rest_batches=[])


def test_a_targeted_run_has_no_warm_up_and_no_faithfulness_loss(monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the faithfulness warm-up ran")

    monkeypatch.setattr(decompose_mod, "faithfulness_warmup", never)
    cm, hist = decompose(tiny(), batches(), tcfg(), progress=False, rest_batches=rest_batches())
    rows = [r for r in hist if "stochastic_recon" in r]
    assert rows and all("faithfulness" not in r for r in rows)
    for key in ("stochastic_recon", "adversarial_recon", "minimality", "rest_stochastic_recon", "rest_minimality",
                "rest_l0_mean"):
        assert all(math.isfinite(r[key]) for r in rows), key
    assert all("rest_adversarial_recon" not in r for r in rows)  # no adversary on the rest
    # the remainder is kept: a targeted run does not fit sum U V^T to W
    assert min(cm.faithfulness_residual().values()) > 0.1


def test_the_remainder_is_masked_on_the_capability_and_pinned_on_for_the_rest(monkeypatch):
    """Record the delta masks of every masked pass of one targeted step."""
    config = tcfg()
    cm = build_component_model(tiny(), config)
    seen = []
    original = cm.final_hidden_with_masks

    def spy(ids, masks, routing=None, delta_masks=None):
        seen.append({n: d.clone() for n, d in delta_masks.items()})
        return original(ids, masks, routing, delta_masks)

    monkeypatch.setattr(cm, "final_hidden_with_masks", spy)
    gen = torch.Generator().manual_seed(0)
    from vpd_lite.method.pgd import PersistentPGD

    ppgd = PersistentPGD(cm.C_per_module, 2, True, 0.1, (0.9, 0.99), "random", gen)
    terms = targeted_step(cm, batches()[0], rest_batches()[0], config, 2.0, ppgd, gen)
    assert len(seen) == 3  # capability: stochastic and adversarial; rest: stochastic only
    capability_stochastic, capability_adversarial, rest = seen
    assert all(((d >= 0) & (d <= 1)).all() and not (d == 1).all() for d in capability_stochastic.values())
    assert all(not (d == 1).all() for d in capability_adversarial.values())
    assert all((d == 1).all() for d in rest.values())
    assert set(terms) >= {"stochastic_recon", "adversarial_recon", "rest_stochastic_recon", "rest_minimality"}


def test_rest_minimality_is_weighted_by_the_ratio():
    """The rest pass's minimality gradient scales with ``rest_minimality_ratio`` (0: none at all)."""
    grads = {}
    for ratio in (0.0, 2.0):
        config = tcfg(rest_minimality_ratio=ratio, coeff_stochastic=0.0)
        cm = build_component_model(tiny(), config)
        gen = torch.Generator().manual_seed(0)
        decompose_mod.train_step(cm, rest_batches()[0], config, 2.0, None, gen, remainder_on=True,
                                 minimality_weight=config.rest_minimality_ratio)
        grads[ratio] = sum(float(p.grad.abs().sum()) for p in cm.trainable_parameters() if p.grad is not None)
    assert grads[0.0] == 0.0 and grads[2.0] > 0.0


def test_a_targeted_decomposition_records_its_capability_and_is_evaluated_on_both_streams(tmp_path):
    config = tcfg(checkpoint_dir=str(tmp_path / "run"))
    cm, _ = decompose(tiny(), batches(), config, progress=False, rest_batches=rest_batches())
    meta = read_metadata(tmp_path / "run")
    assert recorded_capability(meta) == "letters" and meta["config"]["rest_minimality_ratio"] == 2.0
    loaded = load_decomposition(tmp_path / "run", tiny())
    assert all(torch.equal(a, b) for a, b in zip(cm.trainable_parameters(), loaded.trainable_parameters()))
    metrics = evaluate_targeted(loaded, batches(2), rest_batches(2), progress=False)
    assert set(metrics["rest"]["ce_gap"]) == {"ci_remainder", "ci_rounded_remainder"}
    assert "rest: CI gap with the remainder on <= 0.05" in metrics["targets_met"]
    full, _ = decompose(tiny(), batches(), cfg(checkpoint_dir=str(tmp_path / "full")), progress=False)
    assert recorded_capability(read_metadata(tmp_path / "full")) is None


def test_with_components_that_write_nothing_the_rest_is_the_target():
    """U = 0: the components contribute nothing, the remainder is W itself, so the rest's CE equals the target's
    under any mask."""
    cm = build_component_model(tiny(), tcfg())
    with torch.no_grad():
        for comp in cm.components.values():
            comp.U.zero_()
    rest = evaluate_rest(cm, rest_batches(2), progress=False)
    assert rest["ce_gap"]["ci_remainder"] == pytest.approx(0.0, abs=1e-5)
    assert rest["ce_gap"]["ci_rounded_remainder"] == pytest.approx(0.0, abs=1e-5)


def test_targeted_recipe_defaults():
    r = DecomposeConfig.targeted_recipe("de")
    assert r.targeted and r.capability == "de" and r.faithfulness_warmup_steps == 0
    assert r.rest_minimality_ratio == 2.0 and set(r.targets) == set(DecomposeConfig().targets)
    assert not DecomposeConfig().targeted
