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

import argparse
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any


def make_parser(module: str, description: str) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` named ``python -m vpd_lite.<module>`` with a ``--debug`` flag."""
    ap = argparse.ArgumentParser(prog=f"python -m vpd_lite.{module}", description=description)
    ap.add_argument("--debug", action="store_true", help="on an error, show the full traceback")
    return ap


def _number(kind: type, low: float, inclusive: bool, what: str,
            high: float | None = None) -> Callable[[str], int | float]:
    """A ``type=`` that parses ``kind`` and accepts ``low < value`` (``<=`` when ``inclusive``) and, when given,
    ``value <= high``."""
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        too_low = value < low if inclusive else value <= low
        if value != value or too_low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value

    parse.__name__ = what  # argparse names the type in its message
    return parse


#: argparse ``type=`` helpers: each turns a bad value into argparse's one-line ``error:`` (exit 2).
positive_int = _number(int, 0, False, "a positive integer")


nonneg_int = _number(int, 0, True, "an integer >= 0")


positive_float = _number(float, 0.0, False, "a positive number")


nonneg_float = _number(float, 0.0, True, "a number >= 0")


#: A fraction, probability, share or threshold on a [0, 1] scale.
unit_interval = _number(float, 0.0, True, "a number in [0, 1]", high=1.0)


def out_folder(text: str) -> Path:
    """argparse ``type=`` for an output folder: refuses, before any work, a path that exists and is not a folder."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text!r} is a file; --out names a folder")
    return path


def default_run_dir(command: str, root: str | os.PathLike | None = None) -> Path:
    """A new folder for one run's outputs: ``<root>/<command>-<YYYYmmdd-HHMMSS>`` (not created here).

    ``root`` defaults to ``$VPD_LITE_RUNS`` or ``./runs`` (ignored by git in a clone of the repository), so a
    command the user did not point at ``data/`` or ``results/`` never writes there.
    """
    base = Path(root if root is not None else os.environ.get("VPD_LITE_RUNS", "runs"))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = base / f"{command}-{stamp}"
    n = 1
    while path.exists():
        n += 1
        path = base / f"{command}-{stamp}-{n}"
    return path




def continue_command(command: str, argv: Sequence[str], out: Path, flag: str = "--out",
                     resume: str | None = "--resume", launcher: Sequence[str] = ("python",)) -> str:
    """The command line that continues the stopped run started with ``argv`` (the arguments after ``python -m
    vpd_lite.<command>``) writing to ``out``: the same arguments, ``<flag> out`` and ``resume`` (if any), after
    ``launcher`` (e.g. ``torchrun --nproc_per_node 2`` for a data-parallel run)."""
    args, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == flag:
            skip = True
        elif arg != resume and not arg.startswith(f"{flag}="):
            args.append(arg)
    return shlex.join([*launcher, "-m", f"vpd_lite.{command}", *args, flag, str(out), *([resume] if resume else [])])


def stopped_line(command: str, stop: Any, argv: Sequence[str], out: Path, flag: str = "--out",
                 resume: str | None = "--resume", what: str = "", launcher: Sequence[str] = ("python",)) -> str:
    """The one line a command prints when a ``TrainingInterrupted`` (``stop``) ended its training (``what``: which
    one, e.g. " of the target's training"): the signal, the step and the command that continues the run."""
    again = continue_command(command, argv, out, flag, resume, launcher)
    return (f"python -m vpd_lite.{command}: stopped by {stop.signal_name} after step {stop.step} of {stop.steps}"
            f"{what}; checkpoint written; continue with: {again}")


def run_main(main: Callable[[Sequence[str] | None], int], module: str, argv: Sequence[str] | None = None) -> int:
    """Run ``main(argv)`` of ``python -m vpd_lite.<module>``; print any error it raises as one line on stderr
    and return 1 (130 on Ctrl-C).

    With ``--debug`` in the arguments the exception propagates with its traceback. ``SystemExit`` (argparse's
    exit 2, ``--help``) passes through unchanged.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    prog = f"python -m vpd_lite.{module}"
    try:
        return main(args)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - every error becomes one line unless --debug
        if "--debug" in args:
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        if isinstance(err, KeyError) and err.args:
            message = str(err.args[0])
        print(f"{prog}: error: {message} (add --debug for the traceback)", file=sys.stderr)
        return 1
