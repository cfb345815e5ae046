"""``fork_map``: run independent, seeded pieces of the protocol side by side in forked worker processes.

The protocol's pieces (one component's edit curve, one (method, objective, budget) fit) each run on one
thread and seed themselves, so running them in parallel processes gives the same numbers as running them one
after another. On a 2-core machine two processes halve the wall time where one thread per piece is already
the fastest setting for this small model.

The shared inputs (the model, the text blocks, ...) reach the workers by ``fork``: inherited from the parent's
memory, never pickled, so the workers start at once. Only the items and the results (small tables) are
pickled. Without ``fork`` (macOS, Windows) or with ``workers <= 1`` everything runs in this process.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, TypeVar

import torch
from tqdm.auto import tqdm

Item = TypeVar("Item")
Result = TypeVar("Result")

#: In a worker process only: the ``shared`` argument of the ``fork_map`` that started it, set once by
#: ``_start_worker`` (the parent's own value stays None).
_SHARED: Any = None


def _start_worker(shared: Any, threads: int) -> None:
    global _SHARED
    _SHARED = shared
    torch.set_num_threads(threads)


def _call(fn: Callable[[Any, Any], Any], item: Any) -> Any:
    return fn(_SHARED, item)


def can_fork() -> bool:
    """True where :func:`fork_map` runs workers: Linux (``fork`` is safe there with one thread per worker)."""
    return sys.platform == "linux" and "fork" in mp.get_all_start_methods()


def fork_map(fn: Callable[[Any, Item], Result], items: Sequence[Item], shared: Any, workers: int,
             threads: int = 1, order: Sequence[int] | None = None, desc: str | None = None,
             progress: bool = False) -> list[Result]:
    """``[fn(shared, item) for item in items]``, computed by ``workers`` forked processes with ``threads`` torch
    threads each.

    ``fn`` must be a module-level function (it is pickled by name); ``shared`` is inherited by fork. ``order``
    (indices into ``items``) is the order in which items are started, longest first is best; results are
    returned in the order of ``items`` whatever the order of completion. A progress bar (``desc``) counts
    finished items and clears itself. An exception in a worker is raised here.
    """
    if workers <= 1 or len(items) <= 1 or not can_fork():
        return [fn(shared, item) for item in tqdm(items, desc=desc, disable=not progress, leave=False)]
    order = list(range(len(items))) if order is None else list(order)
    results: dict[int, Result] = {}
    with ProcessPoolExecutor(min(workers, len(items)), mp_context=mp.get_context("fork"),
                             initializer=_start_worker, initargs=(shared, threads)) as pool:
        futures = {pool.submit(_call, fn, items[i]): i for i in order}
        for fut in tqdm(as_completed(futures), total=len(futures), desc=desc, disable=not progress, leave=False):
            results[futures[fut]] = fut.result()
    return [results[i] for i in range(len(items))]
