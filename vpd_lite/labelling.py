"""Label the shipped decomposition's components: ``python -m vpd_lite.labelling``.

The command lives in ``vpd_lite.commands.labelling``; this module keeps the name users type.
"""


if __name__ == "__main__":
    from vpd_lite.commands.labelling import run

    run()
