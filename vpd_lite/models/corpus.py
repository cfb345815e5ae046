"""The multilingual corpus: per-language train / held-out text, and the token helpers everyone shares.

Languages: ``LANGS = ("en", "de", "fr", "es", "it")``. The shipped corpus (``data/corpus``, built by
``scripts/build_corpus.py``; provenance in ``data/README.md``) holds ``<lang>/train.txt`` and
``<lang>/heldout.txt``, UTF-8, one paragraph per line. Held-out files are *parallel*: line ``i`` is the same
paragraph in every language, so per-language differences in loss are differences of language, not topic.

Public names (stable; other modules import them):

``load_corpus(source=None, langs=LANGS) -> {lang: DatasetDict(train=Dataset, heldout=Dataset)}``
    Each ``Dataset`` has one ``"text"`` column, one paragraph per row. ``source``:
    ``None`` = the shipped ``data/corpus``; a local folder of ``<lang>/{train,heldout}.txt``; any other string
    = a hub dataset name (online users only), which must have a ``"text"`` and a ``"lang"`` column and a
    ``"train"`` split plus a held-out split named ``"heldout"``, ``"validation"`` or ``"test"``.
``encode_texts(tokenizer, texts) -> LongTensor (n_tokens,)``
    Documents tokenised and concatenated, each followed by the EOS token.
``chunk(tokens, seq_len) -> LongTensor (N, seq_len)``
    Non-overlapping blocks of a 1-D token stream (the ragged tail is dropped).
``lang_token_blocks(tokenizer, corpus, split, seq_len, max_blocks_per_lang=None) -> {lang: LongTensor (N, T)}``
    Per-language blocks of one split (deterministic: the first ``max_blocks_per_lang`` blocks).
``train_mix(tokenizer, corpus) -> {lang: float}``
    Each language's share of the training tokens (the shipped corpus gives about 50/20/10/10/10).
``train_batches(tokenizer, corpus, seq_len, batch_size, seed, mix=None) -> Iterator[LongTensor (B, T)]``
    Endless seeded batches of random training windows; every row's language is drawn with the ``mix``
    probabilities (default ``train_mix``), so batches mix languages in the training proportions.
``capability_streams(tokenizer, corpus, lang, seq_len, batch_size, seed) -> (capability, rest)``
    The two streams of a targeted decomposition of one language: its own windows, and the other languages'.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import datasets
import torch
from torch import Tensor

from vpd_lite.models import corpus as corpus_mod
from vpd_lite.models.hub import require_hub
from vpd_lite.models.paths import corpus_dir


def heldout_batches(tokenizer, seq_len: int = 128, blocks_per_lang: int = 32, batch_size: int = 16,
                    corpus=None, seed: int = 0, quick: bool = False) -> list[Tensor]:
    """Held-out mixed-language batches [(B, T)]: the first ``blocks_per_lang`` held-out blocks of every
    language, shuffled together (seeded). Quick mode takes 2 blocks per language."""

    corpus = corpus_mod.load_corpus() if corpus is None else corpus
    n = 2 if quick else blocks_per_lang
    blocks = corpus_mod.lang_token_blocks(tokenizer, corpus, "heldout", seq_len, max_blocks_per_lang=n)
    allb = torch.cat(list(blocks.values()))
    perm = torch.randperm(allb.shape[0], generator=torch.Generator().manual_seed(seed))
    allb = allb[perm]
    return [allb[i: i + batch_size] for i in range(0, allb.shape[0], batch_size)]


LANGS: tuple[str, ...] = ("en", "de", "fr", "es", "it")


SPLITS: tuple[str, ...] = ("train", "heldout")


#: Names a hub dataset may use for its held-out split, in order of preference.
HUB_HELDOUT_SPLITS: tuple[str, ...] = ("heldout", "validation", "test")


_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


# ------------------------------------------------------------------------------------------- loading
def load_corpus(
    source: str | os.PathLike | None = None, langs: Sequence[str] = LANGS,
    lang_column: str = "lang", text_column: str = "text",
) -> dict[str, datasets.DatasetDict]:
    """Load ``{lang: DatasetDict(train=..., heldout=...)}`` (a ``"text"`` column, one paragraph per row).

    ``source``: ``None`` for the shipped ``data/corpus``; a folder with ``<lang>/train.txt`` and
    ``<lang>/heldout.txt`` (or, without such sub-folders, data files in the hub layout below); or a hub
    dataset name (needs internet; see the module docstring for the layout; ``lang_column`` /
    ``text_column`` name its language-code and text columns).
    Raises ``FileNotFoundError`` for a missing folder/language/split and ``ValueError`` for an unknown
    language or an empty split.
    """
    langs = tuple(langs)
    if not langs:
        raise ValueError("langs is empty")
    if source is None:
        folder = corpus_dir()
        if not folder.is_dir():
            raise FileNotFoundError(f"the shipped corpus folder {folder} does not exist "
                                    "(rebuild it with `python scripts/build_corpus.py`)")
        return _load_local(folder, langs)
    if isinstance(source, os.PathLike) or Path(os.path.expanduser(str(source))).exists():
        folder = Path(os.path.expanduser(os.fspath(source)))
        if folder.is_dir() and not any((folder / lang).is_dir() for lang in langs) and any(
                p.is_file() for p in folder.iterdir()):
            # no <lang>/ sub-folders but data files: a dataset folder (train.jsonl, test.csv, ...) in hub layout
            return _load_hub(str(folder), langs, lang_column, text_column)
        return _load_local(folder, langs)
    name = str(source)
    if not _HUB_NAME.match(name):
        raise FileNotFoundError(f"corpus source {name!r} is not an existing folder nor a hub dataset name")
    require_hub(name, "corpus")  # offline: one line now instead of a minute of retries
    return _load_hub(name, langs, lang_column, text_column)


def _read_lines(path: Path) -> list[str]:
    """Non-empty, stripped lines of a UTF-8 text file."""
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


def _load_local(folder: Path, langs: tuple[str, ...]) -> dict[str, datasets.DatasetDict]:
    if not folder.is_dir():
        raise FileNotFoundError(f"corpus folder {folder} does not exist or is not a folder")
    out = {}
    for lang in langs:
        lang_dir = folder / lang
        if not lang_dir.is_dir():
            raise FileNotFoundError(f"corpus folder {folder} has no language folder {lang!r} ({lang_dir})")
        splits = {}
        for split in SPLITS:
            path = lang_dir / f"{split}.txt"
            if not path.is_file():
                raise FileNotFoundError(f"missing {split!r} split for language {lang!r}: {path}")
            lines = _read_lines(path)
            if not lines:
                raise ValueError(f"the {split!r} split for language {lang!r} is empty: {path}")
            splits[split] = datasets.Dataset.from_dict({"text": lines})
        out[lang] = datasets.DatasetDict(splits)
    return out


def _load_hub(name: str, langs: tuple[str, ...], lang_column: str = "lang",
              text_column: str = "text") -> dict[str, datasets.DatasetDict]:
    """A hub dataset (or anything ``datasets.load_dataset`` opens, e.g. a folder of ``train.jsonl`` /
    ``test.jsonl`` files) with a text and a language-code column, a train split and a held-out split."""
    try:
        ds = datasets.load_dataset(name)
    except Exception as err:  # offline, unknown name, ...: say what we tried
        raise FileNotFoundError(f"corpus source {name!r} is not a local folder and could not be loaded "
                                f"from the hub: {err}") from err
    heldout_name = next((s for s in HUB_HELDOUT_SPLITS if s in ds), None)
    if "train" not in ds or heldout_name is None:
        raise ValueError(f"hub dataset {name!r} needs a 'train' split and one of {HUB_HELDOUT_SPLITS}; "
                         f"it has {list(ds)}")
    for split in ("train", heldout_name):
        missing = {text_column, lang_column} - set(ds[split].column_names)
        if missing:
            raise ValueError(f"hub dataset {name!r} split {split!r} lacks columns {sorted(missing)}")
    out = {}
    for lang in langs:
        splits = {}
        for split, src in (("train", "train"), ("heldout", heldout_name)):
            part = ds[src].filter(lambda row, lang=lang: row[lang_column] == lang).select_columns([text_column])
            if text_column != "text":
                part = part.rename_column(text_column, "text")
            if len(part) == 0:
                raise ValueError(f"hub dataset {name!r} has no {lang!r} rows in split {src!r}")
            splits[split] = part
        out[lang] = datasets.DatasetDict(splits)
    return out


# ------------------------------------------------------------------------------------------ tokens
def _eos_id(tokenizer) -> int:
    if tokenizer.eos_token_id is None:
        raise ValueError(f"tokenizer {type(tokenizer).__name__} has no EOS token")
    return int(tokenizer.eos_token_id)


def encode_texts(tokenizer, texts: Iterable[str]) -> torch.Tensor:
    """Tokenise ``texts`` and concatenate them, each followed by EOS. Returns LongTensor ``(n_tokens,)``."""
    texts = list(texts)
    eos = _eos_id(tokenizer)
    if not texts:
        return torch.zeros(0, dtype=torch.long)
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    flat = [tok for doc in ids for tok in (*doc, eos)]
    return torch.tensor(flat, dtype=torch.long)


def chunk(tokens: torch.Tensor, seq_len: int) -> torch.Tensor:
    """Cut a 1-D stream ``(n,)`` into non-overlapping blocks ``(n // seq_len, seq_len)``; the tail is dropped."""
    if tokens.dim() != 1:
        raise ValueError(f"chunk expects a 1-D token stream, got shape {tuple(tokens.shape)}")
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    n = tokens.numel() // seq_len
    return tokens[: n * seq_len].reshape(n, seq_len)


def lang_token_blocks(
    tokenizer,
    corpus: Mapping[str, datasets.DatasetDict],
    split: str,
    seq_len: int,
    max_blocks_per_lang: int | None = None,
) -> dict[str, torch.Tensor]:
    """``{lang: LongTensor (N, seq_len)}``: the first ``max_blocks_per_lang`` blocks of each language's split."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    out = {}
    for lang, dd in corpus.items():
        blocks = chunk(encode_texts(tokenizer, dd[split]["text"]), seq_len)
        if blocks.shape[0] == 0:
            raise ValueError(f"{lang!r} {split!r} split has fewer than seq_len={seq_len} tokens")
        out[lang] = blocks[:max_blocks_per_lang] if max_blocks_per_lang is not None else blocks
    return out


def train_mix(tokenizer, corpus: Mapping[str, datasets.DatasetDict]) -> dict[str, float]:
    """Each language's share of the training tokens ``{lang: fraction}`` (sums to 1)."""
    counts = {lang: encode_texts(tokenizer, dd["train"]["text"]).numel() for lang, dd in corpus.items()}
    total = sum(counts.values())
    return {lang: n / total for lang, n in counts.items()}


def train_batches(
    tokenizer,
    corpus: Mapping[str, datasets.DatasetDict],
    seq_len: int,
    batch_size: int,
    seed: int,
    mix: Mapping[str, float] | None = None,
) -> Iterator[torch.Tensor]:
    """Endless seeded batches ``LongTensor (batch_size, seq_len)`` of random training windows.

    Each row first draws its language with probabilities ``mix`` (default: the languages' shares of the
    training tokens), then a uniformly random window of ``seq_len`` tokens of that language's training
    stream (documents joined with EOS). Same arguments and seed -> the same sequence of batches.
    """
    streams = {lang: encode_texts(tokenizer, dd["train"]["text"]) for lang, dd in corpus.items()}
    for lang, s in streams.items():
        if s.numel() <= seq_len:
            raise ValueError(f"{lang!r} training split has {s.numel()} tokens, need more than seq_len={seq_len}")
    langs = list(streams)
    if mix is None:
        total = sum(s.numel() for s in streams.values())
        mix = {lang: streams[lang].numel() / total for lang in langs}
    unknown = set(mix) - set(langs)
    if unknown:
        raise ValueError(f"mix names languages not in the corpus: {sorted(unknown)}")
    weights = torch.tensor([float(mix.get(lang, 0.0)) for lang in langs], dtype=torch.double)
    if (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"mix weights must be non-negative and not all zero, got {dict(mix)}")
    gen = torch.Generator().manual_seed(seed)
    offsets = torch.arange(seq_len)
    while True:
        row_langs = torch.multinomial(weights, batch_size, replacement=True, generator=gen)
        rows = []
        for li in row_langs.tolist():
            stream = streams[langs[li]]
            start = int(torch.randint(0, stream.numel() - seq_len + 1, (1,), generator=gen))
            rows.append(stream[start + offsets])
        yield torch.stack(rows)  # (B, T)


def check_language(lang: str, known: Iterable[str] = LANGS) -> None:
    """Raise ``ValueError`` (one sentence naming the languages there are) unless ``lang`` is one of ``known``
    (a corpus's languages; by default ``LANGS``)."""
    known = list(known)
    if lang not in known:
        names = ", ".join(f"{k} ({LANG_NAMES.get(k, k)})" for k in known)
        raise ValueError(f"unknown language {lang!r}: the corpus has {names}")


def capability_streams(
    tokenizer,
    corpus: Mapping[str, datasets.DatasetDict],
    lang: str,
    seq_len: int,
    batch_size: int,
    seed: int,
    rest_batch_size: int | None = None,
) -> tuple[Iterator[torch.Tensor], Iterator[torch.Tensor]]:
    """The two data streams of a targeted decomposition of language ``lang``: (capability batches: training
    windows of ``lang`` alone, rest batches: training windows of every other language in their training
    proportions), each ``LongTensor (B, seq_len)``, endless and seeded (the rest stream from ``seed + 1``).

    Raises ``ValueError`` (one sentence) for a language the corpus does not have, a corpus with no other
    language, or a language whose training text is too short for one window."""
    check_language(lang, corpus)
    others = [k for k in corpus if k != lang]
    if not others:
        raise ValueError(f"the corpus has only {lang!r}: a targeted decomposition needs text of other languages "
                         "for its rest batches")
    n = encode_texts(tokenizer, corpus[lang]["train"]["text"]).numel()
    if n <= seq_len:
        raise ValueError(f"language {lang!r} has {n} training tokens, too few for one window of {seq_len}")
    capability = train_batches(tokenizer, {lang: corpus[lang]}, seq_len, batch_size, seed)
    rest = train_batches(tokenizer, {k: corpus[k] for k in others}, seq_len, rest_batch_size or batch_size, seed + 1)
    return capability, rest


def heldout_split(tokenizer, corpus: Mapping[str, datasets.DatasetDict], lang: str,
                  **kwargs) -> tuple[list[Tensor], list[Tensor]]:
    """Held-out batches of language ``lang`` alone and of every other language (``heldout_batches`` of each
    part; ``kwargs`` go to it): how a targeted decomposition of ``lang`` is judged. Raises ``ValueError`` for a
    language the corpus does not have."""
    check_language(lang, corpus)
    return (heldout_batches(tokenizer, corpus={lang: corpus[lang]}, **kwargs),
            heldout_batches(tokenizer, corpus={k: v for k, v in corpus.items() if k != lang}, **kwargs))


LANG_NAMES = {"en": "English", "de": "German", "fr": "French", "es": "Spanish", "it": "Italian"}

#: One colour per language, shared by every figure of the course, the results and the component atlas.
LANG_COLOURS = {"en": "#4c72b0", "de": "#dd8452", "fr": "#55a868", "es": "#c44e52", "it": "#8172b3"}


def lang_name(lang: str) -> str:
    """Display name of a language code ("de" -> "German"; unknown codes pass through)."""
    return LANG_NAMES.get(lang, lang)
