"""The commands users type: every ``main()`` and argument parser, thin, calling the library. The top-level
modules ``vpd_lite.<name>`` (``python -m vpd_lite.reproduce`` and so on) import ``main`` from here.

Reading order:
    cli          what every command shares: parser, argument types, one-line errors (``run_main``), run folders
    reproduce    the headless reproduction of the erase experiment
    decompose    decompose the shipped target
    distributed  decompose on several processes
    evaluate     evaluate a saved decomposition
    edit_scan    the edit scan of the shipped decomposition
    labelling    label the shipped decomposition's components
    target       train the target model
    toy_models   the toy models of superposition experiment
    recipes      decompose a pretrained hub model by recipe
    atlas        write the component atlas, a static web site of every component
"""
