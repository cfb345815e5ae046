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

from vpd_lite.interpret.labels import categorize
from vpd_lite.interpret.statistics import language_specificity
from vpd_lite.models.corpus import lang_name


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


def _rounds_to(value: float, target: float, digits: int = 2) -> bool:
    """True when ``value`` is ``target`` rounded to ``digits`` significant digits or more precisely: a student who
    writes 8.3 or 8.32 for ln 4096 = 8.318 is right, 8.4 or 8 is not. The tolerance is half a unit of the
    ``digits``-th significant digit of ``target`` (0.05 for 8.318 at two digits), plus a hair for float noise."""
    if target == 0:
        return abs(value) <= 10.0 ** -digits
    unit = 10.0 ** (math.floor(math.log10(abs(target))) - digits + 1)
    return abs(value - target) <= 0.5 * unit * (1 + 1e-6)


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


def check_live_count(answer: Any, report: Mapping[str, Any], module: str, n_features: int = 5) -> Check:
    """Exercise: how many of ``module``'s components are live after the decomposition?

    ``report``: ``toy_models.feature_match`` output; ``n_features``: the features the toy model stores. The
    principled answer is ``n_features`` (one live component per feature, in a finished decomposition); it is
    right in every mode. The count this run found (``report[module]["live"]``) is accepted too; when the two
    differ (a short quick-mode run, or a run stuck in a local minimum) the message says which is which."""
    found = int(report[module]["live"])
    note = ("and this run found exactly that" if found == n_features else
            f"this run shows {found} live, because it stopped before the spare components died (quick mode "
            "runs only a few hundred steps) or ended in a local minimum (see the text above)")
    return _count_answer(
        answer, n_features, found,
        on_principled=f"{n_features}: one live component per feature, the rest dead; {note}.",
        on_found=(f"this run has {found} live components in {module}. A finished decomposition has "
                  f"{n_features}, one per feature: this run stopped before the spare components died "
                  "(quick mode is short) or ended in a local minimum."),
        hint="a minimal decomposition needs one component for each thing the matrix does; how many "
             "features does the model store?")


def _count_answer(answer: Any, principled: int, found: int, on_principled: str, on_found: str, hint: str) -> Check:
    """A count exercise: the principled count is right in every mode; the count this run found is accepted too
    (its message says why a finished decomposition differs); anything else gets ``hint``."""
    value = _as_float(answer)
    if value is None:
        return not_quite("give a whole number")
    if value == principled:
        return correct(on_principled)
    if value == found:
        return correct(on_found)
    return not_quite(hint)


def principled_components_on(model: Any, feature: int, module: str | None = None) -> int:
    """How many components a finished decomposition of the toy ``model`` needs, with only ``feature`` switched on
    (value 1): in ``linear1`` one (the input has one non-zero entry); in ``linear2`` one for the feature plus one
    for every other output the toy model itself makes non-zero on that input (its interference,
    ReLU(W_j\u1d40 W_i + b_j) > 0). ``module=None``: both matrices together."""
    import torch

    with torch.no_grad():
        x = torch.zeros(1, model.n_features)
        x[0, feature] = 1.0
        out = model(x)[0]
    leaks = sum(1 for j in range(model.n_features) if j != feature and float(out[j]) > 0)
    counts = {"linear1": 1, "linear2": 1 + leaks}
    return sum(counts.values()) if module is None else counts[module]


def check_components_on(answer: Any, ci_one_feature: Mapping[str, Any], feature: int, module: str | None = None,
                        threshold: float = 0.5, model: Any | None = None) -> Check:
    """Exercise: with only feature ``feature`` switched on (value 1), how many components of ``module`` (default:
    of all decomposed matrices together) have causal importance above ``threshold``?

    ``ci_one_feature``: {module: CI (n_features, C)} on the one-feature inputs
    (``toy_models.component_ci_on_data(cm, toy_models.one_feature_inputs(n))``). With ``model`` (the toy model)
    the principled answer (:func:`principled_components_on`: besides the feature's own component, ``linear2``
    needs those of the features the toy model's own output leaks into) is right in every mode. The count this
    run's components show is accepted too; when the two differ (a short quick-mode run) the message says why."""
    rows = ci_one_feature.values() if module is None else [ci_one_feature[module]]
    found = sum(int((row[feature] > threshold).sum()) for row in rows)
    principled = principled_components_on(model, feature, module) if model is not None else found
    why = ("the feature's own component, plus one for every other output that the toy model itself makes "
           "non-zero on this input (its interference), which the components must reproduce; every other "
           "component can be switched off without changing the output")
    note = ("" if found == principled else
            f" This run's components show {found} above {threshold}: the run is short (quick mode) or not "
            "finished, so its causal importances are not yet this clean.")
    return _count_answer(
        answer, principled, found, on_principled=f"{principled}: {why}.{note}",
        on_found=f"{found} is what this run's components show. A finished decomposition needs {principled}: {why}.",
        hint=(f"the feature's own component is needed; which other outputs ReLU(W_j\u1d40 W_{feature} + b_j) "
              "does the toy model itself make non-zero on this input?"))


# ---- notebook 01
def check_uniform_ce(answer: Any, vocab_size: int) -> Check:
    """Exercise: the cross-entropy (nats/token) of a model that predicts every token with probability 1/V.

    Right answer: ln(V), to two significant digits or better (8.3, 8.32 or 8.318 for V = 4096)."""
    value = _as_float(answer)
    target = math.log(vocab_size)
    if value is None:
        return not_quite("give a number in nats/token, e.g. 5.0")
    if _rounds_to(value, target):
        return correct(f"a uniform guess over V = {vocab_size} tokens costs ln V = {target:.3f} nats/token; "
                       "this is the level the German edit aims for.")
    if _rounds_to(value, math.log2(vocab_size)):
        return not_quite("that is in bits; cross-entropy here is in nats (natural logarithm).")
    return not_quite("each token gets probability 1/V; the cross-entropy is -ln(1/V).")


def check_fully_kept(answer: Any, ci: Iterable[float], sources: Iterable[float]) -> Check:
    """Exercise: which components does the adversarial mask ``m = g + (1 - g) s`` keep fully (m = 1)?

    answer: component indices (any iterable of ints, 0-based). Right answer: every c with g_c = 1 or s_c = 1."""
    g, s = [float(x) for x in ci], [float(x) for x in sources]
    right = {c for c, (gc, sc) in enumerate(zip(g, s)) if gc + (1 - gc) * sc >= 1 - 1e-9}
    try:
        given = {int(c) for c in answer}
    except (TypeError, ValueError):
        return not_quite("give a list of component indices, e.g. [0, 2]")
    if given == right:
        return correct(f"components {sorted(right)}: CI 1 keeps a component whatever the adversary does, and the "
                       "adversary may also switch unimportant ones fully on (s = 1).")
    if given == {c for c, gc in enumerate(g) if gc >= 1}:
        return not_quite("CI 1 keeps a component, but the adversary can also keep one: what is m when s = 1?")
    return not_quite("compute m = g + (1 - g) * s for each component; which are exactly 1?")


def check_rank1_parameters(answer: Any, d_out: int, d_in: int) -> Check:
    """Exercise: how many numbers describe one rank-1 component ``U_c V_cᵀ`` of a (d_out, d_in) matrix?

    Right answer: d_out + d_in (U_c has d_out entries, V_c has d_in)."""
    value = _as_float(answer)
    if value is None:
        return not_quite("give a whole number")
    if value == d_out + d_in:
        return correct(f"{d_out} + {d_in} = {d_out + d_in} numbers, against {d_out * d_in} for the full matrix: "
                       "a component is cheap, so a matrix can have many of them.")
    if value == d_out * d_in:
        return not_quite("that is the whole matrix; a rank-1 matrix is an outer product of two vectors.")
    return not_quite("U_c is a vector of length d_out, V_c one of length d_in.")


# ---- notebook 02
def mystery_component(stats: Any, min_fires: int = 50, seed: int = 0) -> tuple[str, int]:
    """A component for "guess the language from its contexts": the most specific component of a language other
    than German (picked with ``seed`` among the languages that have one firing at least ``min_fires`` times).

    Returns a ComponentId (module, index). Raises ValueError when no component is specific enough."""
    import random

    picks = []
    for lang in stats.langs:
        if lang == "de":
            continue
        for cid, score in language_specificity(stats, lang):
            if score >= 0.5 and stats.n_fires(cid) >= min_fires:
                picks.append(cid)
                break
    if not picks:
        for cid, score in language_specificity(stats, "de"):
            if score > 0:
                return cid
        raise ValueError("no component fires on one language more than on the others")
    return random.Random(seed).choice(picks)


def check_component_language(answer: Any, stats: Any, cid: Any) -> Check:
    """Exercise: from its top contexts alone, which language is this component about?

    answer: a language code or name ("it", "Italian"). Right answer: the language with the largest share of the
    component's firing rate (``stats.language_profile``)."""

    profile = stats.language_profile(cid)
    top = max(profile, key=lambda lang: profile[lang])
    lang = _as_lang(answer)
    if lang is None:
        return not_quite(f"answer with a language: one of {', '.join(lang_name(x) for x in stats.langs)}")
    if lang == top:
        return correct(f"{lang_name(top)}: {profile[top]:.0%} of its firing rate is on {lang_name(top)} text. "
                       "Short function words are the give-away.")
    return not_quite(f"{lang_name(lang)} has {profile.get(lang, 0):.0%} of its firing. Look at the short words "
                     "around the boxed tokens (articles, prepositions).")


def check_largest_ablation_effect(answer: Any, effects: Mapping[str, float]) -> Check:
    """Exercise: removing the component hurts which language's held-out CE the most?

    effects: {lang: ΔCE (nats/token)} as returned by ``vpd_lite.interpret.ablation.ablation_effect``."""

    top = max(effects, key=lambda lang: effects[lang])
    lang = _as_lang(answer)
    if lang is None or lang not in effects:
        return not_quite(f"answer with a language: one of {', '.join(lang_name(x) for x in effects)}")
    if lang == top:
        return correct(f"{lang_name(top)}: CE rises by {effects[top]:+.3f} nats/token there "
                       f"(next largest: {sorted(effects.values())[-2]:+.3f}).")
    return not_quite(f"{lang_name(lang)} changes by {effects[lang]:+.3f} nats/token; which component did we remove, "
                     "and what does it fire on?")


# ---- notebook 03
def _category_key(text: str) -> tuple[str, frozenset[str]] | None:
    """A category answer in a form where order, case and spacing do not matter: ("mixed", {"de", "fr"}) for
    "mixed (French, German)" or "Mixed(de,fr)", ("mostly", {"fr"}) for "mostly French", ("", {"de"}) for
    "German", ("all languages", {}) for other text. None when a named language is not one."""
    words = " ".join(text.lower().replace("(", " ( ").replace(")", " ) ").split())
    head, _, rest = words.partition("(")
    head = head.strip()
    if rest or head.startswith("mostly ") or _as_lang(head) is not None:
        if rest:
            names = rest.replace(")", " ").replace(" and ", ",").replace("&", ",").split(",")
        elif head.startswith("mostly "):
            names, head = [head[len("mostly "):]], "mostly"
        else:
            names, head = [head], ""
        langs = [_as_lang(n) for n in names if n.strip()]
        if any(lang is None for lang in langs):
            return None
        return head, frozenset(langs)
    return head, frozenset()


def check_category(answer: Any, profile: Mapping[str, float]) -> Check:
    """Exercise: which category does the offline labeller give a component with this language profile?

    Right answer: ``vpd_lite.interpret.labels.categorize(profile)`` (``labelling.categorize`` in the notebooks,
    which import the module under that name); case, spacing and the order of the languages in "mixed (…)"
    are ignored, and languages may be given by name or code ("mixed (fr, de)")."""

    right = categorize(dict(profile))
    if not isinstance(answer, str):
        return not_quite('answer with a category as text, e.g. "German" or "mixed (German, English)"')
    if _category_key(answer) == _category_key(right):
        return correct(f"{right!r}.")
    return not_quite("go through the rules in order: one language >= 70%? English <= 10% with three others >= 15%? "
                     "every language >= half a fair share? otherwise the languages at >= 20% are named.")


def check_category_count(answer: Any, labels: Iterable[Any], category: str) -> Check:
    """Exercise: how many live components get the category ``category`` (e.g. "German")?"""
    right = sum(1 for lab in labels if lab.category == category)
    value = _as_float(answer)
    if value is None:
        return not_quite("give a whole number")
    if value == right:
        return correct(f"{right} components are labelled {category!r}.")
    return not_quite(f"that is not the count. Only the labels whose category is exactly {category!r} count (not "
                     f"\"mostly {category}\" or a mixed category): read the length of that bar in the category "
                     "figure, or count them in code.")


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
    return not_quite(f"that is not where it starts. Start at s = 1 and follow the {name} curve leftwards, grid "
                     f"point by grid point: the answer is the first point where it lies above +{threshold} "
                     "nats/token (or anywhere between it and the point before).")


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
