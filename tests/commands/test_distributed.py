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


def test_a_refused_resume_is_said_once_by_rank_0(monkeypatch, tmp_path, capsys):
    """Every rank checks the folder and refuses alike (exit 2, before any step), but only rank 0 prints the line:
    a finished run (a decomposition and no training state) resumed by two processes."""
    import vpd_lite.commands.distributed as distributed

    (tmp_path / "decomposition.json").write_text("{}")
    monkeypatch.setenv("WORLD_SIZE", "2")
    said = {}
    for rank in (0, 1):
        monkeypatch.setattr(distributed, "init_from_env", lambda backend, rank=rank: Shard(rank, 2))
        with pytest.raises(SystemExit) as exc:
            distributed.main(["--out", str(tmp_path), "--resume", "--backend", "gloo"])
        said[rank] = (exc.value.code, capsys.readouterr().err)
    assert said[0][0] == said[1][0] == 2
    assert said[0][1].count("holds a finished decomposition") == 1 and said[1][1] == ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(cmd: list[str], env: dict[str, str]) -> None:
    proc = run_watched(cmd, "the data-parallel run", cwd=ROOT, env=env)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"WORLD_SIZE", "RANK", "LOCAL_RANK"}}
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _torchrun(*args: str) -> list[str]:
    """The command line of a 2-process run on this machine (gloo, a free port)."""
    return [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
            "--master_port", str(_free_port()), *args]


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory) -> tuple[Path, list[str]]:
    """A tiny Llama decomposed for 3 steps by one process (``one/``) and by two (``two/``): (folder, the
    arguments of both runs)."""
    base = tmp_path_factory.mktemp("distributed")
    texts = [t for lang in LANGS for t in load_corpus(langs=[lang])[lang]["train"]["text"][:40]]
    tokenizer = train_tokenizer(texts, vocab_size=300)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                         max_position_embeddings=64, initializer_range=0.5))
    model.save_pretrained(base / "tiny")
    tokenizer.save_pretrained(base / "tiny")
    # the per-matrix CI function: two processes sum a global CI's gradients in another order, and after 3 steps a
    # few of its 262,144 weights differ by 3e-6, above this comparison's tolerance
    args = ["--model", str(base / "tiny"), "--steps", "3", "--global-batch", "4", "--seq-len", "32",
            "--c-per-rank", "1", "--set", "ci_type=shared_mlp"]
    _run([sys.executable, "-m", "vpd_lite.distributed", *args, "--out", str(base / "one")], _env())
    _run(_torchrun("-m", "vpd_lite.distributed", *args, "--out", str(base / "two"), "--backend", "gloo"), _env())
    return base, args


@pytest.mark.slow
def test_two_processes_match_one_process(tiny_runs):
    base, _ = tiny_runs
    one = load_file(base / "one" / "components.safetensors")
    two = load_file(base / "two" / "components.safetensors")
    assert one.keys() == two.keys()
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=1e-6, msg=lambda m, k=k: f"{k}: {m}")

    # the runs really trained: three logged steps with the same losses in both
    h_one = json.loads((base / "one" / "history.json").read_text())
    h_two = json.loads((base / "two" / "history.json").read_text())
    steps_one = [r for r in h_one if "stochastic_recon" in r]
    steps_two = [r for r in h_two if "stochastic_recon" in r]
    assert [r["step"] for r in steps_one] == [r["step"] for r in steps_two] and steps_one[-1]["step"] == 3
    for a, b in zip(steps_one, steps_two):
        for key in ("stochastic_recon", "adversarial_recon", "faithfulness"):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-7), key
    assert not (base / "two" / "training_state.pt").exists()  # a finished run keeps no training state


@pytest.mark.slow
def test_a_killed_two_process_run_resumes_bit_identically(tiny_runs, tmp_path):
    """Both ranks SIGKILLed as they ask for step 3's batch (steps 1-2 done, rank 0's checkpoint of step 2 written);
    ``--resume`` with two processes again: every rank continues from step 2 and the decomposition equals the
    uninterrupted two-process run's, tensor by tensor (equal, not close)."""
    from vpd_lite.method.checkpoint import load_training_state

    base, args = tiny_runs
    out = tmp_path / "run"
    worker = str(Path(__file__).resolve().with_name("ddp_fault_worker.py"))
    killed = run_watched(_torchrun(worker, "2", *args, "--out", str(out), "--backend", "gloo",
                                   "--checkpoint-every", "1"), "the data-parallel run killed at step 3", cwd=ROOT,
                         env=_env())
    assert killed.returncode != 0 and load_training_state(out)["step"] == 2
    _run(_torchrun("-m", "vpd_lite.distributed", *args, "--out", str(out), "--backend", "gloo",
                   "--checkpoint-every", "1", "--resume"), _env())
    resumed, uninterrupted = load_file(out / "components.safetensors"), load_file(base / "two" / "components.safetensors")
    assert resumed.keys() == uninterrupted.keys()
    assert [k for k in resumed if not torch.equal(resumed[k], uninterrupted[k])] == []
    logged = [[{k: v for k, v in r.items() if k != "elapsed_s"}  # all but the wall clock
               for r in json.loads((folder / "history.json").read_text()) if "stochastic_recon" in r]
              for folder in (out, base / "two")]
    assert logged[0] == logged[1] and logged[0][-1]["step"] == 3  # the history continued too
    assert not (out / "training_state.pt").exists()


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
