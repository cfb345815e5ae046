"""The German edit across decompositions: ``python -m vpd_lite.across_decompositions``.

The command lives in ``vpd_lite.commands.across_decompositions``; this module keeps the name users type.
"""


if __name__ == "__main__":
    from vpd_lite.commands.across_decompositions import run

    run()
