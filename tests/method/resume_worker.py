"""A decomposition that a test stops on purpose: ``python -m tests.method.resume_worker OUT KIND FAULT AT``.

KIND: ``lm`` (a tiny Llama fed an endless seeded token stream: the full decomposition) or ``targeted`` (a toy
model of superposition, TMS 5-2, fed ``feature_subset_batches``: the capability stream and the rest stream).
FAULT: ``none``, ``KILL``, ``INT`` or ``TERM``: the signal the process sends itself when its stream hands out
batch number AT (0-based; AT steps are done then), or ``KILL-SAVE``: SIGKILL halfway through writing the
``training_state.pt`` of the checkpoint at step AT, after its ``components.safetensors`` was replaced. Both
kinds run ``STEPS`` steps with a checkpoint every ``EVERY`` steps, on one torch thread. A stop by SIGINT or
SIGTERM prints the ``TrainingInterrupted`` line and exits with its code (130, 143).
"""

from __future__ import annotations

import io
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

STEPS, EVERY = 9, 3


def lm_stream(seed: int) -> Iterator[Tensor]:
    """Endless (4, 16) token batches of a 40-token vocabulary from a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    while True:
        yield torch.randint(0, 40, (4, 16), generator=g)


def faulty(stream: Iterator[Tensor], fault: str, at: int) -> Iterator[Tensor]:
    """``stream``, sending the signal ``fault`` (KILL, INT, TERM; anything else: none) to this process as it
    hands out batch ``at``."""
    for i, batch in enumerate(stream):
        if i == at and fault in ("KILL", "INT", "TERM"):
            os.kill(os.getpid(), getattr(signal, f"SIG{fault}"))
        yield batch


def setup(kind: str, out: str | Path, fault: str = "none", at: int = -1):
    """(model, batches, config, rest_batches) of the run ``kind`` writing its checkpoints to ``out``; the
    capability stream carries the fault."""
    from vpd_lite.method.config import DecomposeConfig

    if kind == "lm":
        from transformers import LlamaConfig, LlamaForCausalLM

        torch.manual_seed(0)
        model = LlamaForCausalLM(LlamaConfig(vocab_size=40, hidden_size=16, intermediate_size=24, num_hidden_layers=1,
                                             num_attention_heads=2, num_key_value_heads=2)).eval()
        config = DecomposeConfig(targets={"*.q_proj": 8, "*.v_proj": 8, "*.up_proj": 12, "*.down_proj": 12},
                                 ci_hidden=8, ci_global_d_model=16, ci_global_blocks=1, ci_global_heads=2,
                                 ci_global_mlp_ratio=2, steps=STEPS, batch_size=4, seq_len=16, faithfulness_warmup_steps=20,
                                 log_every=2, checkpoint_every=EVERY, checkpoint_dir=str(out), seed=3, device="cpu")
        return model, faulty(lm_stream(7), fault, at), config, None
    from vpd_lite.models.toy_models import TMSModel, feature_subset_batches, tms_decompose_config

    torch.manual_seed(0)
    model = TMSModel(5, 2)
    config = tms_decompose_config(5, 2, C=3, steps=STEPS, seed=3, capability="features 0,1", batch_size=64,
                                  faithfulness_warmup_steps=0, log_every=2, checkpoint_every=EVERY,
                                  checkpoint_dir=str(out))
    return (model, faulty(feature_subset_batches(5, [0, 1], 0.05, 64, 11), fault, at), config,
            feature_subset_batches(5, [2, 3, 4], 0.05, 64, 12))


def run(kind: str, out: str | Path, fault: str = "none", at: int = -1, resume: bool = False):
    """Decompose as ``setup`` says (continuing the run in ``out`` when ``resume``); returns (cm, history)."""
    from vpd_lite.method.decompose import decompose

    model, batches, config, rest = setup(kind, out, fault, at)
    return decompose(model, batches, config, resume_from=out if resume else None, progress=False,
                     rest_batches=rest)


def kill_while_saving_state(at: int) -> None:
    """SIGKILL this process halfway through writing the training state of the checkpoint at step ``at``."""
    from vpd_lite.method import checkpoint

    real = checkpoint.atomic_write_bytes

    def write(path, data: bytes) -> None:
        path = Path(path)
        if path.name == checkpoint.STATE_FILE:
            sealed = torch.load(io.BytesIO(data), weights_only=False)
            if torch.load(io.BytesIO(sealed["sealed_state"]), weights_only=False)["step"] == at:
                (path.parent / f".{path.name}.half.tmp").write_bytes(data[: len(data) // 2])
                os.kill(os.getpid(), signal.SIGKILL)
        real(path, data)

    checkpoint.atomic_write_bytes = write


def worker_main(run_fn, args: list[str]) -> int:
    """A worker process's body: ``args`` end with FAULT and AT; one torch thread, the KILL-SAVE fault armed,
    ``run_fn(*args[:-2], fault, at)`` run, and a stop by SIGINT / SIGTERM printed as its ``TrainingInterrupted``
    line with its exit code (130, 143) returned."""
    from vpd_lite.method.resumable import TrainingInterrupted

    fault, at = args[-2], int(args[-1])
    torch.set_num_threads(1)
    if fault == "KILL-SAVE":
        kill_while_saving_state(at)
    try:
        run_fn(*args[:-2], fault, at)
    except TrainingInterrupted as stop:
        print(f"stopped: {stop}", flush=True)
        return stop.exit_code
    return 0


def tensor_differences(ta: dict[str, Tensor], tb: dict[str, Tensor]) -> dict[str, float]:
    """{name: max |a - b|} over the union of two runs' saved tensors (inf where one lacks it, or the shapes or
    dtypes differ); 0 everywhere means bit-identical (tested with torch.equal)."""
    diff = {}
    for k in sorted(ta.keys() | tb.keys()):
        x, y = ta.get(k), tb.get(k)
        if x is None or y is None or x.shape != y.shape or x.dtype != y.dtype:
            diff[k] = float("inf")
        elif torch.equal(x, y):
            diff[k] = 0.0
        else:
            diff[k] = float((x.double() - y.double()).abs().max()) if x.numel() else float("inf")
    return diff


def folder_bytes(folder: Path) -> dict[str, bytes]:
    """{file name: bytes} of every file in ``folder`` (empty when it does not exist): to show a refusal
    changed nothing."""
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def main() -> int:
    out, kind = sys.argv[1], sys.argv[2]
    return worker_main(lambda fault, at: run(kind, out, fault, at), sys.argv[3:])


if __name__ == "__main__":
    sys.exit(main())
