"""Fixtures shared by the coding-exercise tests."""

import pytest
import torch

from tests.erase.tiny_models import random_direction, tiny_llama


@pytest.fixture(scope="module")
def tiny():
    """(a tiny random Llama, a random direction in its layer-1 v_proj, {en, de, fr: (2, 12) token blocks})."""
    model = tiny_llama(seed=0, initializer_range=0.2)
    direction = random_direction(model, "model.layers.1.self_attn.v_proj", scale=1.0)
    gen = torch.Generator().manual_seed(3)
    blocks = {lang: torch.randint(0, 64, (2, 12), generator=gen) for lang in ("en", "de", "fr")}
    return model, direction, blocks
