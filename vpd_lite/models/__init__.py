"""What gets decomposed: the shipped data, the corpus, the small multilingual target model, toy models and
other architectures. Imports only ``vpd_lite.method`` and ``vpd_lite.errors``.

Reading order:
    paths          where the shipped data lives (a clone's data/, the installed copy, or VPD_LITE_DATA)
    hub            pretrained models from a hub (offline-aware)
    corpus         the multilingual corpus: languages, token blocks, training and held-out batches
    target         the tokenizer and the target model (train, load, evaluate); the recorded decomposition's config
    toy_models     toy models of superposition and their decomposition
    architectures  which modules to decompose in other architectures
    recipes        decomposition recipes for pretrained hub models
"""
