"""Fault injection on the target's training: a 9-step training of the tiny target (checkpoint every 3,
``target_worker``) stopped by SIGKILL, SIGINT or SIGTERM in a subprocess -- at a checkpoint, between checkpoints, or
while a checkpoint is being written -- and resumed ends with every saved tensor (weights, loss curve, tokenizer)
equal, to the bit, to the training that was never stopped; a bad resume is refused before any step and changes
nothing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.method.resume_worker import folder_bytes, tensor_differences
from tests.models import target_worker
from tests.watch import run_watched
from vpd_lite.method.checkpoint import load_training_state, write_training_state
from vpd_lite.method.resumable import TrainingInterrupted

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    return target_worker.write_small_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, corpus_dir) -> Path:
    """The folder of the training that was never stopped."""
    out = tmp_path_factory.mktemp("uninterrupted") / "target"
    target_worker.run(corpus_dir, out)
    return out


def saved_tensors(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor and number a finished target folder saves, by name: the weights, each loss-curve number and
    the tokenizer's bytes."""
    out = {f"model/{k}": v for k, v in load_file(folder / "model.safetensors").items()}
    for i, row in enumerate(json.loads((folder / "loss_curve.json").read_text())):
        for k, v in row.items():
            out[f"loss_curve/{i}/{k}"] = torch.tensor(v, dtype=torch.float64)
    out["tokenizer.json"] = torch.frombuffer(bytearray((folder / "tokenizer.json").read_bytes()), dtype=torch.uint8)
    return out


def max_differences(a: Path, b: Path) -> dict[str, float]:
    """{name: max |a - b|} over both folders' saved tensors (``resume_worker.tensor_differences``)."""
    return tensor_differences(saved_tensors(a), saved_tensors(b))


# (fault, batch it strikes at, step of the checkpoint it leaves, exit code)
FAULTS = [
    ("KILL", 3, 3, -9),       # at a checkpoint: step 3 saved, killed asking for step 4's batch
    ("KILL", 4, 3, -9),       # between checkpoints: step 4 done and lost
    ("KILL-SAVE", 6, 3, -9),  # halfway through writing step 6's training state: step 3's is the last whole one
    ("INT", 4, 5, 130),       # Ctrl-C during step 5: it finishes, is saved, the training stops
    ("TERM", 7, 8, 143),      # SIGTERM during step 8
]


@pytest.mark.parametrize("fault,at,saved_step,code", FAULTS, ids=[f"{f}-{a}" for f, a, _, _ in FAULTS])
def test_resumed_training_is_bit_identical(tmp_path, corpus_dir, uninterrupted, fault, at, saved_step, code):
    out = tmp_path / "target"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = run_watched([sys.executable, "-m", "tests.models.target_worker", corpus_dir, out, fault, at],
                       f"the target training stopped by {fault}", cwd=ROOT, env=env)
    assert proc.returncode == code, proc.stderr[-2000:]
    if code > 0:
        assert proc.stdout.strip().splitlines() == [
            f"stopped: SIG{fault} at step {saved_step} of {target_worker.STEPS}: checkpoint written to {out}"]
    assert load_training_state(out)["step"] == saved_step
    target_worker.run(corpus_dir, out, resume=True)
    assert not (out / "training_state.pt").exists()  # the finished model replaced the checkpoint
    diff = max_differences(uninterrupted, out)
    print(f"\ntarget {fault} at batch {at}: resumed from step {saved_step}; {len(diff)} saved tensors, "
          f"max |difference| {max(diff.values())}")
    assert {k: d for k, d in diff.items() if d != 0.0} == {}


@pytest.fixture(scope="module")
def stopped(tmp_path_factory, corpus_dir) -> Path:
    """A training stopped by SIGINT (in this process) after step 2; its checkpoint is at step 2."""
    out = tmp_path_factory.mktemp("stopped") / "target"
    with pytest.raises(TrainingInterrupted) as stop:
        target_worker.run(corpus_dir, out, "INT", 1)
    assert (stop.value.step, stop.value.exit_code) == (2, 128 + signal.SIGINT)
    return out




BAD = {
    "no folder": (FileNotFoundError, "does not exist: nothing to resume"),
    "no checkpoint": (FileNotFoundError, "has no training_state.pt to resume from"),
    "finished run": (ValueError, "holds a finished target model: nothing to resume"),
    "corrupted state": (ValueError, "training_state.pt is corrupted"),
    "truncated state": (ValueError, "training_state.pt is corrupted or truncated"),
    "a decomposition's state": (ValueError, "is not the training state of a target model"),
    "other seed": (ValueError, "another recipe (seed = 2 there, 3 now)"),
    "more steps": (ValueError, "another recipe (steps = 9 there, 12 now)"),
    "other threads": (ValueError, "another recipe (num_threads = 1 there, 2 now; threads = 1 there, 2 now)"),
    "other corpus": (ValueError, "training batches given to resume are not the ones the run was trained on"),
}


@pytest.mark.parametrize("bad", list(BAD))
def test_a_bad_resume_is_refused_before_any_step_and_changes_nothing(tmp_path, corpus_dir, stopped, uninterrupted,
                                                                     bad, monkeypatch):
    from vpd_lite.models import target as target_mod
    from vpd_lite.models.corpus import load_corpus

    out = tmp_path / "target"
    kw = {}
    if bad == "no checkpoint":
        out.mkdir()
    elif bad == "finished run":
        shutil.copytree(uninterrupted, out)
    elif bad != "no folder":
        shutil.copytree(stopped, out)
    state = out / "training_state.pt"
    if bad == "corrupted state":
        blob = bytearray(state.read_bytes())
        blob[len(blob) // 2] ^= 0xFF
        state.write_bytes(bytes(blob))
    elif bad == "truncated state":
        state.write_bytes(state.read_bytes()[:1000])
    elif bad == "a decomposition's state":
        write_training_state(out, {"step": 3, "config": {"seed": 2}})
    elif bad == "other seed":
        kw["seed"] = 3
    elif bad == "more steps":
        kw["config"] = target_worker.config()
        kw["config"].steps = 12
    elif bad == "other threads":
        kw["config"] = target_worker.config()
        kw["config"].num_threads = 2
    elif bad == "other corpus":
        kw["corpus"] = {k: v for k, v in load_corpus(corpus_dir).items() if k != "it"}
    monkeypatch.setattr(target_mod, "train_tokenizer", lambda *a, **k: pytest.fail("trained before refusing"))
    before = folder_bytes(out)
    error, expected = BAD[bad]
    with pytest.raises(error, match=expected.replace("(", r"\(").replace(")", r"\)")):
        target_worker.run(corpus_dir, out, resume=True, **kw)
    assert folder_bytes(out) == before
