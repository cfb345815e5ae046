"""Ready-made runs beyond the embedded model: decompose any ``from_pretrained`` causal LM (needs internet).

The default path of vpd-lite is offline (``data/target``). A *recipe* names an online model, the multilingual
text to decompose and evaluate it on, and a ``DecomposeConfig`` sized for it:

    pythia-70m   EleutherAI/pythia-70m (6-layer GPT-NeoX, d_model 512), the closest public analogue of the
                 67M-parameter Llama-style model of the VPD paper; multilingual text from the hub dataset
                 papluca/language-identification (text + language-code columns; en/de/fr/es/it among 20
                 languages). Every attention and MLP matrix, C = 2 x rank. Meant for a GPU.

Run one (``--model`` / ``--corpus`` override the recipe's names, e.g. with local copies)::

    python -m vpd_lite.recipes pythia-70m --out runs/pythia70m --minutes 60

Any other model: ``python -m vpd_lite.recipes custom --model gpt2 --corpus <hub dataset or folder> --out DIR``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from vpd_lite.corpus import LANGS
from vpd_lite.decompose import DecomposeConfig

__all__ = ["Recipe", "RECIPES", "load_recipe", "run_recipe", "main"]


@dataclass
class Recipe:
    """What to decompose (``model``: a from_pretrained name or path), on which text (``corpus``: a
    ``vpd_lite.corpus.load_corpus`` source; ``lang_column`` / ``text_column`` name a hub dataset's columns,
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
        decompose=DecomposeConfig(steps=20_000, batch_size=32, seq_len=128, ci_hidden=256, lr=1e-3,
                                  faithfulness_warmup_steps=1000, checkpoint_every=1000, device="auto"),
    ),
    "custom": Recipe(model=""),
}


def load_recipe(recipe: Recipe) -> tuple[nn.Module, object, dict]:
    """(model in eval mode, tokenizer, corpus) for a recipe; a clear error when the model name is empty, names a
    folder that does not exist, or needs a hub this machine cannot reach (``vpd_lite.hub``)."""
    from vpd_lite.corpus import load_corpus
    from vpd_lite.hub import load_pretrained

    if not recipe.model:
        raise ValueError("the recipe names no model: pass --model NAME_OR_PATH")
    model, tokenizer = load_pretrained(recipe.model, recipe.tokenizer)
    if tokenizer.eos_token_id is None:
        raise ValueError(f"tokenizer of {recipe.model!r} has no EOS token to separate documents")
    corpus = load_corpus(recipe.corpus, recipe.langs, lang_column=recipe.lang_column, text_column=recipe.text_column)
    return model, tokenizer, corpus


def run_recipe(recipe: Recipe, out: str | Path, progress: bool = True) -> dict:
    """Decompose the recipe's model on its corpus, evaluate on held-out text, save to ``out``; returns metrics."""
    from vpd_lite import corpus as corpus_mod
    from vpd_lite.architectures import default_targets
    from vpd_lite.checkpoint import atomic_write_json, save_decomposition
    from vpd_lite.decompose import decompose
    from vpd_lite.evaluate import evaluate_decomposition, heldout_batches

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


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m vpd_lite.recipes NAME [--out DIR] [--model M] [--corpus C] [--steps N] [--minutes M]``;
    writes to a new run folder unless ``--out`` names one. Errors are raised as exceptions
    (``vpd_lite.cli.run_main`` prints them as one line)."""
    from vpd_lite.cli import default_run_dir, make_parser, out_folder, positive_float, positive_int
    from vpd_lite.devices import resolve_device
    from vpd_lite.evaluate import format_metrics

    ap = make_parser("recipes", "Decompose an online model with a named recipe (needs internet unless --model "
                                "and --corpus name local copies).")
    def default(get: Callable[[Recipe], object]) -> str:
        """'(default: custom: X; pythia-70m: Y)': what each recipe sets."""
        return "(default: " + "; ".join(f"{name}: {get(r)}" for name, r in sorted(RECIPES.items())) + ")"

    ap.add_argument("recipe", choices=sorted(RECIPES), help="pythia-70m, or custom (then --model is required)")
    ap.add_argument("--out", type=out_folder, default=None,
                    help="output folder (default: a new runs/<recipe>-<time> folder)")
    ap.add_argument("--model", default=None, help="from_pretrained hub id or local folder "
                    + default(lambda r: r.model or "none, --model is required"))
    ap.add_argument("--corpus", default=None, help="hub dataset name or local folder "
                    + default(lambda r: r.corpus or "the shipped corpus"))
    ap.add_argument("--lang-column", default=None,
                    help="a hub dataset's language-code column " + default(lambda r: repr(r.lang_column)))
    ap.add_argument("--text-column", default=None,
                    help="a hub dataset's text column " + default(lambda r: repr(r.text_column)))
    ap.add_argument("--steps", type=positive_int, default=None,
                    help="training steps " + default(lambda r: r.decompose.steps))
    ap.add_argument("--minutes", type=positive_float, default=None,
                    help="wall-clock budget for training " + default(lambda r: r.decompose.time_budget_minutes
                                                                   or "none"))
    ap.add_argument("--batch-size", type=positive_int, default=None,
                    help="rows per step " + default(lambda r: r.decompose.batch_size))
    ap.add_argument("--seq-len", type=positive_int, default=None,
                    help="tokens per row " + default(lambda r: r.decompose.seq_len))
    ap.add_argument("--device", default=None, choices=("auto", "cpu", "cuda"),
                    help="auto uses CUDA when present " + default(lambda r: r.decompose.device))
    args = ap.parse_args(argv)
    if not (args.model or RECIPES[args.recipe].model):
        ap.error(f"the {args.recipe!r} recipe names no model: pass --model NAME_OR_PATH")
    if args.device is not None:
        resolve_device(args.device)  # before any work: --device cuda without CUDA is refused here

    recipe = dataclasses.replace(RECIPES[args.recipe], decompose=dataclasses.replace(RECIPES[args.recipe].decompose))
    for attr, value in (("model", args.model), ("corpus", args.corpus), ("lang_column", args.lang_column),
                        ("text_column", args.text_column)):
        if value is not None:
            setattr(recipe, attr, value)
    for attr, value in (("steps", args.steps), ("time_budget_minutes", args.minutes),
                        ("batch_size", args.batch_size), ("seq_len", args.seq_len), ("device", args.device)):
        if value is not None:
            setattr(recipe.decompose, attr, value)
    out = Path(args.out) if args.out else default_run_dir(args.recipe)
    print(format_metrics(run_recipe(recipe, out)))
    print(f"decomposition written to {out}")
    return 0


if __name__ == "__main__":
    import sys

    from vpd_lite.cli import run_main

    sys.exit(run_main(main, "recipes"))
