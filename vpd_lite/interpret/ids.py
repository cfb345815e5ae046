"""Component ids: ``ComponentId`` = (name of the decomposed module, index of the component in that module), its
string key (``component_key`` / ``parse_component_id``), position buckets and context keys.
"""

from __future__ import annotations

import torch

ComponentId = tuple[str, int]


#: Position buckets used for "where in the sequence does it fire": [0], [1], [2,3], [4,7], ..., [64, 127], [128, ...).
N_POSITION_BUCKETS = 9


def component_key(cid: ComponentId) -> str:
    """String form ``"module:index"`` of a component id (used in JSON files and widgets)."""
    module, c = cid
    return f"{module}:{int(c)}"


def parse_component_id(key: str | ComponentId) -> ComponentId:
    """Inverse of :func:`component_key`; ``"model.layers.0.mlp.up_proj:17"`` -> ``("model.layers.0.mlp.up_proj", 17)``.

    Tuples pass through (with the index made an ``int``). Raises ``ValueError`` on a malformed string.
    """
    if isinstance(key, tuple):
        if len(key) != 2:
            raise ValueError(f"a component id is (module, index); got {key!r}")
        return (str(key[0]), int(key[1]))
    module, sep, index = str(key).rpartition(":")
    if not sep or not module or not index.strip().lstrip("-").isdigit():
        raise ValueError(f"component id must look like 'module.name:index', got {key!r}")
    c = int(index)
    if c < 0:
        raise ValueError(f"component index must be >= 0, got {c} in {key!r}")
    return (module, c)


def position_bucket(positions: torch.Tensor) -> torch.Tensor:
    """Bucket index of each token position: 0 -> 0, 1 -> 1, 2-3 -> 2, 4-7 -> 3, ..., >=128 -> 8.  Same shape as input."""
    p = positions.long()
    bucket = torch.floor(torch.log2(p.clamp(min=1).double())).long() + 1
    bucket = torch.where(p == 0, torch.zeros_like(bucket), bucket)
    return bucket.clamp(max=N_POSITION_BUCKETS - 1)


def context_key(ci: torch.Tensor, acts: torch.Tensor | None = None) -> torch.Tensor:
    """Ranking key of a token as a context of a component: its CI, ties broken by |activation ``V_cᵀx``|.

    ci, acts: same shape (e.g. (B, T, C)). Returns float64 ``ci + 2**-28 * |a| / (1 + |a|)``: the tie-break term
    is below 2**-28, smaller than the gap between any two distinct float32 CI values above 1/16, so it orders
    tokens by CI first and only reorders exact ties (which are common: the hard sigmoid saturates at CI = 1).
    """
    key = ci.double()
    if acts is not None:
        mag = acts.double().abs()
        key = key + 2.0**-28 * mag / (1 + mag)
    return key
