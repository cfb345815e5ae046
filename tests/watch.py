"""Waits that tell "slow" from "stuck": the tests' one way to wait on a subprocess, a server or a kernel.

A fixed time-out cannot tell a slow machine from a hung process: set long, a hang costs the whole limit; set
short, a busy machine fails good work. These waits watch for *progress* instead -- new output, CPU time spent by
the process or any of its children -- and give up only after ``STALL_S`` seconds without any, with a message that
says what was waited for and what it last showed. A generous overall cap stays as a last resort.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

STALL_S = 120.0  # seconds without any progress before a wait gives up
POLL_S = 1.0
BUSY_FRACTION = 0.05  # of one core, between two looks: the process is computing


class Stalled(AssertionError):
    """A wait saw no progress for ``STALL_S`` seconds (or passed its overall cap)."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and all its live children (0 if it is gone)."""
    try:
        root = psutil.Process(pid)
        procs = [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def wait_with_progress(done: Callable[[], bool], progress: Callable[[], object], what: str,
                       describe: Callable[[], str] = lambda: "", cpu_pid: Callable[[], int | None] = lambda: None,
                       stall_s: float = STALL_S, cap_s: float = 3600.0, poll_s: float = POLL_S) -> float:
    """Poll ``done()`` every ``poll_s`` seconds until it is true; returns the seconds waited.

    Progress is any change in what ``progress()`` returns from one look to the next (output sizes, the prompts
    on a page), or the process ``cpu_pid()`` (with its children) computing at least ``BUSY_FRACTION`` of a core
    since the last look (an idle process's housekeeping stays far below that). Raises ``Stalled`` naming
    ``what`` and ``describe()`` after ``stall_s`` seconds without progress, or after ``cap_s`` in all."""
    t0 = last_change = last_look = time.monotonic()
    seen = progress()
    pid = cpu_pid()
    cpu = cpu_seconds(pid) if pid else 0.0
    while not done():
        time.sleep(poll_s)
        now_seen, now = progress(), time.monotonic()
        pid = cpu_pid()
        now_cpu = cpu_seconds(pid) if pid else 0.0
        busy = now_cpu - cpu >= BUSY_FRACTION * (now - last_look)
        if now_seen != seen or busy:
            last_change = now
        seen, cpu, last_look = now_seen, now_cpu, now
        if now - last_change > stall_s or now - t0 > cap_s:
            why = (f"no progress for {now - last_change:.0f} s" if now - last_change > stall_s
                   else f"still running after {cap_s:.0f} s")
            raise Stalled(f"{what}: {why} ({now - t0:.0f} s in). {describe()}".rstrip())
    return time.monotonic() - t0


def run_watched(cmd: Sequence[str], what: str | None = None, stall_s: float = STALL_S, cap_s: float = 3600.0,
                poll_s: float = POLL_S, **popen) -> subprocess.CompletedProcess:
    """``subprocess.run(cmd, capture_output=True, text=True, **popen)``, but killed (with its children) after
    ``stall_s`` seconds with no new output and no CPU time spent, raising ``Stalled`` with the command and the
    end of what it printed. ``what`` names it in that message (default: the command line)."""
    what = what or " ".join(map(str, cmd))
    with tempfile.TemporaryDirectory() as tmp:
        out_path, err_path = Path(tmp) / "out", Path(tmp) / "err"
        with open(out_path, "w") as out, open(err_path, "w") as err:
            proc = subprocess.Popen(list(map(str, cmd)), stdout=out, stderr=err, text=True, **popen)

            def tail() -> str:
                text = (out_path.read_text(errors="replace")[-1500:] + err_path.read_text(errors="replace")[-1500:])
                return f"Last output:\n{text}" if text.strip() else "It printed nothing."

            try:
                wait_with_progress(lambda: proc.poll() is not None,
                                   lambda: (os.path.getsize(out_path), os.path.getsize(err_path)),
                                   what, tail, lambda: proc.pid, stall_s, cap_s, poll_s)
            except Stalled:
                _kill_tree(proc.pid)
                proc.wait()
                raise
        return subprocess.CompletedProcess(proc.args, proc.returncode, out_path.read_text(errors="replace"),
                                           err_path.read_text(errors="replace"))


def _kill_tree(pid: int) -> None:
    try:
        root = psutil.Process(pid)
        procs = root.children(recursive=True) + [root]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
