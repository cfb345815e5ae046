"""Global CI functions ("global_mlp", "global_transformer"): one network over every decomposed matrix's inputs."""

import json

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from vpd_lite.method.causal_importance import (
    GLOBAL_CI_TYPES,
    GlobalTransformerCI,
    make_ci_fn,
    make_global_ci_fn,
)
from vpd_lite.method.checkpoint import load_decomposition, read_metadata, save_decomposition
from vpd_lite.method.components import ComponentModel, LinearComponents, linear_weight
from vpd_lite.method.config import DecomposeConfig, override_config
from vpd_lite.method.decompose import build_component_model

TARGETS = {"*.q_proj": 4, "*.up_proj": 6, "*.down_proj": 6}
SMALL = dict(ci_global_hidden=12, ci_global_d_model=16, ci_global_blocks=2, ci_global_heads=2)


def tiny(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    return LlamaForCausalLM(LlamaConfig(vocab_size=40, hidden_size=16, intermediate_size=24, num_hidden_layers=2,
                                        num_attention_heads=2, num_key_value_heads=2)).eval()


def perturbed(cm: ComponentModel) -> ComponentModel:
    """Random non-zero biases too, so that a round trip that dropped a tensor would show."""
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in cm.trainable_parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
    return cm


@pytest.mark.parametrize("ci_type", GLOBAL_CI_TYPES)
def test_shapes_for_token_and_vector_positions(ci_type):
    model = tiny()
    cm = ComponentModel(model, TARGETS, ci_type=ci_type, **SMALL)
    ids = torch.randint(0, 40, (3, 7))
    _, inputs = cm.target_logits_and_inputs(ids)
    lower, upper = cm.causal_importance(inputs)
    assert list(lower) == cm.module_names == list(upper)
    for n in cm.module_names:
        assert lower[n].shape == (3, 7, cm.C_per_module[n]) and upper[n].shape == lower[n].shape
        assert float(lower[n].detach().min()) >= 0 and float(lower[n].detach().max()) <= 1
    # positions (B,): one vector per sample (a length-1 sequence for the transformer)
    vec = {n: x[:, 0] for n, x in inputs.items()}
    one = cm.causal_importance(vec)[0]
    for n in cm.module_names:
        assert one[n].shape == (3, cm.C_per_module[n])
    if ci_type == "global_mlp":  # position-wise: the same as the first position of the sequences
        for n in cm.module_names:
            torch.testing.assert_close(one[n], lower[n][:, 0])


def test_the_transformer_is_bidirectional_and_the_mlp_position_wise():
    model = tiny()
    ids = torch.randint(0, 40, (2, 6))
    later = ids.clone()
    later[:, 5] = (later[:, 5] + 1) % 40  # change only the last token
    for ci_type in GLOBAL_CI_TYPES:
        cm = ComponentModel(model, TARGETS, ci_type=ci_type, **SMALL)
        z = {}
        for key, batch in (("a", ids), ("b", later)):
            _, inputs = cm.target_logits_and_inputs(batch)
            z[key] = cm.global_ci(inputs)  # pre-activations (no clamp hiding a change)
        for n in cm.module_names:
            first_changed = not torch.allclose(z["a"][n][:, :5], z["b"][n][:, :5])
            assert first_changed == (ci_type == "global_transformer"), (ci_type, n)
            assert not torch.allclose(z["a"][n][:, 5], z["b"][n][:, 5])


def test_the_transformer_reads_each_sequence_alone_and_length_one_is_an_mlp():
    g = torch.Generator().manual_seed(0)
    ci = GlobalTransformerCI({"a": 3, "b": 5}, {"a": 2, "b": 4}, d_model=8, n_blocks=2, n_heads=2, generator=g)
    x = {"a": torch.randn(4, 6, 3), "b": torch.randn(4, 6, 5)}
    z = ci(x)
    assert z["a"].shape == (4, 6, 2) and z["b"].shape == (4, 6, 4)
    z0 = ci({k: v[:1] for k, v in x.items()})  # batch rows do not attend to each other
    torch.testing.assert_close(z0["a"], z["a"][:1])
    with pytest.raises(ValueError, match="even head dim"):
        GlobalTransformerCI({"a": 3}, {"a": 2}, d_model=6, n_heads=2)
    with pytest.raises(KeyError, match="missing"):
        ci({"a": x["a"]})


@pytest.mark.parametrize("ci_type", GLOBAL_CI_TYPES)
def test_a_saved_global_decomposition_loads_back_with_identical_ci(ci_type, tmp_path):
    model = tiny()
    config = DecomposeConfig(targets=TARGETS, ci_type=ci_type, **SMALL)
    cm = perturbed(build_component_model(model, config))
    save_decomposition(cm, tmp_path / "dec", config)
    meta = read_metadata(tmp_path / "dec")
    assert meta["ci_type"] == ci_type and meta["ci_global"]["ci_global_d_model"] == 16
    cm2 = load_decomposition(tmp_path / "dec", model)
    assert cm2.ci_type == ci_type and cm2.ci_global_sizes == cm.ci_global_sizes
    for a, b in zip(cm.trainable_parameters(), cm2.trainable_parameters(), strict=True):
        assert torch.equal(a, b)
    _, inputs = cm.target_logits_and_inputs(torch.randint(0, 40, (2, 5)))
    for n in cm.module_names:
        assert torch.equal(cm.causal_importance(inputs)[0][n], cm2.causal_importance(inputs)[0][n])


@pytest.mark.parametrize("said,made", [("global_transformer", "shared_mlp"), ("shared_mlp", "global_mlp"),
                                       ("global_transformer", "global_mlp")])
def test_a_folder_whose_ci_type_does_not_match_its_weights_is_refused(said, made, tmp_path):
    model = tiny()
    cm = ComponentModel(model, TARGETS, ci_type=made, **SMALL)
    save_decomposition(cm, tmp_path / "dec")
    meta_path = tmp_path / "dec" / "decomposition.json"
    meta = json.loads(meta_path.read_text())
    meta["ci_type"] = said
    meta["ci_global"] = cm.ci_global_sizes
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError) as e:
        load_decomposition(tmp_path / "dec", model)
    message = str(e.value)
    assert "\n" not in message and repr(said) in message and "components.safetensors" in message


def test_a_bad_ci_type_names_the_choices():
    with pytest.raises(ValueError) as e:
        override_config(DecomposeConfig(), ["ci_type=foo"])
    assert "\n" not in str(e.value) and "'foo'" in str(e.value)
    assert all(t in str(e.value) for t in ("shared_mlp", "global_mlp", "global_transformer"))
    c = override_config(DecomposeConfig(), ["ci_type=global_transformer", "ci_global_blocks=1"])
    assert (c.ci_type, c.ci_global_blocks) == ("global_transformer", 1)


@pytest.mark.parametrize("ci_type", GLOBAL_CI_TYPES)
def test_the_same_seed_gives_identical_weights(ci_type):
    model = tiny()
    a, b, c = (ComponentModel(model, TARGETS, ci_type=ci_type, seed=s, **SMALL) for s in (3, 3, 4))
    pa, pb, pc = (x.trainable_parameters() for x in (a, b, c))
    assert all(torch.equal(x, y) for x, y in zip(pa, pb, strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(pa, pc, strict=True))
    # the factors are drawn as for a per-matrix type that has no CI weights between them: same V of the first matrix
    first = a.module_names[0]
    assert torch.equal(a.components[first].V, ComponentModel(model, TARGETS, ci_type="mlp", seed=3)
                       .components[first].V)


def test_per_matrix_types_keep_their_random_stream_and_refuse_per_matrix_access_for_global_ones():
    """shared_mlp draws factors then CI weights, matrix by matrix, from one generator: unchanged by global CI."""
    model = tiny()
    cm = ComponentModel(model, TARGETS, ci_hidden=5, seed=11)
    gen = torch.Generator().manual_seed(11)
    for n in cm.module_names:
        module = dict(model.named_modules())[n]
        w, b = linear_weight(module)
        comp = LinearComponents(w, b, cm.C_per_module[n], True, gen, source=module)
        ci = make_ci_fn("shared_mlp", w.shape[1], cm.C_per_module[n], 5, gen)
        assert torch.equal(comp.V, cm.components[n].V) and torch.equal(comp.U, cm.components[n].U)
        assert all(torch.equal(x, y) for x, y in zip(ci.parameters(), cm.ci_fns[n].parameters(), strict=True))
    assert cm.global_ci is None and "global_ci" not in "".join(cm.state_dict())
    g = ComponentModel(model, TARGETS, ci_type="global_mlp", **SMALL)
    with pytest.raises(ValueError, match="causal_importance"):
        g.ci_fns
    with pytest.raises(ValueError, match="make_global_ci_fn"):
        make_ci_fn("global_mlp", 4, 3, 8)
    with pytest.raises(ValueError, match="not a global CI type"):
        make_global_ci_fn("shared_mlp", {"a": 3}, {"a": 2})


@pytest.mark.parametrize("ci_type", GLOBAL_CI_TYPES)
def test_a_few_training_steps_train_the_global_ci(ci_type):
    from vpd_lite.method.decompose import decompose

    model = tiny()
    config = DecomposeConfig(targets=TARGETS, ci_type=ci_type, steps=3, batch_size=2, seq_len=8,
                             faithfulness_warmup_steps=2, checkpoint_every=0, device="cpu", log_every=1, **SMALL)
    batches = (torch.randint(0, 40, (2, 8), generator=torch.Generator().manual_seed(i)) for i in range(10**6))
    before = [p.detach().clone() for p in build_component_model(model, config).global_ci.parameters()]
    cm, history = decompose(model, batches, config, progress=False)
    after = list(cm.global_ci.parameters())
    assert any(not torch.equal(x, y) for x, y in zip(before, after, strict=True))
    assert all(torch.isfinite(p).all() for p in after)


def test_a_global_ci_run_resumed_from_its_checkpoint_equals_the_run_that_never_stopped(tmp_path):
    from vpd_lite.method.decompose import decompose

    model = tiny()
    config = dict(targets=TARGETS, ci_type="global_transformer", steps=4, batch_size=2, seq_len=8,
                  faithfulness_warmup_steps=2, log_every=1, device="cpu", **SMALL)
    data = [torch.randint(0, 40, (2, 8), generator=torch.Generator().manual_seed(i)) for i in range(4)]
    full, _ = decompose(model, iter(data), DecomposeConfig(**config), progress=False)

    def crashing():
        yield from data[:3]
        raise RuntimeError("crash")

    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="crash"):
        decompose(tiny(), crashing(), DecomposeConfig(**config, checkpoint_every=2, checkpoint_dir=str(out)),
                  progress=False)
    resumed, _ = decompose(tiny(), iter(data), DecomposeConfig(**config, checkpoint_every=2, checkpoint_dir=str(out)),
                           resume_from=out, progress=False)
    assert all(torch.equal(a, b) for a, b in zip(full.trainable_parameters(), resumed.trainable_parameters(),
                                                 strict=True))
