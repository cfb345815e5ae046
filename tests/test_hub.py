"""Models by folder or hub id: a missing folder is one clear line."""

from __future__ import annotations

import pytest

from vpd_lite import hub


def test_looks_like_path():
    for path in ("./does-not-exist", "../m", "/abs/model", "~/model", "runs/a/model", "model/", "C:\\models\\m"):
        assert hub.looks_like_path(path), path
    for hub_id in ("gpt2", "EleutherAI/pythia-70m", "my-model.v2"):
        assert not hub.looks_like_path(hub_id), hub_id


def test_model_source_says_a_missing_folder_does_not_exist(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model").mkdir()
    assert hub.model_source("model") == ("model", True)
    assert hub.model_source("EleutherAI/pythia-70m") == ("EleutherAI/pythia-70m", False)
    for missing in ("./does-not-exist", tmp_path / "nothing", "runs/x/model"):
        with pytest.raises(hub.ModelNotFoundError, match="folder .* does not exist") as exc:
            hub.model_source(missing)
        assert isinstance(exc.value, FileNotFoundError) and "Repo id" not in str(exc.value)
