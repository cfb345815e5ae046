"""vpd-lite: adversarial parameter decomposition (VPD) of small language models, for teaching and reproduction.

Modules (one job each):
    paths              where the shipped data lives
    corpus             the multilingual corpus (train / held-out per language)
    target             tokenizer and the small multilingual target model (train, load)
    components         rank-1 component layers wrapped around a model's linear layers
    causal_importance  the CI functions and leaky hard sigmoids
    masks              stochastic masks and subset routing
    pgd                adversarial (PGD) mask sources, fresh and persistent
    losses             faithfulness, reconstruction and importance-minimality losses
    decompose          DecomposeConfig and the training loop
    checkpoint         save / load a decomposition (refuses the wrong model)
    evaluate           CE / KL under the various masks, L0, dead components
    analysis, labelling, edits, baselines, widgets, plots, reproduce: the tutorial layer
"""

__version__ = "0.1.0"


def quick_mode() -> bool:
    """True when ``VPD_LITE_QUICK`` is set to a truthy value ("1", "true", "yes").

    Tests and ``pytest --nbmake`` run in quick mode (see the repository's ``conftest.py``);
    a user running a notebook by hand gets full mode unless they set the variable.
    """
    import os

    return os.environ.get("VPD_LITE_QUICK", "0").strip().lower() in {"1", "true", "yes", "on"}
