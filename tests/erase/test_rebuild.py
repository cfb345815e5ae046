"""``reproduce --from-scratch`` repeats the recorded recipe: seeds and torch thread counts come from the shipped
records, not from the caller's ``--threads``.

The full rebuild (about 42 minutes) is not run here; the quick rebuild on a small corpus checks that each step
runs with the recorded seed and thread count.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from vpd_lite.erase.rebuild import rebuild_artefacts
from vpd_lite.method import decompose as decompose_mod
from vpd_lite.method.config import DecomposeConfig
from vpd_lite.method.devices import torch_threads
from vpd_lite.models import target as target_mod
from vpd_lite.models.paths import data_dir
from vpd_lite.models.target import TargetConfig, recorded_decomposition, recorded_training


def test_shipped_records_are_read():
    config, seed = recorded_training()
    assert (config, seed) == (TargetConfig(), 0) and config.num_threads == 1
    dconfig, threads = recorded_decomposition()
    assert dconfig == DecomposeConfig(device="cpu") and threads == 2


def _records(folder, target_seed: int, decompose_seed: int, threads: int):
    """A data folder with a small corpus and training records that differ from the defaults."""
    for lang_dir in (data_dir() / "corpus").iterdir():
        if lang_dir.is_dir() and (lang_dir / "train.txt").is_file():
            dest = folder / "corpus" / lang_dir.name
            dest.mkdir(parents=True)
            for split, n in (("train", 6000), ("heldout", 3000)):
                (dest / f"{split}.txt").write_text((lang_dir / f"{split}.txt").read_text()[:n].rsplit("\n", 1)[0] + "\n")
    (folder / "target").mkdir()
    record = json.loads((data_dir() / "target" / "training_config.json").read_text()) | {"seed": target_seed}
    (folder / "target" / "training_config.json").write_text(json.dumps(record))
    (folder / "decomposition").mkdir()
    meta = json.loads((data_dir() / "decomposition" / "decomposition.json").read_text())
    meta["config"]["seed"] = decompose_seed
    (folder / "decomposition" / "decomposition.json").write_text(json.dumps(meta))
    (folder / "decomposition" / "metrics.json").write_text(json.dumps({"training": {"threads": threads}}))
    return folder


class _Seen(Exception):
    """Raised by the decomposition spy once it has seen what it came for: the rest of the rebuild (the
    decomposition itself, harvesting, labelling) is ``test_reproduce_from_scratch_quick``'s to run."""


def test_quick_rebuild_runs_on_the_recorded_seeds_and_threads(tmp_path, monkeypatch):
    data = _records(tmp_path / "data", target_seed=3, decompose_seed=5, threads=2)
    seen = {}
    train = target_mod._train

    def spy_train(config, corpus, seed, *args, **kwargs):
        seen["target"] = (seed, torch.get_num_threads())
        return train(config, corpus, seed, *args, **kwargs)

    def spy_decompose(model, batches, config, *args, **kwargs):
        seen["decompose"] = (config.seed, torch.get_num_threads(), config.device)
        raise _Seen

    monkeypatch.setattr(target_mod, "_train", spy_train)
    monkeypatch.setattr(decompose_mod, "decompose", spy_decompose)
    with torch_threads(3):  # what `--threads 3` sets before the rebuild
        with pytest.raises(_Seen):
            rebuild_artefacts(tmp_path / "work", quick=True, corpus_dir=data / "corpus", progress=False)
        assert torch.get_num_threads() == 3  # restored afterwards, even when a stage raised
    assert seen == {"target": (3, 1), "decompose": (5, 2, "cpu")}
    shutil.rmtree(tmp_path / "work")


def test_a_recorded_targeted_decomposition_is_refused_before_any_training(tmp_path):
    """--from-scratch rebuilds a full decomposition: a data folder whose decomposition/ is targeted is refused in one
    sentence before the target trains."""
    data = _records(tmp_path / "data", target_seed=0, decompose_seed=0, threads=2)
    meta_path = data / "decomposition" / "decomposition.json"
    meta = json.loads(meta_path.read_text())
    meta["config"]["capability"] = "de"
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="records a targeted decomposition of 'de'; --from-scratch rebuilds a full"):
        rebuild_artefacts(tmp_path / "work", quick=True, corpus_dir=data / "corpus", progress=False)
    assert not (tmp_path / "work" / "target").exists()


def test_a_stopped_rebuild_continues_where_it_stopped_and_ends_bit_identical(tmp_path, monkeypatch, capsys):
    """``--from-scratch`` on the same work folder again: stopped by SIGINT inside the target's training, then inside
    the decomposition, each rerun continues from that checkpoint (saying so in one line), the finished stages are
    not redone, and every file equals an uninterrupted rebuild's; a rerun of a finished rebuild redoes nothing."""
    from tests.method.resume_worker import faulty
    from vpd_lite.erase import rebuild
    from vpd_lite.interpret.labels import load_labels
    from vpd_lite.method.resumable import TrainingInterrupted

    quick = DecomposeConfig.quick
    monkeypatch.setattr(DecomposeConfig, "quick", classmethod(lambda cls, **kw: replace(quick(**kw), steps=6)))
    data = _records(tmp_path / "data", target_seed=3, decompose_seed=5, threads=1)

    def build(work, fault_in=None, at=-1):
        module = {"target": target_mod, "decomposition": rebuild}.get(fault_in)
        if module is not None:
            real = module.train_batches
            monkeypatch.setattr(module, "train_batches", lambda *a, **k: faulty(real(*a, **k), "INT", at))
        try:
            return rebuild_artefacts(work, quick=True, corpus_dir=data / "corpus", progress=False)
        finally:
            if module is not None:
                monkeypatch.setattr(module, "train_batches", real)

    build(tmp_path / "whole")
    work = tmp_path / "work"
    with pytest.raises(TrainingInterrupted, match="SIGINT at step 5 of 6"):
        build(work, "target", 4)
    capsys.readouterr()
    with pytest.raises(TrainingInterrupted, match="SIGINT at step 3 of 6"):
        build(work, "decomposition", 2)
    said = [line for line in capsys.readouterr().out.splitlines() if "continuing" in line]
    assert said == [f"[from scratch] continuing in {work}: target from its checkpoint at step 5 of 6; "
                    "decomposition to do; statistics and labels to do"]
    calls = []
    monkeypatch.setattr(target_mod, "_train", lambda *a, **k: calls.append("target"))
    build(work)
    said = [line for line in capsys.readouterr().out.splitlines() if "continuing" in line]
    assert said == [f"[from scratch] continuing in {work}: target finished; decomposition from its checkpoint at "
                    "step 3 of 6; statistics and labels to do"] and calls == []
    for name in ("target/tokenizer.json", "target/loss_curve.json"):
        assert (work / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name
    for name in ("target/model.safetensors", "decomposition/components.safetensors", rebuild.STATS_FILE):
        mine, theirs = load_file(work / name), load_file(tmp_path / "whole" / name)  # (header key order varies)
        assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine), name

    def history(folder):  # every number but the wall clock
        rows = json.loads((folder / "decomposition" / "history.json").read_text())
        return [{k: v for k, v in row.items() if k != "elapsed_s"} for row in rows]

    assert history(work) == history(tmp_path / "whole")
    assert load_labels(work / "labels.json") == load_labels(tmp_path / "whole" / "labels.json")
    assert not (work / "target" / "training_state.pt").exists()
    assert not (work / "decomposition" / "training_state.pt").exists()
    monkeypatch.setattr(decompose_mod, "decompose", lambda *a, **k: calls.append("decompose"))
    monkeypatch.setattr(rebuild, "harvest", lambda *a, **k: calls.append("harvest"))
    build(work)
    assert calls == [] and "target finished; decomposition finished; statistics and labels finished" in \
        capsys.readouterr().out
