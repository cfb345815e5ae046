"""The speed table of the README, measured: each row a median over several processes (or a ratio inside one).

    flock /tmp/vpd-heavy.lock python benchmarks/bench_table.py --rows main_job step_ratio      # print them
    flock /tmp/vpd-heavy.lock python benchmarks/bench_table.py --rows main_job --record        # and keep them
    python benchmarks/bench_table.py --readme          # rewrite the README's table from benchmarks/measured.json

Rows (``ROWS``): one VPD step over one forward+backward of the target at the same batch (``bench_decompose.py``,
a ratio inside each process) and, from the same runs, a full decomposition of the shipped target on 2 threads
(its 5,400 steps at the median step time: a real run takes 20-40 minutes, too long to repeat); ``reproduce
--from-scratch`` end to end (one run); a targeted decomposition of German end to end (``decompose --capability
de``: training and its held-out evaluation); the main job (``python -m vpd_lite.reproduce``): its time and the peak
memory of its whole process tree (the sum of the proportional set sizes of the job and its worker processes,
so that pages they share count once; sampled every 0.5 s); and the README's test command (one run). Each
command runs in a fresh process with its outputs in a temporary folder; ``--repeats`` processes per row
(default 3, 1 for the two long rows), and the median is the row's figure.

``--record`` merges the figures into ``benchmarks/measured.json`` (with every run, the command, the date and
the CPU); ``--readme`` renders that file into the README between the ``bench-table`` markers, and a test checks
the README says what the file holds. The cores of a shared machine are noisy: run this alone, under the lock.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run from a checkout without `pip install -e .`

from vpd_lite.method.config import DecomposeConfig  # noqa: E402
MEASURED = ROOT / "benchmarks" / "measured.json"
README = ROOT / "README.md"
START, END = "<!-- bench-table:start -->", "<!-- bench-table:end -->"


@dataclass(frozen=True)
class Row:
    """One row of the table: what is measured, the goal, and the command (``{tmp}`` is a fresh folder)."""

    key: str
    label: str
    goal: str
    unit: str  # "min", "s", "x" or "GB"
    command: str
    repeats: int = 3


PY = "python"
DECOMPOSE_STEPS = DecomposeConfig().steps  # the shipped recipe's training steps
ROWS: dict[str, Row] = {r.key: r for r in (
    Row("decompose", "full decomposition of the shipped target, 2 threads (5,400 steps × the median VPD step)",
        "≤ 10 min", "min", "(measured with step_ratio)"),
    Row("targeted", "targeted German decomposition of the shipped target, 2 threads, end to end (`decompose "
        "--capability de`: 800 steps and its held-out evaluation)", "≤ 5 min", "min",
        f"{PY} -m vpd_lite.decompose --capability de --threads 2 --out {{tmp}}/out"),
    Row("from_scratch", "`reproduce --from-scratch` end to end", "≤ 15 min", "min",
        f"{PY} -m vpd_lite.reproduce --from-scratch --work {{tmp}}/work --out {{tmp}}/out", repeats=1),
    Row("step_ratio", "VPD step / target forward+backward, same batch", "≤ 3×", "x",
        f"{PY} benchmarks/bench_decompose.py --config default --threads 2 --steps 7"),
    Row("main_job", "main job (`python -m vpd_lite.reproduce`)", "≤ 180 s", "s",
        f"{PY} -m vpd_lite.reproduce --out {{tmp}}/out"),
    Row("main_job_memory", "main job peak memory (job and its workers together)", "≤ 1 GB", "GB",
        "(measured with main_job)"),
    Row("test_command", "the README's test command", "≤ 300 s", "s",
        f"{PY} -m pytest -n auto tests notebooks --nbmake", repeats=1),
)}


def _tree_rss(proc: psutil.Process) -> int:
    """Memory of ``proc`` and its descendants together, in bytes: the sum of their proportional set sizes (PSS:
    a page shared by k processes counts 1/k in each), so that forked workers' shared pages count once; RSS where
    the OS gives no PSS."""
    total = 0
    for p in [proc] + proc.children(recursive=True):
        try:
            info = p.memory_full_info()
            total += getattr(info, "pss", info.rss)
        except psutil.Error:
            pass
    return total


# Reading every process's memory map costs CPU: at 0.1 s the sampler took a fifth of one of the two cores and
# slowed the job it timed. The job's peak lasts far longer than this interval.
SAMPLE_EVERY_S = 0.5


def run_timed(command: str, memory: bool = True) -> tuple[float, float, str]:
    """Run ``command`` (a shell line) in the repository root; (wall seconds, peak memory of its process tree in
    GB (:func:`_tree_rss`; 0 when ``memory`` is False: reading every process's memory map costs CPU), stdout)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(command, shell=True, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    peak = [0]
    ps = psutil.Process(proc.pid)
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            try:
                peak[0] = max(peak[0], _tree_rss(ps))
            except psutil.Error:
                pass
            time.sleep(SAMPLE_EVERY_S)

    watcher = threading.Thread(target=sample, daemon=True)
    if memory:
        watcher.start()
    out, _ = proc.communicate()
    stop.set()
    if memory:
        watcher.join()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {command}\n{out[-3000:]}")
    return wall, peak[0] / 1e9, out


def measure(key: str, repeats: int | None) -> dict:
    """Measure one row (``main_job`` also yields ``main_job_memory``); returns {row key: record}."""
    row = ROWS[key]
    n = repeats or row.repeats
    runs, mems, steps_min = [], [], []
    for _ in range(n):
        with tempfile.TemporaryDirectory(prefix="vpd-bench-") as tmp:
            command = row.command.format(tmp=tmp).replace(f"{PY} ", f"{sys.executable} ", 1)
            wall, mem, out = run_timed(command, memory=key == "main_job")
        if key == "step_ratio":
            row_out = re.search(r"^default\s+(\S+)\s+\S+\s+(\S+)", out, re.M)
            if row_out is None:
                raise SystemExit(f"could not read bench_decompose.py's output:\n{out}")
            ms_per_step, ratio = float(row_out.group(1)), float(row_out.group(2))
            # and the training steps of the default recipe at this step time (the faithfulness warm-up,
            # checkpoints and the final held-out evaluation add about a minute)
            runs.append(ratio)
            steps_min.append(DECOMPOSE_STEPS * ms_per_step / 60_000)
        else:
            runs.append(wall / 60 if row.unit == "min" else wall)
            mems.append(mem)
        print(f"{key}: run {len(runs)} of {n}: {runs[-1]:.2f} {row.unit}"
              + (f", peak {mem:.2f} GB" if key == "main_job" else ""), flush=True)
    stamp = {"date": dt.date.today().isoformat(), "cpu": _cpu(), "cores": psutil.cpu_count()}
    out = {key: {"median": statistics.median(runs), "runs": runs, "command": row.command, **stamp}}
    if key == "step_ratio":
        out["decompose"] = {"median": statistics.median(steps_min), "runs": steps_min, "command": row.command,
                            **stamp}
    if key == "main_job":
        out["main_job_memory"] = {"median": statistics.median(mems), "runs": mems, "command": row.command, **stamp}
    return out


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _fmt(value: float, unit: str) -> str:
    if unit == "x":
        return f"{value:.2f}×"
    if unit == "GB":
        return f"{value:.2f} GB"
    if unit == "min":
        return f"{value:.1f} min"
    return f"{value:.0f} s"


def render(measured: dict) -> str:
    """The README's table (markdown) from ``measured.json``'s content; rows not measured yet say so."""
    lines = ["| what | measured | goal | runs | command |", "|---|---|---|---|---|"]
    for row in ROWS.values():
        rec = measured.get(row.key)
        if rec is None:
            lines.append(f"| {row.label} | not measured yet | {row.goal} | | `{row.command}` |")
            continue
        runs = ", ".join(_fmt(v, row.unit) for v in rec["runs"])
        lines.append(f"| {row.label} | **{_fmt(rec['median'], row.unit)}** | {row.goal} | {runs} | "
                     f"`{rec['command']}` |")
    cpus = sorted({f"{r['cpu']}, {r['cores']} cores, {r['date']}" for r in measured.values()})
    lines += ["", "Measured on: " + "; ".join(cpus) + ". `{tmp}` is a fresh temporary folder."] if cpus else []
    return "\n".join(lines)


def readme_block(text: str) -> str:
    """The part of the README between the bench-table markers (ValueError when they are missing)."""
    if START not in text or END not in text:
        raise ValueError(f"README.md has no {START} ... {END} block")
    return text.split(START, 1)[1].split(END, 1)[0].strip()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", nargs="+", choices=[k for k, r in ROWS.items() if not r.command.startswith("(")],
                    default=[], help="rows to measure (step_ratio also gives decompose; main_job also gives "
                                     "main_job_memory)")
    ap.add_argument("--repeats", type=int, default=None, help="processes per row (default: the row's own)")
    ap.add_argument("--record", action="store_true", help=f"merge the figures into {MEASURED.relative_to(ROOT)}")
    ap.add_argument("--readme", action="store_true", help="rewrite the README's table from the recorded figures")
    args = ap.parse_args(argv)
    if not args.rows and not args.readme:
        ap.error("name --rows to measure, or --readme to rewrite the README's table")
    measured = json.loads(MEASURED.read_text()) if MEASURED.is_file() else {}
    # The test suite checks the README's table against benchmarks/measured.json, so the test command is timed
    # before this call records anything (a figure recorded first would leave the README's table stale and fail
    # that test).
    for key in sorted(dict.fromkeys(args.rows), key=lambda k: k != "test_command"):
        new = measure(key, args.repeats)
        for k, rec in new.items():
            print(f"{ROWS[k].label}: {_fmt(rec['median'], ROWS[k].unit)} (median of {len(rec['runs'])})")
        if args.record:
            measured.update(new)
            MEASURED.write_text(json.dumps(measured, indent=1, ensure_ascii=False) + "\n")
    if args.readme:
        text = README.read_text()
        readme_block(text)  # the markers must be there
        head, rest = text.split(START, 1)
        README.write_text(f"{head}{START}\n{render(measured)}\n{END}{rest.split(END, 1)[1]}")
        print(f"README.md table rewritten from {MEASURED.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
