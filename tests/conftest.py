"""Shared test set-up: every test runs torch on one intra-op thread.

The tests use tiny models, for which one thread is fastest; on a busy 2-core machine, torch's default of two
OpenMP threads makes them tens of times slower.
"""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
