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


# ---- notebook 00
def check_pentagon_angle(answer: Any, directions: Any) -> Check:
    """Exercise: the angle (degrees) between neighbouring feature directions of a TMS 5-2 model.

    ``directions``: the model's true feature directions (2, 5) (``toy_models.true_feature_directions``). Right
    answer: the mean gap between the directions' sorted angles (72 degrees for a regular pentagon); an answer
    within 5 degrees of it counts."""
    import torch

    W = torch.as_tensor(directions, dtype=torch.float64)
    angles = torch.rad2deg(torch.atan2(W[1], W[0])).sort().values
    gaps = torch.diff(torch.cat([angles, angles[:1] + 360.0]))
    right = float(gaps.mean())
    value = _as_float(answer)
    if value is None:
        return not_quite("give an angle in degrees, e.g. 45")
    if abs(value - right) <= 5.0:
        return correct(f"the five directions sit {right:.0f} degrees apart (360 / 5): the corners of a pentagon.")
    return not_quite("five directions share a full turn of 360 degrees as evenly as they can.")


def check_live_count(answer: Any, report: Mapping[str, Any], module: str) -> Check:
    """Exercise: how many of ``module``'s components are live after the decomposition?

    ``report``: ``toy_models.feature_match`` output. Right answer: ``report[module]["live"]``."""
    right = int(report[module]["live"])
    value = _as_float(answer)
    if value is None:
        return not_quite("give a whole number")
    if value == right:
        note = "one per feature" if right == 5 else "the decomposition has not (yet) found one per feature"
        return correct(f"{right} live components in {module} ({note}); the rest are dead.")
    return not_quite("a minimal decomposition needs one component for each thing the matrix does; how many "
                     "features does the model store?")


def check_components_on(answer: Any, ci_one_feature: Mapping[str, Any], feature: int, threshold: float = 0.5) -> Check:
    """Exercise: with only feature ``feature`` switched on, how many components (over all decomposed matrices)
    have causal importance above ``threshold``?

    ``ci_one_feature``: {module: CI (n_features, C)} on the one-feature inputs
    (``toy_models.component_ci_on_data(cm, toy_models.one_feature_inputs(n))``)."""
    right = sum(int((row[feature] > threshold).sum()) for row in ci_one_feature.values())
    value = _as_float(answer)
    if value is None:
        return not_quite("give a whole number")
    if value == right:
        return correct(f"{right}: the feature's own component in each matrix; every other component can be "
                       "ablated on this input without changing the output.")
    return not_quite("the input holds one feature; how many matrices does it pass through, and how many "
                     "components does each need for one feature?")
