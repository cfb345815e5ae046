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

# nbmake's limit per notebook cell (its default: 300 s). In quick mode no cell takes more than about 6 s on the
# 2-core machine, so a cell still running after 120 s is stuck: nbmake then fails naming that cell, instead of
# waiting out the default. An explicit --nbmake-timeout wins.
NBMAKE_CELL_LIMIT_S = 120


def pytest_configure(config):
    if hasattr(config.option, "nbmake_timeout") and not any(
            str(a).startswith("--nbmake-timeout") for a in config.invocation_params.args):
        config.option.nbmake_timeout = NBMAKE_CELL_LIMIT_S
