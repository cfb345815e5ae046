"""The error that every layer raises for a one-line message: ``UserError`` (a problem with the user's input,
arguments or files). It sits below every other module so that the method, the models and the commands can all
raise it; ``vpd_lite.commands.cli.run_main`` prints it as one line and exits 1.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input, arguments or files. Commands print it as one line and exit 1."""
