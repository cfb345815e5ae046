"""Would ``torch.compile`` make a VPD step faster on this CPU? Times the parts of a step that a compiler could fuse,
eager against compiled, at the shipped recipe's sizes.

    flock /tmp/vpd-heavy.lock python benchmarks/bench_compile.py [--threads 2] [--reps 40]

Parts, each forward + backward on random tensors of the shipped recipe's shapes (batch 8 x 128 = 1,024 token
positions; hidden 128, MLP 512, vocabulary 4,096):

* a masked layer (``LinearComponents.forward`` with a delta mask), for one matrix of each shape: an attention
  matrix (128 -> 128, C = 128), an MLP up or gate matrix (128 -> 512, C = 256) and the MLP down matrix
  (512 -> 128, C = 256);
* the KL to the target through the output head (``losses.head_reconstruction_kl``), once per masked pass;
* the leaky hard sigmoids of one matrix's causal importances (``causal_importance.leaky_hard_sigmoids``, C = 256);
* the importance-minimality loss of one matrix (``losses.importance_minimality_loss``, C = 256).

For each part: the median ms over ``--reps`` calls after a warm-up (the first compiled call, which compiles, is
not counted) and compiled / eager. The last line adds the parts up as one step uses them (two masked passes,
each through 8 attention, 4 up/gate and 2 down matrices and one KL; the CI and minimality of 14 matrices, counted
at C = 256) and says how many ms of a step compiling the parts that are faster compiled would save.
``torch.compile`` needs a C++ compiler on a CPU; without one this prints why and exits 0.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vpd_lite.method.causal_importance import leaky_hard_sigmoids  # noqa: E402
from vpd_lite.method.components import LinearComponents  # noqa: E402
from vpd_lite.method.losses import (  # noqa: E402
    head_reconstruction_kl,
    importance_minimality_loss,
    target_distribution,
)

N, D, MLP, VOCAB = 1024, 128, 512, 4096  # token positions per batch (8 x 128), hidden, MLP width, vocabulary
# (part, times per VPD step): two masked passes, 2 layers x (q, k, v, o | gate, up | down); 14 matrices of CI
PER_STEP = {"masked attention matrix": 2 * 8, "masked MLP up/gate matrix": 2 * 4, "masked MLP down matrix": 2 * 2,
            "KL through the output head": 2, "leaky hard sigmoids": 14, "minimality loss": 14}


def _median_ms(fn: Callable[[], None], reps: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def _parts(gen: torch.Generator) -> dict[str, tuple[Callable, tuple, list[torch.Tensor]]]:
    """{part: (function, its arguments, the tensors whose .grad to clear)}; each function returns a tuple of
    tensors, which the timing backpropagates fixed random gradients into (no extra loss of ours to time)."""
    def randn(*shape: int, grad: bool = False) -> torch.Tensor:
        return torch.randn(*shape, generator=gen).requires_grad_(grad)

    parts = {}
    for name, (d_in, C, d_out) in {"masked attention matrix": (D, 128, D), "masked MLP up/gate matrix": (D, 256, MLP),
                                   "masked MLP down matrix": (MLP, 256, D)}.items():
        layer = LinearComponents(randn(d_out, d_in) * d_in**-0.5, None, C, generator=gen)
        x, mask = randn(N, d_in, grad=True), torch.rand(N, C, generator=gen).requires_grad_(True)
        dmask = torch.rand(N, generator=gen)
        parts[name] = (lambda x, m, d, layer=layer: (layer(x, m, d),), (x, mask, dmask),
                       [x, mask, layer.U, layer.V])
    head = torch.nn.Linear(D, VOCAB, bias=False).requires_grad_(False)
    target = target_distribution(randn(8, 128, VOCAB) * 2)
    hidden = randn(8, 128, D, grad=True)
    parts["KL through the output head"] = (lambda h, p, plogp: (head_reconstruction_kl(h, head, (p, plogp)),),
                                           (hidden, *target), [hidden])
    z = randn(8, 128, 256, grad=True)
    parts["leaky hard sigmoids"] = (lambda z: leaky_hard_sigmoids(z), (z,), [z])
    g = torch.rand(8, 128, 256, generator=gen).requires_grad_(True)
    parts["minimality loss"] = (lambda g: (importance_minimality_loss({"m": g}, 0.9),), (g,), [g])
    return parts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2, help="torch threads (default: %(default)s)")
    ap.add_argument("--reps", type=int, default=40, help="timed calls per part and mode (default: %(default)s)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows, saved = [], 0.0
    gen = torch.Generator().manual_seed(0)
    for name, (fn, inputs, leaves) in _parts(gen).items():
        compiled = torch.compile(fn)
        grads = [torch.randn(out.shape, generator=gen) for out in fn(*inputs)]

        def step(f: Callable = fn) -> None:
            torch.autograd.backward(f(*inputs), grads)
            for t in leaves:
                t.grad = None

        try:
            step(compiled)  # compiles
        except Exception as err:  # no C++ compiler, or an unsupported op: say so and stop
            print(f"torch.compile is not usable here ({type(err).__name__}: {str(err).splitlines()[0][:200]})")
            return 0
        eager_ms, compiled_ms = _median_ms(step, args.reps), _median_ms(lambda: step(compiled), args.reps)
        rows.append((name, eager_ms, compiled_ms))
        saved += PER_STEP[name] * max(0.0, eager_ms - compiled_ms)  # compile only where it is faster
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.reps} calls, "
          "forward + backward")
    print(f"{'part':<30}{'eager ms':>10}{'compiled ms':>13}{'ratio':>8}{'per step':>10}")
    for name, e, c in rows:
        print(f"{name:<30}{e:>10.2f}{c:>13.2f}{c / e:>8.2f}{PER_STEP[name]:>9}x")
    print(f"compiling only the parts that are faster compiled would save about {saved:.0f} ms of a VPD step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
