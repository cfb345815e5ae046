"""Decompose the shipped target with VPD: ``python -m vpd_lite.decompose``.

The command lives in ``vpd_lite.commands.decompose``; this module keeps the name users type.
"""


if __name__ == "__main__":
    from vpd_lite.commands.decompose import run

    run()
