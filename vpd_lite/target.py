"""Train the small multilingual target model: ``python -m vpd_lite.target``.

The command lives in ``vpd_lite.commands.target``; this module keeps the name users type.
"""


if __name__ == "__main__":
    from vpd_lite.commands.target import run

    run()
