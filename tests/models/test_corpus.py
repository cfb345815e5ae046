"""The corpus loader and the token helpers of vpd_lite.models.corpus, and the shipped data/corpus itself."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

from vpd_lite.models.corpus import LANGS, chunk, encode_texts, lang_token_blocks, load_corpus, train_batches, train_mix
from vpd_lite.models.paths import corpus_dir


def char_tokenizer() -> PreTrainedTokenizerFast:
    """One token per character: '<eos>' = 0, then ' ', a-z, A-Z (ids easy to compute by hand)."""
    chars = " " + string.ascii_lowercase + string.ascii_uppercase
    vocab = {"<eos>": 0, **{c: i + 1 for i, c in enumerate(chars)}}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>")


def write_corpus(root: Path, texts: dict[str, tuple[list[str], list[str]]]) -> Path:
    for lang, (train, heldout) in texts.items():
        (root / lang).mkdir(parents=True)
        (root / lang / "train.txt").write_text("\n".join(train) + "\n", encoding="utf-8")
        (root / lang / "heldout.txt").write_text("\n".join(heldout) + "\n", encoding="utf-8")
    return root


@pytest.fixture()
def tiny_corpus(tmp_path):
    """en uses only lower-case letters, de only upper-case ones: a token id tells the language."""
    root = write_corpus(tmp_path / "corpus", {
        "en": (["abc de", "", "fgh ijk lmn"], ["opq rst"]),
        "de": (["ABC DE", "FGH"], ["OPQ RST UV"]),
    })
    return root


# ------------------------------------------------------------------------------------------ loading
def test_local_folder_loads_lines_as_rows_and_skips_blank_lines(tiny_corpus):
    corpus = load_corpus(tiny_corpus, langs=("en", "de"))
    assert set(corpus) == {"en", "de"}
    assert set(corpus["en"]) == {"train", "heldout"}
    assert corpus["en"]["train"]["text"] == ["abc de", "fgh ijk lmn"]
    assert corpus["de"]["heldout"]["text"] == ["OPQ RST UV"]
    # a string path works the same as a Path
    assert load_corpus(str(tiny_corpus), langs=("de",))["de"]["train"]["text"] == ["ABC DE", "FGH"]


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_corpus(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_corpus("./nowhere/at/all")


def test_missing_language_names_the_language(tiny_corpus):
    with pytest.raises(FileNotFoundError, match="'fr'"):
        load_corpus(tiny_corpus, langs=("en", "fr"))


def test_missing_split_names_the_split(tiny_corpus):
    (tiny_corpus / "de" / "heldout.txt").unlink()
    with pytest.raises(FileNotFoundError, match="'heldout'.*'de'"):
        load_corpus(tiny_corpus, langs=("de",))


def test_empty_split_is_rejected(tiny_corpus):
    (tiny_corpus / "en" / "train.txt").write_text("\n  \n", encoding="utf-8")
    with pytest.raises(ValueError, match="empty"):
        load_corpus(tiny_corpus, langs=("en",))


def test_empty_language_list_is_rejected(tiny_corpus):
    with pytest.raises(ValueError):
        load_corpus(tiny_corpus, langs=())


# ------------------------------------------------------------------------------------------- tokens
def test_encode_texts_appends_eos_after_every_document():
    tok = char_tokenizer()
    ids = encode_texts(tok, ["ab", "c"])
    # a=2, b=3, c=4 (' ' is 1, '<eos>' is 0)
    assert ids.tolist() == [2, 3, 0, 4, 0]
    assert ids.dtype == torch.long
    assert encode_texts(tok, []).numel() == 0


def test_chunk_cuts_non_overlapping_blocks_and_drops_the_tail():
    blocks = chunk(torch.arange(10), 3)
    assert blocks.tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert chunk(torch.arange(2), 3).shape == (0, 3)
    with pytest.raises(ValueError, match="1-D"):
        chunk(torch.zeros(2, 3, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="seq_len"):
        chunk(torch.arange(5), 0)


def test_lang_token_blocks_shapes_and_limit(tiny_corpus):
    tok = char_tokenizer()
    corpus = load_corpus(tiny_corpus, langs=("en", "de"))
    # en train: "abc de" + eos + "fgh ijk lmn" + eos = 7 + 12 = 19 tokens -> 4 blocks of 4
    blocks = lang_token_blocks(tok, corpus, "train", seq_len=4)
    assert blocks["en"].shape == (4, 4)
    assert blocks["en"][0].tolist() == [2, 3, 4, 1]  # "abc "
    limited = lang_token_blocks(tok, corpus, "train", seq_len=4, max_blocks_per_lang=2)
    assert limited["en"].shape == (2, 4) and torch.equal(limited["en"], blocks["en"][:2])
    with pytest.raises(ValueError, match="split"):
        lang_token_blocks(tok, corpus, "validation", seq_len=4)
    with pytest.raises(ValueError, match="seq_len"):
        lang_token_blocks(tok, corpus, "heldout", seq_len=100)


def _is_window(row: torch.Tensor, stream: torch.Tensor) -> bool:
    t = row.numel()
    return any(torch.equal(stream[i : i + t], row) for i in range(stream.numel() - t + 1))


def test_train_batches_are_seeded_windows_in_the_requested_mix(tiny_corpus):
    tok = char_tokenizer()
    corpus = load_corpus(tiny_corpus, langs=("en", "de"))
    a = train_batches(tok, corpus, seq_len=4, batch_size=8, seed=3)
    b = train_batches(tok, corpus, seq_len=4, batch_size=8, seed=3)
    c = train_batches(tok, corpus, seq_len=4, batch_size=8, seed=4)
    first_a, first_b, first_c = next(a), next(b), next(c)
    assert first_a.shape == (8, 4) and first_a.dtype == torch.long
    assert torch.equal(first_a, first_b) and torch.equal(next(a), next(b))
    assert not torch.equal(first_a, first_c)

    streams = {lang: encode_texts(tok, corpus[lang]["train"]["text"]) for lang in ("en", "de")}
    only_de = next(train_batches(tok, corpus, seq_len=4, batch_size=16, seed=0, mix={"de": 1.0}))
    assert all(_is_window(row, streams["de"]) for row in only_de)

    # lower-case letters (ids 2..27) are en, upper-case (28..53) de; eos/space are shared
    gen = train_batches(tok, corpus, seq_len=4, batch_size=200, seed=0, mix={"en": 0.8, "de": 0.2})
    batch = torch.cat([next(gen) for _ in range(5)])
    is_de = ((batch >= 28).any(dim=1)).float().mean().item()
    assert 0.15 < is_de < 0.25  # 1000 rows, p = 0.2: the standard error is ~0.013


def test_train_batches_rejects_bad_mix(tiny_corpus):
    tok = char_tokenizer()
    corpus = load_corpus(tiny_corpus, langs=("en", "de"))
    with pytest.raises(ValueError, match="fr"):
        next(train_batches(tok, corpus, 4, 2, 0, mix={"fr": 1.0}))
    with pytest.raises(ValueError, match="non-negative"):
        next(train_batches(tok, corpus, 4, 2, 0, mix={"en": 0.0, "de": 0.0}))


def test_train_mix_is_the_token_share(tiny_corpus):
    tok = char_tokenizer()
    corpus = load_corpus(tiny_corpus, langs=("en", "de"))
    mix = train_mix(tok, corpus)
    # en: 19 tokens, de: "ABC DE"+eos + "FGH"+eos = 7 + 4 = 11 tokens
    assert mix == pytest.approx({"en": 19 / 30, "de": 11 / 30})


# ------------------------------------------------------------------------------------ shipped data
def test_shipped_corpus_meets_the_size_and_mix_requirements():
    sizes = {}
    for lang in LANGS:
        sizes[lang] = {split: (corpus_dir() / lang / f"{split}.txt").stat().st_size
                       for split in ("train", "heldout")}
        assert sizes[lang]["train"] >= 150_000, (lang, sizes[lang])
        assert sizes[lang]["heldout"] >= 20_000, (lang, sizes[lang])
    train = {lang: s["train"] for lang, s in sizes.items()}
    assert max(train, key=train.get) == "en"
    assert train["de"] > 1.5 * max(train[lang] for lang in ("fr", "es", "it"))
    total = sum(sizes[lang][s] for lang in LANGS for s in ("train", "heldout"))
    assert total < 5_000_000


def test_shipped_corpus_loads_with_parallel_heldout_and_no_overlap():
    corpus = load_corpus()
    assert tuple(corpus) == LANGS
    heldout_rows = {len(corpus[lang]["heldout"]) for lang in LANGS}
    assert len(heldout_rows) == 1  # line i is the same paragraph in every language
    for lang in LANGS:
        train, heldout = set(corpus[lang]["train"]["text"]), set(corpus[lang]["heldout"]["text"])
        assert not train & heldout, lang
        assert len(train) == len(corpus[lang]["train"])  # de-duplicated


def test_build_corpus_refuses_a_share_outside_0_1(capsys):
    """``scripts/build_corpus.py --fortune-share`` is a share of bytes: 2 is refused before anything is fetched."""
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "scripts" / "build_corpus.py"
    spec = importlib.util.spec_from_file_location("build_corpus", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with pytest.raises(SystemExit) as exc:
        script.main(["--fortune-share", "2"])
    assert exc.value.code == 2 and "'2' is not a number in [0, 1]" in capsys.readouterr().err


def test_capability_streams_split_one_language_from_the_rest(tiny_corpus):
    """A targeted decomposition's two streams: the capability's rows are that language's windows only, the
    rest's never; held-out text splits the same way; unknown or lonely languages are refused in one sentence."""
    from vpd_lite.models.corpus import capability_streams, heldout_split

    tok = char_tokenizer()
    corpus = load_corpus(tiny_corpus, langs=("en", "de"))
    streams = {lang: encode_texts(tok, corpus[lang]["train"]["text"]) for lang in ("en", "de")}
    german, rest = capability_streams(tok, corpus, "de", seq_len=4, batch_size=16, seed=0)
    assert all(_is_window(row, streams["de"]) for row in next(german))
    assert all(_is_window(row, streams["en"]) for row in next(rest))
    again, _ = capability_streams(tok, corpus, "de", seq_len=4, batch_size=16, seed=0)
    assert torch.equal(next(again), next(capability_streams(tok, corpus, "de", 4, 16, 0)[0]))
    de_held, rest_held = heldout_split(tok, corpus, "de", seq_len=4, blocks_per_lang=2)
    assert all((b >= 28).any(dim=1).all() for b in de_held) and not any((b >= 28).any() for b in rest_held)
    with pytest.raises(ValueError, match="unknown language 'xx': the corpus has en"):
        capability_streams(tok, corpus, "xx", 4, 16, 0)
    with pytest.raises(ValueError, match="needs text of other languages"):
        capability_streams(tok, {"de": corpus["de"]}, "de", 4, 16, 0)
    with pytest.raises(ValueError, match="too few for one window of 64"):
        capability_streams(tok, corpus, "de", 64, 16, 0)
