"""The small multilingual target model: byte-level BPE tokenizer + a 2-layer Llama, trained from scratch.

This is the model VPD decomposes. It plays the part of the 67M-parameter Pile model of the original
experiment: trained on ``data/corpus`` (50 % English, 20 % German, 10 % each French, Spanish, Italian), so
German is its strongest non-English language. The trained model and tokenizer ship in ``data/target`` and
load offline with ``AutoModelForCausalLM.from_pretrained`` / ``AutoTokenizer.from_pretrained``.

Public names:

``TargetConfig``                       model shape + training hyper-parameters (defaults = the shipped model)
``train_tokenizer(texts, vocab_size)`` byte-level BPE with one special token ``<|endoftext|>`` (BOS = EOS = PAD)
``train_target(config, corpus, out_dir, seed)``  tokenizer + model from scratch, saved with the loss curve
``load_target(path=None) -> (model, tokenizer)``  offline load of ``data/target`` (hub names pass through)
``heldout_ce``, ``unigram_ce``, ``uniform_ce``, ``evaluate_target``, ``generate_samples``: the quality table

The command (``vpd_lite.commands.target``)::

    flock /tmp/vpd-heavy.lock python -m vpd_lite.target train   # retrain from scratch into data/target (~10 min)
    python -m vpd_lite.target eval    # print the held-out CE table and sample continuations
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import datasets
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from tqdm.auto import tqdm
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
)

from vpd_lite import quick_mode
from vpd_lite.method.checkpoint import STATE_FILE, read_metadata, write_training_state
from vpd_lite.method.config import DecomposeConfig
from vpd_lite.method.cross_entropy import lm_cross_entropy
from vpd_lite.method.devices import torch_threads
from vpd_lite.method.resumable import (
    DataStream,
    TrainingInterrupted,
    deferred_signals,
    open_training_state,
    recipe_differences,
)
from vpd_lite.models.corpus import (
    LANGS,
    chunk,
    encode_texts,
    load_corpus,
    train_batches,
)
from vpd_lite.models.hub import model_source, require_hub
from vpd_lite.models.paths import decomposition_dir, target_dir

#: Torch threads the shipped decomposition was trained with, when its metrics do not record it.
SHIPPED_DECOMPOSITION_THREADS = 2


def recorded_decomposition(folder: str | Path | None = None) -> tuple[DecomposeConfig, int]:
    """``(config, threads)`` a saved decomposition was trained with: the ``DecomposeConfig`` stored in its
    ``decomposition.json`` (device pinned to ``"cpu"``, where the shipped one was made; no checkpoint folder)
    and the torch thread count in its ``metrics.json`` (``SHIPPED_DECOMPOSITION_THREADS`` when absent).

    ``folder`` defaults to the shipped decomposition. The thread count matters: float sums are split
    differently over another number of threads, so the trained tensors (and everything downstream) differ.
    Raises ``FileNotFoundError`` / ``ValueError`` (from ``vpd_lite.method.checkpoint.read_metadata``) for a missing or
    corrupted record, and ``ValueError`` when it names settings this version does not know.
    """
    import dataclasses
    import json

    folder = Path(folder) if folder is not None else decomposition_dir()
    record = dict(read_metadata(folder).get("config") or {})
    known = {f.name for f in dataclasses.fields(DecomposeConfig)}
    unknown = sorted(set(record) - known)
    if unknown:
        raise ValueError(f"{folder} records settings this version of vpd-lite does not know: {', '.join(unknown)}")
    defaults = DecomposeConfig()
    record = {k: tuple(v) if isinstance(v, list) and isinstance(getattr(defaults, k), tuple) else v
              for k, v in record.items()}  # JSON stores tuples as lists
    record.update(device="cpu", checkpoint_dir=None)
    threads = SHIPPED_DECOMPOSITION_THREADS
    metrics_path = folder / "metrics.json"
    if metrics_path.is_file():
        try:
            threads = int(json.loads(metrics_path.read_text()).get("training", {}).get("threads", threads))
        except (ValueError, AttributeError) as err:
            raise ValueError(f"{metrics_path} is corrupted ({err})") from None
    return DecomposeConfig(**record), threads


EOS_TOKEN = "<|endoftext|>"


@dataclass
class TargetConfig:
    """Shape of the target Llama and how it is trained. The defaults produce the shipped ``data/target``."""

    # model (Llama, no biases, tied input/output embeddings)
    vocab_size: int = 4096
    hidden_size: int = 128
    intermediate_size: int = 512
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 4
    max_position_embeddings: int = 128
    tie_word_embeddings: bool = True
    # training
    seq_len: int = 128
    batch_size: int = 16
    steps: int = 1500
    lr: float = 6e-3
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 50
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    eval_every: int = 100  # held-out CE on a few blocks per language every this many steps
    eval_blocks_per_lang: int = 8
    langs: tuple[str, ...] = field(default=LANGS)
    #: torch intra-op threads while training (None = leave torch's setting). One thread is the robust choice
    #: on a small shared machine (two OpenMP threads slow down ~10x when another process competes for the
    #: cores), and fixing it keeps float reductions, hence the trained weights, reproducible.
    num_threads: int | None = 1

    def __post_init__(self) -> None:
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by "
                             f"num_attention_heads {self.num_attention_heads}")
        if self.seq_len > self.max_position_embeddings:
            raise ValueError(f"seq_len {self.seq_len} exceeds max_position_embeddings "
                             f"{self.max_position_embeddings}")
        self.betas = tuple(self.betas)
        self.langs = tuple(self.langs)

    @classmethod
    def quick(cls) -> "TargetConfig":
        """A tiny configuration for tests and quick mode (seconds on a CPU, quality meaningless)."""
        return cls(vocab_size=300, hidden_size=32, intermediate_size=64, num_attention_heads=2,
                   num_key_value_heads=2, max_position_embeddings=32, seq_len=32, batch_size=4, steps=6,
                   warmup_steps=2, eval_every=3, eval_blocks_per_lang=2)

    def model_config(self, tokenizer: PreTrainedTokenizerFast) -> LlamaConfig:
        """The ``LlamaConfig`` of this shape, with the tokenizer's special-token ids."""
        if len(tokenizer) != self.vocab_size:
            raise ValueError(f"tokenizer has {len(tokenizer)} tokens, config says vocab_size={self.vocab_size}")
        eos = tokenizer.eos_token_id
        return LlamaConfig(
            vocab_size=self.vocab_size, hidden_size=self.hidden_size,
            intermediate_size=self.intermediate_size, num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads, num_key_value_heads=self.num_key_value_heads,
            max_position_embeddings=self.max_position_embeddings, tie_word_embeddings=self.tie_word_embeddings,
            attention_bias=False, mlp_bias=False, bos_token_id=eos, eos_token_id=eos, pad_token_id=eos,
        )


# ---------------------------------------------------------------------------------------- tokenizer
def train_tokenizer(texts: Iterable[str], vocab_size: int = 4096) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer (GPT-2 style pre-tokenisation) on ``texts``.

    The vocabulary holds exactly ``vocab_size`` tokens: ``<|endoftext|>`` (id 0, used as BOS, EOS and PAD),
    the 256 byte symbols and ``vocab_size - 257`` merges. Any UTF-8 text can be encoded.
    """
    if vocab_size < 258:
        raise ValueError(f"vocab_size must be at least 258 (special + 256 bytes + 1 merge), got {vocab_size}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=[EOS_TOKEN], initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(list(texts), trainer=trainer)
    fast = _fast_tokenizer(tok)
    if len(fast) != vocab_size:
        raise ValueError(f"the training text only supports {len(fast)} tokens, asked for {vocab_size}")
    return fast


def _fast_tokenizer(tok: Tokenizer) -> PreTrainedTokenizerFast:
    """The ``transformers`` tokenizer around a trained byte-level BPE (``<|endoftext|>`` as BOS, EOS and PAD)."""
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token=EOS_TOKEN, eos_token=EOS_TOKEN, pad_token=EOS_TOKEN, unk_token=None,
        model_max_length=1_000_000, clean_up_tokenization_spaces=False,
    )


# ---------------------------------------------------------------------------------------- training
def _lr_factor(step: int, config: TargetConfig) -> float:
    """Linear warm-up to 1, then cosine decay to ``min_lr_ratio`` at ``config.steps``."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def build_model(config: TargetConfig, tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> LlamaForCausalLM:
    """A freshly initialised target model (weights drawn from a ``seed``-ed RNG)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config.model_config(tokenizer))
    return model


#: What a checkpoint of the target's training holds (``state["kind"]``; a decomposition's state has none).
STATE_KIND = "target training"


def resume_target_state(folder: str | os.PathLike, config: TargetConfig, seed: int,
                        threads: int | None = None) -> dict:
    """The training state of the unfinished target training in ``folder`` (its ``training_state.pt``), checked
    against the ``config``, ``seed`` and torch thread count (``threads``, default ``config.num_threads`` or, when
    that is None, the current count) it is to continue with; nothing is changed.

    Raises:
        FileNotFoundError: ``folder`` or its ``training_state.pt`` does not exist.
        ValueError: ``folder`` holds a finished target model (nothing to resume) or a decomposition's training
            state; the state is truncated or corrupted; or it was made with another recipe (every differing
            field of ``TargetConfig``, ``seed`` or ``threads`` is named, with both values). ``steps`` may not be
            raised either: the learning-rate schedule of the steps already done depends on it.
    """
    folder = Path(folder)
    if not (folder / STATE_FILE).is_file() and (folder / "model.safetensors").is_file():
        raise ValueError(f"{folder} holds a finished target model: nothing to resume; train into another folder")
    state = open_training_state(folder)
    if state.get("kind") != STATE_KIND:
        raise ValueError(f"{folder / STATE_FILE} is not the training state of a target model (a decomposition's?)")
    if threads is None:
        threads = config.num_threads if config.num_threads is not None else torch.get_num_threads()
    said = recipe_differences({**state["config"], "seed": state["seed"], "threads": state["threads"]},
                              {**asdict(config), "seed": seed, "threads": threads})
    if said:
        raise ValueError(f"the target training in {folder} was made with another recipe ({said}): a resumed run must "
                         "keep it; give the same settings, or train into another folder")
    return state


def train_target(
    config: TargetConfig | None = None,
    corpus: Mapping[str, datasets.DatasetDict] | None = None,
    out_dir: str | os.PathLike | None = None,
    seed: int = 0,
    tokenizer: PreTrainedTokenizerFast | None = None,
    progress: bool = True,
    save: bool = True,
    checkpoint_every: int = 0,
    resume: bool = False,
) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast, list[dict]]:
    """Train tokenizer (unless given) and model from scratch; save both plus the loss curve to ``out_dir``.

    ``corpus`` defaults to the shipped ``load_corpus()``; ``out_dir`` (``None``) to ``data/target``;
    ``save=False`` writes nothing; ``tokenizer`` reuses a trained tokenizer instead of training one.
    Returns ``(model, tokenizer, history)``; ``history`` holds one dict per step (``step``, ``lr``,
    ``loss``) and, every ``eval_every`` steps, ``heldout_ce`` (mean over languages, nats/token).
    Deterministic on CPU for a given ``seed`` and ``config.num_threads``.

    Checkpoints (when saving): every ``checkpoint_every`` steps (0: none) ``out_dir/training_state.pt`` holds the
    whole training state -- tokenizer, weights, AdamW and schedule states, the position of the batch stream,
    the torch RNG, the history, the recipe and thread count -- and a SIGINT or SIGTERM lets the step in progress
    finish, writes one and raises ``vpd_lite.method.resumable.TrainingInterrupted``. ``resume=True`` continues
    from it bit-identically (same CPU and thread count: the same weights, to the bit, as the run never
    stopped); the finished model replaces the folder, checkpoint included. Raises (before any step, changing
    nothing) what ``resume_target_state`` raises, and ``ValueError`` when the corpus or ``tokenizer`` given are
    not the run's.
    """
    config = config or (TargetConfig.quick() if quick_mode() else TargetConfig())
    if checkpoint_every < 0:
        raise ValueError(f"checkpoint_every must be 0 (no checkpoints) or positive, got {checkpoint_every}")
    folder = (Path(out_dir) if out_dir is not None else target_dir()) if save else None
    if resume and folder is None:
        raise ValueError("resume needs the folder of the unfinished run: save=True")
    with torch_threads(config.num_threads):
        state = resume_target_state(folder, config, seed) if resume else None
        corpus = corpus if corpus is not None else load_corpus(langs=config.langs)
        model, tokenizer, history = _train(config, corpus, seed, tokenizer, progress, folder, checkpoint_every,
                                           state)
    if folder is not None:
        save_target(model, tokenizer, config, history, folder, seed)
    return model, tokenizer, history


def _train(config: TargetConfig, corpus, seed: int, tokenizer, progress: bool, folder: Path | None = None,
           checkpoint_every: int = 0, state: dict | None = None):
    """The training loop of ``train_target`` (tokenizer, model, AdamW + warm-up/cosine schedule), checkpointing
    into ``folder`` (if given) and continuing from ``state`` (if given). The global torch RNG is seeded with
    ``seed`` inside (and the caller's restored after), so that any step that draws from it is resumable too."""
    if state is not None:
        recorded = _fast_tokenizer(Tokenizer.from_str(state["tokenizer"]))
        if tokenizer is not None and tokenizer.backend_tokenizer.to_str() != state["tokenizer"]:
            raise ValueError(f"the tokenizer given to resume is not the one the run in {folder} was trained with")
        tokenizer = recorded
    elif tokenizer is None:
        tokenizer = train_tokenizer((t for lang in corpus for t in corpus[lang]["train"]["text"]),
                                    config.vocab_size)
    model = build_model(config, tokenizer, seed)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=config.lr, betas=config.betas)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: _lr_factor(s, config))
    stream = DataStream(train_batches(tokenizer, corpus, config.seq_len, config.batch_size, seed),
                        "training batches")
    eval_blocks = {lang: chunk(encode_texts(tokenizer, corpus[lang]["heldout"]["text"]), config.seq_len)
                   [: config.eval_blocks_per_lang] for lang in corpus}

    history: list[dict] = []
    start = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if state is not None:
            stream.skip_to(state["stream"])  # refuses another corpus before any step
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            sched.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["torch_rng"])
            history, start = list(state["history"]), int(state["step"])

        def checkpoint(done: int) -> None:
            write_training_state(folder, {
                "kind": STATE_KIND, "format": 1, "step": done, "config": asdict(config), "seed": seed,
                "threads": torch.get_num_threads(), "tokenizer": tokenizer.backend_tokenizer.to_str(),
                "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "torch_rng": torch.get_rng_state(), "history": history, "stream": stream.position(),
            })

        model.train()
        bar = tqdm(range(start, config.steps), initial=start, total=config.steps, desc="train target",
                   disable=not progress, leave=False)
        with deferred_signals(folder is not None) as received:
            for step in bar:
                input_ids = stream.next()  # (B, T)
                loss = model(input_ids=input_ids, labels=input_ids).loss
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                row = {"step": step, "lr": opt.param_groups[0]["lr"], "loss": loss.item()}
                opt.step()
                sched.step()
                if (step + 1) % config.eval_every == 0 or step + 1 == config.steps:
                    ces = [lm_cross_entropy(model, b) for b in eval_blocks.values()]
                    row["heldout_ce"] = sum(ces) / len(ces)
                    model.train()
                    bar.set_postfix(loss=f"{row['loss']:.3f}", heldout=f"{row['heldout_ce']:.3f}")
                history.append(row)
                done = step + 1
                saved = folder is not None and checkpoint_every > 0 and done % checkpoint_every == 0 \
                    and done < config.steps
                if saved:
                    checkpoint(done)
                if received and folder is not None and done < config.steps:  # at the last step: just finish
                    bar.close()
                    if not saved:
                        checkpoint(done)
                    raise TrainingInterrupted(done, config.steps, str(folder), received[0])
    model.eval()
    return model, tokenizer, history


# -------------------------------------------------------------------------------------- saving
def save_target(model, tokenizer, config: TargetConfig, history: Sequence[dict], out_dir: Path,
                seed: int) -> None:
    """Write model (safetensors), tokenizer, ``training_config.json`` and the loss curve (CSV, JSON, PNG).

    Written into a temporary sibling folder first and swapped in with ``os.replace``.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "training_config.json").write_text(json.dumps({**asdict(config), "seed": seed}, indent=2) + "\n")
        (tmp / "loss_curve.json").write_text(json.dumps(list(history)) + "\n")
        with open(tmp / "loss_curve.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=["step", "lr", "loss", "heldout_ce"])
            w.writeheader()
            w.writerows(history)
        _plot_loss_curve(history, tmp / "loss_curve.png")
        tmp.chmod(0o755)  # mkdtemp makes 0700; a shipped folder should read like any other
        for f in tmp.iterdir():
            f.chmod(0o644)
        old = None
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}-old-{os.getpid()}")
            os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        if old is not None:
            shutil.rmtree(old)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _plot_loss_curve(history: Sequence[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([h["step"] for h in history], [h["loss"] for h in history], lw=0.6, alpha=0.6, label="train batch")
    ev = [h for h in history if "heldout_ce" in h]
    ax.plot([h["step"] for h in ev], [h["heldout_ce"] for h in ev], "o-", label="held-out (mean of languages)")
    ax.set(xlabel="step", ylabel="cross-entropy (nats/token)", title="Target model training: loss falls steadily")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def load_target(path: str | os.PathLike | None = None) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    """Load ``(model, tokenizer)``: ``None`` = the shipped ``data/target`` (offline); a folder; or a hub name.

    The model comes back in ``eval()`` mode.
    """
    if path is None:
        path = target_dir()
        if not (Path(path) / "config.json").is_file():
            raise FileNotFoundError(f"no trained target model in {path} (train one: python -m vpd_lite.target train)")
        local = True
    else:

        path, local = model_source(path, "target model")  # a path that does not exist: one clear error
        if not local:
            require_hub(path, "target model")
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=local)
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=local)
    model.eval()
    return model, tokenizer


# ------------------------------------------------------------------------------------ evaluation
@torch.no_grad()
def _heldout_blocks(tokenizer, corpus, lang: str, seq_len: int, max_blocks: int | None) -> torch.Tensor:
    if lang not in corpus:
        raise ValueError(f"language {lang!r} not in the corpus (has {list(corpus)})")
    blocks = chunk(encode_texts(tokenizer, corpus[lang]["heldout"]["text"]), seq_len)
    if blocks.shape[0] == 0:
        raise ValueError(f"{lang!r} held-out split has fewer than seq_len={seq_len} tokens")
    return blocks[:max_blocks] if max_blocks is not None else blocks


def heldout_ce(model, tokenizer, corpus, lang: str, seq_len: int = 128, max_blocks: int | None = None) -> float:
    """Model cross-entropy (nats/token) on ``lang``'s held-out split, cut into ``seq_len`` blocks."""
    return lm_cross_entropy(model, _heldout_blocks(tokenizer, corpus, lang, seq_len, max_blocks))


def unigram_ce(tokenizer, corpus, lang: str, seq_len: int = 128, max_blocks: int | None = None,
               alpha: float = 1.0) -> float:
    """CE (nats/token) of a unigram model fitted on ``lang``'s TRAIN tokens, on the held-out tokens.

    p(t) = (count_train(t) + alpha) / (n_train + alpha * V) (add-``alpha`` smoothing over the whole
    vocabulary, V = ``len(tokenizer)``), scored on exactly the tokens ``heldout_ce`` predicts.
    """
    train = encode_texts(tokenizer, corpus[lang]["train"]["text"])
    vocab = len(tokenizer)
    counts = torch.bincount(train, minlength=vocab).double()
    logp = torch.log((counts + alpha) / (train.numel() + alpha * vocab))
    targets = _heldout_blocks(tokenizer, corpus, lang, seq_len, max_blocks)[:, 1:]
    return float(-logp[targets].mean())


def uniform_ce(tokenizer) -> float:
    """CE of the uniform distribution over the vocabulary: ln(V) nats/token."""
    return math.log(len(tokenizer))


def evaluate_target(model, tokenizer, corpus, langs: Sequence[str] | None = None, seq_len: int = 128,
                    max_blocks: int | None = None) -> list[dict]:
    """One row per language: ``lang, model_ce, unigram_ce, uniform_ce, ratio`` (= model / unigram)."""
    rows = []
    for lang in langs or list(corpus):
        m = heldout_ce(model, tokenizer, corpus, lang, seq_len, max_blocks)
        u = unigram_ce(tokenizer, corpus, lang, seq_len, max_blocks)
        rows.append({"lang": lang, "model_ce": m, "unigram_ce": u, "uniform_ce": uniform_ce(tokenizer),
                     "ratio": m / u})
    return rows


def format_table(rows: Sequence[dict]) -> str:
    """The evaluation rows as a Markdown table."""
    lines = ["| lang | model CE | unigram CE | uniform ln(V) | model / unigram |",
             "|------|---------:|-----------:|--------------:|----------------:|"]
    for r in rows:
        lines.append(f"| {r['lang']} | {r['model_ce']:.3f} | {r['unigram_ce']:.3f} | {r['uniform_ce']:.3f} "
                     f"| {r['ratio']:.3f} |")
    return "\n".join(lines)


#: Prompts for sample continuations (everyday openings, one list per language).
SAMPLE_PROMPTS = {
    "en": ["The best way to learn", "When the system starts,"],
    "de": ["Der beste Weg, um", "Wenn das System startet,"],
    "fr": ["La meilleure façon d'apprendre", "Lorsque le système démarre,"],
    "es": ["La mejor manera de aprender", "Cuando el sistema arranca,"],
    "it": ["Il modo migliore per imparare", "Quando il sistema si avvia,"],
}


@torch.no_grad()
def generate_samples(model, tokenizer, prompts: Mapping[str, Sequence[str]] | None = None,
                     max_new_tokens: int = 30, seed: int = 0, temperature: float = 0.8,
                     top_k: int = 50) -> list[dict]:
    """Greedy and sampled continuations: ``[{lang, prompt, greedy, sampled}]``.

    Sampling (``temperature``, ``top_k``) of a language's ``i``-th prompt is seeded with ``seed + i``.
    """
    prompts = prompts or SAMPLE_PROMPTS
    model.eval()
    out = []
    for lang, plist in prompts.items():
        for i, prompt in enumerate(plist):
            ids = torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"]])
            greedy = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=False,
                                    pad_token_id=tokenizer.eos_token_id)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed + i)
                sampled = model.generate(ids, max_new_tokens=max_new_tokens, do_sample=True,
                                         temperature=temperature, top_k=top_k,
                                         pad_token_id=tokenizer.eos_token_id)
            out.append({"lang": lang, "prompt": prompt,
                        "greedy": tokenizer.decode(greedy[0, ids.shape[1]:], skip_special_tokens=False),
                        "sampled": tokenizer.decode(sampled[0, ids.shape[1]:], skip_special_tokens=False)})
    return out


def recorded_training(folder: str | os.PathLike | None = None) -> tuple[TargetConfig, int]:
    """``(config, seed)`` a saved target model was trained with, read from its ``training_config.json``.

    ``folder`` defaults to the shipped ``data/target``. Training again with them (``train_target(config,
    seed=seed)``, which runs on ``config.num_threads`` torch threads) reproduces the saved weights on the same
    CPU and library versions. Raises ``FileNotFoundError`` without the file and ``ValueError`` when it is not
    a training record (or names fields this version does not know).
    """
    path = Path(folder if folder is not None else target_dir()) / "training_config.json"
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is missing: no record of how that target was trained") from None
    except ValueError as err:
        raise ValueError(f"{path} is corrupted (not valid JSON: {err})") from None
    if not isinstance(record, dict) or "seed" not in record:
        raise ValueError(f"{path} is not a target training record (no 'seed')")
    seed = int(record.pop("seed"))
    known = set(TargetConfig.__dataclass_fields__)
    unknown = sorted(set(record) - known)
    if unknown:
        raise ValueError(f"{path} records settings this version of vpd-lite does not know: {', '.join(unknown)}")
    return TargetConfig(**record), seed
