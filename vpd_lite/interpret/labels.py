"""``vpd_lite.interpret.labels``: human-readable labels for components, from their statistics alone (no LLM
needed), plus an optional LLM labeller.

The offline labeller (:func:`offline_label`, :func:`label_components`) reads a component's
:class:`~vpd_lite.interpret.statistics.ComponentStats`: its language profile (share of its firing *rate* on each
language), the tokens it fires on most, where in the sequence it fires and how often, and writes a short label
such as::

    German text: 93% of firings on German; top tokens 'der', ' und', ' die'; fires on 2.1% of tokens

with a category ("German", "French", ..., "foreign languages" = several non-English languages and hardly any
English, "all languages", "mixed (German, French)", "rare") and a specificity score (the share of its top
language). Labels are saved with provenance (:func:`save_labels`, :func:`make_provenance`) to
``data/labels.json``, read back with :func:`load_labels` and searched with :func:`search_labels`.

The optional LLM labeller (:class:`OpenAIChatLabeller`, :func:`llm_label_components`) talks to any
OpenAI-compatible chat endpoint configured by ``VPD_LITE_LLM_BASE_URL``, ``VPD_LITE_LLM_API_KEY`` and
``VPD_LITE_LLM_MODEL`` using only the standard library. It is never used by default.

The command that rebuilds the shipped labels is ``python -m vpd_lite.labelling`` (``vpd_lite.commands.labelling``).
The provenance string written into labels.json still names ``vpd_lite.labelling.offline_label`` (kept: it is
recorded in the shipped ``data/labels.json``).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from vpd_lite import __version__
from vpd_lite.interpret.harvest import decomposition_fingerprint
from vpd_lite.interpret.ids import ComponentId, component_key, parse_component_id
from vpd_lite.interpret.statistics import ComponentStats, live_components
from vpd_lite.method.checkpoint import atomic_write_bytes
from vpd_lite.models.corpus import LANG_NAMES, lang_name
from vpd_lite.models.paths import labels_path

_LABELS_FORMAT = "vpd-lite-labels/1"


@dataclass
class LabelConfig:
    """Thresholds of the offline labeller (shares are of the component's language profile, summing to 1)."""

    single_lang_share: float = 0.7  # top language >= this share -> category is that language
    foreign_max_english: float = 0.1  # "foreign languages": English share at most this (half a fair share) ...
    foreign_min_share: float = 0.15  # ... and at least `foreign_min_langs` other languages at this share or more
    foreign_min_langs: int = 3
    all_langs_min_fair: float = 0.5  # "all languages": every language >= this fraction of a fair 1/L share
    mixed_min_share: float = 0.2  # languages named in a "mixed (...)" category
    min_fires: int = 5  # fewer firings -> category "rare"
    n_tokens: int = 3  # top tokens shown in the label
    start_share: float = 0.5  # share of firings at position 0 that earns "mostly at the first position"


@dataclass
class ComponentLabel:
    """The label of one component, with what it was made from."""

    component: str  # "module:index"
    label: str
    category: str
    specificity: float  # share of the component's firing rate on `top_lang` (1 = only that language)
    top_lang: str
    profile: dict[str, float]  # share per language
    frequency: float  # fraction of harvested tokens it fires on
    n_fires: int
    top_tokens: list[str] = field(default_factory=list)
    source: str = "offline"
    rates: dict[str, float] = field(default_factory=dict)  # firing rate per language (fraction of its tokens)

    @property
    def cid(self) -> ComponentId:
        """The component id as a (module, index) tuple."""
        return parse_component_id(self.component)


def token_text(tokenizer: Any | None, token_id: int) -> str:
    """Printable form of one token: its decoded text quoted (``' und'``), or ``#id`` without a tokenizer."""
    if tokenizer is None:
        return f"#{token_id}"
    text = tokenizer.decode([int(token_id)])
    return repr(text)


def categorize(profile: dict[str, float], config: LabelConfig = LabelConfig()) -> str:
    """Category from a language profile (shares summing to 1): a language name, "foreign languages",
    "all languages", "mostly <language>" (top language under the single-language share, no second language
    at ``mixed_min_share``) or "mixed (A, B)". See :class:`LabelConfig` for the thresholds."""
    if not profile or sum(profile.values()) <= 0:
        return "never fires"
    top = max(profile, key=lambda lang: (profile[lang], lang))
    if profile[top] >= config.single_lang_share:
        return lang_name(top)
    others = [lang for lang in profile if lang != "en" and profile[lang] >= config.foreign_min_share]
    if "en" in profile and profile["en"] <= config.foreign_max_english and len(others) >= config.foreign_min_langs:
        return "foreign languages"
    fair = 1.0 / len(profile)
    if min(profile.values()) >= config.all_langs_min_fair * fair:
        return "all languages"
    named = sorted((lang for lang in profile if profile[lang] >= config.mixed_min_share), key=lambda lang: -profile[lang])
    if len(named) <= 1:
        return f"mostly {lang_name(top)}"
    return "mixed (" + ", ".join(lang_name(lang) for lang in named) + ")"


def percent(x: float) -> str:
    """A fraction (0..1) as a percentage with enough digits for small rates: 12.3%, 0.42%, <0.01%, 0%."""
    if x <= 0:
        return "0%"
    if x < 1e-4:
        return "<0.01%"
    return f"{x:.2%}" if x < 0.01 else f"{x:.1%}"


def _profile_text(profile: dict[str, float]) -> str:
    return ", ".join(f"{lang} {share:.0%}" for lang, share in sorted(profile.items(), key=lambda kv: -kv[1]))


def offline_label(
    stats: ComponentStats, cid: ComponentId, tokenizer: Any | None = None, config: LabelConfig = LabelConfig()
) -> ComponentLabel:
    """Label one component from its statistics (language profile, top tokens, position pattern, frequency)."""
    module, c = parse_component_id(cid)
    profile = stats.language_profile((module, c))
    n_fires = stats.n_fires((module, c))
    freq = float(stats.firing_frequency(module)[c])
    rates = {lang: float(r) for lang, r in zip(stats.langs, stats.firing_rate(module)[:, c])}
    top_lang = max(profile, key=lambda lang: (profile[lang], lang))
    tokens = [token_text(tokenizer, t) for t, _ in stats.top_tokens((module, c))[: config.n_tokens]]
    if n_fires < config.min_fires:
        category = "rare" if n_fires > 0 else "never fires"
        label = f"Rare: fires on {n_fires} of {stats.n_tokens} tokens"
        if tokens:
            label += f" ({', '.join(tokens)})"
        return ComponentLabel(component_key((module, c)), label, category, profile[top_lang], top_lang, profile,
                              freq, n_fires, tokens, rates=rates)
    category = categorize(profile, config)
    if category in LANG_NAMES.values():
        head = f"{category} text: {profile[top_lang]:.0%} of firings on {category}"
    elif category == "foreign languages":
        head = f"Foreign languages ({_profile_text(profile)})"
    elif category == "all languages":
        head = f"All languages ({_profile_text(profile)})"
    else:
        head = f"{category[0].upper()}{category[1:]}: {_profile_text(profile)}"
    parts = [head]
    if tokens:
        parts.append("top tokens " + ", ".join(tokens))
    pos = stats.pos_fire[module][c]
    if float(pos.sum()) > 0 and float(pos[0] / pos.sum()) >= config.start_share:
        parts.append("mostly at the first position")
    parts.append(f"fires on {percent(freq)} of tokens")
    return ComponentLabel(component_key((module, c)), "; ".join(parts), category, profile[top_lang], top_lang,
                          profile, freq, n_fires, tokens, rates=rates)


def label_components(
    stats: ComponentStats,
    tokenizer: Any | None = None,
    components: Iterable[ComponentId] | None = None,
    config: LabelConfig = LabelConfig(),
    progress: bool = False,
) -> list[ComponentLabel]:
    """Offline labels for ``components`` (default: every live component), in the order given."""
    cids = list(components) if components is not None else live_components(stats)
    bar = tqdm(cids, desc="label", disable=not progress, leave=False)
    return [offline_label(stats, cid, tokenizer, config) for cid in bar]


def search_labels(labels: Sequence[ComponentLabel], query: str) -> list[ComponentLabel]:
    """Labels matching ``query`` (case-insensitive), best first.

    Exact category matches come first ("German" finds category "German"), then categories containing the query
    ("German" also finds "mixed (German, French)"), then labels whose text contains it. Within each group a
    language-name query ranks by the firing rate on that language (the German-only component that fires on the
    most German text first); any other query by overall firing frequency.
    """
    q = query.strip().lower()
    if not q:
        raise ValueError("search query is empty")
    code = next((k for k, v in LANG_NAMES.items() if v.lower() == q), None)
    hits = []
    for lab in labels:
        if lab.category.lower() == q:
            tier = 0
        elif q in lab.category.lower():
            tier = 1
        elif q in lab.label.lower():
            tier = 2
        else:
            continue
        score = lab.rates.get(code, lab.profile.get(code, 0.0)) if code else lab.frequency
        hits.append((tier, -score, -lab.frequency, lab.component, lab))
    hits.sort(key=lambda h: h[:4])
    return [h[-1] for h in hits]


# ----------------------------------------------------------------------------------------------- save / load
def save_labels(labels: Sequence[ComponentLabel], path: str | Path | None = None, provenance: dict | None = None) -> Path:
    """Write labels (and provenance: decomposition fingerprint, the command that rebuilt them, ...) as JSON, atomically."""

    path = Path(path) if path is not None else labels_path()
    doc = {"format": _LABELS_FORMAT, "provenance": dict(provenance or {}), "labels": [asdict(lab) for lab in labels]}
    atomic_write_bytes(path, (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))
    return path


def _read_doc(path: str | Path | None) -> tuple[Path, dict]:

    path = Path(path) if path is not None else labels_path()
    if not path.is_file():
        raise FileNotFoundError(f"no labels at {path} (build them with `python -m vpd_lite.labelling`)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(doc, dict) or doc.get("format") != _LABELS_FORMAT:
        raise ValueError(f"{path} is not a vpd-lite labels file (format {_LABELS_FORMAT!r})")
    return path, doc


def load_labels(path: str | Path | None = None) -> list[ComponentLabel]:
    """Labels saved by :func:`save_labels` (default ``data/labels.json``)."""
    _, doc = _read_doc(path)
    return [ComponentLabel(**entry) for entry in doc["labels"]]


# -------------------------------------------------------------------------------------------- LLM labeller
@dataclass
class LLMConfig:
    """An OpenAI-compatible chat endpoint. ``base_url`` is the API root, e.g. ``http://localhost:8000/v1``."""

    base_url: str
    model: str
    api_key: str | None = None
    timeout_s: float = 60.0
    max_tokens: int = 60
    temperature: float = 0.0

    @classmethod
    def from_env(cls, environ: dict | None = None) -> "LLMConfig | None":
        """From ``VPD_LITE_LLM_BASE_URL`` / ``_MODEL`` / ``_API_KEY``; None when no base URL is set."""
        env = os.environ if environ is None else environ
        base = env.get("VPD_LITE_LLM_BASE_URL", "").strip()
        if not base:
            return None
        model = env.get("VPD_LITE_LLM_MODEL", "").strip()
        if not model:
            raise ValueError("VPD_LITE_LLM_BASE_URL is set but VPD_LITE_LLM_MODEL is empty: name the model to use")
        return cls(base_url=base, model=model, api_key=env.get("VPD_LITE_LLM_API_KEY") or None)


class OpenAIChatLabeller:
    """Callable ``prompt -> reply`` over an OpenAI-compatible ``/chat/completions`` endpoint (stdlib only)."""

    SYSTEM = ("You label components of a small multilingual language model. Reply with one short label "
              "(at most 12 words) saying what the component responds to. No preamble.")

    def __init__(self, config: LLMConfig) -> None:
        self.config = config

    def __call__(self, prompt: str) -> str:
        cfg = self.config
        body = json.dumps({
            "model": cfg.model,
            "messages": [{"role": "system", "content": self.SYSTEM}, {"role": "user", "content": prompt}],
            "max_tokens": cfg.max_tokens,
            "temperature": cfg.temperature,
        }).encode()
        headers = {"Content-Type": "application/json"}
        if cfg.api_key:
            headers["Authorization"] = f"Bearer {cfg.api_key}"
        url = cfg.base_url.rstrip("/") + "/chat/completions"
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=cfg.timeout_s) as response:
                reply = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as err:
            raise RuntimeError(f"LLM endpoint {url} answered HTTP {err.code}: {err.read()[:200]!r}") from err
        except urllib.error.URLError as err:
            raise RuntimeError(f"cannot reach LLM endpoint {url}: {err.reason}") from err
        try:
            return str(reply["choices"][0]["message"]["content"]).strip()
        except (KeyError, IndexError, TypeError) as err:
            raise RuntimeError(f"unexpected reply from {url}: {str(reply)[:200]}") from err


def llm_prompt(stats: ComponentStats, cid: ComponentId, tokenizer: Any | None = None, n_contexts: int = 8) -> str:
    """The prompt shown to an LLM for one component: its language profile, top tokens and top contexts,
    with the firing token marked as ``[[token]]``."""
    module, c = parse_component_id(cid)
    profile = stats.language_profile((module, c))
    lines = [
        f"Component {c} of matrix {module}.",
        f"Fires on {percent(float(stats.firing_frequency(module)[c]))} of tokens.",
        "Share of firings per language: " + _profile_text({lang_name(k): v for k, v in profile.items()}) + ".",
        "Most frequent tokens where it fires: "
        + ", ".join(token_text(tokenizer, t) for t, _ in stats.top_tokens((module, c))[:10]) + ".",
        "Contexts where it is most active (the active token in [[ ]]):",
    ]
    for ctx in stats.contexts((module, c))[:n_contexts]:
        pieces = [tokenizer.decode([t]) if tokenizer is not None else f"#{t} " for t in ctx.tokens]
        pieces[ctx.centre] = f"[[{pieces[ctx.centre]}]]"
        lines.append(f"- ({lang_name(ctx.lang)}) " + "".join(pieces).strip())
    return "\n".join(lines)


def llm_label_components(
    stats: ComponentStats,
    components: Iterable[ComponentId],
    chat: Callable[[str], str],
    tokenizer: Any | None = None,
    config: LabelConfig = LabelConfig(),
    progress: bool = True,
) -> list[ComponentLabel]:
    """Labels written by an LLM (``chat``: prompt -> reply, e.g. an :class:`OpenAIChatLabeller`).

    Category, profile and specificity still come from the statistics; only the label text is the LLM's.
    """
    out = []
    for cid in tqdm(list(components), desc="llm label", disable=not progress, leave=False):
        base = offline_label(stats, cid, tokenizer, config)
        reply = chat(llm_prompt(stats, cid, tokenizer)).strip().splitlines()
        text = reply[0].strip() if reply and reply[0].strip() else ""
        if not text:
            raise RuntimeError(f"the LLM returned an empty label for {base.component}")
        base.label, base.source = text, "llm"
        out.append(base)
    return out


# ------------------------------------------------------------------------------------- tables, provenance, CLI
def labels_table(labels: Sequence[ComponentLabel], n: int | None = 20, lang: str | None = None):
    """A pandas DataFrame of the first ``n`` labels (component, category, specificity, frequency, label). With
    ``lang`` (a language code) a column "fires on <Language>" after the category: each component's firing rate on
    that language (fraction of its tokens), the ranking of :func:`search_labels` for a language query."""
    import pandas as pd

    head = ["component", "category"] + ([f"fires on {lang_name(lang)}"] if lang else [])
    cols = head + ["specificity", "frequency", "label"]
    rows = []
    for lab in list(labels)[:n]:
        row = {"component": lab.component, "category": lab.category}
        if lang:
            row[f"fires on {lang_name(lang)}"] = round(lab.rates.get(lang, 0.0), 4)
        row.update({"specificity": round(lab.specificity, 3), "frequency": round(lab.frequency, 4),
                    "label": lab.label})
        rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def show_labels(labels: Sequence[ComponentLabel], n: int | None = 20, lang: str | None = None):
    """:func:`labels_table` for display in a notebook: the whole label text, wrapped (a plain DataFrame's display
    cuts long cells at 50 characters, even inside a number), left-aligned, no index column. ``lang``: as in
    :func:`labels_table` (pass the language you searched for, to show the column the search ranks by)."""
    rates = {f"fires on {lang_name(lang)}": "{:.1%}"} if lang else {}
    return (labels_table(labels, n, lang).style.hide(axis="index")
            .format({"specificity": "{:.2f}", "frequency": "{:.2%}", **rates})
            .set_properties(subset=["label"], **{"text-align": "left", "white-space": "normal"}))


def make_provenance(cm: Any, stats: ComponentStats, command: str) -> dict[str, Any]:
    """What the labels were built from: decomposition fingerprint (and the checkpoint's own hashes when it was
    loaded from disk), how much text was harvested, the firing threshold, and the command that rebuilt them."""
    import datetime

    meta = getattr(cm, "metadata", None) or {}
    return {
        "decomposition_fingerprint": decomposition_fingerprint(cm),
        "checkpoint_tensors_sha256": meta.get("tensors_sha256"),
        "target_fingerprint": meta.get("target_fingerprint"),
        "harvested_tokens_per_lang": dict(stats.tokens_per_lang),
        "firing_threshold": stats.threshold,
        "labeller": "offline statistical labeller (vpd_lite.labelling.offline_label, default LabelConfig)",
        "command": command,
        "vpd_lite_version": __version__,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
