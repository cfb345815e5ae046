"""Component statistics: ``ComponentStats`` (firing rates per language and position, mean CI, top contexts)
and the ``StatsAccumulator`` that fills them; live components and language specificity.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from safetensors.torch import save as st_save

from vpd_lite.interpret.ids import (
    N_POSITION_BUCKETS,
    ComponentId,
    context_key,
    parse_component_id,
    position_bucket,
)
from vpd_lite.method.checkpoint import atomic_write_bytes

"""A component: (name of the decomposed module, index of the component in that module)."""


_STATS_FORMAT = "vpd-lite-component-stats/1"


@dataclass
class Context:
    """One top-activating context of a component: a token window and the component's CI on each window token."""

    tokens: list[int]  # token ids of the window (the firing token is at index `centre`)
    ci: list[float]  # CI of the component on each window token, same length as tokens
    centre: int  # index in the window of the token where CI was highest
    lang: str  # language of the block it came from
    position: int  # position of the firing token in its block
    score: float  # CI at the firing token


def interleave_by_language(contexts: Sequence[Context]) -> list[Context]:
    """``contexts`` reordered so that any prefix has the languages in about the proportions of the whole list.

    The i-th context (0-based) of a language with n contexts gets the slot (i + 0.5) / n (Sainte-Laguë order);
    contexts are sorted by slot, ties by higher score, then by their original order."""
    counts: dict[str, int] = {}
    for ctx in contexts:
        counts[ctx.lang] = counts.get(ctx.lang, 0) + 1
    seen: dict[str, int] = {}
    keyed = []
    for k, ctx in enumerate(contexts):
        i = seen.get(ctx.lang, 0)
        seen[ctx.lang] = i + 1
        keyed.append(((i + 0.5) / counts[ctx.lang], -ctx.score, k, ctx))
    return [ctx for *_, ctx in sorted(keyed, key=lambda x: x[:3])]


@dataclass
class ComponentStats:
    """Statistics of every component of a decomposition, harvested over token blocks of several languages.

    Per module (``C`` = number of components of that module, ``L`` = number of languages):

    * ``fire_counts[m]``  (L, C) tokens of each language where CI > ``threshold``
    * ``ci_sum[m]``       (L, C) sum of CI over all tokens of each language
    * ``ci_hist[m]``      (C, n_bins) histogram of CI values over all tokens, equal bins on [0, 1]
    * ``act_sum[m]``      (C,) sum of the activation ``V_cᵀx`` over the tokens where it fires
    * ``act_pos[m]``      (C,) number of firing tokens with positive activation
    * ``pos_fire[m]``     (C, N_POSITION_BUCKETS) firing counts per position bucket (:func:`position_bucket`)
    * ``top_token_ids[m]`` / ``top_token_counts[m]`` (C, n_top) most frequent input tokens where it fires (-1 pad)
    * ``ctx_index[m]``    (C,) row of the component in the context arrays, -1 if it never fired
    * ``ctx_tokens[m]`` (R, K, W) token windows (-1 pad), ``ctx_ci[m]`` (R, K, W) CI on them,
      ``ctx_score[m]`` (R, K) CI at the centre, ``ctx_lang[m]`` (R, K) language index, ``ctx_pos[m]`` (R, K)
      position of the centre token; R = number of components that fired, K = top_k, W = left + 1 + right.

    Shared: ``tokens_per_lang`` (tokens harvested per language), ``token_freq`` (V,) how often each token id
    occurred in the harvested text, ``meta`` (free-form provenance, e.g. the decomposition fingerprint).
    """

    modules: list[str]
    langs: list[str]
    threshold: float
    context_left: int
    context_right: int
    tokens_per_lang: dict[str, int]
    token_freq: torch.Tensor
    fire_counts: dict[str, torch.Tensor]
    ci_sum: dict[str, torch.Tensor]
    ci_hist: dict[str, torch.Tensor]
    act_sum: dict[str, torch.Tensor]
    act_pos: dict[str, torch.Tensor]
    pos_fire: dict[str, torch.Tensor]
    top_token_ids: dict[str, torch.Tensor]
    top_token_counts: dict[str, torch.Tensor]
    ctx_index: dict[str, torch.Tensor]
    ctx_tokens: dict[str, torch.Tensor]
    ctx_ci: dict[str, torch.Tensor]
    ctx_score: dict[str, torch.Tensor]
    ctx_lang: dict[str, torch.Tensor]
    ctx_pos: dict[str, torch.Tensor]
    meta: dict[str, Any] = field(default_factory=dict)

    # ----------------------------------------------------------------------------------------- accessors
    def _check_module(self, module: str) -> None:
        if module not in self.fire_counts:
            raise KeyError(f"unknown module {module!r}; the stats hold {self.modules}")

    def _check(self, cid: ComponentId) -> ComponentId:
        module, c = parse_component_id(cid)
        self._check_module(module)
        n = self.n_components(module)
        if not 0 <= c < n:
            raise IndexError(f"component {c} out of range for {module!r}, which has {n} components")
        return module, c

    def n_components(self, module: str) -> int:
        """Number of components C of ``module``."""
        self._check_module(module)
        return int(self.fire_counts[module].shape[1])

    def component_ids(self) -> list[ComponentId]:
        """Every component of every module, in module order."""
        return [(m, c) for m in self.modules for c in range(self.n_components(m))]

    @property
    def n_tokens(self) -> int:
        """Total number of token positions harvested."""
        return int(sum(self.tokens_per_lang.values()))

    def lang_tokens(self) -> torch.Tensor:
        """(L,) tokens harvested per language, in ``langs`` order (float64)."""
        return torch.tensor([float(self.tokens_per_lang[lang]) for lang in self.langs], dtype=torch.float64)

    def firing_frequency(self, module: str) -> torch.Tensor:
        """(C,) fraction of all harvested tokens on which each component fires."""
        self._check_module(module)
        return self.fire_counts[module].sum(0) / max(self.n_tokens, 1)

    def firing_rate(self, module: str) -> torch.Tensor:
        """(L, C) fraction of each language's tokens on which each component fires (0 for an empty language)."""
        self._check_module(module)
        return self.fire_counts[module] / self.lang_tokens().clamp(min=1)[:, None]

    def mean_ci(self, module: str) -> torch.Tensor:
        """(C,) mean CI of each component over all harvested tokens."""
        self._check_module(module)
        return self.ci_sum[module].sum(0) / max(self.n_tokens, 1)

    def n_fires(self, cid: ComponentId) -> int:
        """Number of harvested tokens on which the component fires."""
        module, c = self._check(cid)
        return int(self.fire_counts[module][:, c].sum())

    def language_profile(self, cid: ComponentId) -> dict[str, float]:
        """Share of the component's firing *rate* per language (sums to 1; all 0 if it never fires).

        Rates rather than raw counts, so a language with more harvested text does not look more important.
        """
        module, c = self._check(cid)
        rate = self.firing_rate(module)[:, c]
        total = float(rate.sum())
        return {lang: (float(r) / total if total > 0 else 0.0) for lang, r in zip(self.langs, rate)}

    def activation_sign(self, cid: ComponentId) -> int:
        """+1 if the component's activation ``V_cᵀx`` is mostly positive where it fires, -1 if mostly negative, 0 if it never fires."""
        module, c = self._check(cid)
        n = float(self.fire_counts[module][:, c].sum())
        if n == 0:
            return 0
        return 1 if float(self.act_pos[module][c]) >= n / 2 else -1

    def mean_activation(self, cid: ComponentId) -> float:
        """Mean activation ``V_cᵀx`` over the tokens where the component fires (0 if it never fires)."""
        module, c = self._check(cid)
        n = float(self.fire_counts[module][:, c].sum())
        return float(self.act_sum[module][c]) / n if n > 0 else 0.0

    def top_tokens(self, cid: ComponentId) -> list[tuple[int, int]]:
        """(token id, count) of the tokens the component fires on most often, most frequent first."""
        module, c = self._check(cid)
        ids, counts = self.top_token_ids[module][c], self.top_token_counts[module][c]
        return [(int(i), int(n)) for i, n in zip(ids, counts) if int(i) >= 0 and int(n) > 0]

    def contexts(self, cid: ComponentId) -> list[Context]:
        """The component's top contexts (only those where CI > 0), ordered so that every prefix is representative:
        the languages are interleaved in proportion to how many contexts each has (each language's contexts
        stay in their own order, best first; between languages, the next context goes to the language furthest
        below its share; ties go to the higher CI). Showing the first 8 of 20 thus keeps the language mix."""
        module, c = self._check(cid)
        row = int(self.ctx_index[module][c])
        if row < 0:
            return []
        out = []
        for k in range(self.ctx_score[module].shape[1]):
            score = float(self.ctx_score[module][row, k])
            if not score > 0:
                continue
            toks = self.ctx_tokens[module][row, k].tolist()
            cis = self.ctx_ci[module][row, k].tolist()
            keep = [i for i, t in enumerate(toks) if t >= 0]
            centre = self.context_left - keep[0] if keep else 0
            out.append(
                Context(
                    tokens=[toks[i] for i in keep],
                    ci=[float(cis[i]) for i in keep],
                    centre=centre,
                    lang=self.langs[int(self.ctx_lang[module][row, k])],
                    position=int(self.ctx_pos[module][row, k]),
                    score=score,
                )
            )
        return interleave_by_language(out)

    # ------------------------------------------------------------------------------------------ save / load
    _PER_MODULE = (
        "fire_counts", "ci_sum", "ci_hist", "act_sum", "act_pos", "pos_fire", "top_token_ids",
        "top_token_counts", "ctx_index", "ctx_tokens", "ctx_ci", "ctx_score", "ctx_lang", "ctx_pos",
    )

    def save(self, path: str | Path) -> Path:
        """Write the stats to one safetensors file (tensors + JSON header), atomically. Returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {"token_freq": self.token_freq.contiguous()}
        for name in self._PER_MODULE:
            for i, module in enumerate(self.modules):
                tensors[f"{name}/{i}"] = getattr(self, name)[module].contiguous()
        header = {
            "format": _STATS_FORMAT,
            "modules": self.modules,
            "langs": self.langs,
            "threshold": self.threshold,
            "context_left": self.context_left,
            "context_right": self.context_right,
            "tokens_per_lang": self.tokens_per_lang,
            "meta": self.meta,
        }

        atomic_write_bytes(path, st_save(tensors, metadata={"vpd_lite": json.dumps(header)}))
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ComponentStats":
        """Read stats written by :meth:`save`. Missing or foreign files raise a clear error."""
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no component stats at {path} (build them with vpd_lite.interpret.statistics.harvest)")
        try:
            with safe_open(str(path), framework="pt") as f:
                header_text = (f.metadata() or {}).get("vpd_lite")
            tensors = load_file(str(path))
        except Exception as err:  # safetensors raises its own error types for corrupted files
            raise ValueError(f"{path} is not a readable safetensors stats file: {err}") from err
        if header_text is None:
            raise ValueError(f"{path} is a safetensors file but holds no vpd-lite component stats header")
        header = json.loads(header_text)
        if header.get("format") != _STATS_FORMAT:
            raise ValueError(f"{path} has stats format {header.get('format')!r}, expected {_STATS_FORMAT!r}")
        modules = list(header["modules"])
        per_module = {
            name: {m: tensors[f"{name}/{i}"] for i, m in enumerate(modules)} for name in cls._PER_MODULE
        }
        return cls(
            modules=modules,
            langs=list(header["langs"]),
            threshold=float(header["threshold"]),
            context_left=int(header["context_left"]),
            context_right=int(header["context_right"]),
            tokens_per_lang={k: int(v) for k, v in header["tokens_per_lang"].items()},
            token_freq=tensors["token_freq"],
            meta=dict(header.get("meta", {})),
            **per_module,
        )


class StatsAccumulator:
    """Accumulates :class:`ComponentStats` batch by batch from CI (and activation) tensors.

    Independent of how the CI was computed, so it can be fed by :func:`harvest` or by hand (tests).
    """

    def __init__(
        self,
        n_components: Mapping[str, int],
        langs: Sequence[str],
        threshold: float = 0.1,
        top_k: int = 20,
        context_left: int = 12,
        context_right: int = 4,
        n_bins: int = 20,
        n_top_tokens: int = 32,
    ) -> None:
        if not 0.0 <= threshold < 1.0:
            raise ValueError(f"threshold must be in [0, 1), got {threshold}")
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        if context_left < 0 or context_right < 0:
            raise ValueError(f"context sizes must be >= 0, got left={context_left}, right={context_right}")
        self.modules = list(n_components)
        self.n_components = {m: int(n) for m, n in n_components.items()}
        self.langs = list(langs)
        self.threshold, self.top_k, self.n_bins, self.n_top_tokens = float(threshold), int(top_k), int(n_bins), int(n_top_tokens)
        self.left, self.right = int(context_left), int(context_right)
        self.n_candidates = 2 * self.top_k  # per language; spares replace duplicate windows at the end
        L, W = len(self.langs), self.left + 1 + self.right
        self.tokens_per_lang = {lang: 0 for lang in self.langs}
        self.token_freq = torch.zeros(0, dtype=torch.float64)
        self.state: dict[str, dict[str, torch.Tensor]] = {}
        for m, C in self.n_components.items():
            self.state[m] = {
                "fire_counts": torch.zeros(L, C, dtype=torch.float64),
                "ci_sum": torch.zeros(L, C, dtype=torch.float64),
                "ci_hist": torch.zeros(C, self.n_bins, dtype=torch.float64),
                "act_sum": torch.zeros(C, dtype=torch.float64),
                "act_pos": torch.zeros(C, dtype=torch.float64),
                "pos_fire": torch.zeros(C, N_POSITION_BUCKETS, dtype=torch.float64),
                "pair_keys": torch.zeros(0, dtype=torch.long),  # component * vocab_cap + token id
                "pair_counts": torch.zeros(0, dtype=torch.float64),
                # context candidates, per language: the best firing token of each of the best blocks
                "cand_key": torch.full((L, self.n_candidates, C), -math.inf, dtype=torch.float64),
                "cand_tok": torch.full((L, self.n_candidates, C, W), -1, dtype=torch.int32),
                "cand_ci": torch.zeros(L, self.n_candidates, C, W),
                "cand_pos": torch.full((L, self.n_candidates, C), -1, dtype=torch.long),
            }
        self._vocab_cap = 1 << 24  # token ids must be below this (pairs are packed as c * cap + id)

    @torch.no_grad()
    def update(
        self,
        lang: str,
        input_ids: torch.Tensor,
        ci: Mapping[str, torch.Tensor],
        acts: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        """Add one batch of one language.

        input_ids: (B, T) token ids; ci[m]: (B, T, C_m) causal importances in [0, 1];
        acts[m]: (B, T, C_m) component activations ``V_cᵀx`` (optional; sign/mean stay 0 without them).
        """
        if lang not in self.tokens_per_lang:
            raise KeyError(f"language {lang!r} is not one of {self.langs}")
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be (B, T), got shape {tuple(input_ids.shape)}")
        ids = input_ids.long().cpu()
        B, T = ids.shape
        if int(ids.min()) < 0 or int(ids.max()) >= self._vocab_cap:
            raise ValueError(f"token ids must be in [0, {self._vocab_cap}), got range [{int(ids.min())}, {int(ids.max())}]")
        li = self.langs.index(lang)
        self.tokens_per_lang[lang] += B * T
        counts = torch.bincount(ids.flatten()).double()
        if counts.numel() > self.token_freq.numel():
            self.token_freq = F.pad(self.token_freq, (0, counts.numel() - self.token_freq.numel()))
        self.token_freq[: counts.numel()] += counts
        buckets = position_bucket(torch.arange(T))  # (T,)
        for m in self.modules:
            if m not in ci:
                raise KeyError(f"CI for module {m!r} missing from this batch (got {sorted(ci)})")
            g = ci[m].detach().float().cpu()
            C = self.n_components[m]
            if g.shape != (B, T, C):
                raise ValueError(f"CI of {m!r} must have shape {(B, T, C)}, got {tuple(g.shape)}")
            a = acts[m].detach().float().cpu() if acts is not None and m in acts else None
            self._update_module(self.state[m], li, ids, g, a, buckets)

    def _update_module(self, s, li, ids, g, a, buckets) -> None:
        B, T, C = g.shape
        fires = g > self.threshold  # (B, T, C)
        s["fire_counts"][li] += fires.sum((0, 1)).double()
        s["ci_sum"][li] += g.sum((0, 1)).double()
        bins = (g.clamp(0, 1) * self.n_bins).long().clamp(max=self.n_bins - 1)  # (B, T, C)
        flat = (torch.arange(C) * self.n_bins + bins).reshape(-1)  # (B*T*C,) index into (C, n_bins)
        s["ci_hist"] += torch.bincount(flat, minlength=C * self.n_bins).reshape(C, self.n_bins).double()
        if a is not None:
            s["act_sum"] += (a * fires).sum((0, 1)).double()
            s["act_pos"] += (fires & (a > 0)).sum((0, 1)).double()
        s["pos_fire"] += torch.einsum("btc,tp->cp", fires.double(), F.one_hot(buckets, N_POSITION_BUCKETS).double())
        # (component, token) pairs where it fires, as sparse counts
        b, t, c = fires.nonzero(as_tuple=True)
        if c.numel():
            keys = torch.cat([s["pair_keys"], c * self._vocab_cap + ids[b, t]])
            vals = torch.cat([s["pair_counts"], torch.ones(c.numel(), dtype=torch.float64)])
            uniq, inv = torch.unique(keys, return_inverse=True)
            s["pair_keys"], s["pair_counts"] = uniq, torch.zeros(uniq.numel(), dtype=torch.float64).index_add_(0, inv, vals)
        self._update_candidates(s, li, ids, g, a)

    def _update_candidates(self, s, li, ids, g, a) -> None:
        """Keep, per component and language, the ``n_candidates`` best blocks, each with its best firing token.

        A token's rank is its CI, ties (many tokens saturate at CI = 1) broken by |activation| (:func:`context_key`).
        Only firing tokens (CI > threshold) are candidates; one per block spreads the contexts over the text.
        """
        B, T, C = g.shape
        key = context_key(g, a)  # (B, T, C) float64
        key = torch.where(g > self.threshold, key, torch.full_like(key, -math.inf))
        block_key, block_t = key.max(dim=1)  # (B, C): best token of each block
        k = min(self.n_candidates, B)
        vals, b = block_key.topk(k, dim=0)  # (k, C)
        t = block_t.gather(0, b)  # (k, C)
        offsets = torch.arange(-self.left, self.right + 1)  # (W,)
        tp = t[..., None] + offsets + self.left  # (k, C, W) positions in the padded sequence
        g_pad = F.pad(g, (0, 0, self.left, self.right))  # (B, T + left + right, C)
        ids_pad = F.pad(ids, (self.left, self.right), value=-1)  # (B, T + left + right)
        win_ci = g_pad[b[..., None], tp, torch.arange(C)[None, :, None]]  # (k, C, W)
        win_tok = ids_pad[b[..., None], tp].to(torch.int32)  # (k, C, W)
        all_key = torch.cat([s["cand_key"][li], vals])  # (K2 + k, C)
        keep = all_key.topk(self.n_candidates, dim=0).indices  # (K2, C)
        idx3 = keep[..., None].expand(-1, -1, win_ci.shape[-1])
        s["cand_key"][li] = all_key.gather(0, keep)
        s["cand_tok"][li] = torch.cat([s["cand_tok"][li], win_tok]).gather(0, idx3)
        s["cand_ci"][li] = torch.cat([s["cand_ci"][li], win_ci]).gather(0, idx3)
        s["cand_pos"][li] = torch.cat([s["cand_pos"][li], t]).gather(0, keep)

    def _select_contexts(self, s, c: int, rate: torch.Tensor) -> list[tuple[float, int, int]]:
        """The contexts shown for component ``c``: [(key, language index, candidate index)], best first.

        Each language contributes in proportion to its share of the component's firing rate (``rate`` (L,)),
        by :func:`proportional_quota`; duplicate windows are dropped.
        """
        L = len(self.langs)
        keys, windows = s["cand_key"][:, :, c].tolist(), s["cand_tok"][:, :, c].tolist()  # (L, K2), (L, K2, W)
        candidates = sorted(((keys[li][j], li, j) for li in range(L) for j in range(self.n_candidates)
                             if math.isfinite(keys[li][j])), key=lambda x: (-x[0], x[1], x[2]))
        seen, pools = set(), [[] for _ in range(L)]
        for key, li, j in candidates:  # a window seen twice (even in two languages) is kept once, where it ranks best
            window = tuple(windows[li][j])
            if window not in seen:
                seen.add(window)
                pools[li].append((key, li, j))
        quota = proportional_quota(rate.tolist(), [len(p) for p in pools], self.top_k)
        chosen = [item for li in range(L) for item in pools[li][: quota[li]]]
        chosen.sort(key=lambda x: (-x[0], x[1], x[2]))
        return chosen

    def finalize(self, meta: Mapping[str, Any] | None = None) -> ComponentStats:
        """The accumulated :class:`ComponentStats` (the accumulator can keep going afterwards)."""
        out: dict[str, dict[str, torch.Tensor]] = {name: {} for name in ComponentStats._PER_MODULE}
        for m in self.modules:
            s, C = self.state[m], self.n_components[m]
            for name in ("fire_counts", "ci_sum", "ci_hist", "act_sum", "act_pos", "pos_fire"):
                out[name][m] = s[name].clone()
            ids, cnts = _top_pairs(s["pair_keys"], s["pair_counts"], C, self._vocab_cap, self.n_top_tokens)
            out["top_token_ids"][m], out["top_token_counts"][m] = ids, cnts
            fired = s["fire_counts"].sum(0) > 0  # (C,)
            rows = fired.nonzero(as_tuple=True)[0]
            index = torch.full((C,), -1, dtype=torch.long)
            index[rows] = torch.arange(rows.numel())
            out["ctx_index"][m] = index
            R, K, W = rows.numel(), self.top_k, self.left + 1 + self.right
            tok, cis = torch.full((R, K, W), -1, dtype=torch.int32), torch.zeros(R, K, W)
            score, lang, pos = torch.zeros(R, K), torch.zeros(R, K, dtype=torch.int8), torch.zeros(R, K, dtype=torch.int32)
            rate = s["fire_counts"] / torch.tensor([float(max(n, 1)) for n in self.tokens_per_lang.values()],
                                                   dtype=torch.float64)[:, None]  # (L, C)
            for r, c in enumerate(rows.tolist()):
                for k, (_, li, j) in enumerate(self._select_contexts(s, c, rate[:, c])):
                    tok[r, k], cis[r, k] = s["cand_tok"][li, j, c], s["cand_ci"][li, j, c]
                    score[r, k], lang[r, k], pos[r, k] = cis[r, k, self.left], li, int(s["cand_pos"][li, j, c])
            small = self.token_freq.numel() <= torch.iinfo(torch.int16).max  # token ids fit in int16: half the bytes
            out["ctx_score"][m] = score
            out["ctx_tokens"][m] = tok.to(torch.int16 if small else torch.int32).contiguous()
            out["ctx_ci"][m] = cis.to(torch.float16).contiguous()
            out["ctx_lang"][m] = lang
            out["ctx_pos"][m] = pos
        return ComponentStats(
            modules=list(self.modules),
            langs=list(self.langs),
            threshold=self.threshold,
            context_left=self.left,
            context_right=self.right,
            tokens_per_lang=dict(self.tokens_per_lang),
            token_freq=self.token_freq.clone(),
            meta=dict(meta or {}),
            **out,
        )


def proportional_quota(shares: Sequence[float], available: Sequence[int], k: int) -> list[int]:
    """How many of ``k`` shown items each group gets, in proportion to ``shares`` (largest remainder), never
    more than a group has ``available``: the largest total n <= k whose proportional split fits is used, so
    the mix stays proportional when a group runs short (it is not topped up from the others).

    shares: (G,) non-negative weights (e.g. a component's firing rate per language); available: (G,) counts.
    Returns (G,) ints summing to n. Groups with share 0 get 0.
    """
    total = float(sum(shares))
    if total <= 0 or k <= 0:
        return [0] * len(shares)
    for n in range(min(k, sum(a for a, w in zip(available, shares) if w > 0)), 0, -1):
        exact = [n * w / total for w in shares]
        quota = [int(math.floor(x)) for x in exact]
        order = sorted(range(len(shares)), key=lambda i: (-(exact[i] - quota[i]), -shares[i], i))
        for i in order[: n - sum(quota)]:
            quota[i] += 1
        if all(q <= a for q, a in zip(quota, available)):
            return quota
    return [0] * len(shares)


def _top_pairs(keys: torch.Tensor, counts: torch.Tensor, C: int, cap: int, n_top: int) -> tuple[torch.Tensor, torch.Tensor]:
    """From packed (component * cap + token) sparse counts: (C, n_top) most frequent token ids (-1 pad) and counts."""
    ids = torch.full((C, n_top), -1, dtype=torch.long)
    out = torch.zeros(C, n_top, dtype=torch.float64)
    if keys.numel() == 0:
        return ids, out
    comp, tok = keys // cap, keys % cap
    # sort by component, then by count descending (stable sorts, token id ascending breaks ties)
    order = torch.sort(counts, descending=True, stable=True).indices
    order = order[torch.sort(comp[order], stable=True).indices]
    comp, tok, cnt = comp[order], tok[order], counts[order]
    start = torch.searchsorted(comp, torch.arange(C))  # first entry of each component
    rank = torch.arange(comp.numel()) - start[comp]
    sel = rank < n_top
    ids[comp[sel], rank[sel]] = tok[sel]
    out[comp[sel], rank[sel]] = cnt[sel]
    return ids, out


# -------------------------------------------------------------------------------------------- derived views
def live_components(stats: ComponentStats, min_fires: int = 1) -> list[ComponentId]:
    """Components that fire (CI > threshold) on at least ``min_fires`` harvested tokens, in module order."""
    return [
        (m, int(c))
        for m in stats.modules
        for c in (stats.fire_counts[m].sum(0) >= max(min_fires, 1)).nonzero(as_tuple=True)[0].tolist()
    ]


def specificity_scores(stats: ComponentStats, module: str, min_fires: int = 5, min_rate: float = 1e-3) -> torch.Tensor:
    """(L, C) language specificity of every component of ``module`` for every language.

    Score[l, c] = r_l / Σ_l' r_l', where r_l is the component's firing rate on language l (fires / tokens of l):
    the share of its firings that fall on language l once every language is weighted as if equally much text had
    been harvested. 1 = fires only on l; 1/L = no preference. Where the component fires on fewer than
    ``min_fires`` tokens of l, or at a rate below ``min_rate`` on l, the score is 0 (too rare to judge).
    """
    rate = stats.firing_rate(module)  # (L, C)
    total = rate.sum(0)
    share = torch.where(total > 0, rate / total.clamp(min=1e-30), torch.zeros_like(rate))
    ok = (stats.fire_counts[module] >= min_fires) & (rate >= min_rate)
    return torch.where(ok, share, torch.zeros_like(share))


def language_specificity(
    stats: ComponentStats, lang: str = "de", min_fires: int = 5, min_rate: float = 1e-3
) -> list[tuple[ComponentId, float]]:
    """Components ranked by how specific they are to ``lang``, high -> low (score: :func:`specificity_scores`).

    Ties are broken by the ``lang`` firing rate (higher first), then by name.
    """
    if lang not in stats.langs:
        raise KeyError(f"language {lang!r} not harvested; the stats hold {stats.langs}")
    li = stats.langs.index(lang)
    scored = []
    for m in stats.modules:
        score = specificity_scores(stats, m, min_fires, min_rate)[li]
        rate = stats.firing_rate(m)[li]
        scored += [((m, c), float(score[c]), float(rate[c])) for c in range(score.numel())]
    scored.sort(key=lambda x: (-x[1], -x[2], x[0][0], x[0][1]))
    return [(cid, s) for cid, s, _ in scored]
