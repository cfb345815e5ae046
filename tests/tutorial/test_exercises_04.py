"""Notebook 04's exercise checks: right answers pass, wrong ones get a hint, nothing raises."""

import pandas as pd

from vpd_lite.tutorial import exercises


def curve():
    s = [-15.0, -10.0, -5.0, -2.0, 0.0, 1.0, 3.0, 5.0]
    return pd.DataFrame({
        "s": s,
        "d_de": [3.0, 2.0, 1.0, 0.4, 0.1, 0.0, 0.2, 0.5],
        "d_fr": [0.9, 0.3, 0.06, 0.02, 0.0, 0.0, 0.01, 0.03],  # exceeds 0.1 first at s = -10 (going down)
        "d_en": [0.5, 0.2, 0.04, 0.01, 0.0, 0.0, 0.0, 0.02],
        "d_es": [4.0, 0.1, 0.05, 0.0, 0.0, 0.0, 0.0, 0.0],
        "d_it": [0.2, 0.05, 0.02, 0.0, 0.0, 0.0, 0.0, 0.0],
    })


def ok(check):
    return bool(check) and str(check).startswith("Correct:")


def nope(check):
    return not bool(check) and str(check).startswith("Not quite:")


def test_check_first_move():
    c = curve()
    assert exercises.first_move(c, "fr") == (-10.0, -5.0)
    assert ok(exercises.check_first_move(-10, c))
    assert ok(exercises.check_first_move(-7.5, c))  # between the grid points
    assert nope(exercises.check_first_move(-2, c))  # French has not moved yet
    assert nope(exercises.check_first_move(-15, c))  # long moved
    assert nope(exercises.check_first_move(None, c))  # the notebook's unanswered default
    assert nope(exercises.check_first_move("never", c))
    flat = c.assign(d_fr=0.0)
    assert ok(exercises.check_first_move("never", flat))
    assert nope(exercises.check_first_move(-3.0, flat))


def test_check_curve_language():
    c = curve()
    assert exercises.curve_language(c, -5.0) == "de"
    assert ok(exercises.check_curve_language("de", c, s=-5.0))
    assert ok(exercises.check_curve_language("German", c, s=-4.6))  # nearest grid value -5
    assert nope(exercises.check_curve_language("es", c, s=-5.0))
    assert ok(exercises.check_curve_language("Spanish", c, s=-15.0))
    assert nope(exercises.check_curve_language(None, c, s=-5.0))
    assert nope(exercises.check_curve_language(3, c, s=-5.0))
