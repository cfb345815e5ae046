"""Shared test set-up: every test runs torch on one intra-op thread.

The tests use tiny models, for which one thread is fastest; on a busy 2-core machine, torch's default of two
OpenMP threads makes them tens of times slower.
"""

import pytest

from vpd_lite.method.devices import torch_threads


@pytest.fixture(autouse=True)
def one_torch_thread():
    with torch_threads(1):
        yield
