"""Tests of vpd_lite.tutorial.notebook: what the notebooks show about their mode."""

from __future__ import annotations


def test_mode_banner_says_quick_is_a_smoke_test():
    from vpd_lite.tutorial.notebook import mode_banner

    quick = mode_banner(True)
    assert "smoke test" in str(quick) and "differs from the full run" in str(quick)
    assert "smoke test" in quick._repr_html_()
    assert "smoke test" not in str(mode_banner(False))


# ---- no progress bar is left in a cell's output once the work is done


def leftover_bars(text: str) -> list[str]:
    """Lines of terminal output that still show something once every carriage return has been applied."""
    return [line.rsplit("\r", 1)[-1] for line in text.split("\n") if line.rsplit("\r", 1)[-1].strip()]


def test_library_progress_bars_clear_themselves(capsys):
    from vpd_lite.models import toy_models as tm

    tm.train_tms(tm.TMSConfig(n_features=5, n_hidden=2, steps=30), progress=True)
    err = capsys.readouterr().err
    assert "train TMS" in err  # a bar was drawn while it ran ...
    assert leftover_bars(err) == []  # ... and nothing of it is left


def test_every_library_progress_bar_is_created_with_leave_false():
    """Notebooks call these loops; a bar that stays (leave=True, tqdm's default) clutters the cell's output."""
    import ast
    from pathlib import Path

    import vpd_lite

    missing = []
    for path in Path(vpd_lite.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "tqdm":
                leave = next((k.value for k in node.keywords if k.arg == "leave"), None)
                if not (isinstance(leave, ast.Constant) and leave.value is False):
                    missing.append(f"{path.name}:{node.lineno}")
    assert missing == []


def test_quiet_model_loading_hides_the_loading_weights_bar(capsys):
    from transformers.utils import logging as hf_logging

    from vpd_lite.models.target import load_target
    from vpd_lite.tutorial.notebook import quiet_model_loading

    try:
        quiet_model_loading()
        assert not hf_logging.is_progress_bar_enabled()
        load_target()
        err = capsys.readouterr().err
        assert "Loading weights" not in err and leftover_bars(err) == []
    finally:
        hf_logging.enable_progress_bar()
