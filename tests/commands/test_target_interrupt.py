"""``python -m vpd_lite.target train`` stopped by SIGINT: one line with the step and the command that continues it,
the signal's exit code; that command continues bit-identically; a bad ``--resume`` is one line and changes nothing
(the training loop's own behaviour is in tests/models/test_target_resume.py)."""

from __future__ import annotations

import signal

import pytest
import torch
from safetensors.torch import load_file

from tests.method.resume_worker import faulty
from tests.models.target_worker import write_small_corpus
from vpd_lite.commands import target as command
from vpd_lite.models import target as target_mod


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory):
    return write_small_corpus(tmp_path_factory.mktemp("corpus"))


def test_ctrl_c_prints_how_to_continue_and_the_continued_training_is_bit_identical(tmp_path, corpus_dir, monkeypatch,
                                                                                   capsys):
    monkeypatch.setenv("VPD_LITE_QUICK", "1")
    args = ["train", "--corpus", str(corpus_dir), "--steps", "9", "--checkpoint-every", "3", "--seed", "2"]
    assert command.main([*args, "--out", str(tmp_path / "whole")]) == 0
    real = target_mod.train_batches
    monkeypatch.setattr(target_mod, "train_batches", lambda *a, **k: faulty(real(*a, **k), "INT", 4))
    out = tmp_path / "stopped"
    capsys.readouterr()
    assert command.main([*args, "--out", str(out)]) == 128 + signal.SIGINT
    err = capsys.readouterr().err.strip().splitlines()  # the progress bar's lines, then the one line
    again = f"python -m vpd_lite.target {' '.join(args)} --out {out} --resume"
    assert err[-1:] == [f"python -m vpd_lite.target: stopped by SIGINT after step 5 of 9; checkpoint written; "
                   f"continue with: {again}"]
    monkeypatch.setattr(target_mod, "train_batches", real)
    assert command.main(again.split()[3:]) == 0
    assert f"resuming the training in {out} from its checkpoint at step 5 of 9" in capsys.readouterr().out
    whole, resumed = load_file(tmp_path / "whole" / "model.safetensors"), load_file(out / "model.safetensors")
    assert whole.keys() == resumed.keys() and all(torch.equal(whole[k], resumed[k]) for k in whole)
    assert (tmp_path / "whole" / "loss_curve.json").read_text() == (out / "loss_curve.json").read_text()


@pytest.mark.parametrize("bad,expected", [
    ("no out", "--resume needs --out naming the folder of the unfinished training"),
    ("no checkpoint", "--resume: {out} has no training_state.pt to resume from"),
])
def test_a_bad_resume_is_one_line(tmp_path, corpus_dir, monkeypatch, capsys, bad, expected):
    monkeypatch.setenv("VPD_LITE_QUICK", "1")
    out = tmp_path / "run"
    out.mkdir()
    args = ["train", "--corpus", str(corpus_dir), "--resume"] + ([] if bad == "no out" else ["--out", str(out)])
    with pytest.raises(SystemExit) as exit_:
        command.main(args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith(expected.format(out=out)) and "error:" in err[-1]
    assert list(out.iterdir()) == []
