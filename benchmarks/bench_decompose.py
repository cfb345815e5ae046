"""Benchmark one VPD training step against one forward+backward of the target model.

For each config it prints ms per VPD training step, ms per target forward+backward at the same batch, their
ratio (the overhead of VPD itself) and the peak RSS of each. The VPD steps and the target passes run in two
separate subprocesses per config, so that each peak RSS belongs to that part alone (a process's peak RSS
never goes down, so measuring both in one process would report the larger of the two for both).

Configs:
* ``default``    -- ``DecomposeConfig()`` on the shipped target (``data/target``; a random-init model of the
                    same shape if it is not there yet).
* ``pythia70m-shape`` -- the ``pythia-70m`` recipe's settings on a random-init model of that shape (6-layer
                    GPT-NeoX, d_model 512, vocab 50304; every attention and MLP matrix at C = 2 x rank), batch
                    8 x 128 so that it fits a CPU run; not part of ``both``.
* ``targeted``   -- ``DecomposeConfig.targeted_recipe("de")`` on the shipped target: one step of a targeted
                    decomposition (a capability batch and a rest batch, each at the config's batch size); not
                    part of ``both``.
* ``comparison`` -- the fixed cross-implementation config: 2-layer Llama (d_model 128, MLP 512,
                    vocab 4096, 4 heads), q/k/v/o/up/down (12 matrices) at C=256, gate left undecomposed,
                    shared-MLP CI with hidden 128, batch 32 x 128, stochastic + 1-step (persistent) PGD
                    reconstruction with subset routing, minimality and faithfulness.

Usage: ``flock /tmp/vpd-heavy.lock python benchmarks/bench_decompose.py [--config default|targeted|comparison|both]
[--steps N] [--threads N] [--mmap] [--profile] [--flops] [--set FIELD=VALUE ...]``

``--profile`` also prints where a VPD step's time goes, by part: the target pass, the causal importances, the
forward and the backward of each masked pass, minimality + faithfulness + the CI functions' backward, clipping and
AdamW, the PGD ascent, and the rest (zero_grad, the target's softmax, drawing masks, the L0 sums, the profiler's
own cost). The parts are the ranges that ``vpd_lite.method.decompose`` labels with
``torch.profiler.record_function``.

``--flops`` also counts the floating-point operations of one VPD step and of one target forward+backward
(``torch.utils.flop_counter``: matrix multiplies and attention), so that the time ratio can be set beside the
ratio of the arithmetic each does.

``--set`` changes a field of the ``default`` config, as ``python -m vpd_lite.decompose --set`` does, to time
another recipe (e.g. ``--set ci_type=shared_mlp --set ci_hidden=32 --set adversarial_routing=subset``).

``--compare-with DIR`` times the VPD step of this checkout against another checkout of vpd-lite in ``DIR``
(e.g. ``git worktree add /tmp/before main``), side by side: ``--rounds`` rounds, each running one child
process per checkout in alternating order, and prints the median ms per step of each and their ratio. On a
shared machine the alternation and the medians keep the comparison fair when the machine's speed drifts.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vpd_lite.method.config import DecomposeConfig, override_config
from vpd_lite.method.decompose import (
    build_component_model,
    keep_freed_memory,
    targeted_step,
    train_step,
    update,
)
from vpd_lite.method.pgd import PersistentPGD


def _llama(vocab: int = 4096, d: int = 128, mlp: int = 512, layers: int = 2, heads: int = 4):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=vocab, hidden_size=d, intermediate_size=mlp, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=heads, max_position_embeddings=512)
    return LlamaForCausalLM(cfg)


def _pythia70m_shape():
    """Random-init GPT-NeoX with EleutherAI/pythia-70m's architecture (no download needed)."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(0)
    cfg = GPTNeoXConfig(vocab_size=50304, hidden_size=512, num_hidden_layers=6, num_attention_heads=8,
                        intermediate_size=2048, rotary_pct=0.25, max_position_embeddings=2048)
    return GPTNeoXForCausalLM(cfg)


def _setup(name: str, overrides: list[str] | None = None):
    if name == "pythia70m-shape":
        from vpd_lite.models.architectures import default_targets
        from vpd_lite.models.recipes import RECIPES

        model = _pythia70m_shape()
        config = replace(RECIPES["pythia-70m"].decompose, targets=default_targets(model, 2.0), batch_size=8,
                         device="cpu")
        return model, config, "random-init GPT-NeoX of pythia-70m's shape (recipe config, batch 8 on CPU)"
    if name == "comparison":
        config = DecomposeConfig(
            targets={f"*.self_attn.{m}_proj": 256 for m in "qkvo"} | {"*.mlp.up_proj": 256, "*.mlp.down_proj": 256},
            ci_type="shared_mlp", ci_hidden=128, batch_size=32, seq_len=128, subset_routing=True, adversarial=True,
            adversarial_routing="subset",
        )
        return _llama(), config, "random-init 2-layer Llama (d 128, MLP 512, vocab 4096, 4 heads)"
    base = DecomposeConfig.targeted_recipe("de") if name == "targeted" else DecomposeConfig()
    config = override_config(base, overrides or [])
    try:
        from vpd_lite.models.target import load_target

        model, _ = load_target()
        desc = "shipped target (data/target)"
    except Exception as e:  # not committed yet: same shape, random weights
        model, desc = _llama(), f"random-init stand-in for data/target ({type(e).__name__})"
    return model, config, desc


def _median_ms(times: list[float]) -> float:
    times = sorted(times)
    return 1000 * times[len(times) // 2]


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


REST = "the rest (zero_grad, target softmax, mask draws, L0, profiler)"


def _profile_parts(step: Callable[[], None], steps: int) -> dict[str, float]:
    """Run ``step`` ``steps`` more times under ``torch.profiler`` and return the mean wall ms per step of each
    part that ``vpd_lite.method.decompose`` labels ("vpd: ..."), plus "whole step". The profiler adds a little
    overhead, so these are for proportions; the main table's ms/VPD step is the clean timing."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t = time.perf_counter()
        for _ in range(steps):
            step()
        whole = (time.perf_counter() - t) / steps * 1000
    parts: dict[str, float] = {}
    for event in prof.events():
        if event.name.startswith("vpd: "):  # wall time of the labelled range (includes its child ops)
            label = event.name.removeprefix("vpd: ")
            parts[label] = parts.get(label, 0.0) + event.time_range.elapsed_us() / 1000 / steps
    return {"whole step": whole, **parts}


def _count_flops(step: Callable[[], None], model) -> int:
    """Floating-point operations of one more ``step`` (``torch.utils.flop_counter``). The counter has no formula
    for the fused CPU attention kernel, so the model runs its plain ("eager") attention while it counts: the
    same products, each a counted matrix multiply. The attention is put back afterwards."""
    from torch.utils.flop_counter import FlopCounterMode

    before = getattr(model.config, "_attn_implementation", None)
    switch = before not in (None, "eager")
    if switch:
        model.set_attn_implementation("eager")
    try:
        with FlopCounterMode(display=False) as counter:
            step()
    finally:
        if switch:
            model.set_attn_implementation(before)
    return counter.get_total_flops()


def run_one(name: str, steps: int, part: str, overrides: list[str] | None = None, profile: bool = False,
            flops: bool = False) -> dict:
    """Time ``steps`` steps (after one warm-up) of one part in this process: ``"vpd"`` (a full VPD training
    step: train_step, gradient clipping, AdamW, PGD ascent) or ``"target"`` (one forward+backward of the target
    with every parameter trainable, LM loss). Each part runs in its own process so that its peak RSS is its own.
    ``overrides``: ``FIELD=VALUE`` changes to the ``default`` config. ``flops``: also count the floating-point
    operations of one more step (``torch.utils.flop_counter``: matrix multiplies and attention, which is
    most of the arithmetic; element-wise work is not counted)."""
    model, config, desc = _setup(name, overrides)
    B, T = config.batch_size, config.seq_len
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (B, T), generator=gen)

    if part == "target":
        def step() -> None:
            model.zero_grad(set_to_none=True)
            model(input_ids=ids, labels=ids, use_cache=False).loss.backward()
    else:
        cm = build_component_model(model, config)  # freezes the target
        params = cm.trainable_parameters()
        opt = torch.optim.AdamW(params, lr=config.lr)
        ppgd = PersistentPGD(cm.C_per_module, config.pgd_n_sets, cm.use_delta, config.pgd_lr, config.pgd_betas,
                             generator=gen) if config.adversarial else None

        # a targeted step's rest batch (drawn only then: a full step's routing draws, hence its counted flops,
        # follow the generator)
        rest_ids = torch.randint(0, vocab, (B, T), generator=gen) if config.targeted else None

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            if config.targeted:
                targeted_step(cm, ids, rest_ids, config, 1.0, ppgd, gen)
            else:
                train_step(cm, ids, config, 1.0, ppgd, gen)
            update(params, opt, ppgd, config.grad_clip)

    step()  # warm-up
    ms = _median_ms([_timed(step) for _ in range(steps)])
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux; before profiling
    parts = _profile_parts(step, steps) if profile and part == "vpd" else None
    if flops:
        res_flops = _count_flops(step, model)
    res = {"config": name, "part": part, "model": desc, "batch": f"{B} x {T}", "ms": ms, "peak_rss_mb": rss_mb,
           "threads": torch.get_num_threads(), "use_delta": config.use_delta}
    if part == "vpd":  # what was decomposed (the target part decomposes nothing)
        res |= {"matrices": len(cm.module_names), "C_total": sum(cm.C_per_module.values())}
    if parts is not None:
        res["parts_ms"] = parts
    if flops:
        res["gflop"] = res_flops / 1e9
    return res


def _child(name: str, part: str, args: argparse.Namespace) -> dict:
    cmd = [sys.executable, __file__, "--child", part, "--config", name, "--steps", str(args.steps)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    if args.mmap:
        cmd += ["--mmap"]
    for change in args.set:
        cmd += ["--set", change]
    if args.profile and part == "vpd":
        cmd += ["--profile"]
    if args.flops:
        cmd += ["--flops"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:  # the child's own error, not just "exit status 1"
        raise SystemExit(f"the {part} benchmark of config {name!r} failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _compare(args: argparse.Namespace) -> None:
    """Median ms per VPD step of this checkout and of ``args.compare_with``, alternating child processes."""
    import statistics

    other = Path(args.compare_with).resolve() / "benchmarks" / "bench_decompose.py"
    if not other.is_file():
        raise SystemExit(f"{other} not found: --compare-with needs the root of another vpd-lite checkout")
    scripts = {"this checkout": Path(__file__).resolve(), "other checkout": other}
    names = ["default", "comparison"] if args.config == "both" else [args.config]
    for name in names:
        times: dict[str, list[float]] = {k: [] for k in scripts}
        for r in range(args.rounds):
            order = list(scripts) if r % 2 == 0 else list(scripts)[::-1]
            for label in order:
                cmd = [sys.executable, str(scripts[label]), "--child", "vpd", "--config", name, "--steps",
                       str(args.steps)] + (["--threads", str(args.threads)] if args.threads else [])
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                times[label].append(json.loads(out.strip().splitlines()[-1])["ms"])
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{name}: ms / VPD step, median of {args.rounds} alternating runs ({args.steps} steps each): "
              f"this checkout {med['this checkout']:.1f} (runs {', '.join(f'{t:.0f}' for t in times['this checkout'])}), "
              f"other checkout {med['other checkout']:.1f} (runs {', '.join(f'{t:.0f}' for t in times['other checkout'])}); "
              f"ratio this / other {med['this checkout'] / med['other checkout']:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", choices=["default", "targeted", "comparison", "both", "pythia70m-shape"], default="both",
                    help="which configuration to time (default: %(default)s)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per run (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    ap.add_argument("--mmap", action="store_true",
                    help="keep glibc's default mmap-per-large-tensor allocation (slower; see keep_freed_memory)")
    ap.add_argument("--compare-with", default=None, metavar="DIR",
                    help="time the VPD step against the vpd-lite checkout in DIR, alternating (see above)")
    ap.add_argument("--rounds", type=int, default=6,
                    help="with --compare-with: runs per checkout (default: %(default)s)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="change a field of the default or targeted config (another recipe), e.g. --set ci_hidden=32")
    ap.add_argument("--profile", action="store_true",
                    help="also print where a VPD step's time goes, by part (target pass, CI, each masked pass, "
                         "minimality and faithfulness, optimiser, PGD ascent)")
    ap.add_argument("--flops", action="store_true",
                    help="also count the floating-point operations of a VPD step and of a target forward+backward "
                         "(matrix multiplies and attention), and their ratio: the part of the time ratio that "
                         "the arithmetic itself explains")
    ap.add_argument("--child", choices=["vpd", "target"], default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.set and args.config not in ("default", "targeted"):
        ap.error("--set changes the default or the targeted config only: use it with --config default or targeted")
    if args.set and args.compare_with:
        ap.error("--set cannot be combined with --compare-with (the other checkout times its own default)")
    if args.profile and args.compare_with:
        ap.error("--profile cannot be combined with --compare-with: profile each checkout on its own")
    if args.flops and args.compare_with:
        ap.error("--flops cannot be combined with --compare-with: count each checkout on its own")
    if args.steps < 1:
        ap.error(f"--steps must be at least 1, got {args.steps}")
    if args.threads is not None and args.threads < 1:
        ap.error(f"--threads must be at least 1, got {args.threads}")
    if args.rounds < 1:
        ap.error(f"--rounds must be at least 1, got {args.rounds}")
    try:
        override_config(DecomposeConfig(), args.set)  # a bad field or value: one line now, not in a child
    except ValueError as err:
        ap.error(str(err))
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        heap = False if args.mmap else keep_freed_memory()
        res = run_one(args.config, args.steps, args.child, args.set, args.profile, args.flops)
        print(json.dumps(res | {"heap_allocator": heap}))
        return
    if args.compare_with:
        _compare(args)
        return
    names = ["default", "comparison"] if args.config == "both" else [args.config]
    print(f"{'config':<12}{'ms/VPD step':>12}{'ms/target f+b':>15}{'ratio':>8}{'VPD peak RSS MB':>17}"
          f"{'target peak RSS MB':>20}  model / batch")
    for name in names:
        vpd, tgt = _child(name, "vpd", args), _child(name, "target", args)
        print(f"{name:<12}{vpd['ms']:>12.1f}{tgt['ms']:>15.1f}{vpd['ms'] / tgt['ms']:>8.2f}"
              f"{vpd['peak_rss_mb']:>17.0f}{tgt['peak_rss_mb']:>20.0f}  {vpd['model']}, batch {vpd['batch']}, "
              f"{vpd['matrices']} matrices, C total {vpd['C_total']}, delta {vpd['use_delta']}, "
              f"{vpd['threads']} threads, heap allocator {vpd['heap_allocator']}"
              + (f", changed: {', '.join(args.set)}" if args.set else ""))
        if "parts_ms" in vpd:
            _print_parts(vpd["parts_ms"], tgt["ms"])
        if "gflop" in vpd:
            print(f"  floating-point operations (matrix multiplies and attention): {vpd['gflop']:.2f} GFLOP per VPD "
                  f"step, {tgt['gflop']:.2f} per target forward+backward, ratio {vpd['gflop'] / tgt['gflop']:.2f}")


def _print_parts(parts: dict[str, float], target_ms: float) -> None:
    """A table of ms per step by part, as a share of the whole step and in target forward+backward passes (the
    parts are timed under the profiler, the target pass without it, so the last column reads a little high)."""
    whole = parts["whole step"]
    labelled = sorted(((k, v) for k, v in parts.items() if k != "whole step"), key=lambda kv: -kv[1])
    rest = whole - sum(ms for _, ms in labelled)
    print(f"  {'part of a VPD step (profiled)':<64}{'ms':>8}{'share':>8}{'x target f+b':>14}")
    for label, ms in labelled + [(REST, rest)]:
        print(f"  {label:<64}{ms:>8.1f}{ms / whole:>8.0%}{ms / target_ms:>14.2f}")
    print(f"  {'whole step under the profiler':<64}{whole:>8.1f}{1:>8.0%}{whole / target_ms:>14.2f}")


if __name__ == "__main__":
    main()
