"""Worker for ``test_distributed.test_a_killed_two_process_run_resumes_bit_identically`` (run by torchrun):
``python -m vpd_lite.distributed ARGS`` whose batch stream sends SIGKILL to its own process as it hands out
batch ``AT`` (0-based: AT steps are done, and with a checkpoint every step, saved by rank 0), on every rank.

    torchrun ... tests/commands/ddp_fault_worker.py AT [vpd_lite.distributed arguments]
"""

from __future__ import annotations

import sys

from tests.method.resume_worker import faulty
from vpd_lite.commands import distributed


def main() -> int:
    at, argv = int(sys.argv[1]), sys.argv[2:]
    real = distributed.corpus.train_batches
    distributed.corpus.train_batches = lambda *a, **k: faulty(real(*a, **k), "KILL", at)
    return distributed.main(argv)


if __name__ == "__main__":
    sys.exit(main())
