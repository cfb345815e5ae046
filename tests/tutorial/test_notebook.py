"""Tests of vpd_lite.tutorial.notebook: what the notebooks show about their mode."""

from __future__ import annotations


def test_mode_banner_says_quick_is_a_smoke_test():
    from vpd_lite.tutorial.notebook import mode_banner

    quick = mode_banner(True)
    assert "smoke test" in str(quick) and "differs from the full run" in str(quick)
    assert "smoke test" in quick._repr_html_()
    assert "smoke test" not in str(mode_banner(False))
