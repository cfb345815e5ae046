"""Rank-1 components wrapped around a frozen model's linear layers.

A decomposed weight W (d_out x d_in) is written as a sum of C rank-1 pieces,

    W  ~  sum_c U_c V_c^T      V: (d_in, C) "read" directions (columns),  U: (C, d_out) "write" directions (rows)

so that on an input x (..., d_in) with a mask m (..., C) in [0, 1] the layer computes

    y = ((x @ V) * m) @ U  [+ m_delta * x @ (W - (V @ U)^T)^T]  + b.

With routing (a bool per position) only routed positions use the components; the rest use W.

``ComponentModel`` wraps any ``nn.Module`` (``nn.Linear`` layers and GPT-2's ``Conv1D``, whose weight is stored
transposed as (d_in, d_out), can be decomposed). A ``ModelAdapter`` says how to run the model on a batch and
what its output is: ``CAUSAL_LM`` (``model(input_ids=..., use_cache=False).logits``, the default for
transformers causal LMs) or ``PLAIN`` (``model(batch)`` returns a tensor, e.g. a toy regression model).
"Positions" are the leading dimensions of a decomposed layer's input x (..., d_in): (B, T) tokens for a
language model, (B,) samples for a model that maps one vector to one vector. Masks are (*positions, C),
routing and delta masks (*positions). Every decomposed layer must see the same positions.

It never changes the target's parameters: masked runs swap the chosen modules' ``forward`` for the duration
of one call and put the original back afterwards. The frozen weight is read from the target module on every
use, so the components follow the model when it is moved to another device or dtype after wrapping.

Dtypes: the component factors and CI functions are float32 for a float32 or lower-precision (bfloat16,
float16) target and float64 for a float64 one. A masked layer computes in the wider of its input's and the
factors' dtype and returns its input's dtype, so a bfloat16 model runs its own layers in bfloat16 while the
trainable factors stay float32.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from vpd_lite.method.causal_importance import (
    CI_TYPES,
    GLOBAL_CI_TYPES,
    leaky_hard_sigmoids,
    make_ci_fn,
    make_global_ci_fn,
)


def _run_causal_lm(model: nn.Module, input_ids: Tensor) -> Tensor:
    return model(input_ids=input_ids, use_cache=False).logits


def _run_plain(model: nn.Module, batch: Tensor) -> Tensor:
    return model(batch)


@dataclass(frozen=True)
class ModelAdapter:
    """How vpd-lite runs a model on one batch, and what the output is.

    ``run(model, batch) -> Tensor`` returns the model's output. ``causal_lm=True`` means the batch is
    ``input_ids`` (B, T) and the output next-token logits (B, T, V): evaluation then reports next-token CE,
    the default reconstruction loss is the KL between next-token distributions, and batches are checked
    against the model's position limit. Otherwise the output is compared as it is (default loss: MSE).
    """

    run: Callable[[nn.Module, Tensor], Tensor] = _run_plain
    causal_lm: bool = False
    name: str = "plain"

    @property
    def default_recon_loss(self) -> str:
        """"kl" for a causal LM's logits, "mse" for any other output."""
        return "kl" if self.causal_lm else "mse"


#: transformers causal LMs: ``model(input_ids=batch, use_cache=False).logits``.
CAUSAL_LM = ModelAdapter(_run_causal_lm, causal_lm=True, name="causal_lm")


#: any module whose ``model(batch)`` returns the output tensor.
PLAIN = ModelAdapter(_run_plain, causal_lm=False, name="plain")


def default_adapter(model: nn.Module) -> ModelAdapter:
    """``CAUSAL_LM`` for a transformers model with an output head (``get_output_embeddings``), else ``PLAIN``."""
    try:
        from transformers import PreTrainedModel
    except ImportError:  # pragma: no cover - transformers is a dependency
        return PLAIN
    if isinstance(model, PreTrainedModel) and callable(getattr(model, "get_output_embeddings", None)):
        return CAUSAL_LM
    return PLAIN


def position_limit(model: nn.Module) -> int | None:
    """The longest sequence a transformers model takes (``config.max_position_embeddings``, GPT-2's
    ``n_positions``), or None when the model states none."""
    config = getattr(model, "config", None)
    for key in ("n_positions", "max_position_embeddings"):
        value = getattr(config, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def check_token_batch(model: nn.Module, input_ids: Tensor, need_targets: bool = False) -> None:
    """Refuse a batch a causal LM cannot take: not (B, T) integer ids, longer than the model's position
    limit, or (``need_targets``) T < 2, which leaves no next token to predict. Raises ValueError."""
    if input_ids.dim() != 2 or input_ids.is_floating_point():
        raise ValueError(f"a causal LM batch must be integer token ids of shape (B, T), got "
                         f"{input_ids.dtype} of shape {tuple(input_ids.shape)}")
    T = input_ids.shape[1]
    limit = position_limit(model)
    if limit is not None and T > limit:
        raise ValueError(f"sequences of {T} tokens are longer than this model's position limit of {limit} "
                         f"tokens; use seq_len <= {limit}")
    if need_targets and T < 2:
        raise ValueError(f"sequences of {T} token(s) have nothing to predict: next-token loss needs T >= 2, "
                         f"got a batch of shape {tuple(input_ids.shape)}")


def _param_dtype(dtype: torch.dtype) -> torch.dtype:
    """Trainable factors are float32 for float32 or lower-precision targets, float64 for float64 ones."""
    return torch.promote_types(dtype, torch.float32)


def _is_conv1d(module: nn.Module) -> bool:
    """transformers' GPT-2 ``Conv1D`` (checked by name so that import paths across versions do not matter)."""
    return type(module).__name__ == "Conv1D" and hasattr(module, "nf")


def linear_weight(module: nn.Module) -> tuple[Tensor, Tensor | None]:
    """(weight (d_out, d_in), bias (d_out,) or None) of an ``nn.Linear`` or GPT-2 ``Conv1D`` (a view, no copy)."""
    if isinstance(module, nn.Linear):
        return module.weight, module.bias
    if _is_conv1d(module):
        return module.weight.T, module.bias  # Conv1D stores (d_in, d_out)
    raise TypeError(f"can only decompose nn.Linear or transformers Conv1D, got {type(module).__name__}")


def _pattern_matches(pattern: str, name: str) -> bool:
    """``re:<regex>`` is a full-match regular expression; anything else is a glob (fnmatch)."""
    if pattern.startswith("re:"):
        return re.fullmatch(pattern[3:], name) is not None
    return fnmatch.fnmatchcase(name, pattern)


def match_modules(model: nn.Module, targets: Mapping[str, int] | Sequence[tuple[str, int]]) -> dict[str, int]:
    """Resolve ``{pattern: C}`` to ``{module_name: C}`` in model order (first matching pattern wins).

    Only ``nn.Linear`` / ``Conv1D`` modules are candidates. A pattern that matches nothing raises ValueError.
    """
    items = list(targets.items()) if isinstance(targets, Mapping) else list(targets)
    used = {p: False for p, _ in items}
    found: dict[str, int] = {}
    for name, module in model.named_modules():
        if not (isinstance(module, nn.Linear) or _is_conv1d(module)):
            continue
        for pattern, C in items:
            if _pattern_matches(pattern, name):
                if int(C) < 1:
                    raise ValueError(f"C must be >= 1 for pattern {pattern!r}, got {C}")
                found[name] = int(C)
                used[pattern] = True
                break
    unused = [p for p, u in used.items() if not u]
    if unused:
        raise ValueError(f"module pattern(s) {unused} matched no nn.Linear/Conv1D module of the model")
    return found


class LinearComponents(nn.Module):
    """C rank-1 components of one frozen weight. ``V`` (d_in, C), ``U`` (C, d_out) are the trainable factors.

    The original ``weight`` (d_out, d_in) and ``bias`` are read from ``source`` (the target's module) on every
    use when it is given, so they follow the target to another device or dtype; otherwise they are kept as
    non-persistent buffers (detached views of the tensors passed in)."""

    def __init__(
        self,
        weight: Tensor,
        bias: Tensor | None,
        C: int,
        use_delta: bool = True,
        generator: torch.Generator | None = None,
        source: nn.Module | None = None,
    ) -> None:
        super().__init__()
        d_out, d_in = weight.shape
        self.d_in, self.d_out, self.C, self.use_delta = d_in, d_out, C, use_delta
        object.__setattr__(self, "_source", source)  # a plain reference, not a submodule
        self.register_buffer("_weight", None if source is not None else weight.detach(), persistent=False)
        self.register_buffer("_bias", None if source is not None or bias is None else bias.detach(),
                             persistent=False)
        dtype = _param_dtype(weight.dtype)
        self.V = nn.Parameter(torch.empty(d_in, C, dtype=dtype, device=weight.device))
        self.U = nn.Parameter(torch.empty(C, d_out, dtype=dtype, device=weight.device))
        # Random init scaled so that V @ U has roughly the entry scale of W; faithfulness warm-up fits it.
        w_std = float(weight.detach().float().std()) or 1.0
        with torch.no_grad():
            if weight.device.type == "cpu":
                self.V.normal_(0.0, d_in**-0.5, generator=generator)
                self.U.normal_(0.0, w_std * (d_in / C) ** 0.5, generator=generator)
            else:  # draw on the CPU generator (device-independent), then move
                self.V.copy_(torch.randn(d_in, C, generator=generator, dtype=dtype) * d_in**-0.5)
                self.U.copy_(torch.randn(C, d_out, generator=generator, dtype=dtype) * (w_std * (d_in / C) ** 0.5))

    @property
    def weight(self) -> Tensor:
        """The frozen original weight (d_out, d_in), in the target's current device and dtype."""
        return self._weight if self._source is None else linear_weight(self._source)[0]

    @property
    def bias(self) -> Tensor | None:
        """The frozen original bias (d_out,) or None."""
        return self._bias if self._source is None else linear_weight(self._source)[1]

    def component_weight(self) -> Tensor:
        """sum_c U_c V_c^T = (V @ U)^T, shape (d_out, d_in)."""
        return (self.V @ self.U).T

    def delta(self) -> Tensor:
        """W - sum_c U_c V_c^T, shape (d_out, d_in) (differentiable in U, V)."""
        return self.weight - self.component_weight()

    def original(self, x: Tensor) -> Tensor:
        """The frozen layer: x (..., d_in) -> x W^T + b (..., d_out)."""
        return nn.functional.linear(x, self.weight, self.bias)

    def forward(self, x: Tensor, mask: Tensor, delta_mask: Tensor | None = None) -> Tensor:
        """x (..., d_in), mask (..., C) (broadcastable), delta_mask (...,) or None -> y (..., d_out).

        y = ((x V) * mask) U  +  d * x (W - V U)^T  +  b   with d = delta_mask (0 when None).
        Computed as ((x V) * (mask - d)) U + d * x W^T + b: the same value (and gradients) without ever
        forming the delta matrix per call. Computed in the wider of x's and the factors' dtype; returned in x's.
        """
        cd = torch.promote_types(x.dtype, self.V.dtype)
        xc, V, U, mask = x.to(cd), self.V.to(cd), self.U.to(cd), mask.to(cd)
        if delta_mask is None:
            out = ((xc @ V) * mask) @ U
        else:
            if not self.use_delta:
                raise ValueError("delta_mask given but this layer was built with use_delta=False")
            d = delta_mask.to(cd).unsqueeze(-1)
            out = ((xc @ V) * (mask - d)) @ U + d * (xc @ self.weight.to(cd).T)
        bias = self.bias
        if bias is not None:
            out = out + bias.to(cd)
        return out.to(x.dtype)

    def routed_forward(
        self, x: Tensor, mask: Tensor, route: Tensor, delta_mask: Tensor | None = None
    ) -> Tensor:
        """Like ``forward`` where ``route`` (...,) is True and the original layer elsewhere.

        x (..., d_in); mask broadcastable to (..., C); delta_mask broadcastable to (...). Only the routed
        rows go through the components (gathered, then scattered back), so unrouted positions cost one
        ordinary matmul and no component work.
        """
        lead = x.shape[:-1]
        cd = torch.promote_types(x.dtype, self.V.dtype)
        V, U = self.V.to(cd), self.U.to(cd)
        xf = x.reshape(-1, self.d_in)  # (N, d_in)
        base = xf @ self.weight.T  # (N, d_out) original output without bias, in x's dtype
        idx = route.expand(lead).reshape(-1).nonzero().squeeze(1)  # routed rows
        xr = xf.index_select(0, idx).to(cd)
        coef = mask.expand(*lead, self.C).reshape(-1, self.C).index_select(0, idx).to(cd)  # (n_routed, C)
        if delta_mask is not None:
            if not self.use_delta:
                raise ValueError("delta_mask given but this layer was built with use_delta=False")
            d = delta_mask.expand(lead).reshape(-1).index_select(0, idx).unsqueeze(1).to(cd)  # (n_routed, 1)
            yr = ((xr @ V) * (coef - d)) @ U + d * base.index_select(0, idx).to(cd)
        else:
            yr = ((xr @ V) * coef) @ U
        out = base.index_copy(0, idx, yr.to(base.dtype))
        bias = self.bias
        if bias is not None:
            out = out + bias
        return out.reshape(*lead, self.d_out)


@contextmanager
def _forwards_replaced(replacements: Iterable[tuple[nn.Module, Callable[[Tensor], Tensor]]]) -> Iterator[None]:
    """Within the block each module runs the paired function as its ``forward`` (an instance attribute that
    shadows the class's method); every module's previous state is put back on exit, also on errors (including
    an error while the replacements are still being built)."""
    swapped: list[tuple[nn.Module, object]] = []
    try:
        for module, fn in replacements:
            swapped.append((module, module.__dict__.get("forward")))
            module.forward = fn
        yield
    finally:
        for module, previous in reversed(swapped):
            if previous is None:
                del module.forward
            else:
                module.forward = previous


def _key(name: str) -> str:
    return name.replace(".", "__")


class ComponentModel(nn.Module):
    """A frozen model plus rank-1 components and a CI function for each decomposed matrix.

    ``targets`` maps module-name patterns (glob, or ``re:<regex>``) to C. ``adapter`` says how to run the model
    on a batch (default: ``default_adapter(model)``, i.e. ``CAUSAL_LM`` for transformers causal LMs and
    ``PLAIN`` otherwise; a plain callable ``run(model, batch) -> Tensor`` is accepted too). The target is put in
    eval mode (no dropout), its parameters are set to ``requires_grad=False`` and never modified; only
    ``components`` and the CI functions are trainable.

    CI functions: a per-matrix ``ci_type`` ("shared_mlp", "mlp", "vector_mlp", sized by ``ci_hidden``) keeps one
    module per matrix in ``cis`` (``ci_fns``); a global one ("global_mlp" sized by ``ci_global_hidden``,
    "global_transformer" by ``ci_global_d_model`` / ``ci_global_blocks`` / ``ci_global_heads`` /
    ``ci_global_mlp_ratio``) one module over all matrices in ``global_ci`` (``cis`` is then empty). Either way
    ``causal_importance`` gives every matrix's CI. Seeding: the per-matrix types draw each matrix's factors then
    its CI function from one generator, matrix by matrix; the global types draw all factors, then the global CI.
    """

    def __init__(
        self,
        model: nn.Module,
        targets: Mapping[str, int] | Sequence[tuple[str, int]],
        ci_type: str = "shared_mlp",
        ci_hidden: int = 64,
        use_delta: bool = True,
        seed: int = 0,
        adapter: ModelAdapter | Callable[[nn.Module, Tensor], Tensor] | None = None,
        ci_global_hidden: int = 512,
        ci_global_d_model: int = 256,
        ci_global_blocks: int = 2,
        ci_global_heads: int = 4,
        ci_global_mlp_ratio: int = 4,
    ) -> None:
        super().__init__()
        if ci_type not in CI_TYPES:
            raise ValueError(f"unknown ci_type {ci_type!r}; expected one of {CI_TYPES}")
        if adapter is None:
            adapter = default_adapter(model)
        elif not isinstance(adapter, ModelAdapter):
            if not callable(adapter):
                raise TypeError(f"adapter must be a ModelAdapter or a callable run(model, batch), got {adapter!r}")
            adapter = ModelAdapter(adapter, causal_lm=False, name=getattr(adapter, "__name__", "custom"))
        self.adapter: ModelAdapter = adapter
        self.model = model.eval()  # and it stays so: see train()
        for p in model.parameters():
            p.requires_grad_(False)
        self.ci_type, self.ci_hidden, self.use_delta = ci_type, ci_hidden, use_delta
        self.ci_global_sizes = dict(ci_global_hidden=ci_global_hidden, ci_global_d_model=ci_global_d_model,
                                    ci_global_blocks=ci_global_blocks, ci_global_heads=ci_global_heads,
                                    ci_global_mlp_ratio=ci_global_mlp_ratio)
        self._head_ok: bool | None = None  # see output_head()
        self.C_per_module = match_modules(model, targets)
        self.module_names: list[str] = list(self.C_per_module)
        self._modules_by_name = dict(model.named_modules())
        gen = torch.Generator().manual_seed(seed)
        self.comps = nn.ModuleDict()
        self.cis = nn.ModuleDict()
        for name, C in self.C_per_module.items():
            module = self._modules_by_name[name]
            w, b = linear_weight(module)
            self.comps[_key(name)] = LinearComponents(w, b, C, use_delta, gen, source=module)
            if not self.global_ci_type:
                self.cis[_key(name)] = make_ci_fn(ci_type, w.shape[1], C, ci_hidden, gen).to(
                    dtype=_param_dtype(w.dtype), device=w.device)
        self.global_ci: nn.Module | None = None
        if self.global_ci_type:
            first = self.comps[_key(self.module_names[0])].V
            self.global_ci = make_global_ci_fn(
                ci_type, {n: self.comps[_key(n)].d_in for n in self.module_names}, dict(self.C_per_module),
                hidden=ci_global_hidden, d_model=ci_global_d_model, n_blocks=ci_global_blocks,
                n_heads=ci_global_heads, mlp_ratio=ci_global_mlp_ratio, generator=gen,
            ).to(dtype=first.dtype, device=first.device)

    # -- access by real module name -------------------------------------------------------------------
    @property
    def components(self) -> dict[str, LinearComponents]:
        """{module_name: LinearComponents}"""
        return {n: self.comps[_key(n)] for n in self.module_names}  # type: ignore[misc]

    @property
    def global_ci_type(self) -> bool:
        """True when one CI function covers all matrices ("global_mlp", "global_transformer")."""
        return self.ci_type in GLOBAL_CI_TYPES

    @property
    def ci_fns(self) -> dict[str, nn.Module]:
        """{module_name: CI function} of a per-matrix ``ci_type``. Raises ValueError for a global one (no
        per-matrix function exists: use ``causal_importance``, or ``global_ci`` / ``ci_named_parameters``)."""
        if self.global_ci_type:
            raise ValueError(f"ci_type {self.ci_type!r} has one CI function over all matrices, not one per matrix: "
                             "use ComponentModel.causal_importance (or .global_ci)")
        return {n: self.cis[_key(n)] for n in self.module_names}

    def ci_named_parameters(self) -> list[tuple[str, nn.Parameter]]:
        """Every CI-function parameter under its checkpoint key: ``"cis.<module>.<param>"`` per matrix (model
        order) for a per-matrix type, ``"global_ci.<param>"`` for a global one."""
        if self.global_ci is not None:
            return [(f"global_ci.{p}", t) for p, t in self.global_ci.named_parameters()]
        return [(f"cis.{n}.{p}", t) for n in self.module_names for p, t in self.cis[_key(n)].named_parameters()]

    def train(self, mode: bool = True) -> "ComponentModel":
        """Train/eval mode of the components and CI functions. The frozen target always stays in eval mode:
        its outputs are what the components must reproduce, so it must not run dropout (GPT-2 has 0.1)."""
        super().train(mode)
        self.model.eval()
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        """Component factors and CI-function weights (never the target's)."""
        ci = self.cis.parameters() if self.global_ci is None else self.global_ci.parameters()
        return list(self.comps.parameters()) + list(ci)

    # -- passes --------------------------------------------------------------------------------------
    def run(self, batch: Tensor) -> Tensor:
        """The model's output on ``batch`` as the adapter defines it (logits (B, T, V) for a causal LM)."""
        return self.adapter.run(self.model, batch)

    def _logits(self, input_ids: Tensor) -> Tensor:
        return self.adapter.run(self.model, input_ids)

    def check_batch(self, batch: Tensor, need_targets: bool = False) -> None:
        """Refuse a batch the model cannot take (causal LMs: (B, T) ids within the position limit, and T >= 2
        when ``need_targets``); ValueError with what to change. Other models: no check."""
        if self.adapter.causal_lm:
            check_token_batch(self.model, batch, need_targets)

    @torch.no_grad()
    def target_output_and_inputs(self, batch: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """One no-grad pass of the untouched model: (output, {name: layer input x (*positions, d_in)}).

        The output is what the adapter returns (logits (B, T, V) for a causal LM). The layer inputs are
        returned in the dtype of that layer's component factors (what the CI functions read: float32 for a
        bfloat16 target). Raises ValueError if a causal LM batch exceeds the position limit, or if the
        decomposed layers do not all see the same positions."""
        self.check_batch(batch)
        inputs: dict[str, Tensor] = {}
        handles = []
        for name in self.module_names:

            def hook(_mod: nn.Module, args: tuple, _out: Tensor, name: str = name) -> None:
                inputs[name] = args[0].detach()

            handles.append(self._modules_by_name[name].register_forward_hook(hook))
        try:
            output = self.run(batch)
        finally:
            for h in handles:
                h.remove()
        missing = [n for n in self.module_names if n not in inputs]
        if missing:
            raise RuntimeError(f"the decomposed module(s) {missing} did not run on this batch: the model's "
                               "forward (as the adapter calls it) must use every decomposed layer")
        shapes = {n: tuple(x.shape[:-1]) for n, x in inputs.items()}
        if len(set(shapes.values())) > 1:
            raise ValueError(f"the decomposed layers see different positions (leading input dims) {shapes}; "
                             "masks and routing need one set of positions: decompose layers that share them")
        for name, x in inputs.items():
            dtype = self.comps[_key(name)].V.dtype
            if x.dtype != dtype:
                inputs[name] = x.to(dtype)
        return output, inputs

    def target_logits_and_inputs(self, input_ids: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """``target_output_and_inputs`` under its causal-LM name: (logits (B, T, V), {name: x (B, T, d_in)})."""
        return self.target_output_and_inputs(input_ids)

    def causal_importance(
        self, inputs: Mapping[str, Tensor], alpha: float = 0.01
    ) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Layer inputs {name: (*positions, d_in)} -> (ci_lower, ci_upper), each {name: (*positions, C)}.

        ci_lower (lower-leaky hard sigmoid) builds the masks; ci_upper (upper-leaky) enters the minimality loss.
        Inputs are read in the factors' dtype (cast if needed). A global ``ci_type`` reads all matrices' inputs
        at once (so ``inputs`` must hold every decomposed matrix); a per-matrix one each matrix's own.
        """
        lower, upper = {}, {}
        if self.global_ci is not None:
            xs = {}
            for name in self.module_names:
                V = self.comps[_key(name)].V
                xs[name] = inputs[name] if inputs[name].dtype == V.dtype else inputs[name].to(V.dtype)
            for name, z in self.global_ci(xs).items():
                lower[name], upper[name] = leaky_hard_sigmoids(z, alpha)
            return lower, upper
        for name in self.module_names:
            V = self.comps[_key(name)].V
            x = inputs[name] if inputs[name].dtype == V.dtype else inputs[name].to(V.dtype)
            acts = x @ V if self.ci_type == "mlp" else None
            z = self.cis[_key(name)](x, acts)
            lower[name], upper[name] = leaky_hard_sigmoids(z, alpha)
        return lower, upper

    @contextmanager
    def masked(
        self,
        masks: Mapping[str, Tensor],
        routing: Mapping[str, Tensor] | None = None,
        delta_masks: Mapping[str, Tensor] | None = None,
    ) -> Iterator[nn.Module]:
        """Within the block, each module in ``masks`` runs through its masked components; the original
        ``forward`` of every swapped module is restored on exit (also on errors). Yields the wrapped model."""
        unknown = set(masks) - set(self.module_names)
        if unknown:
            raise KeyError(f"masks given for modules that are not decomposed: {sorted(unknown)}")
        replacements = (
            (self._modules_by_name[name], self._masked_forward(
                self.comps[_key(name)], mask, None if routing is None else routing.get(name),
                None if delta_masks is None else delta_masks.get(name)))
            for name, mask in masks.items()
        )
        with _forwards_replaced(replacements):
            yield self.model

    @staticmethod
    def _masked_forward(comp: LinearComponents, mask: Tensor, route: Tensor | None, dmask: Tensor | None):
        def forward(x: Tensor) -> Tensor:
            if route is None:
                return comp(x, mask, dmask)
            return comp.routed_forward(x, mask, route, dmask)  # route (*positions) bool: True = components

        return forward

    def forward_with_masks(self, input_ids: Tensor, masks: Mapping[str, Tensor],
                           routing: Mapping[str, Tensor] | None = None,
                           delta_masks: Mapping[str, Tensor] | None = None) -> Tensor:
        """The output (logits (B, T, V) for a causal LM) of the model whose layers in ``masks`` use their
        masked components (masks {name: (*positions, C)}); layers not in ``masks``, and positions where
        ``routing[name]`` (*positions) is False, use the original weight. ``delta_masks`` {name: (*positions)}
        switch the delta component in. ``input_ids`` is the batch, whatever the model takes."""
        with self.masked(masks, routing, delta_masks):
            return self.run(input_ids)

    def output_head(self) -> nn.Linear | None:
        """The target's output head (``get_output_embeddings()``) if its logits are exactly ``head(final hidden
        states)`` and it is not decomposed, else None (e.g. a model that scales or soft-caps its logits).
        Checked once, on four tokens; training then uses ``final_hidden_with_masks`` + a blockwise KL. None for
        a model that is not a causal LM."""
        if not self.adapter.causal_lm:
            return None
        if self._head_ok is None:
            self._head_ok = self._check_output_head()
        return self.model.get_output_embeddings() if self._head_ok else None

    def _check_output_head(self) -> bool:
        get = getattr(self.model, "get_output_embeddings", None)
        head = get() if callable(get) else None
        if not isinstance(head, nn.Linear) or any(m is head for m in map(self._modules_by_name.get, self.module_names)):
            return False
        ids = (torch.arange(4, device=head.weight.device) % head.out_features).unsqueeze(0)
        try:
            with torch.no_grad():
                logits = self._logits(ids)
                hidden = self._final_hidden(ids, head)
                return logits.shape == (1, 4, head.out_features) and torch.allclose(
                    logits.float(), head(hidden).float(), rtol=1e-4, atol=1e-4)
        except Exception:  # any architecture this does not understand simply keeps the plain logits path
            return False

    def _final_hidden(self, input_ids: Tensor, head: nn.Linear) -> Tensor:
        """Run the model with ``head`` replaced by a no-op that records its input: (B, T, d), no logits made."""
        captured: list[Tensor] = []

        def capture(x: Tensor) -> Tensor:
            captured.append(x)
            return x[..., :0]  # an empty stand-in for the logits the model would have computed

        with _forwards_replaced([(head, capture)]):
            self._logits(input_ids)
        if len(captured) != 1:
            raise RuntimeError(f"the output head ran {len(captured)} times in one forward pass (expected once)")
        return captured[0]

    def final_hidden_with_masks(self, input_ids: Tensor, masks: Mapping[str, Tensor],
                                routing: Mapping[str, Tensor] | None = None,
                                delta_masks: Mapping[str, Tensor] | None = None) -> Tensor:
        """Like ``forward_with_masks`` but returns the final hidden states (B, T, d) that feed the output head
        (``output_head()``, which must not be None), without computing the (B, T, V) logits."""
        head = self.output_head()
        if head is None:
            raise RuntimeError("this model's logits are not a plain linear head of its hidden states; "
                               "use forward_with_masks")
        with self.masked(masks, routing, delta_masks):
            return self._final_hidden(input_ids, head)

    def faithfulness_residual(self) -> dict[str, float]:
        """Relative residual ||W - sum U V||_F^2 / ||W||_F^2 per matrix."""
        out = {}
        with torch.no_grad():
            for name, comp in self.components.items():
                out[name] = float(comp.delta().pow(2).sum() / comp.weight.pow(2).sum().clamp_min(1e-30))
        return out
