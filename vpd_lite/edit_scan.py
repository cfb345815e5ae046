"""The edit scan of the shipped decomposition: ``python -m vpd_lite.edit_scan``.

The command lives in ``vpd_lite.commands.edit_scan``; this module keeps the name users type.
"""


if __name__ == "__main__":
    from vpd_lite.commands.edit_scan import run

    run()
