"""``python -m vpd_lite.decompose`` stopped by SIGINT / SIGTERM: one line saying where it stopped and the command
that continues it, and the signal's exit code (the training loop's own behaviour is in tests/method/test_resume.py)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from vpd_lite.commands import cli
from vpd_lite.commands import decompose as command
from vpd_lite.method.decompose import TrainingInterrupted
from vpd_lite.models import corpus


def test_continue_command_keeps_the_arguments_and_names_the_folder():
    assert cli.continue_command("decompose", ["--quick", "--seed", "2", "--out", "runs/a b"], Path("runs/a b")) == \
        "python -m vpd_lite.decompose --quick --seed 2 --out 'runs/a b' --resume"
    assert cli.continue_command("target", ["train", "--out=x", "--resume", "--steps", "9"], Path("x")) == \
        "python -m vpd_lite.target train --steps 9 --out x --resume"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_run_prints_how_to_continue_it(tmp_path, monkeypatch, capsys, signum):
    def stopped(model, batches, config, **kw):
        raise TrainingInterrupted(12, config.steps, config.checkpoint_dir, signum)

    monkeypatch.setattr(command, "decompose", stopped)
    monkeypatch.setattr(command, "load_target", lambda: (None, None))
    monkeypatch.setattr(corpus, "load_corpus", lambda: {})
    monkeypatch.setattr(corpus, "train_batches", lambda *a, **kw: [])
    out = tmp_path / "run"
    assert command.main(["--quick", "--seed", "3", "--out", str(out)]) == 128 + signum
    err = capsys.readouterr().err.strip().splitlines()
    name = signal.Signals(signum).name
    assert err == [f"python -m vpd_lite.decompose: stopped by {name} after step 12 of 40; checkpoint written; "
                   f"continue with: python -m vpd_lite.decompose --quick --seed 3 --out {out} --resume"]
