"""Evaluation metrics on decompositions whose answers are known by construction."""

import math

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from vpd_lite.method.components import ComponentModel
from vpd_lite.method.cross_entropy import next_token_ce
from vpd_lite.method.evaluate import evaluate_decomposition, format_metrics, plot_history
from vpd_lite.method.pgd import PGDConfig


def exact_cm(C_extra: int = 3):
    """Components that reproduce W exactly (V = [W^T, 0], U = [I; 0]) and CI fns with constant outputs:
    the first min(d_out, C) components get CI 1, the C_extra others CI 0 (they are dead)."""
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=40, hidden_size=16, intermediate_size=24, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2)).eval()
    with torch.no_grad():  # large weights so that scaling a matrix visibly changes the output
        for p in model.parameters():
            if p.dim() == 2:
                p.mul_(25.0)
    targets = {"*.q_proj": 16 + C_extra, "*.up_proj": 24 + C_extra}
    cm = ComponentModel(model, targets, ci_hidden=4)
    with torch.no_grad():
        for name, comp in cm.components.items():
            d_out = comp.weight.shape[0]
            comp.V.zero_()
            comp.U.zero_()
            comp.V[:, :d_out] = comp.weight.T
            comp.U[:d_out, :d_out] = torch.eye(d_out)
            ci = cm.ci_fns[name]
            ci.w2.zero_()
            ci.b2.fill_(-1.0)
            ci.b2[:d_out] = 2.0
    return cm


def batches():
    g = torch.Generator().manual_seed(0)
    return [torch.randint(0, 40, (2, 6), generator=g) for _ in range(2)]


def test_metrics_of_an_exact_decomposition():
    cm = exact_cm()
    m = evaluate_decomposition(cm, batches(), pgd=PGDConfig(n_steps=2), progress=False)
    assert m["n_tokens"] == 24
    # every live component has CI 1, the extra ones CI 0: all mask kinds reproduce the target
    for kind in ("ci_rounded", "ci", "stochastic", "pgd", "all_ones", "all_ones_delta"):
        assert abs(m["ce_gap"][kind]) < 1e-4 and abs(m["kl"][kind]) < 1e-5, kind
    ref = sum(float(next_token_ce(cm.model(input_ids=b).logits, b)) for b in batches()) / 2
    assert math.isclose(m["ce"]["target"], ref, rel_tol=1e-5)
    q, up = "model.layers.0.self_attn.q_proj", "model.layers.0.mlp.up_proj"
    assert m["l0"] == {q: 16.0, up: 24.0}
    assert m["dead"] == {q: 3, up: 3} and m["dead_total"] == 6
    assert math.isclose(m["dead_frac"], 6 / (19 + 27))
    assert m["faithfulness_residual_max"] < 1e-10
    assert m["targets_met"]["faithfulness residual < 1e-3"] and m["targets_met"]["dead < half"]
    assert not m["targets_met"]["l0 <= 10% of C in every matrix"]
    table = format_metrics(m)
    assert "ci_rounded" in table and q in table


def test_rounding_threshold_and_ablation_show_up():
    cm = exact_cm()
    with torch.no_grad():  # CI 0.3 for everything: rounded masks keep all, unrounded ones scale by 0.3
        for ci in cm.ci_fns.values():
            ci.b2.fill_(0.3)
    m = evaluate_decomposition(cm, batches(), pgd=PGDConfig(n_steps=3), progress=False)
    assert abs(m["kl"]["ci_rounded"]) < 1e-5 and m["kl"]["ci"] > 1e-3
    assert m["kl"]["pgd"] > m["kl"]["ci_rounded"]
    m_hi = evaluate_decomposition(cm, batches(), threshold=0.5, pgd=PGDConfig(n_steps=0), progress=False)
    assert all(v == 0.0 for v in m_hi["l0"].values()) and m_hi["dead_frac"] == 1.0
    assert m_hi["kl"]["ci_rounded"] > 1e-3  # everything rounded to 0


def test_plot_history(tmp_path):
    hist = [{"step": s, "stochastic_recon": 1 / s, "adversarial_recon": 2 / s, "minimality": 3.0,
             "faithfulness": 1e-3, "l0_mean": 5.0} for s in range(1, 5)]
    out = plot_history(hist, tmp_path / "curves.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
