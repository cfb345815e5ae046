"""Worker for ``test_distributed.test_time_budget_with_a_late_rank_stops_every_rank_together`` (run by torchrun).

Rank 1 starts ``--late`` seconds after rank 0; both decompose a tiny Llama with a wall-clock budget. Each rank
prints one JSON line: its rank and the last step it trained.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import torch.distributed as dist
from transformers import LlamaConfig, LlamaForCausalLM

from vpd_lite.commands.distributed import init_from_env
from vpd_lite.method.config import DecomposeConfig
from vpd_lite.method.decompose import decompose


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--late", type=float, default=4.0)
    ap.add_argument("--minutes", type=float, default=0.15)
    args = ap.parse_args()
    torch.set_num_threads(1)
    shard = init_from_env("gloo")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=16))
    config = DecomposeConfig(targets={"*.mlp.up_proj": 4}, steps=10**6, batch_size=4, seq_len=8, ci_hidden=4,
                             faithfulness_warmup_steps=1, time_budget_minutes=args.minutes, checkpoint_every=0,
                             log_every=1, device="cpu")
    gen = torch.Generator().manual_seed(0)

    def batches():
        while True:
            yield torch.randint(0, 64, (4, 8), generator=gen)

    if shard.rank == 1:
        time.sleep(args.late)  # this rank's clock starts late
    _, history = decompose(model, batches(), config, progress=False, shard=shard)
    last = max((r["step"] for r in history if "stochastic_recon" in r), default=0)
    print(json.dumps({"rank": shard.rank, "last_step": last}), flush=True)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
