"""``fork_map``: the protocol's pieces in worker processes give what one process gives, in the items' order."""

import os

import pytest

from vpd_lite.erase.workers import can_fork, fork_map


def _pid_and_value(shared: dict, item: int) -> tuple[int, int]:
    return os.getpid(), shared["scale"] * item


def _fails_on_three(shared: dict, item: int) -> int:
    if item == 3:
        raise ValueError("item 3 is bad")
    return item


def test_results_come_back_in_item_order_from_other_processes():
    items = list(range(7))
    out = fork_map(_pid_and_value, items, {"scale": 10}, workers=2, order=list(reversed(items)))
    assert [v for _, v in out] == [10 * i for i in items]  # the shared dict reached the workers by fork
    if can_fork():
        assert os.getpid() not in {pid for pid, _ in out}


def test_one_worker_runs_here():
    out = fork_map(_pid_and_value, [1, 2], {"scale": 3}, workers=1)
    assert out == [(os.getpid(), 3), (os.getpid(), 6)]


@pytest.mark.parametrize("workers", [1, 2])
def test_an_error_in_a_piece_is_raised(workers):
    with pytest.raises(ValueError, match="item 3 is bad"):
        fork_map(_fails_on_three, [1, 2, 3, 4], None, workers=workers)
