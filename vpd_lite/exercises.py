"""Check functions for the notebooks' "predict, then run" exercises.

Every exercise in a notebook ends with a cell like::

    my_answer = ...            # the student fills this in
    exercises.check_uniform_ce(my_answer, vocab_size=len(tokenizer))

Each ``check_*`` function returns a :class:`Check`: it is truthy when the answer is right and displays (in a
notebook, or with ``print``) as one line starting with ``Correct:`` or ``Not quite:`` followed by a hint.
A check never raises on a wrong answer; an answer of the wrong *type* (a string where a number is expected)
is "Not quite" with a hint saying what kind of answer is expected.

The solutions are in a collapsed ``<details><summary>Solution</summary>...</details>`` block under each
exercise; the check functions compute the right answer from the same objects the notebook shows, so they stay
right in quick mode (a smoke test with different numbers) and in full mode.

Sections, one per notebook: ``# ---- notebook 01`` ... ``# ---- notebook 04``, ``# ---- notebook 00``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    """The verdict on one answer: ``correct`` and a message for the student.

    ``bool(check)`` is ``correct``; ``str(check)`` is ``"Correct: <message>"`` or ``"Not quite: <hint>"``.
    """

    correct: bool
    message: str

    def __bool__(self) -> bool:
        return self.correct

    def __str__(self) -> str:
        return ("Correct: " if self.correct else "Not quite: ") + self.message

    def __repr__(self) -> str:  # what a notebook shows when a cell ends with a check
        return str(self)

    def _repr_html_(self) -> str:
        import html

        colour = "#2e7d32" if self.correct else "#b26a00"
        word = "Correct:" if self.correct else "Not quite:"
        return f"<p style='color:{colour}'><b>{word}</b> {html.escape(self.message)}</p>"


def correct(message: str) -> Check:
    """A right answer, with a sentence saying why it is right (or what to notice next)."""
    return Check(True, message)


def not_quite(hint: str) -> Check:
    """A wrong answer, with a hint that points towards the right one without giving it away."""
    return Check(False, hint)


def _as_float(answer: Any) -> float | None:
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _as_lang(answer: Any) -> str | None:
    """A language code from "de", "German", " deutsch " ...; None when it is not a language."""
    names = {"en": "en", "english": "en", "de": "de", "german": "de", "deutsch": "de", "fr": "fr",
             "french": "fr", "es": "es", "spanish": "es", "it": "it", "italian": "it"}
    return names.get(str(answer).strip().lower()) if isinstance(answer, str) else None


# ---- notebook 01
def check_uniform_ce(answer: Any, vocab_size: int) -> Check:
    """Exercise: the cross-entropy (nats/token) of a model that predicts every token with probability 1/V.

    Right answer: ln(V) (within 0.01 nats)."""
    value = _as_float(answer)
    target = math.log(vocab_size)
    if value is None:
        return not_quite("give a number in nats/token, e.g. 5.0")
    if abs(value - target) <= 0.01:
        return correct(f"a uniform guess over V = {vocab_size} tokens costs ln V = {target:.3f} nats/token; "
                       "this is the level the German edit aims for.")
    if abs(value - math.log2(vocab_size)) <= 0.01:
        return not_quite("that is in bits; cross-entropy here is in nats (natural logarithm).")
    return not_quite("each token gets probability 1/V; the cross-entropy is -ln(1/V).")
