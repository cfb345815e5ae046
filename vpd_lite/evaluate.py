"""Evaluate a saved decomposition: ``python -m vpd_lite.evaluate``.

The command lives in ``vpd_lite.commands.evaluate``; this module keeps the name users type.
"""


if __name__ == "__main__":
    from vpd_lite.commands.evaluate import run

    run()
