"""Next-token cross-entropy of a causal LM: the one CE helper that evaluation, ablation, edits and target
training share. CE is in nats per predicted token; a block of T tokens predicts its positions 1..T-1."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

#: By default every CE helper of the package runs the model on at most this many token positions per forward
#: pass (one block when a block is longer; an explicit ``batch_size`` overrides it), so at most this many
#: positions of logits (``vocab_size`` floats each; 1024 x 4096 floats = 16 MiB for the shipped
#: model) and of their log-softmax exist at once, whatever the number of blocks.
LOGIT_POSITIONS = 1024


def next_token_ce(logits: Tensor, input_ids: Tensor) -> Tensor:
    """Mean next-token cross-entropy (nats): logits (B, T, V) predict input_ids[:, 1:] (B, T-1). Differentiable.

    Raises ValueError when T < 2 (a length-1 sequence has no next token to predict; the mean would be nan)."""
    if input_ids.dim() != 2 or input_ids.shape[1] < 2:
        raise ValueError(f"next-token CE needs (B, T) token ids with T >= 2 (nothing to predict otherwise), got "
                         f"shape {tuple(input_ids.shape)}")
    return torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).float(), input_ids[:, 1:].reshape(-1)
    )


def row_slices(n_rows: int, seq_len: int, max_positions: int = LOGIT_POSITIONS) -> list[slice]:
    """Consecutive slices covering ``n_rows`` rows of ``seq_len`` positions, each holding at most
    ``max_positions`` positions (but at least one row): the forward passes of a batch too large for one.

    Splitting rows is exact: each row's logits, log-softmax and per-position numbers do not depend on which
    other rows share its pass (``tests/erase/test_edits.py`` checks it bit for bit)."""
    per = max(1, max_positions // max(seq_len, 1))
    return [slice(i, min(i + per, n_rows)) for i in range(0, n_rows, per)]


@torch.no_grad()
def lm_cross_entropy(model: nn.Module, blocks: Tensor, batch_size: int | None = None) -> float:
    """Mean next-token CE (nats/token) of a causal LM over token blocks (N, T), T >= 2, in eval mode
    (the model's train/eval mode is restored afterwards). Runs on the model's device, ``batch_size`` blocks
    per forward pass (default: as many as fit in :data:`LOGIT_POSITIONS` positions, at least one).

    Raises ValueError for blocks that are not (N, T) with T >= 2."""
    if blocks.dim() != 2 or blocks.shape[1] < 2:
        raise ValueError(f"blocks must be (N, T) with T >= 2, got shape {tuple(blocks.shape)}")
    n, t = blocks.shape
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    try:
        for rows in row_slices(n, t, LOGIT_POSITIONS if batch_size is None else batch_size * t):
            x = blocks[rows].to(device)
            logits = model(input_ids=x).logits[:, :-1]  # (b, T-1, V)
            total += float(torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]).float(), x[:, 1:].reshape(-1), reduction="sum"))
            count += x[:, 1:].numel()
    finally:
        model.train(was_training)
    return total / count


def language_ce(model: nn.Module, blocks: Mapping[str, Tensor], batch_size: int | None = None) -> dict[str, float]:
    """Held-out next-token CE (nats/token) per language. ``blocks[lang]``: LongTensor (N, T); ``batch_size`` as
    in :func:`lm_cross_entropy`."""
    return {lang: lm_cross_entropy(model, toks, batch_size) for lang, toks in blocks.items()}
