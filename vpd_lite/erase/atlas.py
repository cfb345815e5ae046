"""The component atlas: a static web site with every live component of a decomposition, no kernel, no server.

:func:`build_atlas` gathers what is known about each component (:func:`gather`: statistics, label, ablation
effect, what it reads and writes, the edit scan's dose-response, its nearest components in other decompositions)
and writes ``index.html`` (one sortable, filterable table of every component) plus one page per component
(:mod:`vpd_lite.erase.atlas_pages`). The site opens from ``file://`` and from any static host, offline: plotly's
JavaScript bundle is copied into it once, and no page asks any other address for anything.

The command is ``python -m vpd_lite.atlas`` (``vpd_lite.commands.atlas``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pandas as pd
import torch

from vpd_lite.erase import atlas_pages
from vpd_lite.erase.across import AcrossRun, best_match, component_similarity
from vpd_lite.erase.atlas_pages import page_name
from vpd_lite.erase.edits import Direction, component_directions
from vpd_lite.erase.rebuild import Artefacts, shipped_labels
from vpd_lite.interpret.ablation import ablation_effects, target_ce
from vpd_lite.interpret.contexts import contexts_html
from vpd_lite.interpret.harvest import load_or_harvest, model_seq_len
from vpd_lite.interpret.ids import ComponentId, component_key, parse_component_id
from vpd_lite.interpret.labels import ComponentLabel, label_components
from vpd_lite.interpret.statistics import ComponentStats, live_components
from vpd_lite.method.checkpoint import load_decomposition, read_component_tensors, read_metadata
from vpd_lite.method.devices import torch_threads
from vpd_lite.models import paths
from vpd_lite.models.corpus import lang_token_blocks, load_corpus
from vpd_lite.models.target import load_target

#: How many live components get their removal measured by default: None = every one. An int N measures the N most
#: frequent ones plus every component the edit scan scanned (``--ablate N``, for a quicker build).
DEFAULT_ABLATE: int | None = None

#: Held-out blocks (128 tokens each) per language the removal is measured on. One block keeps the removal of every
#: component of the shipped decomposition (1,879) within the build's minute on a 2-core CPU (about 23 ms a
#: component on one thread, against 39 ms with two blocks; ``--ablation-blocks`` raises it).
DEFAULT_ABLATION_BLOCKS = 1

#: Training blocks per language harvested when no statistics ship with the decomposition.
DEFAULT_HARVEST_BLOCKS = 16

#: Tokens listed for what a component reads and writes.
N_TOKENS = 8

_ID_FORM = "model.layers.0.mlp.down_proj:113"


@dataclass
class ComponentFacts:
    """Everything the atlas shows about one component. Rates are fractions of tokens; ΔCE in nats/token."""

    cid: ComponentId
    label: ComponentLabel | None
    frequency: float  # fraction of all harvested tokens it fires on
    rates: dict[str, float]  # firing rate per language (fraction of that language's tokens)
    profile: dict[str, float]  # share of its firing rate per language (sums to 1)
    specificity: float  # share of its top language
    top_lang: str
    mean_ci: float  # mean CI over all harvested tokens
    n_fires: int
    ci_hist: list[float]  # token counts per CI bin, equal bins on [0, 1]
    sign: int  # +1 / -1: its activation V_cᵀx is mostly positive / negative where it fires
    fires_on: list[tuple[str, int]]  # (token text, count): the tokens it fires on most
    first_position_share: float  # share of its firings at the first position of a block
    contexts_html: str
    ablation: dict[str, float] | None  # ΔCE per language when removed (held-out), None: not measured
    reads: list[tuple[str, float]] | None  # (token, score) read most strongly, None: not defined here
    writes: list[tuple[str, float]] | None  # (token, score) promoted most, None: not defined here
    scan_best: dict[str, Any] | None  # the edit scan's best admissible edit for erasing German
    scan_curve: pd.DataFrame | None  # ΔCE per language against the prefactor s (rows sorted by s)
    nearest: list[dict[str, Any]] = field(default_factory=list)  # best matches in other decompositions

    @property
    def key(self) -> str:
        """``"module:index"``."""
        return component_key(self.cid)


@dataclass
class AtlasData:
    """What :func:`gather` found: the facts of every component shown, and where the numbers came from."""

    decomposition: Path
    components: list[ComponentFacts]
    langs: list[str]
    threshold: float
    n_tokens: int  # tokens the statistics were harvested on
    stats_how: str  # "shipped statistics ..." or "harvested live ..."
    labels_how: str
    ablation_how: str  # on what text the removal was measured
    ablated_how: str  # for how many of the components shown
    n_ablated: int
    scan_how: str
    nearest_how: str
    read_write_how: dict[str, str]  # matrix kind -> what the read / write tokens mean, in words
    n_live: int


# ------------------------------------------------------------------------------------------ component ids
def parse_component_list(text: str) -> list[ComponentId]:
    """``"m:1,m:2"`` -> [(m, 1), (m, 2)] (duplicates dropped, order kept).

    Raises ``ValueError`` (one line naming the form expected) for an empty list or a malformed id."""
    out: list[ComponentId] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            cid = parse_component_id(part)
        except ValueError:
            raise ValueError(f"{part!r} is not a component id; expected comma-separated ids like {_ID_FORM}") from None
        if cid not in out:
            out.append(cid)
    if not out:
        raise ValueError(f"no component named; expected comma-separated ids like {_ID_FORM}")
    return out


def check_components(decomposition: str | Path, components: Sequence[ComponentId]) -> None:
    """Raise ``ValueError`` (one line) when a component is not in the decomposition's matrices or is out of range,
    reading only its ``decomposition.json`` (cheap: before any model is loaded)."""
    meta = read_metadata(Path(decomposition))
    sizes = {m: int(n) for m, n in meta["C_per_module"].items()}
    for module, c in components:
        if module not in sizes:
            raise ValueError(f"{component_key((module, c))}: the decomposition has no matrix {module!r}; its matrices "
                             f"are {', '.join(sizes)}")
        if not 0 <= c < sizes[module]:
            raise ValueError(f"{component_key((module, c))}: {module} has components 0 to {sizes[module] - 1}")


# ------------------------------------------------------------------------------------------ reads and writes
def _matrix_kind(module: str) -> str:
    return module.rsplit(".", 1)[-1]


READ_WRITE_WORDS = {
    "q_proj": ("the token's embedding after the layer's input norm (the direct path from the embedding)",
               None, "it writes queries, which only decide where attention looks; they carry no token content, "
                     "so no output tokens are shown"),
    "k_proj": ("the token's embedding after the layer's input norm (the direct path from the embedding)",
               None, "it writes keys, which only decide where attention looks; they carry no token content, "
                     "so no output tokens are shown"),
    "v_proj": ("the token's embedding after the layer's input norm (the direct path from the embedding)",
               "through the rest of the model: the layer's o_proj, then the final norm and the unembedding (what "
               "the head adds to a position that attends to the token; later layers skipped)", None),
    "o_proj": ("the value a head carries from a token it attends to (the token's embedding through the input norm "
               "and v_proj)",
               "directly: it writes to the residual stream, read through the final norm and the unembedding (later "
               "layers skipped)", None),
    "gate_proj": ("the token's embedding after the norm before the MLP (the direct path from the embedding)",
                  "through the rest of the model: down_proj, then the final norm and the unembedding, as if the "
                  "MLP's other branch were +1 (a linear sketch; later layers skipped)", None),
    "up_proj": ("the token's embedding after the norm before the MLP (the direct path from the embedding)",
                "through the rest of the model: down_proj, then the final norm and the unembedding, as if the "
                "MLP's other branch were +1 (a linear sketch; later layers skipped)", None),
    "down_proj": ("the MLP's hidden units when the MLP sees only the token's embedding (the direct path)",
                  "directly: it writes to the residual stream, read through the final norm and the unembedding "
                  "(later layers skipped)", None),
}


@torch.no_grad()
def read_write_scores(model: torch.nn.Module, cm: Any, module: str) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(read (vocab, C), write (vocab, C)) token scores of every component of ``module`` of a Llama-style target.

    read[t, c]: the component's activation ``V_cᵀx`` when ``x`` is what the matrix sees of token ``t`` alone (see
    :data:`READ_WRITE_WORDS`); write[t, c]: the logit of token ``t`` that the write direction ``U_c`` adds, through
    the rest of the model as :data:`READ_WRITE_WORDS` says (up to the final norm's per-position scale). Either is
    None where it is not defined (q_proj and k_proj write no token content) or the model is not Llama-style."""
    try:
        inner = model.model
        layer_no = int(module.split(".")[2])
        layer = inner.layers[layer_no]
        emb = inner.embed_tokens.weight  # (vocab, d)
        final_norm = inner.norm.weight  # (d,)
        unembed = model.get_output_embeddings().weight  # (vocab, d)
    except (AttributeError, IndexError, ValueError):
        return None, None
    kind = _matrix_kind(module)
    V = cm.components[module].V.detach().float()  # (d_in, C)
    U = cm.components[module].U.detach().float()  # (C, d_out)
    read = write = None
    if kind in ("q_proj", "k_proj", "v_proj"):
        read = layer.input_layernorm(emb) @ V
    elif kind in ("gate_proj", "up_proj"):
        read = layer.post_attention_layernorm(emb) @ V
    elif kind == "o_proj":
        read = layer.self_attn.v_proj(layer.input_layernorm(emb)) @ V
    elif kind == "down_proj":
        x = layer.post_attention_layernorm(emb)
        mlp = layer.mlp
        read = (mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x)) @ V
    to_resid = {"o_proj": lambda u: u, "down_proj": lambda u: u,
                "v_proj": lambda u: u @ layer.self_attn.o_proj.weight.T,
                "gate_proj": lambda u: u @ layer.mlp.down_proj.weight.T,
                "up_proj": lambda u: u @ layer.mlp.down_proj.weight.T}.get(kind)
    if to_resid is not None:
        write = unembed @ (to_resid(U) * final_norm).T  # (vocab, C)
    return read, write


def _top_tokens(scores: torch.Tensor, names: Sequence[str], sign: int, n: int = N_TOKENS) -> list[tuple[str, float]]:
    """The ``n`` tokens with the largest ``sign * scores`` (scores: (vocab,)) as (token text, score), largest first."""
    s = scores.double() * (1 if sign >= 0 else -1)
    return [(names[i], float(s[i])) for i in torch.topk(s, min(n, s.numel())).indices.tolist()]


# ------------------------------------------------------------------------------------------ other decompositions
def _tensors_sha(folder: Path) -> str | None:
    try:
        return str(read_metadata(folder).get("tensors_sha256"))
    except (OSError, ValueError, KeyError):
        return None


def _kept_runs() -> list[dict[str, Any]]:
    """The runs kept by the seed and targeted experiments (``results/*_kept/*/``), each as its ``run.json`` record
    with ``folder``, ``tensors_sha256`` (of the decomposition it was measured on, from its key), and ``run`` and
    ``live`` as :meth:`vpd_lite.erase.across.AcrossRun.load` reads them (unreadable runs are left out)."""
    out = []
    for run_json in sorted(paths.results_dir().glob("*_kept/*/run.json")):
        loaded = AcrossRun.load(run_json.parent, None)
        if loaded is None:
            continue  # unreadable (AcrossRun.load has read its run.json already)
        record = json.loads(run_json.read_text())
        record["folder"] = run_json.parent
        record["run"], record["live"] = loaded
        parts = str(record.get("key", "")).split("|")
        record["tensors_sha256"] = parts[2] if len(parts) > 2 else None
        out.append(record)
    return out


def _factors(folder: Path) -> SimpleNamespace:
    """The V and U of every matrix of a decomposition folder, without a model, checked against the sha256 in
    its metadata (:func:`vpd_lite.method.checkpoint.read_component_tensors`, which raises for a corrupted file)."""
    meta, tensors = read_component_tensors(folder)
    return SimpleNamespace(components={m: SimpleNamespace(V=tensors[f"comps.{m}.V"].float(),
                                                          U=tensors[f"comps.{m}.U"].float())
                                       for m in meta["module_names"]})


def nearest_in_others(decomposition: Path, directions: Sequence[Direction]) -> tuple[dict[str, list], str]:
    """({component key: [match, ...]}, how): each component's most alike live component in every other
    decomposition of the same target whose factors are at hand (the decomposition folders of ``data/``), by
    :func:`vpd_lite.erase.across.best_match` (|cosine| of the rank-1 matrices), and its similarity to the German
    component each kept run of the seed and targeted experiments picked (those runs keep only that component).
    A match: ``{"decomposition", "component", "matrix", "read", "write", "kind"}``."""
    own_sha = _tensors_sha(decomposition)
    target_fp = read_metadata(decomposition).get("target_fingerprint")
    runs = _kept_runs()
    out: dict[str, list] = {component_key(d.component): [] for d in directions}
    used, used_shas = [], []
    data = paths.data_dir()
    for folder in sorted(p.parent for p in data.glob("*/decomposition.json")):
        sha = _tensors_sha(folder)
        if sha is None or sha == own_sha or read_metadata(folder).get("target_fingerprint") != target_fp:
            continue
        live = None
        for run in runs:
            if run["tensors_sha256"] and sha.startswith(str(run["tensors_sha256"])):
                live = run["live"]
                break
        if live is None:
            continue  # which of its components are live is not known here
        other = _factors(folder)
        name = f"data/{folder.name}"
        used.append(name)
        used_shas.append(sha)
        for d in directions:
            match = best_match(d, other, live)
            if match:
                out[component_key(d.component)].append({"decomposition": name, "kind": "nearest", **match})
    picks = [r for r in runs if r.get("tensors_sha256") and r.get("target_fingerprint") == target_fp
             and not any(str(sha).startswith(str(r["tensors_sha256"])) for sha in [own_sha, *used_shas])]
    # (a kept run of this decomposition, or of one already searched whole above, would list it twice)
    for run in picks:
        pick = run["run"].direction
        for d in directions:
            if d.module == pick.module:
                sim = component_similarity(d, pick)
                out[component_key(d.component)].append(
                    {"decomposition": f"{run['folder'].parent.name}/{run['folder'].name}", "kind": "pick",
                     "component": component_key(pick.component), "matrix": abs(sim["matrix"]),
                     "read": sim["read"], "write": sim["write"]})
    how = ("nearest live component in " + ", ".join(used) if used else
           "no other decomposition of this target with its factors at hand")
    if picks:
        how += (f"; the German component picked in each of {len(picks)} kept runs of the seed and targeted "
                "experiments, listed where it is in this component's matrix (only that component is kept of those "
                "decompositions, so no nearest component can be looked up there)")
    return out, how


# ------------------------------------------------------------------------------------------ edit scan results
def shipped_scan(decomposition: Path, folder: Path | None = None) -> tuple[pd.DataFrame | None, pd.DataFrame | None, str]:
    """(best rows for erasing German, curves, how): the shipped edit scan tables ``results/edit_scan_best.csv`` and
    ``results/edit_scan_curves.csv`` (keyed by ``component``, ``"module:index"``; ``best`` has one row per
    component and erased language ``target``) when ``decomposition`` is the shipped decomposition they were made
    from (same tensors); (None, None, why not) otherwise."""
    folder = Path(folder) if folder is not None else paths.results_dir()
    best_csv, curves_csv = folder / "edit_scan_best.csv", folder / "edit_scan_curves.csv"
    shipped = paths.decomposition_dir()
    if _tensors_sha(decomposition) != _tensors_sha(shipped):
        return None, None, "the shipped edit scan belongs to the shipped decomposition; this one was not scanned"
    if not (best_csv.is_file() and curves_csv.is_file()):
        return None, None, f"no edit scan tables in {folder}"
    best = pd.read_csv(best_csv)
    return best[best["target"] == "de"], pd.read_csv(curves_csv), f"the shipped edit scan ({folder.name}/edit_scan_*.csv)"


# ------------------------------------------------------------------------------------------ gather
def gather(decomposition: str | Path | None = None, components: Sequence[ComponentId] | None = None,
           ablate: int | None = DEFAULT_ABLATE, ablation_blocks: int = DEFAULT_ABLATION_BLOCKS,
           harvest_blocks: int = DEFAULT_HARVEST_BLOCKS, progress: bool = False, threads: int | None = 1) -> AtlasData:
    """The facts of every live component of ``decomposition`` (default: the shipped one), or of ``components``.

    Statistics: the shipped ones when they belong to this decomposition (same fingerprint), else harvested now on
    ``harvest_blocks`` training blocks per language; labels: the shipped ones beside them, else the offline
    labeller's. The removal (ablation, :func:`vpd_lite.interpret.ablation.ablation_effects`) is measured on
    ``ablation_blocks`` held-out blocks per language for ``components`` when given, else for the ``ablate`` most
    frequent live components plus every component the edit scan scanned (``ablate=None``: all of them), on
    ``threads`` torch threads (None: as set).

    Raises ``DataNotFoundError`` (a missing part), ``ValueError`` (a decomposition of other target weights, a
    corrupted file, a component that never fires and so has no page)."""
    with torch_threads(threads):  # one thread: the fastest for this small model, and it never stalls on busy cores
        return _gather(decomposition, components, ablate, ablation_blocks, harvest_blocks, progress)


def _gather(decomposition: str | Path | None, components: Sequence[ComponentId] | None, ablate: int | None,
            ablation_blocks: int, harvest_blocks: int, progress: bool) -> AtlasData:
    folder = Path(decomposition) if decomposition is not None else paths.decomposition_dir()
    arte = Artefacts.in_folder(folder)
    arte.check()
    model, tokenizer = load_target(arte.target)
    model.eval()
    cm = load_decomposition(arte.decomposition, model)
    corpus = load_corpus(arte.corpus)
    seq_len = model_seq_len(model, 128)
    stats, stats_how = load_or_harvest(cm, lang_token_blocks(tokenizer, corpus, "train", seq_len, harvest_blocks),
                                       path=arte.stats, progress=progress)
    labels = shipped_labels(arte, stats_how)
    stats_how = (f"the statistics shipped with it ({stats.n_tokens:,} tokens of training text)"
                 if "harvested live" not in stats_how else
                 f"harvested now on {stats.n_tokens:,} tokens of training text ({harvest_blocks} blocks per language)")
    labels_how = "the shipped labels" if labels is not None else "the offline labeller, from these statistics"
    live = live_components(stats)
    if components is not None:
        dead = [component_key(c) for c in components if c not in set(live)]
        if dead:
            raise ValueError(f"{', '.join(dead)} never fires on the harvested text, so it has no page "
                             f"({len(live)} components are live)")
        shown = list(components)
    else:
        shown = live
    if labels is None:
        labels = label_components(stats, tokenizer, shown)
    by_key = {lab.component: lab for lab in labels}

    best, curves, scan_how = shipped_scan(arte.decomposition)
    scanned = set(curves["component"]) if curves is not None else set()
    if components is not None or ablate is None:
        to_ablate = list(shown)
    else:
        freq = {cid: float(stats.firing_frequency(cid[0])[cid[1]]) for cid in shown}
        ranked = sorted(shown, key=lambda cid: (-freq[cid], cid))
        to_ablate = [cid for cid in shown if cid in set(ranked[:ablate]) or component_key(cid) in scanned]
    heldout = lang_token_blocks(tokenizer, corpus, "heldout", seq_len, ablation_blocks)
    base = target_ce(cm, heldout)
    effects = ablation_effects(cm, to_ablate, heldout, base_ce=base, progress=progress) if to_ablate else {}
    n_tok = sum(int(b[:, 1:].numel()) for b in heldout.values()) // max(len(heldout), 1)
    ablation_how = (f"measured on {ablation_blocks} held-out block{'s' if ablation_blocks != 1 else ''} of "
                    f"{seq_len} tokens per language ({n_tok} predicted tokens each)")
    ablated_how = f"{len(to_ablate)} of the {len(shown)} components shown"

    names = [tokenizer.decode([i]) for i in range(int(model.config.vocab_size))]
    vocabulary = _Vocabulary(names)
    directions = component_directions(cm, shown)
    nearest, nearest_how = nearest_in_others(arte.decomposition, directions)
    rw: dict[str, tuple[torch.Tensor | None, torch.Tensor | None]] = {}
    facts = []
    for cid in shown:
        module, c = cid
        if module not in rw:
            rw[module] = read_write_scores(model, cm, module)
        read, write = rw[module]
        sign = stats.activation_sign(cid) or 1
        key = component_key(cid)
        rates = {lang: float(r) for lang, r in zip(stats.langs, stats.firing_rate(module)[:, c])}
        profile = stats.language_profile(cid)
        top_lang = max(profile, key=lambda lang: (profile[lang], lang))
        pos = stats.pos_fire[module][c]
        row = best[best["component"] == key] if best is not None else None
        curve = curves[curves["component"] == key].sort_values("s").reset_index(drop=True) if curves is not None else None
        facts.append(ComponentFacts(
            cid=cid, label=by_key.get(key), frequency=float(stats.firing_frequency(module)[c]), rates=rates,
            profile=profile, specificity=profile[top_lang], top_lang=top_lang,
            mean_ci=float(stats.mean_ci(module)[c]), n_fires=stats.n_fires(cid),
            ci_hist=[float(x) for x in stats.ci_hist[module][c]], sign=sign,
            fires_on=[(names[t] if 0 <= t < len(names) else f"#{t}", n) for t, n in stats.top_tokens(cid)[:N_TOKENS]],
            first_position_share=float(pos[0] / pos.sum()) if float(pos.sum()) > 0 else 0.0,
            contexts_html=_contexts(stats, cid, vocabulary),
            ablation=effects.get(cid),
            reads=_top_tokens(read[:, c], names, sign) if read is not None else None,
            writes=_top_tokens(write[:, c], names, sign) if write is not None else None,
            scan_best=row.iloc[0].to_dict() if row is not None and len(row) else None,
            scan_curve=curve if curve is not None and len(curve) else None,
            nearest=nearest.get(key, [])))
    rw_how = {kind: (words[0], words[1] or words[2]) for kind, words in READ_WRITE_WORDS.items()}
    return AtlasData(decomposition=arte.decomposition, components=facts, langs=list(stats.langs),
                     threshold=stats.threshold, n_tokens=stats.n_tokens, stats_how=stats_how, labels_how=labels_how,
                     ablation_how=ablation_how, ablated_how=ablated_how,
                     n_ablated=len(to_ablate), scan_how=scan_how, nearest_how=nearest_how, read_write_how=rw_how,
                     n_live=len(live))


class _Vocabulary:
    """A tokenizer's ``decode`` of single tokens, decoded once per token id (the contexts decode token by token)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.names[int(i)] for i in ids)


def _contexts(stats: ComponentStats, cid: ComponentId, vocabulary: _Vocabulary) -> str:
    return contexts_html(stats, cid, vocabulary, n=8, css_classes=True)


# ------------------------------------------------------------------------------------------ the site
def plotly_bundle() -> Path:
    """The ``plotly.min.js`` shipped inside the installed plotly package (copied into every atlas).

    Raises ``FileNotFoundError`` when the installed plotly has none."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise FileNotFoundError(f"the installed plotly ({plotly.__version__}) has no {path}; reinstall plotly")
    return path


def write_site(data: AtlasData, out: str | Path) -> list[Path]:
    """Write the site of ``data`` into ``out`` (a new or empty folder, created): ``index.html``, ``atlas.css``,
    ``atlas.js``, ``plotly.min.js`` and ``components/<page_name>`` per component. Returns the files written.

    Raises ``UserError`` for a folder that holds files (:func:`vpd_lite.models.paths.new_or_empty_folder`)."""
    out = paths.new_or_empty_folder(out)
    (out / "components").mkdir(parents=True, exist_ok=True)
    written = []

    def put(rel: str, text: str) -> None:
        path = out / rel
        path.write_text(text, encoding="utf-8")
        written.append(path)

    put("atlas.css", atlas_pages.CSS)
    put("atlas.js", atlas_pages.JS)
    shutil.copyfile(plotly_bundle(), out / "plotly.min.js")
    written.append(out / "plotly.min.js")
    put("index.html", atlas_pages.index_html(data))
    for facts in data.components:
        put(f"components/{page_name(facts.cid)}", atlas_pages.component_html(data, facts))
    return written


def build_atlas(out: str | Path, decomposition: str | Path | None = None,
                components: Sequence[ComponentId] | None = None, ablate: int | None = DEFAULT_ABLATE,
                ablation_blocks: int = DEFAULT_ABLATION_BLOCKS, harvest_blocks: int = DEFAULT_HARVEST_BLOCKS,
                progress: bool = False) -> tuple[AtlasData, list[Path]]:
    """:func:`gather` then :func:`write_site` into ``out``: (data, files written). Checks ``out`` and the component
    ids before any work. Raises what those two raise."""
    paths.new_or_empty_folder(out)
    folder = Path(decomposition) if decomposition is not None else paths.decomposition_dir()
    if components is not None:
        check_components(folder, components)
    data = gather(folder, components, ablate, ablation_blocks, harvest_blocks, progress)
    return data, write_site(data, out)


def site_size(files: Sequence[Path]) -> int:
    """Total bytes of ``files``."""
    return sum(p.stat().st_size for p in files)

