"""What every ``python -m vpd_lite.X`` command shares: its name, argument checks, one-line errors, run folders.

A command is written as ``main(argv) -> int`` that builds its parser with :func:`make_parser`, and is started
with ``sys.exit(run_main(main, "X"))``. Then:

- bad arguments get argparse's ``error:`` line and exit 2 (use the ``positive_int`` / ``nonneg_float`` /
  ``unit_interval`` ... types);
- any error the command raises is printed as one line, ``python -m vpd_lite.X: error: <message>``, exit 1;
  ``--debug`` shows the traceback instead;
- outputs go to a fresh run folder (:func:`default_run_dir`, under ``./runs/``, which git ignores) unless the
  user names a folder with ``--out``. Shipped artefacts (``data/``, ``results/``) are only written when the
  user names them.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input, arguments or files. Commands print it as one line and exit 1."""
