"""Repository-wide pytest set-up: tests and notebooks (via nbmake) run in quick mode.

Notebook kernels started by nbmake inherit this process's environment, so setting the switch here
makes ``pytest --nbmake notebooks/`` execute every notebook in quick mode. Export
``VPD_LITE_QUICK=0`` to run them in full mode instead.
"""

import os

os.environ.setdefault("VPD_LITE_QUICK", "1")
# Never reach for a hub during tests: everything must come from data/ or be built locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# With pytest-xdist (``-n auto``: one test process per core) each process, and every notebook kernel it starts,
# computes on one thread: two processes with two threads each on a 2-core machine would slow both down.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
