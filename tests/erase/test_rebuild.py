"""``reproduce --from-scratch`` repeats the recorded recipe: seeds and torch thread counts come from the shipped
records, not from the caller's ``--threads``.

The full rebuild (about 42 minutes) is not run here; the quick rebuild on a small corpus checks that each step
runs with the recorded seed and thread count.
"""

from __future__ import annotations

import json
import shutil

import pytest
import torch

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


def test_quick_rebuild_runs_on_the_recorded_seeds_and_threads(tmp_path, monkeypatch):
    data = _records(tmp_path / "data", target_seed=3, decompose_seed=5, threads=2)
    seen = {}
    train, decompose = target_mod._train, decompose_mod.decompose

    def spy_train(config, corpus, seed, tokenizer, progress):
        seen["target"] = (seed, torch.get_num_threads())
        return train(config, corpus, seed, tokenizer, progress)

    def spy_decompose(model, batches, config, *args, **kwargs):
        seen["decompose"] = (config.seed, torch.get_num_threads(), config.device)
        return decompose(model, batches, config, *args, **kwargs)

    monkeypatch.setattr(target_mod, "_train", spy_train)
    monkeypatch.setattr(decompose_mod, "decompose", spy_decompose)
    with torch_threads(3):  # what `--threads 3` sets before the rebuild
        rebuild_artefacts(tmp_path / "work", quick=True, corpus_dir=data / "corpus", progress=False)
        assert torch.get_num_threads() == 3  # restored afterwards
    assert seen == {"target": (3, 1), "decompose": (5, 2, "cpu")}
    assert (tmp_path / "work" / "labels.json").is_file()
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
