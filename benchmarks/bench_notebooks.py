"""Benchmark: run every tutorial notebook the way the test suite does and report time and peak memory.

    python benchmarks/bench_notebooks.py            # pytest --nbmake notebooks/ in quick mode
    python benchmarks/bench_notebooks.py --cells notebooks/02_inspect.ipynb   # per-cell times of one notebook

The default runs ``python -m pytest --nbmake notebooks/`` in a subprocess (quick mode, as the root conftest sets
it; this checkout first on PYTHONPATH; run folders in a scratch directory) while polling the process tree with psutil every 0.1 s. It prints the total wall time, each notebook's time
(from pytest's JUnit XML), and the peak resident memory (RSS) of the notebook kernels -- the largest single
kernel and the largest sum over kernels alive at once -- and of the whole tree (pytest + kernels). The issue's
budget: all notebooks together <= 5 minutes, peak memory < 2 GB (Binder's limit). It fails when the run changed
``git status --porcelain`` (notebooks must never write into the checkout).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
GiB = 1024**3


class TreeMemory(threading.Thread):
    """Polls the RSS of a process and its descendants; keeps the peaks."""

    def __init__(self, pid: int, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = psutil.Process(pid), interval
        self.peak_tree = self.peak_kernels = self.peak_one_kernel = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                procs = [self.root] + self.root.children(recursive=True)
            except psutil.NoSuchProcess:
                return
            tree = kernels = one = 0
            for p in procs:
                try:
                    rss = p.memory_info().rss
                    is_kernel = "ipykernel" in " ".join(p.cmdline())
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                tree += rss
                if is_kernel:
                    kernels += rss
                    one = max(one, rss)
            self.peak_tree = max(self.peak_tree, tree)
            self.peak_kernels = max(self.peak_kernels, kernels)
            self.peak_one_kernel = max(self.peak_one_kernel, one)
            time.sleep(self.interval)


def git_status() -> str | None:
    """``git status --porcelain`` of the checkout (None outside a git checkout)."""
    try:
        return subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


def run_nbmake(paths: list[str], quick: bool) -> int:
    status_before = git_status()
    with tempfile.TemporaryDirectory() as tmp:
        # this checkout first on the kernels' path; run folders (notebook 03's labels, ...) in a scratch folder
        env = dict(os.environ, VPD_LITE_QUICK="1" if quick else "0", VPD_LITE_RUNS=str(Path(tmp) / "runs"),
                   PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        junit = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "--nbmake", *paths, "-q", "-p", "no:cacheprovider",
               f"--junitxml={junit}"] + ([] if quick else ["--nbmake-timeout=3600"])  # full-mode cells run minutes
        print("running:", " ".join(cmd[1:]), flush=True)
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        mem = TreeMemory(proc.pid)
        mem.start()
        out, _ = proc.communicate()
        wall = time.perf_counter() - t0
        mem.stop.set()
        mem.join()
        print(out[-3000:])
        if junit.is_file():
            for case in ET.parse(junit).getroot().iter("testcase"):
                status = "FAILED" if case.find("failure") is not None or case.find("error") is not None else "ok"
                print(f"  {case.get('name'):<32} {float(case.get('time', 0)):7.1f} s  {status}")
    print(f"total wall time           {wall:7.1f} s   (budget 300 s)")
    print(f"peak RSS, largest kernel  {mem.peak_one_kernel / GiB:7.2f} GiB")
    print(f"peak RSS, kernels summed  {mem.peak_kernels / GiB:7.2f} GiB   (budget < 2 GB)")
    print(f"peak RSS, whole tree      {mem.peak_tree / GiB:7.2f} GiB   (pytest + kernels)")
    print(f"load average at the end   {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    status_after = git_status()
    if status_after is not None and status_after != status_before:
        print("the notebooks changed the checkout (git status --porcelain, before -> after):")
        print(status_before or "(clean)", "->", status_after, sep="\n")
        return proc.returncode or 1
    print("git status --porcelain unchanged by the run")
    return proc.returncode


def time_cells(path: str, quick: bool) -> int:
    """Execute one notebook in-process with nbclient and print every code cell's wall time."""
    import nbformat
    from nbclient import NotebookClient

    os.environ["VPD_LITE_QUICK"] = "1" if quick else "0"
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(Path(path).parent)}})
    times = []
    with client.setup_kernel():
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            t0 = time.perf_counter()
            client.execute_cell(cell, i)
            times.append((time.perf_counter() - t0, i, cell.source.splitlines()[0][:70]))
    for dt, i, first in times:
        print(f"cell {i:2d} {dt:7.1f} s  {first}")
    print(f"total {sum(t for t, _, _ in times):.1f} s")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", default=["notebooks/"], help="notebooks or folders (default notebooks/)")
    ap.add_argument("--full", action="store_true", help="full mode instead of quick mode")
    ap.add_argument("--cells", metavar="NOTEBOOK", help="time each cell of one notebook instead")
    args = ap.parse_args()
    if args.cells:
        return time_cells(args.cells, quick=not args.full)
    return run_nbmake(args.paths, quick=not args.full)


if __name__ == "__main__":
    sys.exit(main())
