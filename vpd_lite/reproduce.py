"""The headless reproduction: ``python -m vpd_lite.reproduce`` (also the console script ``vpd-lite-reproduce``).

The command lives in ``vpd_lite.commands.reproduce``; this module keeps the name users type.
"""


if __name__ == "__main__":
    from vpd_lite.commands.reproduce import run

    run()
