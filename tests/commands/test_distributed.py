"""Data-parallel decomposition: 2 CPU processes (gloo, launched by torchrun) match 1 process on the same data."""

from __future__ import annotations

import json
import os
import re
import socket
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import LlamaConfig, LlamaForCausalLM

from tests.watch import run_watched
from vpd_lite.method.sharding import Shard, average_gradients, sum_across_ranks
from vpd_lite.models.corpus import LANGS, load_corpus
from vpd_lite.models.target import train_tokenizer

ROOT = Path(__file__).resolve().parents[2]


def test_shard_rows_split_the_global_batch():
    assert [Shard(r, 2).local_rows(8) for r in range(2)] == [slice(0, 4), slice(4, 8)]
    assert Shard().local_rows(8) == slice(0, 8)
    with pytest.raises(ValueError, match="equal shards"):
        Shard(0, 3).local_rows(8)
    with pytest.raises(ValueError, match="rank"):
        Shard(2, 2)


def test_single_process_collectives_are_identities():
    x = torch.randn(3, requires_grad=True)
    assert sum_across_ranks(x, Shard()) is x
    x.grad = torch.ones(3)
    average_gradients([x], Shard())
    torch.testing.assert_close(x.grad, torch.ones(3))


def test_nccl_without_cuda_is_refused_before_any_work(monkeypatch, capsys):
    import vpd_lite.commands.distributed as distributed
    from vpd_lite.commands.cli import run_main

    def never(*args, **kwargs):
        raise AssertionError("the run started")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(distributed, "init_from_env", never)
    assert distributed.resolve_backend(None) == "gloo" and distributed.resolve_backend("gloo") == "gloo"
    assert run_main(distributed.main, "distributed", ["--backend", "nccl"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: backend 'nccl' needs CUDA GPUs" in err and "use gloo" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str], env: dict[str, str]) -> None:
    proc = run_watched(cmd, "the data-parallel run", cwd=ROOT, env=env)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path):
    texts = [t for lang in LANGS for t in load_corpus(langs=[lang])[lang]["train"]["text"][:40]]
    tokenizer = train_tokenizer(texts, vocab_size=300)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                         max_position_embeddings=64, initializer_range=0.5))
    model.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    args = ["-m", "vpd_lite.distributed", "--model", str(tmp_path / "tiny"), "--steps", "3",
            "--global-batch", "4", "--seq-len", "32", "--c-per-rank", "1"]
    env = {k: v for k, v in os.environ.items() if k not in {"WORLD_SIZE", "RANK", "LOCAL_RANK"}}
    env["OMP_NUM_THREADS"] = "1"
    _run([sys.executable, *args, "--out", str(tmp_path / "one")], env)
    _run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
          "--master_port", str(_free_port()), *args, "--out", str(tmp_path / "two"), "--backend", "gloo"], env)

    one = load_file(tmp_path / "one" / "components.safetensors")
    two = load_file(tmp_path / "two" / "components.safetensors")
    assert one.keys() == two.keys()
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=1e-6, msg=lambda m, k=k: f"{k}: {m}")

    # the runs really trained: three logged steps with the same losses in both
    h_one = json.loads((tmp_path / "one" / "history.json").read_text())
    h_two = json.loads((tmp_path / "two" / "history.json").read_text())
    steps_one = [r for r in h_one if "stochastic_recon" in r]
    steps_two = [r for r in h_two if "stochastic_recon" in r]
    assert [r["step"] for r in steps_one] == [r["step"] for r in steps_two] and steps_one[-1]["step"] == 3
    for a, b in zip(steps_one, steps_two):
        for key in ("stochastic_recon", "adversarial_recon", "faithfulness"):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-7), key


@pytest.mark.slow
def test_time_budget_with_a_late_rank_stops_every_rank_together():
    """Rank 1 starts 3 s late under a 6 s budget: the ranks agree on the elapsed time (the later clock), so
    both stop at the same step and the run ends instead of one rank waiting forever at a collective."""
    env = {k: v for k, v in os.environ.items() if k not in {"WORLD_SIZE", "RANK", "LOCAL_RANK"}}
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(Path(__file__).resolve().with_name("ddp_budget_worker.py")), "--late", "3",
           "--minutes", "0.1"]
    # the progress-based wait only guards against the hang this test is about; it is not a speed requirement
    proc = run_watched(cmd, "two ranks under a time budget", cwd=ROOT, env=env)
    assert proc.returncode == 0, f"failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    # each rank prints one JSON object; the two processes share the pipe, so their lines can run together
    rows = [json.loads(obj) for obj in re.findall(r"\{[^{}]*\}", proc.stdout)]
    assert sorted(r["rank"] for r in rows) == [0, 1]
    assert rows[0]["last_step"] == rows[1]["last_step"] > 0
