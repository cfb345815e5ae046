"""Decompose a pretrained hub model by recipe: ``python -m vpd_lite.recipes``.

The command lives in ``vpd_lite.commands.recipes``; this module keeps the name users type.
"""


if __name__ == "__main__":
    from vpd_lite.commands.recipes import run

    run()
