"""The scalar prefactor edit: exactness at s=1 and s=0, clean removal, training, token budgets, evaluation."""

import copy
import math

import pytest
import torch

from vpd_lite.erase.edits import (
    Direction,
    FitConfig,
    ScalarEdit,
    fit_objective,
    select_target_tokens,
    uniform_ce,
    uniform_level,
)
from vpd_lite.method.cross_entropy import language_ce, row_slices

from .tiny_models import VOCAB, random_direction, tiny_llama


def train_scalar_edit(model, directions, tokens, mask, config):
    """Fit the prefactors of ``directions`` (init 1) with ``fit_objective``; the edit comes back detached."""
    edit = ScalarEdit(model, directions)
    with edit:
        history = fit_objective(model, [edit.s], tokens, mask, config)
    return edit, history


TOKENS = torch.randint(0, VOCAB, (2, 12), generator=torch.Generator().manual_seed(3))
MLP_UP = "model.layers.0.mlp.up_proj"
Q_PROJ = "model.layers.1.self_attn.q_proj"


def logits(model, tokens=TOKENS):
    with torch.no_grad():
        return model(input_ids=tokens).logits


def test_s_equal_one_leaves_logits_unchanged():
    model = tiny_llama()
    base = logits(model)
    with ScalarEdit(model, [random_direction(model, MLP_UP), random_direction(model, Q_PROJ, seed=2)]):
        assert torch.equal(logits(model), base)


def test_s_zero_equals_removing_the_component_by_hand():
    model = tiny_llama()
    d = random_direction(model, MLP_UP, scale=0.5)
    by_hand = copy.deepcopy(model)
    lin = dict(by_hand.named_modules())[MLP_UP]
    with torch.no_grad():
        lin.weight -= torch.outer(d.u, d.v)  # W - U_c V_c^T, shape (d_out, d_in)
    edit = ScalarEdit(model, [d], init=0.0)
    with edit:
        edited = logits(model)
    assert not torch.allclose(edited, logits(tiny_llama()), atol=1e-3)  # the edit did something
    torch.testing.assert_close(edited, logits(by_hand), rtol=1e-5, atol=1e-5)


def test_layer_output_matches_formula_for_any_s():
    model = tiny_llama()
    d = random_direction(model, MLP_UP)
    lin = dict(model.named_modules())[MLP_UP]
    x = torch.randn(3, 32)
    edit = ScalarEdit(model, [d])
    edit.set_scales(-1.5)
    with edit:
        y = lin(x)
    expected = x @ (lin.weight + (-1.5 - 1.0) * torch.outer(d.u, d.v)).T
    torch.testing.assert_close(y, expected, rtol=1e-5, atol=1e-5)


def test_two_components_on_one_module_add_up():
    model = tiny_llama()
    d1, d2 = random_direction(model, MLP_UP, 0, seed=1), random_direction(model, MLP_UP, 1, seed=2)
    lin = dict(model.named_modules())[MLP_UP]
    x = torch.randn(4, 32)
    edit = ScalarEdit(model, [d1, d2])
    edit.set_scales([0.0, 2.0])
    with edit:
        y = lin(x)
    W = lin.weight - torch.outer(d1.u, d1.v) + torch.outer(d2.u, d2.v)
    torch.testing.assert_close(y, x @ W.T, rtol=1e-5, atol=1e-5)
    assert edit.scales() == {(MLP_UP, 0): 0.0, (MLP_UP, 1): 2.0}


def test_remove_restores_the_model_exactly():
    model = tiny_llama()
    base = logits(model)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    edit = ScalarEdit(model, [random_direction(model, MLP_UP)], init=-2.0).attach()
    assert not torch.allclose(logits(model), base)
    edit.remove()
    assert torch.equal(logits(model), base)
    assert all(torch.equal(weights[k], v) for k, v in model.state_dict().items())
    assert not edit.attached


def test_bad_directions_raise_clear_errors():
    model = tiny_llama()
    with pytest.raises(KeyError, match="not an nn.Linear"):
        ScalarEdit(model, [Direction("model.nope", 0, torch.zeros(64), torch.zeros(32))])
    with pytest.raises(ValueError, match="needs u"):
        ScalarEdit(model, [Direction(MLP_UP, 0, torch.zeros(3), torch.zeros(32))])
    edit = ScalarEdit(model, [random_direction(model, MLP_UP)]).attach()
    with pytest.raises(RuntimeError, match="already attached"):
        edit.attach()
    with pytest.raises(ValueError, match="need 1 values"):
        edit.set_scales([1.0, 2.0])


def test_uniform_ce_hand_values():
    V = 5
    assert float(uniform_ce(torch.zeros(1, 2, V))) == pytest.approx(math.log(V))
    # p = softmax([ln 2, 0, 0, 0, 0]) = [2/6, 1/6, ...]: CE from uniform = -(1/5)(ln(2/6) + 4 ln(1/6))
    lg = torch.zeros(1, 1, V)
    lg[0, 0, 0] = math.log(2.0)
    assert float(uniform_ce(lg)) == pytest.approx(-(math.log(2 / 6) + 4 * math.log(1 / 6)) / 5)
    mask = torch.tensor([[True, False]])
    both = torch.cat([lg, torch.zeros(1, 1, V)], dim=1)
    assert float(uniform_ce(both, mask)) == pytest.approx(float(uniform_ce(lg)))
    assert uniform_level(4096) == pytest.approx(8.3178, abs=1e-4)


def test_select_target_tokens_respects_the_budget():
    blocks = torch.arange(10 * 8).reshape(10, 8)
    for budget in (1, 4, 7, 8, 16, 30):
        tokens, mask = select_target_tokens(blocks, budget, seed=0)
        assert int(mask.sum()) == budget
        assert tokens.shape[0] == math.ceil(budget / 7)
        assert tokens.shape[1] == (budget + 1 if budget <= 7 else 8)
        for row, m in zip(tokens, mask):  # contiguous snippets of real text starting at position 0
            k = int(m.sum())
            assert m[:k].all() and not m[k:].any()
            assert torch.equal(row[1 : k + 1] - row[:k], torch.ones(k, dtype=row.dtype))
    a, _ = select_target_tokens(blocks, 4, seed=0)
    b, _ = select_target_tokens(blocks, 4, seed=1)
    c, _ = select_target_tokens(blocks, 4, seed=0)
    assert torch.equal(a, c) and not torch.equal(a, b)
    with pytest.raises(ValueError, match="needs 11 blocks"):
        select_target_tokens(blocks, 71)


def test_training_moves_s_and_lowers_the_objective():
    model = tiny_llama()
    base = logits(model)
    d = random_direction(model, MLP_UP, scale=0.3)
    tokens, mask = select_target_tokens(TOKENS, 4, seed=0)
    edit, hist = train_scalar_edit(model, [d], tokens, mask, FitConfig(steps=30, lr=0.1))
    assert len(hist) == 30 and hist[-1] < hist[0]
    assert abs(float(edit.s.detach()) - 1.0) > 0.05
    assert not edit.attached and torch.equal(logits(model), base)  # training left the model untouched
    assert all(p.requires_grad for p in model.parameters())  # flags restored
    assert all(p.grad is None for p in model.parameters())  # only s was trained
    with edit:
        after = float(uniform_ce(logits(model, tokens), mask))
    assert after < hist[0]


def test_minibatch_fit_is_seeded():
    model = tiny_llama()
    d = random_direction(model, MLP_UP, scale=0.3)
    tokens, mask = select_target_tokens(torch.randint(0, VOCAB, (6, 8), generator=torch.Generator().manual_seed(5)),
                                        20, seed=0)  # 3 rows of 7, 7, 6 targets
    fits = [train_scalar_edit(model, [d], tokens, mask, FitConfig(steps=6, lr=0.1, batch_rows=1, seed=s))
            for s in (0, 0, 1)]
    assert len(fits[0][1]) == 6
    assert fits[0][1] == fits[1][1] and fits[0][1] != fits[2][1]  # same seed, same batches; other seed differs
    full = train_scalar_edit(model, [d], tokens, mask, FitConfig(steps=1, batch_rows=None))[1][0]
    with torch.no_grad():
        assert full == pytest.approx(float(uniform_ce(model(input_ids=tokens).logits, mask)), rel=1e-6)


def test_language_ce_matches_cross_entropy():
    model = tiny_llama()
    blocks = {"de": TOKENS, "en": TOKENS[:1]}
    ce = language_ce(model, blocks, batch_size=1)
    lg = logits(model)
    ref = torch.nn.functional.cross_entropy(lg[:, :-1].reshape(-1, VOCAB), TOKENS[:, 1:].reshape(-1))
    assert ce["de"] == pytest.approx(float(ref), rel=1e-5)
    assert set(ce) == {"de", "en"}


# ---------------------------------------------------------------- objectives and the global 1-D search
from vpd_lite.erase.edits import (
    OBJECTIVES,
    SearchConfig,
    fit_single_scalar,
    grid_search_1d,
    masked_next_token_ce,
    objective_on_all,
    objective_value,
    scalar_objective_curve,
    target_ce_loss,
    train_scalar_edit_restarts,
)


def two_minima(x: torch.Tensor) -> torch.Tensor:
    """A local minimum (value 1) at x = 0.5, near 1, and the global one (value 0) at x = -7.3."""
    return torch.minimum((x - 0.5) ** 2 + 1.0, 0.5 * (x + 7.3) ** 2)


def test_grid_search_finds_the_global_of_two_minima():
    x, y = grid_search_1d(two_minima, -30.0, 10.0)
    # within tie_tol = 1e-6 of the minimum the search leans toward 1: |x + 7.3| <= sqrt(2e-6) = 1.4e-3
    assert x == pytest.approx(-7.3, abs=2e-3) and y == pytest.approx(0.0, abs=1e-6)
    # the grid optimum: no value of a fine grid is lower
    fine = torch.linspace(-30, 10, 400001, dtype=torch.float64)
    assert y <= float(two_minima(fine).min()) + 1e-6
    # restricted to a range without the global minimum, the local one is found
    x2, y2 = grid_search_1d(two_minima, -3.0, 10.0)
    assert x2 == pytest.approx(0.5, abs=2e-3) and y2 == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="empty"):
        grid_search_1d(two_minima, 2.0, 1.0)


def test_grid_search_prefers_the_value_closest_to_one_among_equals():
    flat = lambda x: torch.clamp(x.abs() - 3.0, min=0.0)  # noqa: E731  zero on [-3, 3], which holds 1
    assert grid_search_1d(flat, -30.0, 10.0)[0] == 1.0
    two_zeros = lambda x: torch.minimum((x + 8.0) ** 2, (x - 4.0) ** 2)  # noqa: E731  zeros at -8 and 4
    assert grid_search_1d(two_zeros, -30.0, 10.0)[0] == pytest.approx(4.0, abs=1e-3)
    plateau = lambda x: torch.where(x < -5.0, torch.zeros_like(x), torch.ones_like(x))  # noqa: E731
    assert grid_search_1d(plateau, -30.0, 10.0, SearchConfig(n_grid=41))[0] == pytest.approx(-5.0, abs=1.1)


def test_objectives_by_hand():
    logits = torch.zeros(1, 3, VOCAB)  # uniform predictions
    tokens = torch.tensor([[1, 2, 3]])
    mask = torch.tensor([[True, True, False]])
    assert float(masked_next_token_ce(logits, tokens, mask)) == pytest.approx(math.log(VOCAB))
    assert float(target_ce_loss(logits, tokens, mask)) == pytest.approx(0.0, abs=1e-10)
    assert list(OBJECTIVES) == ["target_ce", "uniform_ce"]
    logits[0, 0, 2] = 5.0  # position 0 now predicts token 2 (its target) confidently
    ce = -torch.log_softmax(logits[0, :2], -1)[[0, 1], [2, 3]].mean()
    assert float(objective_value("target_ce", logits, tokens, mask)) == pytest.approx(float((math.log(VOCAB) - ce) ** 2))
    with pytest.raises(ValueError, match="last position"):
        masked_next_token_ce(logits, tokens, torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="unknown objective"):
        objective_value("nope", logits, tokens, mask)


@pytest.mark.parametrize("objective", ["target_ce", "uniform_ce"])
def test_batched_objective_curve_matches_scalar_edit(objective):
    model = tiny_llama()
    d = random_direction(model, Q_PROJ, scale=0.5)
    tokens, mask = select_target_tokens(TOKENS, 6, seed=0)
    s_values = torch.tensor([-4.0, 0.0, 1.0, 3.0])
    curve = scalar_objective_curve(model, d, tokens, mask, s_values, objective, rows_per_batch=2)
    for s, got in zip(s_values.tolist(), curve.tolist()):
        with ScalarEdit(model, [d], init=s):
            ref = objective_on_all(model, tokens, mask, objective)
            assert got == pytest.approx(ref, rel=1e-4, abs=1e-6)


def test_row_slices_cover_every_row_within_the_position_bound():
    assert row_slices(5, 12, 24) == [slice(0, 2), slice(2, 4), slice(4, 5)]
    assert row_slices(3, 100, 24) == [slice(0, 1), slice(1, 2), slice(2, 3)]  # at least one row per pass
    assert row_slices(4, 5, 2048) == [slice(0, 4)]


@pytest.mark.parametrize("objective", ["target_ce", "uniform_ce"])
def test_objective_curve_in_small_forward_passes_is_bit_identical(objective):
    """Splitting a group's rows over several forward passes (to bound the logits held) changes no bit."""
    model = tiny_llama()
    d = random_direction(model, MLP_UP, scale=0.5)
    tokens, mask = select_target_tokens(TOKENS, 15, seed=0)  # 2 snippets of 12 tokens
    s_values = torch.tensor([-4.0, -2.5, 0.0, 0.5, 1.0, 2.0, 3.0])
    whole = scalar_objective_curve(model, d, tokens, mask, s_values, objective, rows_per_batch=8,
                                   max_positions=10**9)  # one pass per group of 4 s values (8 rows)
    for max_positions in (12, 36):  # one row per pass; three rows per pass (passes cut across s values)
        split = scalar_objective_curve(model, d, tokens, mask, s_values, objective, rows_per_batch=8,
                                       max_positions=max_positions)
        assert torch.equal(split, whole), max_positions


def test_fit_single_scalar_is_the_grid_optimum_inside_the_range():
    model = tiny_llama()
    d = random_direction(model, MLP_UP, scale=0.5)
    tokens, mask = select_target_tokens(TOKENS, 5, seed=1)
    s, val = fit_single_scalar(model, d, tokens, mask, "target_ce", -6.0, 4.0)
    assert -6.0 <= s <= 4.0
    grid = scalar_objective_curve(model, d, tokens, mask, torch.linspace(-6, 4, 501), "target_ce")
    assert val <= float(grid.min()) + 1e-6
    s2, _ = fit_single_scalar(model, d, tokens, mask, "target_ce", -1.0, 2.0)
    assert -1.0 <= s2 <= 2.0


def test_restarts_keep_the_best_start():
    model = tiny_llama()
    dirs = [random_direction(model, MLP_UP, 0, seed=1, scale=0.3), random_direction(model, Q_PROJ, 1, seed=2, scale=0.3)]
    tokens, mask = select_target_tokens(TOKENS, 6, seed=0)
    cfg = FitConfig(steps=5, lr=0.1, batch_rows=None, objective="target_ce")
    edit, hist, val = train_scalar_edit_restarts(model, dirs, tokens, mask, cfg, restarts=3)
    one, _, val1 = train_scalar_edit_restarts(model, dirs, tokens, mask, cfg, restarts=1)
    assert val <= val1 + 1e-9 and len(hist) == 5 and not edit.attached
