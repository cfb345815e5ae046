"""``torchrun ... -m vpd_lite.distributed``: decompose on several processes (data-parallel shards); the process
group start-up (``resolve_backend``, ``init_from_env``) and the command.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys

import torch
import torch.distributed as dist

from vpd_lite.commands import cli
from vpd_lite.commands.cli import (
    default_run_dir,
    nonneg_int,
    out_folder,
    positive_float,
    positive_int,
)
from vpd_lite.commands.decompose import check_resume
from vpd_lite.method.checkpoint import STATE_FILE, save_decomposition
from vpd_lite.method.config import DecomposeConfig, override_config
from vpd_lite.method.decompose import TrainingInterrupted, decompose
from vpd_lite.method.devices import DeviceUnavailableError, no_cuda_reason
from vpd_lite.method.sharding import Shard
from vpd_lite.models import corpus
from vpd_lite.models.architectures import default_targets
from vpd_lite.models.hub import load_pretrained, model_source, quiet_model_loading
from vpd_lite.models.target import load_target


def resolve_backend(backend: str | None = None) -> str:
    """The collective backend: ``backend`` as given, or by default nccl when CUDA is available and gloo else.

    Raises:
        DeviceUnavailableError: nccl asked for on a machine without CUDA (nccl only runs on GPUs).
    """

    if backend is None:
        return "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl" and not torch.cuda.is_available():
        raise DeviceUnavailableError(f"backend 'nccl' needs CUDA GPUs, and CUDA is not available on this machine "
                                     f"({no_cuda_reason()}); use gloo, or leave --backend out to pick by device")
    return backend


def init_from_env(backend: str | None = None) -> Shard:
    """Join the process group that ``torchrun`` describes in the environment (RANK, WORLD_SIZE, MASTER_ADDR,
    MASTER_PORT) with :func:`resolve_backend`'s backend; a plain ``python`` run (no WORLD_SIZE) gives the
    single-process ``Shard()``."""
    backend = resolve_backend(backend)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Shard()
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return Shard(dist.get_rank(), dist.get_world_size())


def main(argv: list[str] | None = None) -> int:
    """CLI (run under torchrun): decompose a causal LM data-parallel; rank 0 writes the checkpoint to ``--out``
    (default: a new run folder). Errors are raised as exceptions (``vpd_lite.commands.cli.run_main`` prints them)."""
    from pathlib import Path

    ap = cli.make_parser("distributed", "Data-parallel VPD decomposition (launch with torchrun --nproc_per_node N "
                                    "-m vpd_lite.distributed ...).")
    ap.add_argument("--model", default=None, help="from_pretrained path or hub name (default: the shipped target)")
    ap.add_argument("--tokenizer", default=None, help="tokenizer path or name (default: the model's)")
    ap.add_argument("--out", type=out_folder, default=None,
                    help="output folder, written by rank 0 (default: a new runs/distributed-<time> folder)")
    ap.add_argument("--steps", type=positive_int, default=DecomposeConfig.steps,
                    help="training steps (default: %(default)s)")
    ap.add_argument("--global-batch", type=positive_int, default=DecomposeConfig.batch_size,
                    help="rows per step over all ranks, split equally (default: %(default)s)")
    ap.add_argument("--seq-len", type=positive_int, default=DecomposeConfig.seq_len,
                    help="tokens per row (default: %(default)s)")
    ap.add_argument("--c-per-rank", type=positive_float, default=None,
                    help="give every attention and MLP matrix C = this x its rank, from the architecture preset "
                         "(default: as the shipped decomposition, Llama matrices with C = 128 for attention and 256 "
                         "for MLP)")
    ap.add_argument("--backend", default=None, choices=("gloo", "nccl"),
                    help="gloo (CPU) or nccl (GPU) (default: nccl when CUDA is available, else gloo)")
    ap.add_argument("--seed", type=nonneg_int, default=0, help="seed of the batches and masks (default: %(default)s)")
    ap.add_argument("--checkpoint-every", type=nonneg_int, default=DecomposeConfig.checkpoint_every,
                    help="rank 0 writes a checkpoint to --out every this many steps; 0: only on a stop (Ctrl-C, "
                         "SIGTERM) (default: %(default)s)")
    ap.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a DecomposeConfig number/string/bool field, e.g. --set ci_type=shared_mlp "
                         "(default: none)")
    ap.add_argument("--resume", action="store_true",
                    help="continue the unfinished (or interrupted) run in --out from its last checkpoint, every rank "
                         "from the same step, bit-identically: give the settings and the number of processes it was "
                         "started with")
    args = ap.parse_args(argv)
    try:  # a bad --set is refused before any process starts work
        config = override_config(DecomposeConfig(steps=args.steps, batch_size=args.global_batch,
                                                 seq_len=args.seq_len, seed=args.seed,
                                                 checkpoint_every=args.checkpoint_every), args.set)
    except ValueError as err:
        ap.error(str(err))
    resolve_backend(args.backend)  # before any work: nccl without CUDA is refused here
    for name, what in ((args.model, "model"), (args.tokenizer, "tokenizer")):
        if name is not None:
            model_source(name, what)  # and a model folder that does not exist
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if args.global_batch % world:
        ap.error(f"--global-batch {args.global_batch} does not split equally over {world} ranks")
    if args.resume and args.out is None:
        ap.error("--resume needs --out naming the folder of the unfinished run")
    if args.out is None:
        args.out = str(default_run_dir("distributed"))

    shard = init_from_env(args.backend)
    quiet_model_loading()  # one bar per rank would be noise
    if args.model is None:
        model, tokenizer = load_target()
    else:
        model, tokenizer = load_pretrained(args.model, args.tokenizer)
    if args.c_per_rank is not None:
        config.targets = default_targets(model, args.c_per_rank)
    if args.resume:  # every rank checks the same folder and refuses alike; rank 0 alone says so
        with contextlib.nullcontext() if shard.rank == 0 else contextlib.redirect_stderr(io.StringIO()):
            check_resume(ap, args.out, config, None, torch.get_num_threads(),
                         "start every process with OMP_NUM_THREADS={n}")
    config.checkpoint_dir = str(args.out)
    batches = corpus.train_batches(tokenizer, corpus.load_corpus(), seq_len=config.seq_len,
                                   batch_size=config.batch_size, seed=config.seed)
    try:
        cm, history = decompose(model, batches, config, progress=shard.rank == 0, shard=shard,
                                resume_from=args.out if args.resume else None)
    except TrainingInterrupted as stop:
        if shard.rank == 0:
            print(cli.stopped_line("distributed", stop, list(sys.argv[1:] if argv is None else argv), Path(args.out),
                                   launcher=("torchrun", "--nproc_per_node", str(shard.world))), file=sys.stderr)
        if shard.active:
            dist.destroy_process_group()
        return stop.exit_code
    if shard.rank == 0:
        config.checkpoint_dir = None  # where this run wrote to is not part of the decomposition's record
        save_decomposition(cm, Path(args.out), config, history=history)
        (Path(args.out) / STATE_FILE).unlink(missing_ok=True)  # only needed to resume an unfinished run
        print(f"decomposition written to {args.out}")
    if shard.active:
        dist.barrier()
        dist.destroy_process_group()
    return 0


def run() -> None:
    """``python -m vpd_lite.distributed``: :func:`main` on the command line's arguments; errors as one line."""
    sys.exit(cli.run_main(main, "distributed"))
