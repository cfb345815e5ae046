"""The training loop: losses move the right way, seeded determinism, time budget, checkpoint + resume."""

import itertools
import math

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from vpd_lite.method.checkpoint import load_decomposition
from vpd_lite.method.config import DecomposeConfig
from vpd_lite.method.decompose import build_component_model, decompose, faithfulness_warmup

TARGETS = {"*.q_proj": 8, "*.v_proj": 8, "*.up_proj": 12, "*.down_proj": 12}


def tiny() -> LlamaForCausalLM:
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=40, hidden_size=16, intermediate_size=24, num_hidden_layers=1,
                                        num_attention_heads=2, num_key_value_heads=2)).eval()


def batches(n: int = 8):
    g = torch.Generator().manual_seed(0)
    return [torch.randint(0, 40, (4, 16), generator=g) for _ in range(n)]


def cfg(**kw) -> DecomposeConfig:
    base = dict(targets=TARGETS, ci_hidden=8, steps=12, batch_size=4, seq_len=16, faithfulness_warmup_steps=30,
                log_every=4, checkpoint_every=0, ci_global_d_model=16, ci_global_blocks=1, ci_global_heads=2,
                ci_global_mlp_ratio=2)  # the default global CI transformer, at the tiny model's size
    return DecomposeConfig(**(base | kw))


def test_quick_config_and_defaults():
    q = DecomposeConfig.quick()
    assert 10 <= q.steps <= 100 and q.faithfulness_warmup_steps > 0
    d = DecomposeConfig()
    assert len(d.targets) == 7 and d.p_start == 2.0 and d.coeff_faithfulness > 0


def test_faithfulness_warmup_reduces_the_residual():
    cm = build_component_model(tiny(), cfg())
    before = sum(cm.faithfulness_residual().values())
    faithfulness_warmup(cm, cfg(faithfulness_warmup_steps=60))
    assert sum(cm.faithfulness_residual().values()) < 0.5 * before


def test_decompose_runs_is_seeded_and_leaves_the_target_alone():
    model = tiny()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cm, hist = decompose(model, batches(), cfg(), progress=False)
    rows = [r for r in hist if "stochastic_recon" in r]
    assert [r["step"] for r in rows] == [1, 4, 8, 12]
    for key in ("stochastic_recon", "adversarial_recon", "minimality", "faithfulness", "l0_mean", "lr", "p"):
        assert all(math.isfinite(r[key]) for r in rows)
    assert rows[0]["p"] == 2.0 and rows[-1]["p"] < 1.0  # p annealed
    assert rows[-1]["lr"] < rows[1]["lr"]  # cosine decay
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    cm2, hist2 = decompose(tiny(), batches(), cfg(), progress=False)
    assert [r.get("stochastic_recon") for r in hist] == [r.get("stochastic_recon") for r in hist2]
    assert all(torch.equal(a, b) for a, b in zip(cm.trainable_parameters(), cm2.trainable_parameters()))


def test_time_budget_stops_early():
    _, hist = decompose(tiny(), batches(), cfg(steps=10_000, time_budget_minutes=0.02), progress=False)
    last = [r for r in hist if "step" in r and "elapsed_s" in r][-1]
    assert last["step"] < 10_000 and last["elapsed_s"] < 30


def _without_clock(history):
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in history]


def test_checkpoint_and_resume(tmp_path):
    """A run that crashes between checkpoints and is resumed equals, to the bit, the run that never stopped;
    a resume with another step count is refused before any step."""
    out, full_dir = tmp_path / "run", tmp_path / "full"
    model = tiny()
    cm, hist = decompose(model, batches(), cfg(steps=9, checkpoint_every=3, checkpoint_dir=str(full_dir)),
                         progress=False)
    cm_loaded = load_decomposition(full_dir, model)
    assert all(torch.equal(a, b) for a, b in zip(cm.trainable_parameters(), cm_loaded.trainable_parameters()))

    def crashing():
        for i, b in enumerate(itertools.cycle(batches())):
            if i == 7:  # step 8 asks for it: the checkpoint of step 6 is the last one written
                raise RuntimeError("crash")
            yield b

    with pytest.raises(RuntimeError, match="crash"):
        decompose(tiny(), crashing(), cfg(steps=9, checkpoint_every=3, checkpoint_dir=str(out)), progress=False)
    with pytest.raises(ValueError, match=r"steps = 9 there, 12 now"):
        decompose(tiny(), batches(), cfg(steps=12, checkpoint_dir=str(out)), resume_from=out, progress=False)
    cm_more, hist_more = decompose(tiny(), batches(), cfg(steps=9, checkpoint_every=3, checkpoint_dir=str(out)),
                                   resume_from=out, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(cm.trainable_parameters(), cm_more.trainable_parameters()))
    assert _without_clock(hist_more) == _without_clock(hist)


def test_exhausted_generator_is_a_clear_error():
    gen = (b for b in batches(2))
    with pytest.raises(ValueError, match="ran out after 2 steps"):
        decompose(tiny(), gen, cfg(steps=5), progress=False)


@pytest.mark.parametrize("mode", ["subset", "all"])
def test_adversarial_routing_choice(mode):
    from vpd_lite.method.decompose import train_step
    from vpd_lite.method.pgd import PersistentPGD

    config = cfg(adversarial_routing=mode)
    cm = build_component_model(tiny(), config)
    gen = torch.Generator().manual_seed(0)
    ppgd = PersistentPGD(cm.C_per_module, 2, True, generator=gen)
    seen = []
    real = cm.masked  # every masked pass (logits or final hidden states) goes through this context

    def spy(masks, routing=None, delta_masks=None):
        seen.append(routing)
        return real(masks, routing, delta_masks)

    cm.masked = spy
    train_step(cm, batches()[0], config, 2.0, ppgd, gen)
    stochastic, adversarial = seen
    assert stochastic is not None and set(stochastic) == set(cm.module_names)
    assert (adversarial is None) == (mode == "all")


def test_unknown_adversarial_routing_is_rejected():
    with pytest.raises(ValueError, match="adversarial_routing"):
        DecomposeConfig(adversarial_routing="some")


def test_ci_masked_term_masks_every_matrix_with_the_ci():
    from vpd_lite.method.decompose import train_step

    config = cfg(coeff_ci_masked=0.5, adversarial=False)
    cm = build_component_model(tiny(), config)
    gen = torch.Generator().manual_seed(0)
    calls = []
    real = cm.masked

    def spy(masks, routing=None, delta_masks=None):
        calls.append((masks, routing, delta_masks))
        return real(masks, routing, delta_masks)

    cm.masked = spy
    ids = batches()[0]
    terms = train_step(cm, ids, config, 2.0, None, gen)
    assert len(calls) == 2 and terms["ci_masked_recon"] > 0
    masks, routing, dmasks = calls[1]
    assert routing is None and dmasks is None
    _, inputs = cm.target_logits_and_inputs(ids)
    ci, _ = cm.causal_importance(inputs)
    assert all(torch.allclose(masks[n], ci[n]) for n in cm.module_names)
    # the term trains the CI functions: its gradient reaches them
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for _, p in cm.ci_named_parameters())


def test_override_config_parses_by_field_type():
    from vpd_lite.method.config import override_config

    c = override_config(DecomposeConfig(), ["coeff_minimality=4e-3", "adversarial=false", "ci_type=mlp", "steps=10"])
    assert (c.coeff_minimality, c.adversarial, c.ci_type, c.steps) == (4e-3, False, "mlp", 10)
    assert DecomposeConfig().steps != 10  # a copy: the default is untouched
    assert override_config(DecomposeConfig(), ["time_budget_minutes=2.5"]).time_budget_minutes == 2.5  # None default
    for bad in ["nofield=1", "steps", "steps=1.5", "adversarial=maybe", "targets=x", "adversarial_routing=some"]:
        with pytest.raises(ValueError):
            override_config(DecomposeConfig(), [bad])


def test_train_step_head_path_matches_the_full_logits_path():
    """The blockwise output-head KL used in training gives the same losses and gradients as full logits."""
    from vpd_lite.method.decompose import train_step
    from vpd_lite.method.pgd import PersistentPGD

    # per-matrix CI MLPs: the tiny global transformer keeps nearly every component on, so the reconstruction KLs are
    # ~4e-5 nats and the two paths' float32 sums differ by more than this test's absolute tolerance
    config = cfg(ci_type="shared_mlp")
    results = []
    for head_ok in (True, False):
        cm = build_component_model(tiny(), config)
        cm._head_ok = head_ok  # False forces forward_with_masks + reconstruction_kl
        gen = torch.Generator().manual_seed(0)
        ppgd = PersistentPGD(cm.C_per_module, 2, True, generator=gen)
        terms = train_step(cm, batches()[0], config, 2.0, ppgd, gen)
        grads = [p.grad.clone() for p in cm.trainable_parameters()] + [s.grad.clone() for s in ppgd.leaves()]
        results.append((terms, grads))
    (t_head, g_head), (t_full, g_full) = results
    assert t_head.keys() == t_full.keys()
    assert all(math.isclose(t_head[k], t_full[k], rel_tol=1e-5, abs_tol=1e-7) for k in t_head)
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-7) for a, b in zip(g_head, g_full))


def test_cli_quick_run_writes_a_loadable_decomposition(tmp_path, monkeypatch):
    """``python -m vpd_lite.decompose --quick`` on the shipped target: checkpoint, metrics, no scratch path."""
    import json

    from vpd_lite.commands.decompose import main
    from vpd_lite.models.target import load_target

    monkeypatch.setenv("VPD_LITE_QUICK", "1")
    out = tmp_path / "dec"
    main(["--quick", "--out", str(out), "--steps", "6", "--set", "coeff_minimality=0.002"])
    meta = json.loads((out / "decomposition.json").read_text())
    assert meta["config"]["checkpoint_dir"] is None and meta["config"]["coeff_minimality"] == 0.002
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["training"]["steps"] == 6 and "ce_gap" in metrics
    assert not (out / "training_state.pt").exists()
    model, _ = load_target()
    assert load_decomposition(out, model).module_names == meta["module_names"]


def test_a_step_is_labelled_by_part_for_the_profiler():
    """``bench_decompose.py --profile`` reads these labels: every part of a step shows up once per step."""
    from torch.profiler import profile

    from vpd_lite.method.decompose import train_step, update
    from vpd_lite.method.pgd import PersistentPGD

    config = cfg(coeff_ci_masked=1.0)
    cm = build_component_model(tiny(), config)
    params = cm.trainable_parameters()
    opt = torch.optim.AdamW(params, lr=config.lr)
    gen = torch.Generator().manual_seed(0)
    ppgd = PersistentPGD(cm.C_per_module, config.pgd_n_sets, cm.use_delta, config.pgd_lr, config.pgd_betas,
                         generator=gen)
    with profile() as prof:
        train_step(cm, batches(1)[0], config, 1.0, ppgd, gen)
        update(params, opt, ppgd, config.grad_clip)
    labels = [e.name for e in prof.events() if e.name.startswith("vpd: ")]
    expected = ["target pass", "causal importance", "minimality, faithfulness and CI backward", "clip and AdamW",
                "PGD ascent"] + [f"{kind} pass, {way}" for kind in ("stochastic", "CI-masked", "adversarial")
                                 for way in ("forward", "backward")]
    assert sorted(labels) == sorted(f"vpd: {e}" for e in expected)
