"""``python -m vpd_lite.course``: a teacher's tools for the notebooks, without git.

``student-copy DIR`` writes every notebook into DIR without the folded solutions and without outputs;
``reset NOTEBOOK`` restores a student's notebook as it came, or with ``--exercise`` only that exercise's cells;
``figures DIR`` writes the course's key figures at slide size, with a page listing them.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from vpd_lite.commands import cli
from vpd_lite.models import paths
from vpd_lite.tutorial.course_kit import notebook_exercises, reset_notebook, write_student_copy


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``student-copy DIR``, ``reset NOTEBOOK [--exercise NAME | --list]`` or ``figures DIR``."""
    ap = cli.make_parser("course", "A teacher's tools for the notebooks: a copy for students without the "
                                   "solutions, a reset of one exercise or a whole notebook (no git needed), and the "
                                   "course's key figures for slides.")
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="{student-copy,reset,figures}")
    sc = sub.add_parser("student-copy", help="write the notebooks into DIR without solutions and outputs",
                        description="Write every notebook into DIR (new or empty) without the folded solutions "
                                    "and without outputs. Students open them where the package is installed.")
    sc.add_argument("dir", type=Path, metavar="DIR", help="a new or empty folder")
    rs = sub.add_parser("reset", help="restore a student's notebook, or one exercise in it, as it came",
                        description="Restore NOTEBOOK (a student's copy of a course notebook, e.g. "
                                    "lab/01_decompose.ipynb) from the course's own notebooks. Only NOTEBOOK "
                                    "is written.")
    rs.add_argument("notebook", type=Path, metavar="NOTEBOOK", help="the student's notebook file")
    rs.add_argument("--exercise", metavar="NAME", default=None,
                    help="reset only this exercise's cells, keeping every other cell: its number in the "
                         "notebook (see --list) or the start of its title, e.g. 'coding exercise 2' (default: "
                         "reset the whole notebook, discarding the student's changes)")
    rs.add_argument("--list", action="store_true", help="list the notebook's exercises and change nothing")
    fg = sub.add_parser("figures", help="write the course's key figures into DIR at slide size, with a list of them",
                        description="Write the course's key figures into DIR (new or empty) as numbered PNG files "
                                    "sized for a 16:9 slide, with text large enough for the back of a room, and "
                                    "index.md listing each one: its notebook, what to look for, the data it was "
                                    "drawn from. They are drawn from the results the course ships, in a few "
                                    "seconds; nothing is trained.")
    fg.add_argument("dir", type=Path, metavar="DIR", help="a new or empty folder")
    for sp in (sc, rs, fg):
        sp.add_argument("--debug", action="store_true", help="on an error, show the full traceback")
    args = ap.parse_args(argv)

    if args.cmd == "student-copy":
        written = write_student_copy(args.dir)
        print(f"{len(written)} notebooks without solutions or outputs written to {args.dir}: "
              f"{', '.join(p.name for p in written)}")
        print("Students open them with the package installed (pip install -e . in the course's clone); "
              f"reset one with: python -m vpd_lite.course reset {args.dir / written[0].name} --exercise 1")
        return 0
    if args.cmd == "figures":
        paths.new_or_empty_folder(args.dir)  # refused at once, before loading the drawing libraries
        from vpd_lite.tutorial.slide_figures import SLIDE_PX, write_slide_figures  # matplotlib, torch: only here

        written, skipped, index = write_slide_figures(args.dir)
        for line in skipped:
            print(line)
        print(f"{len(written)} slide figures ({SLIDE_PX[0]} x {SLIDE_PX[1]} px) written to {args.dir}; "
              f"the list of them: {index}")
        return 0
    if args.list:
        if args.exercise is not None:
            rs.error("--list changes nothing and takes no --exercise: give one or the other")
        for ex in notebook_exercises(args.notebook):
            print(f"{ex.number}: {ex.title}")
        return 0
    print(reset_notebook(args.notebook, args.exercise))
    return 0


def run() -> None:
    """``python -m vpd_lite.course``: :func:`main` on the command line's arguments; errors as one line."""
    sys.exit(cli.run_main(main, "course"))
