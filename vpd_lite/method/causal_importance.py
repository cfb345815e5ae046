"""Causal-importance (CI) functions and the leaky hard sigmoids that turn their outputs into [0, 1].

For every token position and every component c of a decomposed matrix, a small learned function gives a
pre-activation z_c; the causal importance is g_c = sigma(z_c) with a *hard* sigmoid sigma = clamp(., 0, 1).
Two leaky variants keep gradients alive where the clamp would kill them:

* ``lower_leaky_hard_sigmoid`` (used for the masks): forward ``clamp(z, 0, 1)``; backward passes the
  gradient unchanged on (0, 1), zero above 1, and below 0 only a small ``alpha``-scaled gradient that
  pushes z *up* (so a component whose CI collapsed to 0 can come back when the reconstruction needs it):

      sigma_lower(z) = clamp(z, 0, 1),
      dL/dz = G on [0, 1],   0 for z > 1,   alpha * G * 1[G < 0] for z < 0      (G = dL/dsigma_lower)

* ``upper_leaky_hard_sigmoid`` (used inside the minimality loss): ``0`` below 0, ``z`` on [0, 1] and
  ``1 + alpha (z - 1)`` above 1, so the sparsity penalty still pushes down pre-activations above 1:

      sigma_upper(z) = 0 (z < 0),   z (0 <= z <= 1),   1 + alpha (z - 1) (z > 1).

``leaky_hard_sigmoids`` gives both from one z. alpha = ``DecomposeConfig.ci_alpha`` (0.01). All element-wise,
any shape: z, g (*positions, C) per decomposed matrix.

Five CI function types, in two families (``DecomposeConfig.ci_type``):

*Per matrix* -- one module per decomposed matrix, reading only that matrix's input (the variants of the public
goodfire-ai/spd reference code):

* ``SharedMLPCI`` ("shared_mlp"; the targeted recipe's): one MLP  x (..., d_in) -> hidden -> (..., C)  per matrix.
* ``ComponentMLPCI`` ("mlp"): a separate scalar MLP per component reading only a_c = V_c^T x.
* ``VectorMLPCI`` ("vector_mlp"): a separate MLP per component reading the whole input x (small models only).

*Global* -- one network over all decomposed matrices at once, reading every matrix's input and giving every
matrix's pre-activations (built by ``make_global_ci_fn``, called through ``ComponentModel.causal_importance``):

* ``GlobalMLPCI`` ("global_mlp"): at each position, the per-matrix inputs RMS-normed (no learned scale) and
  concatenated (sum of d_in) -> Linear -> GELU -> Linear -> sum of all C, split back per matrix. The global shared
  MLP of goodfire-ai/spd (``GlobalSharedMLPCiFn``; that one concatenates the raw inputs, we RMS-norm each first as
  the transformer does, so that no matrix's scale dominates); the tPD paper's smaller runs use it with 512 hidden.
* ``GlobalTransformerCI`` ("global_transformer", default): the VPD paper's CI function (``CITransformer``, section D of
  goodfire-ai/param-decomp's ``nano_param_decomp/run.py``). Per-matrix inputs RMS-normed (no learned scale) and
  concatenated -> Linear to d_model -> ``n_blocks`` pre-norm blocks (x += Attn(rms(x)); x += MLP(rms(x)), MLP
  d_model -> mlp_ratio * d_model -> d_model with GELU) with *bidirectional* multi-head self-attention over the
  positions of a sequence, RoPE (split-half, base 10,000) on queries and keys -> Linear to the sum of all C, split
  back per matrix. As in the reference there is no final norm before the output projection, the norms have no
  learned scale, the attention projections have no bias and the other linears do. Positions (B, T) (a language
  model) are B sequences of T; positions (B,) (a toy model, one vector per sample) are B sequences of length 1,
  where attention only sees the sample itself and the block is an MLP on it. Because the attention is
  bidirectional, a token's CI depends on the tokens after it as well (fine for decomposing: the target's own
  output is what is reconstructed, and the CI only has to say which components a position needs).

Every type ends in the same leaky hard sigmoids; the losses do not change, only the function producing z.

What the paper uses: the global transformer (d_model 2048, 8 blocks, 16 heads, MLP 8192, RoPE) for its 4-layer,
d 768 model. Sizing for our 2-layer, d 128 target, by the paper's recipe notes (a global transformer of 1/2-2x the
target's depth and wider than it) and the tPD paper (a global shared MLP of 512 hidden for its smaller runs):
``ci_global_d_model`` 256 (2 x the target's width), ``ci_global_blocks`` 2 (the target's depth),
``ci_global_heads`` 4 (head dim 64), ``ci_global_mlp_ratio`` 4 (MLP 1024); ``ci_global_hidden`` 512 for
"global_mlp".

Cost per training step of ``decompose`` on the shipped target (``DecomposeConfig()``: 14 matrices, C total 2560,
batch 8 x 128 tokens; ``benchmarks/bench_decompose.py --config default --threads 2 --steps 7 --flops --set
ci_type=...``). Arithmetic (``--flops``: matrix multiplies and attention of one VPD step; the target's own forward
+ backward is 6.85 GFLOP): shared_mlp 25.4 GFLOP, global_mlp 37.2, global_transformer 40.1. Per token the CI
forward is about 0.33 M multiply-adds for shared_mlp (sum of d_in x 64 + 64 x C), 2.6 M for global_mlp (2560 x 512
+ 512 x 2560) and 2.9 M for global_transformer (2560 x 256 in, 2 blocks of 4 x 256^2 + 2 x 256 x 1024, 256 x 2560
out); the sequence length 128 adds little attention. Time (median of 7 steps, 2 threads, one kind after another,
on a CPU shared with other jobs, so compare kinds within a round only): in the calmest round shared_mlp 1.06 s,
global_mlp 1.17 s (x 1.10), global_transformer 1.29 s (x 1.22); in a round 10 x slower from contention x 1.04 and
x 1.14. What we ship: "global_transformer" for the full recipe (the shipped decomposition, 37.9 minutes on the
2-core machine): five targeted German decompositions per kind were compared by a rule on training text written
before their verdicts (``results/ci_comparison_rule.md``), and the global transformer passed it
(``results/ci_comparison.md``). The targeted recipe keeps "shared_mlp" for its five-minute budget
(``DecomposeConfig.targeted_recipe``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

PER_MATRIX_CI_TYPES = ("shared_mlp", "mlp", "vector_mlp")
GLOBAL_CI_TYPES = ("global_mlp", "global_transformer")
CI_TYPES = PER_MATRIX_CI_TYPES + GLOBAL_CI_TYPES


class _LowerLeakyHardSigmoid(torch.autograd.Function):
    """clamp(z, 0, 1) forward; leaky (alpha) upward-pushing gradient below 0, zero gradient above 1."""

    @staticmethod
    def forward(ctx, z: Tensor, alpha: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(z)
        ctx.alpha = alpha
        return z.clamp(0.0, 1.0)

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        (z,) = ctx.saved_tensors
        # On [0, 1]: pass the gradient. Above 1: nothing. Below 0: a gradient-descent step moves z by -grad,
        # so only gradients with grad < 0 (pushing z back up towards the live region) pass, scaled by alpha.
        scale = torch.where(z < 0, (grad_out < 0).to(grad_out.dtype) * ctx.alpha, (z <= 1).to(grad_out.dtype))
        grad_z = grad_out * scale
        return grad_z, None


def lower_leaky_hard_sigmoid(z: Tensor, alpha: float = 0.01) -> Tensor:
    """Hard sigmoid for masks: forward ``clamp(z, 0, 1)``; below 0 the backward pass lets ``alpha * grad``
    through when it would push z up (grad < 0), above 1 it passes nothing. Any shape."""
    return _LowerLeakyHardSigmoid.apply(z, alpha)


def upper_leaky_hard_sigmoid(z: Tensor, alpha: float = 0.01) -> Tensor:
    """Hard sigmoid for the minimality loss: ``0`` for z < 0, ``z`` on [0, 1], ``1 + alpha (z - 1)`` above 1.
    Plain differentiable torch ops (gradient 0 / 1 / alpha on the three pieces). Any shape."""
    return torch.where(z > 1, 1 + alpha * (z - 1), z.clamp(min=0.0))


class _BothLeakyHardSigmoids(torch.autograd.Function):
    """(lower, upper) from one z with one saved tensor and one fused backward (the training step needs both)."""

    @staticmethod
    def forward(ctx, z: Tensor, alpha: float) -> tuple[Tensor, Tensor]:  # type: ignore[override]
        ctx.save_for_backward(z)
        ctx.alpha = alpha
        lower = z.clamp(0.0, 1.0)
        upper = lower + alpha * (z - 1).clamp_(min=0.0)  # = 1 + alpha (z - 1) above 1, clamp(z, 0) below
        return lower, upper

    @staticmethod
    def backward(ctx, g_lower: Tensor | None, g_upper: Tensor | None):  # type: ignore[override]
        (z,) = ctx.saved_tensors
        a = ctx.alpha
        g_lower = torch.zeros_like(z) if g_lower is None else g_lower
        g_upper = torch.zeros_like(z) if g_upper is None else g_upper
        # On [0, 1] both pass: g_lower + g_upper. Above 1: lower passes nothing, upper alpha * g_upper.
        # Below 0: upper passes nothing, lower only alpha * (upward-pushing, i.e. negative) g_lower.
        grad = torch.where(z > 1, g_upper * a, g_lower + g_upper)
        return torch.where(z < 0, g_lower.clamp(max=0.0).mul_(a), grad), None


def leaky_hard_sigmoids(z: Tensor, alpha: float = 0.01) -> tuple[Tensor, Tensor]:
    """``(lower_leaky_hard_sigmoid(z), upper_leaky_hard_sigmoid(z))`` in one fused op (same values and
    gradients, fewer passes over the (..., C) tensor). Any shape."""
    return _BothLeakyHardSigmoids.apply(z, alpha)


class SharedMLPCI(nn.Module):
    """One MLP per matrix: layer input x (..., d_in) -> Linear -> GELU -> Linear -> pre-activations (..., C)."""

    def __init__(self, d_in: int, C: int, hidden: int, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.d_in, self.C, self.hidden = d_in, C, hidden
        self.w1 = nn.Parameter(torch.empty(d_in, hidden))
        self.b1 = nn.Parameter(torch.zeros(hidden))
        self.w2 = nn.Parameter(torch.empty(hidden, C))
        self.b2 = nn.Parameter(torch.zeros(C))
        with torch.no_grad():
            self.w1.normal_(0.0, d_in**-0.5, generator=generator)
            self.w2.normal_(0.0, hidden**-0.5, generator=generator)

    def forward(self, x: Tensor, component_acts: Tensor | None = None) -> Tensor:
        """x: (..., d_in) -> CI pre-activations (..., C). ``component_acts`` is ignored."""
        return torch.nn.functional.gelu(x @ self.w1 + self.b1) @ self.w2 + self.b2


class _PerComponentMLPs(nn.Module):
    """C separate one-hidden-layer MLPs, one per component (weights not shared across c); the subclasses
    differ only in what the first layer reads. Given the first layer's product p (..., C, hidden):

        z_c = sum_h GELU(p_ch + b1_ch) w2_ch + b2_c        b1, w2: (C, hidden), b2: (C,)

    ``w1`` (shape ``w1_shape``) starts N(0, w1_std^2), ``w2`` N(0, 1/hidden), in that order; biases start at 0."""

    def __init__(self, w1_shape: tuple[int, ...], w1_std: float, C: int, hidden: int,
                 generator: torch.Generator | None) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.empty(w1_shape))
        self.b1 = nn.Parameter(torch.zeros(C, hidden))
        self.w2 = nn.Parameter(torch.empty(C, hidden))
        self.b2 = nn.Parameter(torch.zeros(C))
        with torch.no_grad():
            self.w1.normal_(0.0, w1_std, generator=generator)
            self.w2.normal_(0.0, hidden**-0.5, generator=generator)

    def _readout(self, first: Tensor) -> Tensor:
        """first-layer product (..., C, hidden) -> CI pre-activations (..., C)."""
        h = torch.nn.functional.gelu(first + self.b1)  # (..., C, hidden)
        return (h * self.w2).sum(-1) + self.b2


class ComponentMLPCI(_PerComponentMLPs):
    """One tiny scalar MLP per component: a_c (..., C) -> hidden -> z_c (..., C), weights not shared across c.
    First layer: p_ch = a_c w1_ch, w1 (C, hidden) ~ N(0, 1)."""

    def __init__(self, C: int, hidden: int, generator: torch.Generator | None = None) -> None:
        super().__init__((C, hidden), 1.0, C, hidden, generator)
        self.C, self.hidden = C, hidden

    def forward(self, x: Tensor, component_acts: Tensor | None = None) -> Tensor:
        """component_acts a = x @ V: (..., C) -> CI pre-activations (..., C). ``x`` itself is not read."""
        if component_acts is None:
            raise ValueError("ComponentMLPCI ('mlp') needs the component activations a = x @ V")
        return self._readout(component_acts.unsqueeze(-1) * self.w1)


class VectorMLPCI(_PerComponentMLPs):
    """One small MLP per component, each reading the layer's whole input vector: x (..., d_in) -> hidden_c ->
    z_c, for every c (weights not shared across components; the reference's "vector_mlp").

    Unlike ``ComponentMLPCI`` it can tell apart two inputs that give a component the same activation V_c^T x
    (e.g. two features that a component reads with the same sign), so the minimality loss can switch the
    component off on one and keep it on the other. Costs C * d_in * hidden weights: meant for small models.
    First layer: p_ch = sum_d x_d w1_cdh, w1 (C, d_in, hidden) ~ N(0, 1/d_in)."""

    def __init__(self, d_in: int, C: int, hidden: int, generator: torch.Generator | None = None) -> None:
        super().__init__((C, d_in, hidden), d_in**-0.5, C, hidden, generator)
        self.d_in, self.C, self.hidden = d_in, C, hidden

    def forward(self, x: Tensor, component_acts: Tensor | None = None) -> Tensor:
        """x: (..., d_in) -> CI pre-activations (..., C). ``component_acts`` is ignored."""
        return self._readout(torch.einsum("...d,cdh->...ch", x, self.w1))


def make_ci_fn(
    ci_type: str, d_in: int, C: int, hidden: int, generator: torch.Generator | None = None
) -> nn.Module:
    """Build the CI function of one matrix: ``"shared_mlp"`` (one MLP for the matrix), ``"mlp"`` (per component, reading its
    own activation) or ``"vector_mlp"`` (per component, reading the whole input). Raises ValueError for an
    unknown type or a global one (those read every matrix: ``make_global_ci_fn``)."""
    if ci_type in GLOBAL_CI_TYPES:
        raise ValueError(f"ci_type {ci_type!r} is one network over all matrices, not a per-matrix CI function: "
                         "build it with make_global_ci_fn")
    if ci_type == "shared_mlp":
        return SharedMLPCI(d_in, C, hidden, generator)
    if ci_type == "vector_mlp":
        return VectorMLPCI(d_in, C, hidden, generator)
    if ci_type == "mlp":
        return ComponentMLPCI(C, hidden, generator)
    raise ValueError(f"unknown ci_type {ci_type!r}; expected one of {CI_TYPES}")


# ------------------------------------------------------------------------------------------------ global CI
def _rms(x: Tensor, eps: float = 1e-6) -> Tensor:
    """RMS norm over the last dim without a learned scale: x / sqrt(mean(x^2) + eps)."""
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps)


def _init_linear(d_in: int, d_out: int, generator: torch.Generator | None, bias: bool = True) -> nn.Linear:
    """An ``nn.Linear`` with weight N(0, 1/d_in) drawn from ``generator`` and a zero bias (seeded, so the same
    seed gives the same weights on any device)."""
    lin = nn.Linear(d_in, d_out, bias=bias)
    with torch.no_grad():
        lin.weight.normal_(0.0, d_in**-0.5, generator=generator)
        if bias:
            lin.bias.zero_()
    return lin


class _GlobalCI(nn.Module):
    """Shared plumbing of the global CI functions: the matrices' order, their input widths and C, the RMS-normed
    concatenation of the inputs and the split of the output back per matrix.

    ``d_in`` and ``C`` are {matrix name: int} in one order (``ComponentModel.module_names``, the model's order);
    the concatenation and the split follow it."""

    def __init__(self, d_in: Mapping[str, int], C: Mapping[str, int]) -> None:
        super().__init__()
        if not d_in or list(d_in) != list(C):
            raise ValueError("a global CI function needs d_in and C for the same, non-empty list of matrices")
        self.names = list(d_in)
        self.d_in, self.C = dict(d_in), dict(C)
        self.total_in, self.total_C = sum(self.d_in.values()), sum(self.C.values())

    def _concat(self, inputs: Mapping[str, Tensor]) -> Tensor:
        """{name: x (*positions, d_in)} -> (*positions, sum d_in): each matrix's input RMS-normed, concatenated."""
        missing = [n for n in self.names if n not in inputs]
        if missing:
            raise KeyError(f"the global CI function needs the inputs of every decomposed matrix; missing {missing}")
        return torch.cat([_rms(inputs[n]) for n in self.names], dim=-1)

    def _split(self, z: Tensor) -> dict[str, Tensor]:
        """(*positions, sum C) -> {name: (*positions, C)} (views)."""
        return dict(zip(self.names, z.split([self.C[n] for n in self.names], dim=-1)))


class GlobalMLPCI(_GlobalCI):
    """"global_mlp": one MLP over all matrices at each position,

        z = GELU(concat_m rms(x_m) @ W1 + b1) @ W2 + b2,   split per matrix

    concat (*positions, sum d_in) -> ``hidden`` -> (*positions, sum C). W1 ~ N(0, 1/sum d_in), W2 ~ N(0, 1/hidden)
    drawn from ``generator`` in that order, biases 0. Source: goodfire-ai/spd's ``GlobalSharedMLPCiFn`` (plus the
    per-matrix RMS norm of the VPD reference's CI transformer)."""

    def __init__(self, d_in: Mapping[str, int], C: Mapping[str, int], hidden: int = 512,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(d_in, C)
        if hidden < 1:
            raise ValueError(f"global_mlp needs hidden >= 1, got {hidden}")
        self.hidden = hidden
        self.fc1 = _init_linear(self.total_in, hidden, generator)
        self.fc2 = _init_linear(hidden, self.total_C, generator)

    def forward(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """{name: x (*positions, d_in)} -> {name: CI pre-activations z (*positions, C)}."""
        return self._split(self.fc2(torch.nn.functional.gelu(self.fc1(self._concat(inputs)))))


def _rope(x: Tensor, base: float) -> Tensor:
    """Rotary position embedding, split-half form: x (N, H, T, head_dim) with position t = 0 .. T-1 on dim 2.
    Pairs (x_i, x_{i+half}) are rotated by angle t * base^(-i/half) (Su et al. 2021, "RoFormer"; the split-half
    layout of the VPD reference)."""
    T, hd = x.shape[-2], x.shape[-1]
    half = hd // 2
    inv_freq = base ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)
    ang = torch.arange(T, device=x.device, dtype=torch.float32)[:, None] * inv_freq  # (T, half)
    cos, sin = ang.cos().to(x.dtype), ang.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


class _Block(nn.Module):
    """One pre-norm transformer block: x += Attn(rms(x)) (bidirectional, RoPE on q, k); x += MLP(rms(x))."""

    def __init__(self, d_model: int, n_heads: int, mlp_hidden: int, rope_base: float,
                 generator: torch.Generator | None) -> None:
        super().__init__()
        self.n_heads, self.rope_base = n_heads, rope_base
        self.qkv = _init_linear(d_model, 3 * d_model, generator, bias=False)
        self.o = _init_linear(d_model, d_model, generator, bias=False)
        self.fc1 = _init_linear(d_model, mlp_hidden, generator)
        self.fc2 = _init_linear(mlp_hidden, d_model, generator)

    def forward(self, x: Tensor) -> Tensor:
        """x (N, T, d_model) -> (N, T, d_model)."""
        N, T, D = x.shape
        q, k, v = self.qkv(_rms(x)).view(N, T, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)
        q, k = _rope(q, self.rope_base), _rope(k, self.rope_base)
        att = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=False)  # (N, H, T, hd)
        x = x + self.o(att.transpose(1, 2).reshape(N, T, D))
        return x + self.fc2(torch.nn.functional.gelu(self.fc1(_rms(x))))


class GlobalTransformerCI(_GlobalCI):
    """"global_transformer": the VPD paper's CI function, one bidirectional transformer over all matrices,

        h_0 = concat_m rms(x_m) @ W_in + b_in,   h_l = Block_l(h_{l-1}),   z = h_L @ W_out + b_out, split per matrix

    with ``n_blocks`` pre-norm blocks (``d_model``, ``n_heads`` heads of RoPE self-attention without a causal
    mask, GELU MLP of ``mlp_ratio * d_model``). Positions (B, T): B sequences of T (attention over T); positions
    (B,): B sequences of length 1; more leading dims: all but the last are batch. Every weight ~ N(0, 1/fan_in)
    from ``generator`` (in module order), biases 0. Raises ValueError if d_model is not a multiple of n_heads or
    the head dim is odd. Source: goodfire-ai/param-decomp ``nano_param_decomp/run.py`` section D."""

    def __init__(self, d_in: Mapping[str, int], C: Mapping[str, int], d_model: int = 256, n_blocks: int = 2,
                 n_heads: int = 4, mlp_ratio: int = 4, rope_base: float = 10_000.0,
                 generator: torch.Generator | None = None) -> None:
        super().__init__(d_in, C)
        if n_heads < 1 or d_model % n_heads or (d_model // n_heads) % 2:
            raise ValueError(f"global_transformer needs d_model a multiple of n_heads with an even head dim, got "
                             f"d_model {d_model}, n_heads {n_heads}")
        if n_blocks < 0 or mlp_ratio < 1:
            raise ValueError(f"global_transformer needs n_blocks >= 0 and mlp_ratio >= 1, got {n_blocks}, {mlp_ratio}")
        self.d_model, self.n_blocks, self.n_heads, self.mlp_ratio = d_model, n_blocks, n_heads, mlp_ratio
        self.proj_in = _init_linear(self.total_in, d_model, generator)
        self.blocks = nn.ModuleList(_Block(d_model, n_heads, mlp_ratio * d_model, rope_base, generator)
                                    for _ in range(n_blocks))
        self.proj_out = _init_linear(d_model, self.total_C, generator)

    def forward(self, inputs: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """{name: x (*positions, d_in)} -> {name: CI pre-activations z (*positions, C)}; the last position dim is
        the sequence (length 1 for positions (B,))."""
        h = self.proj_in(self._concat(inputs))  # (*positions, d_model)
        lead = h.shape[:-1]
        T = lead[-1] if len(lead) >= 2 else 1
        h = h.reshape(-1, T, self.d_model)
        for block in self.blocks:
            h = block(h)
        return self._split(self.proj_out(h).reshape(*lead, self.total_C))


def make_global_ci_fn(ci_type: str, d_in: Mapping[str, int], C: Mapping[str, int], *, hidden: int = 512,
                      d_model: int = 256, n_blocks: int = 2, n_heads: int = 4, mlp_ratio: int = 4,
                      generator: torch.Generator | None = None) -> _GlobalCI:
    """Build the global CI function over the matrices {name: d_in} / {name: C}: ``"global_mlp"`` (``hidden``) or
    ``"global_transformer"`` (``d_model``, ``n_blocks``, ``n_heads``, ``mlp_ratio``). Raises ValueError for
    another type."""
    if ci_type == "global_mlp":
        return GlobalMLPCI(d_in, C, hidden, generator)
    if ci_type == "global_transformer":
        return GlobalTransformerCI(d_in, C, d_model, n_blocks, n_heads, mlp_ratio, generator=generator)
    raise ValueError(f"ci_type {ci_type!r} is not a global CI type; expected one of {GLOBAL_CI_TYPES}")
