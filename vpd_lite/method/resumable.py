"""What makes a long training run resumable, shared by the decomposition (``vpd_lite.method.decompose``) and the
target's training (``vpd_lite.models.target``).

``DataStream``          hands out a run's batches and records its position (batches handed out + digest of the
                        last), so that a resumed run skips exactly the batches already trained on
``deferred_signals``    SIGINT / SIGTERM only noted while a step runs, so the step can finish and be checkpointed
``TrainingInterrupted`` what a run raises after such a stop (the step, the folder, the exit code)
``open_training_state`` a folder's sealed ``training_state.pt``, refused when missing, truncated or corrupted
``recipe_differences``  the fields in which a checkpoint's recipe differs from the one given to continue it

The training state itself is written and read by ``vpd_lite.method.checkpoint.write_training_state`` /
``load_training_state`` (one atomically written file sealed with the sha256 of its bytes).
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import signal
import threading
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from vpd_lite.method.checkpoint import STATE_FILE, load_training_state


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by a training run (``decompose``, ``train_target``) after a SIGINT or SIGTERM: the step in progress
    was finished and a checkpoint of it written to ``folder``. ``step``: steps done of ``steps``; ``signal_name``:
    "SIGINT" or "SIGTERM"; ``exit_code``: 128 + the signal's number (130, 143), what a shell reports for a process
    the signal ended."""

    def __init__(self, step: int, steps: int, folder: str, signum: int) -> None:
        self.step, self.steps, self.folder = step, steps, folder
        self.signal_name = signal.Signals(signum).name
        self.exit_code = 128 + int(signum)
        super().__init__(f"{self.signal_name} at step {step} of {steps}: checkpoint written to {folder}")


class TrainingStopped(KeyboardInterrupt):
    """Raised by a training run that writes no checkpoints (no checkpoint folder: a notebook's live run) when it is
    interrupted (Ctrl-C, a notebook's stop button): nothing was saved, so it cannot continue. ``step``: steps
    finished of ``steps``."""

    def __init__(self, step: int, steps: int) -> None:
        self.step, self.steps = step, steps
        super().__init__(f"stopped at step {step} of {steps}. This run writes no checkpoints, so it cannot continue: "
                         "run it again to start over. A run that can continue is one with a checkpoint folder, e.g. "
                         "`python -m vpd_lite.decompose --out DIR`, continued by the same command with --resume.")


@contextlib.contextmanager
def stopped_without_checkpoints(enabled: bool, steps_done: Callable[[], int], steps: int,
                                on_stop: Callable[[], Any] = lambda: None) -> Iterator[None]:
    """While inside, a ``KeyboardInterrupt`` (Ctrl-C, a notebook's stop button) becomes ``TrainingStopped``
    (``steps_done()`` of ``steps``), after ``on_stop()``, when ``enabled`` (the run writes no checkpoints);
    ``TrainingInterrupted`` and everything else pass unchanged."""
    try:
        yield
    except KeyboardInterrupt as e:
        if not enabled or isinstance(e, (TrainingInterrupted, TrainingStopped)):
            raise
        on_stop()
        raise TrainingStopped(steps_done(), steps) from None


@contextlib.contextmanager
def deferred_signals(enabled: bool) -> Iterator[list[int]]:
    """While inside, SIGINT and SIGTERM only append their number to the yielded list (read between steps); a
    second one raises ``KeyboardInterrupt`` at once. Does nothing (an empty list) when not ``enabled`` or off the
    main thread (only it may set handlers)."""
    received: list[int] = []
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: Any) -> None:
        if received:
            raise KeyboardInterrupt
        received.append(signum)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def batch_digest(batch: Any) -> str | None:
    """sha256 of a batch's tensors (a tensor, or a mapping / sequence of them); None for anything else."""
    h = hashlib.sha256()

    def add(x: Any) -> bool:
        if isinstance(x, Tensor):
            h.update(f"{x.dtype}{tuple(x.shape)}".encode())
            h.update(x.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes() if x.numel() else b"")
            return True
        if isinstance(x, Mapping):
            return all(add(k) if isinstance(k, Tensor) else (h.update(str(k).encode()) or add(v))
                       for k, v in sorted(x.items(), key=lambda kv: str(kv[0])))
        if isinstance(x, (list, tuple)):
            return all(add(v) for v in x)
        return False

    return h.hexdigest() if add(batch) else None


class DataStream:
    """One data stream of a run: hands out batches (cycling a re-iterable; an endless iterator is read on), and
    knows how many it has handed out and the last one's digest, so that a resumed run can skip as many.

    ``check`` (optional) is called on the first batch before any work (e.g. ``ComponentModel.check_batch``).
    Raises ``ValueError`` when ``batches`` holds no batch, and from ``next`` when a one-shot iterable runs out."""

    def __init__(self, batches: Iterable[Any], what: str, check: Callable[[Any], None] | None = None) -> None:
        self.batches, self.what = batches, what
        it = iter(batches)
        try:
            self.first = next(it)
        except StopIteration:
            raise ValueError(f"got no {what}") from None
        if check is not None:
            check(self.first)
        self.it: Iterator[Any] = itertools.chain([self.first], it)
        self.consumed, self.last = 0, None

    def next(self) -> Any:
        """The next batch (the stream restarts a re-iterable that ran out)."""
        try:
            batch = next(self.it)
        except StopIteration:
            self.it = iter(self.batches)
            try:
                batch = next(self.it)
            except StopIteration:
                raise ValueError(f"the {self.what} ran out after {self.consumed} steps (pass a re-iterable or endless "
                                 "one)") from None
        self.consumed += 1
        self.last = batch
        return batch

    def position(self) -> dict[str, Any]:
        """``{"consumed": batches handed out, "last_sha256": digest of the last}`` (what ``skip_to`` reads)."""
        return {"consumed": self.consumed, "last_sha256": batch_digest(self.last)}

    def skip_to(self, position: Mapping[str, Any]) -> None:
        """Hand out (and drop) ``position["consumed"]`` batches; ``ValueError`` when the last one's digest is not
        the recorded one (the stream is not the one the run was trained on)."""
        for _ in range(int(position["consumed"])):
            self.next()
        recorded = position.get("last_sha256")
        if self.consumed and recorded is not None and batch_digest(self.last) != recorded:
            raise ValueError(f"the {self.what} given to resume are not the ones the run was trained on: its batch "
                             f"{self.consumed} differs from the checkpoint's (another seed, batch size, sequence "
                             "length or corpus?)")


def open_training_state(folder: str | Path) -> dict[str, Any]:
    """The training state (``training_state.pt``) of the unfinished run in ``folder``; nothing is changed.

    Raises ``FileNotFoundError`` when ``folder`` or its state does not exist, and ``ValueError`` for a truncated
    or corrupted state (its bytes do not match their sha256) or one that holds no step."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} does not exist: nothing to resume")
    state = load_training_state(folder)
    if state is None:
        raise FileNotFoundError(f"{folder} has no {STATE_FILE} to resume from")
    if "step" not in state:
        raise ValueError(f"{folder / STATE_FILE} is corrupted or not a training state (no step)")
    return state


def recipe_differences(recorded: Mapping[str, Any], given: Mapping[str, Any],
                       may_change: Collection[str] = ()) -> str | None:
    """The fields (outside ``may_change``) in which the ``given`` settings differ from the ``recorded`` ones, as
    ``"seed = 3 there, 4 now; steps = ..."`` (values compared as JSON holds them: tuples as lists), or None when
    they agree."""
    def plain(config: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in json.loads(json.dumps(dict(config), default=list)).items() if k not in may_change}

    theirs, mine = plain(recorded), plain(given)
    differ = sorted(k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k))
    if not differ:
        return None
    return "; ".join(f"{k} = {_short(theirs.get(k))} there, {_short(mine.get(k))} now" for k in differ)


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
