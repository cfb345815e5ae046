"""Build the component atlas, a static web site of every component: ``python -m vpd_lite.atlas``.

The command lives in ``vpd_lite.commands.atlas``; this module keeps the name users type.
"""


if __name__ == "__main__":
    from vpd_lite.commands.atlas import run

    run()
