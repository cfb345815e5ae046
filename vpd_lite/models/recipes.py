"""Ready-made runs beyond the embedded model: decompose any ``from_pretrained`` causal LM (needs internet).

The default path of vpd-lite is offline (``data/target``). A *recipe* names an online model, the multilingual
text to decompose and evaluate it on, and a ``DecomposeConfig`` sized for it:

    pythia-70m   EleutherAI/pythia-70m (6-layer GPT-NeoX, d_model 512), the closest public analogue of the
                 67M-parameter Llama-style model of the VPD paper; multilingual text from the hub dataset
                 papluca/language-identification (text + language-code columns; en/de/fr/es/it among 20
                 languages). Every attention and MLP matrix, C = 2 x rank. Meant for a GPU.

Run one with the command ``vpd_lite.commands.recipes`` (``--model`` / ``--corpus`` override the recipe's names,
e.g. with local copies)::

    python -m vpd_lite.recipes pythia-70m --out runs/pythia70m --minutes 60

Any other model: ``python -m vpd_lite.recipes custom --model gpt2 --corpus <hub dataset or folder> --out DIR``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from vpd_lite.method.checkpoint import atomic_write_json, save_decomposition
from vpd_lite.method.config import DecomposeConfig
from vpd_lite.method.decompose import decompose
from vpd_lite.method.evaluate import evaluate_decomposition
from vpd_lite.models import corpus as corpus_mod
from vpd_lite.models.architectures import default_targets
from vpd_lite.models.corpus import LANGS, heldout_batches, load_corpus
from vpd_lite.models.hub import load_pretrained


@dataclass
class Recipe:
    """What to decompose (``model``: a from_pretrained name or path), on which text (``corpus``: a
    ``vpd_lite.models.corpus.load_corpus`` source; ``lang_column`` / ``text_column`` name a hub dataset's columns,
    ``langs`` the language codes to use),
    with which settings (``decompose``; its ``targets`` are replaced by the architecture preset at
    ``c_per_rank`` when ``use_preset``)."""

    model: str
    corpus: str | None = None
    lang_column: str = "lang"
    text_column: str = "text"
    langs: tuple[str, ...] = LANGS
    tokenizer: str | None = None
    c_per_rank: float = 2.0
    use_preset: bool = True
    decompose: DecomposeConfig = field(default_factory=DecomposeConfig)


RECIPES: dict[str, Recipe] = {
    "pythia-70m": Recipe(
        model="EleutherAI/pythia-70m",
        corpus="papluca/language-identification",
        lang_column="labels",
        text_column="text",
        c_per_rank=2.0,
        # per-matrix CI MLPs of hidden 256: the global transformer's default sizes are chosen for the shipped
        # 2-layer d-128 target, not for pythia-70m's 6 layers of d 512
        decompose=DecomposeConfig(steps=20_000, batch_size=32, seq_len=128, ci_type="shared_mlp", ci_hidden=256,
                                  lr=1e-3, faithfulness_warmup_steps=1000, checkpoint_every=1000, device="auto"),
    ),
    "custom": Recipe(model=""),
}


def load_recipe(recipe: Recipe) -> tuple[nn.Module, object, dict]:
    """(model in eval mode, tokenizer, corpus) for a recipe; a clear error when the model name is empty, names a
    folder that does not exist, or needs a hub this machine cannot reach (``vpd_lite.models.hub``)."""

    if not recipe.model:
        raise ValueError("the recipe names no model: pass --model NAME_OR_PATH")
    model, tokenizer = load_pretrained(recipe.model, recipe.tokenizer)
    if tokenizer.eos_token_id is None:
        raise ValueError(f"tokenizer of {recipe.model!r} has no EOS token to separate documents")
    corpus = load_corpus(recipe.corpus, recipe.langs, lang_column=recipe.lang_column, text_column=recipe.text_column)
    return model, tokenizer, corpus


def run_recipe(recipe: Recipe, out: str | Path, progress: bool = True) -> dict:
    """Decompose the recipe's model on its corpus, evaluate on held-out text, save to ``out``; returns metrics."""

    model, tokenizer, corpus = load_recipe(recipe)
    config = dataclasses.replace(recipe.decompose, checkpoint_dir=str(out))
    if recipe.use_preset:
        config.targets = default_targets(model, recipe.c_per_rank)
    batches = corpus_mod.train_batches(tokenizer, corpus, seq_len=config.seq_len, batch_size=config.batch_size,
                                       seed=config.seed)
    cm, history = decompose(model, batches, config, progress=progress)
    held = heldout_batches(tokenizer, seq_len=config.seq_len, corpus=corpus, seed=config.seed)
    metrics = evaluate_decomposition(cm, held, seed=config.seed, progress=progress)
    save_decomposition(cm, out, config, metrics=metrics, history=history)
    atomic_write_json(Path(out) / "metrics.json", metrics)
    return metrics
