"""Tests of vpd_lite.interpret.labels: categories, label text, search, save/load and the optional LLM backend."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
import torch

from vpd_lite.interpret.labels import (
    ComponentLabel,
    LabelConfig,
    LLMConfig,
    OpenAIChatLabeller,
    categorize,
    label_components,
    llm_label_components,
    llm_prompt,
    load_labels,
    offline_label,
    save_labels,
    search_labels,
)
from vpd_lite.interpret.statistics import StatsAccumulator

LANGS = ["en", "de", "fr", "es", "it"]
VOCAB = ["the", "and", "der", "und", "die", "le", "et", "el", "y", "il", "e", "of"]
# token id used for each language's text, and a second, rarer one
LANG_TOKENS = {"en": (0, 1), "de": (2, 3), "fr": (5, 6), "es": (7, 8), "it": (9, 10)}


class FakeTokenizer:
    """Only what the labeller uses: decode([id]) -> text."""

    def decode(self, ids):
        return "".join(" " + VOCAB[i] for i in ids)


def make_stats():
    """Eight components with known language patterns over 4 blocks x 8 tokens per language.

    0: German only   1: de/fr/es/it, not en   2: every language   3: French only
    4: rare (2 fires) 5: dead                 6: German + French  7: only position 0, every language
    """
    acc = StatsAccumulator({"mlp": 8}, LANGS, threshold=0.1, top_k=4, context_left=2, context_right=1)
    B, T = 4, 8
    for lang in LANGS:
        main, other = LANG_TOKENS[lang]
        ids = torch.full((B, T), main)
        ids[:, 1::2] = other  # odd positions: the language's second token
        ci = torch.zeros(B, T, 8)
        even = torch.arange(T) % 2 == 0
        ci[:, even, 0] = 0.9 if lang == "de" else 0.0
        ci[:, even, 1] = 0.0 if lang == "en" else 0.8
        ci[:, even, 2] = 0.7
        ci[:, even, 3] = 0.95 if lang == "fr" else 0.0
        if lang == "it":
            ci[0, 2, 4] = ci[1, 4, 4] = 0.5
        ci[:, even, 6] = 0.6 if lang in ("de", "fr") else 0.0
        ci[:, 0, 7] = 1.0
        acc.update(lang, ids, {"mlp": ci})
    return acc.finalize({"decomposition_fingerprint": "abc123"})


def test_categorize_profiles():
    assert categorize({"en": 0.02, "de": 0.93, "fr": 0.02, "es": 0.02, "it": 0.01}) == "German"
    assert categorize({"en": 0.05, "de": 0.3, "fr": 0.25, "es": 0.2, "it": 0.2}) == "foreign languages"
    assert categorize({"en": 0.2, "de": 0.2, "fr": 0.2, "es": 0.2, "it": 0.2}) == "all languages"
    assert categorize({"en": 0.4, "de": 0.4, "fr": 0.1, "es": 0.05, "it": 0.05}) == "mixed (English, German)"
    assert categorize({"en": 0.0, "de": 0.0}) == "never fires"
    assert categorize({"en": 0.15, "de": 0.6, "fr": 0.15, "es": 0.1}) == "mostly German"
    # English at 15% is no longer "hardly any English"
    assert categorize({"en": 0.15, "de": 0.3, "fr": 0.25, "es": 0.15, "it": 0.15}) == "all languages"
    # a stricter single-language threshold turns a 93% German component into a mixed one
    assert categorize({"en": 0.0, "de": 0.93, "fr": 0.07}, LabelConfig(single_lang_share=0.95)) == "mostly German"


def test_label_components_categories_and_text():
    stats = make_stats()
    labels = {lab.component: lab for lab in label_components(stats, FakeTokenizer())}
    assert "mlp:5" not in labels  # dead components are not live, so not labelled
    cats = {k: v.category for k, v in labels.items()}
    assert cats == {
        "mlp:0": "German", "mlp:1": "foreign languages", "mlp:2": "all languages", "mlp:3": "French",
        "mlp:4": "rare", "mlp:6": "mixed (German, French)", "mlp:7": "all languages",
    }
    de = labels["mlp:0"]
    assert de.label.startswith("German text: 100% of firings on German; top tokens ' der'")
    assert de.specificity == pytest.approx(1.0) and de.top_lang == "de"
    assert de.n_fires == 16 and de.frequency == pytest.approx(16 / 160)
    assert "fires on 10.0% of tokens" in de.label
    assert labels["mlp:1"].profile["en"] == 0.0 and labels["mlp:1"].specificity == pytest.approx(0.25)
    assert "mostly at the first position" in labels["mlp:7"].label
    assert "mostly at the first position" not in labels["mlp:2"].label
    assert labels["mlp:4"].label.startswith("Rare: fires on 2 of 160 tokens")
    # without a tokenizer, tokens show as ids
    assert "#2" in offline_label(stats, ("mlp", 0)).label


def test_search_labels():
    labels = label_components(make_stats(), FakeTokenizer())
    german = search_labels(labels, "German")
    assert [lab.component for lab in german][:2] == ["mlp:0", "mlp:6"]  # German-only first, then the mixed one
    assert {lab.component for lab in search_labels(labels, "foreign languages")} == {"mlp:1"}
    assert search_labels(labels, "french")[0].component == "mlp:3"
    assert search_labels(labels, "no such thing") == []
    with pytest.raises(ValueError):
        search_labels(labels, "  ")


def test_save_load_round_trip(tmp_path):
    labels = label_components(make_stats(), FakeTokenizer())
    prov = {"decomposition_fingerprint": "abc123", "command": "python -m vpd_lite.labelling"}
    path = save_labels(labels, tmp_path / "labels.json", prov)
    assert load_labels(path) == labels
    assert json.loads(path.read_text())["provenance"] == prov
    assert [p.name for p in tmp_path.iterdir()] == ["labels.json"]
    assert load_labels(path)[0].cid == ("mlp", 0)


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_labels(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_labels(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"labels": []}))
    with pytest.raises(ValueError, match="not a vpd-lite labels file"):
        load_labels(tmp_path / "other.json")


# ------------------------------------------------------------------------------------------------ LLM backend
def test_llm_config_from_env():
    assert LLMConfig.from_env({}) is None
    with pytest.raises(ValueError, match="VPD_LITE_LLM_MODEL"):
        LLMConfig.from_env({"VPD_LITE_LLM_BASE_URL": "http://127.0.0.1:1/v1"})
    cfg = LLMConfig.from_env({"VPD_LITE_LLM_BASE_URL": "http://h/v1", "VPD_LITE_LLM_MODEL": "m", "VPD_LITE_LLM_API_KEY": "k"})
    assert (cfg.base_url, cfg.model, cfg.api_key) == ("http://h/v1", "m", "k")


class _FakeChatServer:
    """A local OpenAI-compatible endpoint on 127.0.0.1 that records requests and answers a fixed label."""

    def __init__(self, status: int = 200):
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, self.headers.get("Authorization"), body))
                payload = json.dumps({"choices": [{"message": {"content": " German articles\nextra"}}]}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_openai_chat_labeller_against_local_server():
    stats = make_stats()
    with _FakeChatServer() as url:
        chat = OpenAIChatLabeller(LLMConfig(base_url=url, model="tiny", api_key="secret", timeout_s=5))
        labels = llm_label_components(stats, [("mlp", 0)], chat, FakeTokenizer(), progress=False)
    assert labels[0].label == "German articles" and labels[0].source == "llm"
    assert labels[0].category == "German"  # the category still comes from the statistics


def test_openai_chat_labeller_request_and_errors():
    server = _FakeChatServer()
    with server as url:
        reply = OpenAIChatLabeller(LLMConfig(base_url=url + "/", model="tiny", api_key="secret", timeout_s=5))("hi")
    assert reply.startswith("German articles")
    path, auth, body = server.requests[0]
    assert path == "/v1/chat/completions" and auth == "Bearer secret"
    assert body["model"] == "tiny" and body["messages"][-1] == {"role": "user", "content": "hi"}
    with _FakeChatServer(status=500) as url:
        with pytest.raises(RuntimeError, match="HTTP 500"):
            OpenAIChatLabeller(LLMConfig(base_url=url, model="tiny", timeout_s=5))("hi")


def test_llm_prompt_and_fake_callable():
    stats = make_stats()
    prompt = llm_prompt(stats, ("mlp", 0), FakeTokenizer())
    assert "German 100%" in prompt and "[[ der]]" in prompt
    seen = []
    labels = llm_label_components(stats, [("mlp", 3)], lambda p: seen.append(p) or "French words", progress=False)
    assert labels[0].label == "French words" and "French 100%" in seen[0]
    with pytest.raises(RuntimeError, match="empty label"):
        llm_label_components(stats, [("mlp", 3)], lambda p: "  ", progress=False)
    assert isinstance(labels[0], ComponentLabel)


def test_labels_table_and_provenance():
    from transformers import LlamaConfig, LlamaForCausalLM

    from vpd_lite.interpret.harvest import decomposition_fingerprint, harvest
    from vpd_lite.interpret.labels import labels_table, make_provenance
    from vpd_lite.method.components import ComponentModel

    labels = label_components(make_stats(), FakeTokenizer())
    table = labels_table(labels, n=3)
    assert list(table.columns) == ["component", "category", "specificity", "frequency", "label"]
    assert table["component"].tolist() == ["mlp:0", "mlp:1", "mlp:2"] and table["category"][0] == "German"
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=2)).eval()
    cm = ComponentModel(model, {"*.mlp.down_proj": 4}, seed=0)
    stats = harvest(cm, {"en": torch.randint(0, 32, (1, 8))}, progress=False)
    prov = make_provenance(cm, stats, "python -m vpd_lite.labelling")
    assert prov["decomposition_fingerprint"] == decomposition_fingerprint(cm)
    assert prov["command"] == "python -m vpd_lite.labelling" and prov["harvested_tokens_per_lang"] == {"en": 8}


def test_search_ranks_by_rate_on_the_queried_language():
    def lab(name, category, rate_de, freq):
        return ComponentLabel(name, f"{category} text", category, 0.95, "de", {"de": 0.95, "en": 0.05}, freq, 10,
                              rates={"de": rate_de, "en": 0.001})

    labels = [lab("m:0", "German", 0.001, 0.0003), lab("m:1", "German", 0.04, 0.01), lab("m:2", "all languages", 0.5, 0.4)]
    assert [x.component for x in search_labels(labels, "German")] == ["m:1", "m:0"]  # more German text first
    assert [x.component for x in search_labels(labels, "text")] == ["m:2", "m:1", "m:0"]  # by frequency


def test_percent_format():
    from vpd_lite.interpret.labels import percent

    assert [percent(x) for x in (0.0, 5e-5, 0.0042, 0.123)] == ["0%", "<0.01%", "0.42%", "12.3%"]


def test_show_labels_displays_whole_labels():
    """A plain DataFrame's notebook display cuts long cells at 50 characters (inside numbers too); show_labels does not."""
    from vpd_lite.interpret.labels import show_labels

    lab = ComponentLabel("m:0", "All languages (it 49%, en 15%, de 14%, es 13%, fr 10%); top tokens ' di', ' per', "
                         "'2'; fires on 1.45% of tokens", "all languages", 0.49, "it", {"it": 0.49}, 0.0145, 100)
    html = show_labels([lab]).to_html()
    assert "fires on 1.45% of tokens" in html and "1.45%" in html and "..." not in html
