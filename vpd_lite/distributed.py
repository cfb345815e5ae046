"""Decompose on several processes (torchrun): ``python -m vpd_lite.distributed``.

The command lives in ``vpd_lite.commands.distributed``; this module keeps the name users type.
"""


if __name__ == "__main__":
    from vpd_lite.commands.distributed import run

    run()
