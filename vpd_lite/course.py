"""A teacher's tools for the notebooks: ``python -m vpd_lite.course student-copy DIR``, ``... reset NOTEBOOK`` and
``... figures DIR``.

The command lives in ``vpd_lite.commands.course``; this module keeps the name users type.
"""


if __name__ == "__main__":
    from vpd_lite.commands.course import run

    run()
