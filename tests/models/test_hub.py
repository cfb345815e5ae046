"""Models and corpora by folder or hub id: a missing folder and an unreachable hub are one clear line each.

No test here touches the network: the connection attempt is replaced, and offline mode is switched off only
together with a connection that fails.
"""

from __future__ import annotations

import socket

import pytest
from huggingface_hub import constants

from vpd_lite.models import hub


@pytest.fixture
def no_network(monkeypatch):
    """Online mode, but every connection to the hub fails at once (as on a machine without network)."""
    tried = []

    def refuse(address, timeout=None, *args, **kwargs):
        tried.append((address, timeout))
        raise OSError("Name or service not known")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return tried


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


def test_hub_reachable_tries_one_short_connection(no_network):
    assert not hub.hub_reachable()
    assert no_network == [(("huggingface.co", 443), hub.HUB_TIMEOUT_S)] and hub.HUB_TIMEOUT_S <= 5


def test_behind_a_proxy_the_hub_counts_as_reachable(no_network, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert hub.hub_reachable() and no_network == []


def test_unreachable_hub_fails_before_any_download(no_network, monkeypatch):
    import transformers

    def never(*args, **kwargs):
        raise AssertionError("from_pretrained was called")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", never)
    with pytest.raises(hub.HubUnreachableError, match="cannot be reached from this machine.*HF_HUB_OFFLINE=1"):
        hub.load_pretrained("EleutherAI/pythia-70m")
    with pytest.raises(hub.ModelNotFoundError, match="does not exist"):
        hub.load_pretrained("./does-not-exist")


def test_offline_mode_is_not_probed(monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("a connection was tried in offline mode")

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(socket, "create_connection", never)
    hub.require_hub("EleutherAI/pythia-70m")  # the libraries read the cache only: nothing to check


def test_hub_corpus_without_network_is_one_clear_error(no_network):
    from vpd_lite.models.corpus import load_corpus

    with pytest.raises(hub.HubUnreachableError, match="corpus 'papluca/language-identification'"):
        load_corpus("papluca/language-identification")
