"""Fault injection: a decomposition stopped by SIGKILL, SIGINT or SIGTERM in a subprocess -- at a checkpoint,
between checkpoints, or while a checkpoint is being written -- and resumed, ends with every saved tensor equal,
to the bit, to the run that was never stopped (the full decomposition of a tiny Llama, and the targeted
decomposition's two streams on TMS 5-2). The runs are 9 steps with a checkpoint every 3 (``resume_worker``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.method import resume_worker
from tests.method.resume_worker import folder_bytes, tensor_differences
from tests.watch import run_watched
from vpd_lite.method.checkpoint import load_training_state
from vpd_lite.method.devices import torch_threads

ROOT = Path(__file__).resolve().parents[2]


def saved_tensors(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor and number a run's folder saves, by path: components.safetensors and training_state.pt
    (the wall clock, and where the run wrote to, left out)."""
    out = {f"components/{k}": v for k, v in load_file(folder / "components.safetensors").items()}

    def walk(prefix: str, x) -> None:
        if isinstance(x, torch.Tensor):
            out[prefix] = x
        elif isinstance(x, dict):
            for k, v in x.items():
                if k not in ("elapsed_s", "checkpoint_dir"):
                    walk(f"{prefix}/{k}", v)
        elif isinstance(x, (list, tuple)):
            for i, v in enumerate(x):
                walk(f"{prefix}/{i}", v)
        elif isinstance(x, (int, float, bool)):
            out[prefix] = torch.tensor(x, dtype=torch.float64)

    walk("state", load_training_state(folder))
    return out


def max_differences(a: Path, b: Path) -> dict[str, float]:
    """{name: max |a - b|} over both folders' saved tensors (``resume_worker.tensor_differences``)."""
    return tensor_differences(saved_tensors(a), saved_tensors(b))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """{kind: folder of the run that was never stopped}."""
    out = {}
    with torch_threads(1):
        for kind in ("lm", "targeted"):
            out[kind] = tmp_path_factory.mktemp(f"uninterrupted-{kind}")
            resume_worker.run(kind, out[kind])
    return out


# (kind, fault, batch it strikes at, step of the checkpoint it leaves, exit code)
FAULTS = [
    ("lm", "KILL", 6, 6, -9),        # at a checkpoint: step 6 saved, killed asking for step 7's batch
    ("lm", "KILL", 7, 6, -9),        # between checkpoints: step 7 done and lost
    ("lm", "KILL-SAVE", 6, 3, -9),   # halfway through writing step 6's training state: step 3's is the last whole one
    ("lm", "INT", 4, 5, 130),        # Ctrl-C during step 5: it finishes, is saved, the run stops
    ("targeted", "KILL", 7, 6, -9),  # both streams, between checkpoints
    ("targeted", "TERM", 3, 4, 143),  # SIGTERM during step 4
]


@pytest.mark.parametrize("kind,fault,at,saved_step,code", FAULTS, ids=[f"{k}-{f}-{a}" for k, f, a, _, _ in FAULTS])
def test_resumed_run_is_bit_identical(tmp_path, uninterrupted, kind, fault, at, saved_step, code):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = run_watched([sys.executable, "-m", "tests.method.resume_worker", out, kind, fault, at],
                       f"the {kind} run stopped by {fault}", cwd=ROOT, env=env)
    assert proc.returncode == code, proc.stderr[-2000:]
    if code > 0:
        lines = proc.stdout.strip().splitlines()
        assert lines == [f"stopped: SIG{fault} at step {saved_step} of 9: checkpoint written to {out}"]
    assert load_training_state(out)["step"] == saved_step
    resume_worker.run(kind, out, resume=True)
    diff = max_differences(uninterrupted[kind], out)
    print(f"\n{kind} {fault} at batch {at}: resumed from step {saved_step}; {len(diff)} saved tensors, "
          f"max |difference| {max(diff.values())}")
    assert {k: d for k, d in diff.items() if d != 0.0} == {}




@pytest.mark.parametrize("bad", ["other model", "other batches", "corrupted state", "truncated state",
                                 "other seed"])
def test_a_bad_resume_is_refused_before_any_step_and_changes_nothing(tmp_path, uninterrupted, bad):
    import shutil

    from vpd_lite.method.decompose import decompose

    out = shutil.copytree(uninterrupted["lm"], tmp_path / "run")
    model, batches, config, _ = resume_worker.setup("lm", out)
    state = out / "training_state.pt"
    if bad == "other model":
        torch.manual_seed(1)
        model = type(model)(model.config).eval()
        expected = "different target model"
    elif bad == "other batches":
        batches = resume_worker.lm_stream(8)
        expected = "batches given to resume are not the ones the run was trained on"
    elif bad == "corrupted state":
        blob = bytearray(state.read_bytes())
        blob[len(blob) // 2] ^= 0xFF
        state.write_bytes(bytes(blob))
        expected = "training_state.pt is corrupted"
    elif bad == "truncated state":
        state.write_bytes(state.read_bytes()[:1000])
        expected = "training_state.pt is corrupted or truncated"
    else:
        config.seed, expected = 4, "another configuration (seed = 3 there, 4 now)"
    before = folder_bytes(out)
    with pytest.raises(ValueError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        decompose(model, batches, config, resume_from=out, progress=False)
    assert folder_bytes(out) == before


def test_a_run_without_checkpoints_stopped_by_the_stop_button_says_it_cannot_continue(tmp_path):
    """A notebook's live run has no checkpoint folder: a KeyboardInterrupt (what the kernel's stop button raises)
    during a step becomes ``TrainingStopped``, naming the steps done and saying the run cannot continue."""
    from vpd_lite.method.decompose import decompose
    from vpd_lite.method.resumable import TrainingStopped

    model, _, config, _ = resume_worker.setup("lm", tmp_path / "unused")
    config.checkpoint_dir = None

    def stream():
        for i, batch in enumerate(resume_worker.lm_stream(7)):
            if i == 4:
                raise KeyboardInterrupt
            yield batch

    with torch_threads(1), pytest.raises(TrainingStopped, match=r"^stopped at step 4 of 9\. This run writes no "
                                                                   r"checkpoints, so it cannot continue"):
        decompose(model, stream(), config, progress=False)
    assert not (tmp_path / "unused").exists()

