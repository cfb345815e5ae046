"""The tests' progress-based waits (``tests/watch.py``): a stuck process fails with a message saying what was
waited for; a slow one that keeps computing or printing is waited for."""

from __future__ import annotations

import sys

import pytest

from tests.watch import Stalled, run_watched, wait_with_progress


def test_a_process_that_does_nothing_is_reported_stuck_and_killed():
    with pytest.raises(Stalled) as err:
        run_watched([sys.executable, "-c", "print('started', flush=True); import time; time.sleep(600)"],
                    "the sleeper", stall_s=1.5, poll_s=0.2)
    message = str(err.value)
    assert message.startswith("the sleeper: no progress for") and "started" in message


def test_a_process_that_computes_or_prints_is_waited_for():
    busy = "import time\nt = time.time()\nwhile time.time() - t < 2: pass\nprint('done')"
    assert run_watched([sys.executable, "-c", busy], stall_s=1, poll_s=0.1).stdout == "done\n"
    chatty = "import time\nfor i in range(6):\n    print(i, flush=True); time.sleep(0.3)"
    assert run_watched([sys.executable, "-c", chatty], stall_s=1, poll_s=0.1).returncode == 0


def test_a_wait_says_what_it_waited_for_and_where_it_stood():
    with pytest.raises(Stalled, match=r"^the cell: no progress for \d+ s \(\d+ s in\)\. at cell 3$"):
        wait_with_progress(lambda: False, lambda: 0, "the cell", lambda: "at cell 3", stall_s=0.5, poll_s=0.1)
    with pytest.raises(Stalled, match="still running after 1 s"):
        ticks = iter(range(10**6))
        wait_with_progress(lambda: False, lambda: next(ticks), "the cap", stall_s=5, cap_s=1, poll_s=0.1)
