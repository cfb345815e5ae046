"""Run many ``python -m vpd_lite.X ARGS`` command lines in this one process, one after another, and print what
each did as JSON: ``[{"code": exit code, "stdout": ..., "stderr": ...}, ...]``.

    python tests/commands/cli_batch.py CASES.json     # [[module, [args...], cwd], ...]

Each case runs the command's own entry point (``vpd_lite.commands.<module>.run``, what ``python -m
vpd_lite.<module>`` calls) with ``sys.argv`` set, its working directory changed to ``cwd`` and its output
captured, so that the tests of bad input pay the start-up of Python, torch and transformers once instead of
once per case. The tests that need a real process of their own (a run that writes files, ``--debug``) still
start one.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import sys


def run_case(module: str, args: list[str], cwd: str) -> dict:
    """One command line, in process: its exit code and captured output."""
    out, err = io.StringIO(), io.StringIO()
    old_argv, old_cwd = sys.argv, os.getcwd()
    sys.argv = [f"vpd_lite.{module}", *args]
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                importlib.import_module(f"vpd_lite.commands.{module}").run()
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = old_argv
        os.chdir(old_cwd)
    return {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    print(json.dumps([run_case(m, a, c) for m, a, c in cases]))
