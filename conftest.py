"""Repository-wide pytest set-up: tests and notebooks (via nbmake) run in quick mode.

Notebook kernels started by nbmake inherit this process's environment, so setting the switch here
makes ``pytest --nbmake notebooks/`` execute every notebook in quick mode. Export
``VPD_LITE_QUICK=0`` to run them in full mode instead.
"""

import os
from pathlib import Path

import pytest

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


# Each notebook runs once per test session. The real-browser test (tests/test_browser.py) runs every notebook
# with Run All in JupyterLab and fails on any cell that errs or does not run, as nbmake would, and then checks
# what a student sees (figures drawn, widgets working). When that test is collected and can run here, a
# notebook's nbmake item is skipped, naming the browser test that runs it; without a browser, nbmake runs them.
@pytest.hookimpl(trylast=True)  # after -k / -m deselection: only a browser test that will run counts
def pytest_collection_modifyitems(config, items):
    browser_items = [item for item in items if item.nodeid.startswith("tests/test_browser.py::")]
    if not browser_items:
        return
    from tests import browser_env

    if browser_env.missing() is None:
        pairs = browser_env.run_in_browser([item.nodeid for item in items])
        for item in items:
            if item.nodeid in pairs:
                item.add_marker(pytest.mark.skip(reason=f"run in a real browser by {pairs[item.nodeid]}"))
    # The browser test is the longest chain on one process (one JupyterLab, one notebook after another): it goes
    # first, so that the other process's work fills in beside it instead of waiting behind it at the end.
    items[:] = browser_items + [item for item in items if item not in browser_items]
