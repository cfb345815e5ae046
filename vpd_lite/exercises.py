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


# ---- notebook 04
def _curve_rows(curve: Any, lang: str) -> list[tuple[float, float]]:
    """(s, ΔCE of ``lang``) pairs sorted by s, from a dose-response table (``EditScan.curve(key)``: columns
    ``s`` and ``d_<lang>``) or a mapping {"s": [...], "d_<lang>": [...]}."""
    s_values, d_values = list(curve["s"]), list(curve[f"d_{lang}"])
    return sorted((float(s), float(d)) for s, d in zip(s_values, d_values))


def first_move(curve: Any, lang: str = "fr", threshold: float = 0.1) -> tuple[float, float] | None:
    """Going down from s = 1 along the dose-response ``curve``: the first grid value s* at which ``lang``'s ΔCE
    exceeds ``threshold`` (nats/token), and the grid value before it (closer to 1). None if it never does."""
    below = [(s, d) for s, d in _curve_rows(curve, lang) if s <= 1.0][::-1]  # from s = 1 downwards
    for (s_prev, _), (s, d) in zip(below, below[1:]):
        if d > threshold:
            return s, s_prev
    return None


def check_first_move(answer: Any, curve: Any, lang: str = "fr", threshold: float = 0.1) -> Check:
    """Exercise: going down from s = 1, at which s does ``lang`` (default French) start to move, i.e. its
    training ΔCE first exceeds ``threshold`` nats/token (the claim's tolerance)?

    Right answer: any s between the first grid value where it exceeds the threshold (s*) and the grid value
    before it, with half a grid step of slack below s*; or "never" when it stays within the threshold on the
    whole grid below 1. ``curve``: the component's dose-response (``EditScan.curve(key)``)."""
    name = {"de": "German", "en": "English", "fr": "French", "es": "Spanish", "it": "Italian"}.get(lang, lang)
    hit = first_move(curve, lang, threshold)
    if isinstance(answer, str) and answer.strip().lower() in {"never", "none", "no"}:
        if hit is None:
            return correct(f"{name} stays within {threshold} nats/token on the whole grid below s = 1.")
        return not_quite(f"look again: {name}'s curve does cross {threshold} somewhere below s = 1.")
    value = _as_float(answer)
    if value is None:
        return not_quite("give a value of s (a number, e.g. -4.0), or \"never\".")
    if hit is None:
        return not_quite(f"on this grid {name} never rises by more than {threshold} below s = 1: answer \"never\".")
    s_star, s_prev = hit
    if s_star - 0.5 * (s_prev - s_star) <= value <= s_prev:
        return correct(f"{name} first exceeds +{threshold} nats/token between s = {s_prev:g} and s = {s_star:g} "
                       "on the scan's grid: beyond that, erasing German more also costs French.")
    if value > s_prev:
        return not_quite(f"at s = {value:g} {name} has not moved yet; go further below 1 (read the {name} curve "
                         f"where it crosses {threshold}).")
    return not_quite(f"by s = {value:g} {name} has long moved; the crossing of {threshold} comes earlier "
                     "(closer to 1).")


def curve_language(curve: Any, s: float, langs: Iterable[str] = ("en", "de", "fr", "es", "it")) -> str:
    """The language whose ΔCE is largest at the grid value of ``curve`` closest to ``s``."""
    cols = [lang for lang in langs if f"d_{lang}" in curve]
    rows = {lang: _curve_rows(curve, lang) for lang in cols}
    grid = [g for g, _ in rows[cols[0]]]
    i = min(range(len(grid)), key=lambda k: abs(grid[k] - s))
    return max(cols, key=lambda lang: rows[lang][i][1])


def check_curve_language(answer: Any, curve: Any, s: float) -> Check:
    """Exercise: from a mystery component's dose-response curve, which language is the component about?

    Right answer: the language whose training ΔCE is largest at ``s`` (the component's best admissible s,
    marked in the figure), as a code ("es") or a name ("Spanish")."""
    lang = _as_lang(answer)
    if lang is None:
        return not_quite('give a language: "de", "en", "fr", "es" or "it" (or its English name).')
    right = curve_language(curve, s)
    if lang == right:
        return correct(f"at s = {s:g} the {right} curve rises far above the others: the edit takes {right} away "
                       "and leaves the rest (nearly) alone.")
    return not_quite(f"at the marked s = {s:g}, which curve is highest? The one you named is not.")
