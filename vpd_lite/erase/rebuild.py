"""The artefacts the erase experiment runs on (target, decomposition, statistics, labels, corpus): loaded from
``data/`` (``Artefacts``, ``build_setup``, ``load_stats_or_harvest``) or rebuilt from scratch with the recorded
settings (``rebuild_artefacts``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vpd_lite.erase.protocol import (
    STATS_FILE,
    EraseConfig,
    EraseSetup,
    choose_components,
)
from vpd_lite.interpret.harvest import (
    HarvestPlan,
    decomposition_fingerprint,
    harvest,
    load_or_harvest,
    model_seq_len,
)
from vpd_lite.interpret.labels import label_components, load_labels, save_labels
from vpd_lite.interpret.statistics import ComponentStats
from vpd_lite.method.checkpoint import (
    STATE_FILE,
    check_fits_target,
    load_decomposition,
    read_metadata,
    save_decomposition,
)
from vpd_lite.method.config import DecomposeConfig
from vpd_lite.method import decompose as decompose_mod
from vpd_lite.method.devices import torch_threads
from vpd_lite.method.resumable import recipe_differences
from vpd_lite.models import corpus as corpus_mod
from vpd_lite.models import paths
from vpd_lite.models import target as target_mod
from vpd_lite.models.corpus import LANGS, load_corpus, train_batches
from vpd_lite.models.target import recorded_decomposition


# ------------------------------------------------------------------------------------------ artefacts
@dataclass
class Artefacts:
    """Where the inputs of the erasure live (the shipped ``data/`` by default)."""

    target: Path
    decomposition: Path
    corpus: Path
    stats: Path  # component stats; harvested from training text when the file is absent

    @classmethod
    def in_folder(cls, data: str | os.PathLike) -> "Artefacts":
        """The artefacts of a data folder laid out like ``data/`` (corpus/, target/, decomposition/).

        A folder that is itself a decomposition (it holds ``decomposition.json``, as ``python -m vpd_lite.decompose
        --out`` writes) takes the target and corpus beside it when it is the ``decomposition/`` of a data folder,
        else the shipped ones; its statistics are harvested from training text unless they ship with it.
        :meth:`check_target` refuses a decomposition of other target weights."""
        data = Path(data)
        if (data / "decomposition.json").is_file():
            beside = data.parent
            if data.name == "decomposition" and (beside / "target" / "config.json").is_file() \
                    and (beside / "corpus").is_dir():
                return cls.in_folder(beside)
            shipped = paths.data_dir()
            return cls(shipped / "target", data, shipped / "corpus", shipped / STATS_FILE)
        return cls(data / "target", data / "decomposition", data / "corpus", data / STATS_FILE)

    def check_target(self) -> None:
        """Raise ``ValueError`` (one sentence) when the decomposition was made from other weights than the target
        it is paired with. Cheap (it loads the small target once), so that a command can refuse before any work."""
        model, _ = target_mod.load_target(self.target)
        try:
            check_fits_target(self.decomposition, read_metadata(self.decomposition), model)
        except ValueError as e:
            raise ValueError(f"the decomposition in {self.decomposition} was made from other weights than the target "
                             f"{self.target}; give the data folder that holds its own target (laid out like data/: "
                             "corpus/, target/, decomposition/)") from e

    def missing(self, parts: Sequence[str] = ("corpus", "target", "decomposition")) -> dict[str, Path]:
        """{part: the path that is not there} for each of ``parts`` that is missing."""
        needs = {"corpus": self.corpus, "target": self.target / "config.json",
                 "decomposition": self.decomposition / "decomposition.json"}
        return {part: needs[part] for part in parts if not needs[part].exists()}

    def check(self, parts: Sequence[str] = ("corpus", "target", "decomposition"), quick: bool = False) -> None:
        """Raise :class:`vpd_lite.models.paths.DataNotFoundError` when one of ``parts`` is missing: one message naming
        every missing part and, when the artefacts share one folder (``--data``), how to fill *that* folder (or
        to leave ``--data`` out and use the shipped data). ``quick``: suggest the ``--quick`` rebuild."""
        import shlex

        missing = self.missing(parts)
        if not missing:
            return
        names = {"corpus": "the corpus", "target": "the target model", "decomposition": "the decomposition"}
        listed = [f"{names[part]} ({path})" for part, path in missing.items()]
        lacks = listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " and " + listed[-1]
        folder = self.target.parent
        if not self.decomposition.parent == self.corpus.parent == folder:
            raise paths.DataNotFoundError(f"{lacks} {'is' if len(missing) == 1 else 'are'} missing")
        shipped = paths.data_dir()
        here = shlex.quote(str(folder))
        steps = []
        if "corpus" in missing:
            steps.append(f"copy the shipped corpus into it (`cp -r {shlex.quote(str(shipped / 'corpus'))} {here}/`)")
        if "target" in missing and "decomposition" not in missing and "decomposition" in parts:
            raise paths.DataNotFoundError(
                f"{folder} lacks {lacks} but holds a decomposition: give {shlex.quote(str(self.decomposition))} "
                "itself, and it runs on the shipped target and corpus")
        if "target" in missing:
            steps.append("rebuild the target model and its decomposition into it (`python -m vpd_lite.reproduce "
                         f"{'--quick ' if quick else ''}--from-scratch --data {here} --work {here}`)")
        elif "decomposition" in missing:
            steps.append(f"decompose its target model into it (`VPD_LITE_DATA={here} python -m vpd_lite.decompose "
                         f"--out {shlex.quote(str(folder / 'decomposition'))}`)")
        raise paths.DataNotFoundError(
            f"{folder} lacks {lacks}; a data folder is laid out like the shipped one ({shipped}: corpus/, target/, "
            f"decomposition/). Leave out --data to use the shipped data, or {', then '.join(steps)}.")


def load_stats_or_harvest(cm: nn.Module, tokenizer: Any, corpus: Mapping[str, Any], path: Path,
                          config: EraseConfig, progress: bool = True) -> tuple[ComponentStats, str]:
    """(stats, description): the stats at ``path`` if they were harvested from this decomposition (same
    fingerprint), else harvested now on the first ``config.harvest_blocks_per_lang`` training blocks per language."""

    seq_len = model_seq_len(cm.model, config.seq_len)
    blocks = corpus_mod.lang_token_blocks(tokenizer, corpus, "train", seq_len, config.harvest_blocks_per_lang)
    return load_or_harvest(cm, blocks, path=path, progress=progress)


def shipped_labels(arte: Artefacts, stats_how: str) -> list[Any] | None:
    """The labeller's labels saved beside the statistics file (``labels.json``), when the statistics were loaded
    from that file (``stats_how`` from :func:`load_stats_or_harvest`) and not harvested live: labels belong to
    the statistics they were made from. None otherwise (the protocol then labels from the statistics)."""
    labels_file = arte.stats.parent / "labels.json"
    if labels_file.is_file() and "harvested live" not in stats_how:
        return load_labels(labels_file)
    return None


def build_setup(cm: nn.Module, tokenizer: Any, corpus: Mapping[str, Any], stats: ComponentStats,
                config: EraseConfig, labels: Sequence[Any] | None = None, progress: bool = True) -> EraseSetup:
    """Cut the training and held-out blocks of ``corpus`` and make every choice (edit scan, selection rules,
    search ranges) from training text only. ``labels``: the labeller's labels (None: made from ``stats``)."""

    model = cm.model
    seq_len = model_seq_len(model, config.seq_len)
    langs = {k: corpus[k] for k in LANGS if k in corpus}
    train = corpus_mod.lang_token_blocks(tokenizer, langs, "train", seq_len, config.train_blocks)
    chosen = choose_components(cm, stats, labels, train, replace(config, scan=replace(config.scan, seq_len=seq_len)),
                               progress=progress)
    heldout = corpus_mod.lang_token_blocks(tokenizer, langs, "heldout", seq_len, config.eval_blocks_per_lang)
    return EraseSetup(model=model, modules=list(cm.module_names), rules=chosen["rules"], why=chosen["why"],
                      ranges=chosen["ranges"], top=chosen["top"], train=train, heldout=heldout,
                      vocab_size=int(model.config.vocab_size), scan=chosen["scan"],
                      any_language=chosen["any_language"], tokenizer=tokenizer)


#: Steps between the checkpoints of the target's training in a full ``--from-scratch`` rebuild (3 when quick).
TARGET_CHECKPOINT_EVERY = 100


def rebuild_progress(work: Path, tconfig: target_mod.TargetConfig, tseed: int,
                     dconfig: DecomposeConfig) -> dict[str, str]:
    """How far an earlier ``--from-scratch`` rebuild in ``work`` got, stage by stage (target, decomposition,
    statistics and labels): ``"finished"``, ``"from its checkpoint at step N of M"`` or ``"to do"``. A stage
    counts as finished only when every stage before it is; a later stage of an unfinished one is redone.

    Raises ``ValueError`` when ``work`` holds a stage made with another recipe (a finished target or a
    decomposition checkpoint of other settings, each differing field named): that folder belongs to another
    rebuild (e.g. a quick one), so give another ``--work``. A damaged checkpoint raises ``ValueError`` too.
    """
    work = Path(work)
    stages = {"target": "to do", "decomposition": "to do", "statistics and labels": "to do"}

    def other_recipe(where: Path, said: str) -> ValueError:
        return ValueError(f"{where} was made with another recipe ({said}): it belongs to another rebuild (quick or "
                          "full?); give another --work, or empty this one")

    target = work / "target"
    if (target / STATE_FILE).is_file():
        state = target_mod.resume_target_state(target, tconfig, tseed)
        return {**stages, "target": f"from its checkpoint at step {state['step']} of {tconfig.steps}"}
    if not (target / "model.safetensors").is_file():
        return stages
    config, seed = target_mod.recorded_training(target)
    said = recipe_differences({**asdict(config), "seed": seed}, {**asdict(tconfig), "seed": tseed})
    if said:
        raise other_recipe(target, said)
    stages["target"] = "finished"
    dec = work / "decomposition"
    if (dec / STATE_FILE).is_file():
        state = decompose_mod.resume_state(dec, dconfig)
        stages["decomposition"] = f"from its checkpoint at step {state['step']} of {dconfig.steps}"
        return stages
    if not (dec / "decomposition.json").is_file():
        return stages
    said = recipe_differences(read_metadata(dec).get("config") or {}, asdict(dconfig), decompose_mod.RESUME_MAY_CHANGE)
    if said:
        raise other_recipe(dec, said)
    stages["decomposition"] = "finished"
    if (work / "labels.json").is_file() and (work / STATS_FILE).is_file():
        stages["statistics and labels"] = "finished"
    return stages


def rebuild_artefacts(work: Path, quick: bool, corpus_dir: Path, progress: bool = True,
                      recorded: Path | None = None) -> Artefacts:
    """``--from-scratch``: train the target, decompose it, harvest stats and labels, all into ``work``.

    Repeats how the shipped artefacts were made, whatever thread count the caller set: the target's config,
    seed and thread count come from ``<recorded>/target/training_config.json`` (shipped: seed 0, 1 torch
    thread), the decomposition's config, seed and thread count from ``<recorded>/decomposition`` (shipped:
    seed 0, 2 torch threads, CPU); the statistics are harvested on the decomposition's thread count.
    ``recorded`` defaults to the data folder holding ``corpus_dir`` when it has those records, else the
    shipped data. Float sums depend on the thread count, so pinning it is what makes a rebuild give what ships
    (on the same CPU and library versions). ``quick`` uses the tiny configs with the same seeds and threads.
    A full rebuild ends by saying whether the target and decomposition are identical to the recorded ones.

    Run again on the same ``work``, it continues (saying so in one line) from the last finished stage and from
    the last checkpoint inside the unfinished training (``rebuild_progress``): the target's training
    checkpoints every ``TARGET_CHECKPOINT_EVERY`` steps, the decomposition every ``checkpoint_every`` steps of its
    recorded config, and both on SIGINT / SIGTERM, which then raise ``TrainingInterrupted``. The result equals an
    uninterrupted rebuild's, to the bit. Raises ``ValueError`` when ``work`` holds a stage of another recipe.
    """
    import hashlib

    work = Path(work)
    if recorded is None:
        parent = Path(corpus_dir).parent
        has_records = (parent / "target" / "training_config.json").is_file() and \
            (parent / "decomposition" / "decomposition.json").is_file()
        recorded = parent if has_records else paths.data_dir()
    recorded = Path(recorded)
    tconfig, tseed = target_mod.recorded_training(recorded / "target")
    dconfig, dthreads = recorded_decomposition(recorded / "decomposition")
    if dconfig.targeted:
        raise ValueError(f"{recorded / 'decomposition'} records a targeted decomposition of {dconfig.capability!r}; "
                         "--from-scratch rebuilds a full decomposition: give a data folder whose decomposition/ is "
                         "a full one")
    if quick:
        tconfig = replace(target_mod.TargetConfig.quick(), num_threads=tconfig.num_threads)
        dconfig = DecomposeConfig.quick(seed=dconfig.seed, device=dconfig.device)
    print(f"[from scratch] pinned as recorded in {recorded}: target seed {tseed} on {tconfig.num_threads} torch "
          f"thread(s); decomposition seed {dconfig.seed} on {dthreads} torch thread(s), {dconfig.device}", flush=True)

    arte = Artefacts(work / "target", work / "decomposition", Path(corpus_dir), work / STATS_FILE)
    dconfig.checkpoint_dir = str(arte.decomposition)
    # the target's context caps the blocks (what model_seq_len gives once it is trained), known before training so
    # that a decomposition checkpoint can be checked against the recipe it continues
    dconfig.seq_len = min(dconfig.seq_len, tconfig.max_position_embeddings)
    stages = rebuild_progress(work, tconfig, tseed, dconfig)
    if any(how != "to do" for how in stages.values()):
        print(f"[from scratch] continuing in {work}: " + "; ".join(f"{k} {v}" for k, v in stages.items()), flush=True)
    corpus = load_corpus(corpus_dir)
    if stages["target"] != "finished":
        resume = stages["target"] != "to do"
        if not resume:
            (arte.target / STATE_FILE).unlink(missing_ok=True)
        print(f"[from scratch] training the target into {arte.target}", flush=True)
        target_mod.train_target(tconfig, corpus=corpus, out_dir=arte.target, seed=tseed, progress=progress,
                                checkpoint_every=3 if quick else TARGET_CHECKPOINT_EVERY, resume=resume)
    model, tokenizer = target_mod.load_target(arte.target)
    dconfig.seq_len = model_seq_len(model, dconfig.seq_len)
    with torch_threads(dthreads):
        if stages["decomposition"] == "finished":
            cm = load_decomposition(arte.decomposition, model)
        else:
            resume = stages["decomposition"] != "to do"
            if not resume:
                (arte.decomposition / STATE_FILE).unlink(missing_ok=True)
            (work / "labels.json").unlink(missing_ok=True)  # statistics of an earlier decomposition are stale
            print(f"[from scratch] decomposing into {arte.decomposition}", flush=True)
            batches = train_batches(tokenizer, corpus, seq_len=dconfig.seq_len, batch_size=dconfig.batch_size,
                                    seed=dconfig.seed)
            cm, history = decompose_mod.decompose(model, batches, dconfig, progress=progress,
                                                  resume_from=arte.decomposition if resume else None)
            save_decomposition(cm, arte.decomposition, replace(dconfig, checkpoint_dir=None), history=history)
            (arte.decomposition / STATE_FILE).unlink(missing_ok=True)  # finished: only needed to resume
        if stages["statistics and labels"] != "finished":
            print("[from scratch] harvesting component statistics and labels", flush=True)
            n = HarvestPlan.quick_harvest_blocks if quick else HarvestPlan.harvest_blocks
            blocks = corpus_mod.lang_token_blocks(tokenizer, corpus, "train", dconfig.seq_len, n)
            stats = harvest(cm, blocks, progress=progress,
                            meta={"decomposition_fingerprint": decomposition_fingerprint(cm)})
            stats.save(arte.stats)
            save_labels(label_components(stats, tokenizer), work / "labels.json",  # last: the rebuild is complete
                        provenance={"command": "python -m vpd_lite.reproduce --from-scratch"})
    if not quick:
        def sha(path: Path) -> str:
            return hashlib.sha256(path.read_bytes()).hexdigest()

        shipped_meta = read_metadata(recorded / "decomposition")
        same_target = sha(arte.target / "model.safetensors") == sha(recorded / "target" / "model.safetensors")
        same_dec = read_metadata(arte.decomposition)["tensors_sha256"] == shipped_meta.get("tensors_sha256")
        print(f"[from scratch] target {'identical to' if same_target else 'DIFFERENT from'} the recorded one; "
              f"decomposition {'identical to' if same_dec else 'DIFFERENT from'} the recorded one", flush=True)
        if not (same_target and same_dec):
            was = shipped_meta.get("versions", {})
            now = {"torch": torch.__version__, "transformers": __import__("transformers").__version__}
            print(f"[from scratch] the seeds and thread counts were the recorded ones, so the difference comes from "
                  f"the CPU or library versions (recorded {was}, here {now}): their floating-point rounding "
                  "differs, and every number downstream moves with it", flush=True)
    return arte
