"""Notebook plumbing: what the tutorial notebooks show around their results (the mode banner).

Quick mode (``VPD_LITE_QUICK=1``, :func:`vpd_lite.quick_mode`) runs every notebook as a smoke test: a few blocks of
text, a toy live decomposition, short fits. Its numbers differ from the full run, and the notebooks say so on
screen with :func:`mode_banner`.
"""

from __future__ import annotations

import html


def mode_text(quick: bool) -> str:
    """The sentence a notebook shows about its mode (plain text)."""
    if quick:
        return ("Quick mode: this run is a smoke test. It uses a few blocks of text and tiny runs, so every number "
                "and figure below differs from the full run and proves only that the code works. "
                "Set QUICK = False (or run without VPD_LITE_QUICK=1) for the real tutorial.")
    return ("Full mode: the numbers below are measured on this machine over the tutorial's full text budget "
            "(the shipped decomposition and statistics, where they are used).")


class ModeBanner:
    """Displays :func:`mode_text` as a coloured box in a notebook, as plain text elsewhere."""

    def __init__(self, quick: bool) -> None:
        self.quick = bool(quick)

    def __str__(self) -> str:
        return mode_text(self.quick)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        colour, border = ("#fff4e5", "#b26a00") if self.quick else ("#eef6ee", "#2e7d32")
        return (f"<div style='background:{colour};border-left:4px solid {border};padding:6px 10px'>"
                f"<b>{'QUICK MODE — smoke test' if self.quick else 'Full mode'}</b><br>"
                f"{html.escape(mode_text(self.quick))}</div>")


def mode_banner(quick: bool) -> ModeBanner:
    """The banner a notebook's first cell ends with: in quick mode it says the numbers are a smoke test."""
    return ModeBanner(quick)
