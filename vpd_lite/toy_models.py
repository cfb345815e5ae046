"""The toy models of superposition experiment: ``python -m vpd_lite.toy_models``.

The command lives in ``vpd_lite.commands.toy_models``; this module keeps the name users type.
"""


if __name__ == "__main__":
    from vpd_lite.commands.toy_models import run

    run()
