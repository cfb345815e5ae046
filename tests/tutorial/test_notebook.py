"""Tests of vpd_lite.tutorial.notebook: what the notebooks show about their mode."""

from __future__ import annotations

from pathlib import Path


def test_mode_banner_says_quick_is_a_smoke_test():
    from vpd_lite.tutorial.notebook import mode_banner

    quick = mode_banner(True)
    assert "smoke test" in str(quick) and "differs from the full run" in str(quick)
    assert "smoke test" in quick._repr_html_()
    assert "smoke test" not in str(mode_banner(False))


def test_inspect_banner_says_exactly_what_quick_mode_changes_there():
    """Notebook 02 loads the shipped decomposition and statistics in both modes: its banner must not claim that
    every number differs, only that the ablation effects use less held-out text (numbers from HarvestPlan)."""
    from vpd_lite.interpret.harvest import HarvestPlan
    from vpd_lite.tutorial.notebook import mode_banner

    text = str(mode_banner(True, "02_inspect"))
    plan = HarvestPlan()
    assert "every number" not in text
    assert "ablation" in text and f"{plan.quick_heldout_blocks} held-out blocks" in text
    assert f"instead of {plan.heldout_blocks}" in text
    assert "shipped ones in both modes" in text
    assert text in mode_banner(True, "02_inspect")._repr_html_().replace("&#x27;", "'")


def test_decompose_banner_names_the_live_runs_settings():
    from vpd_lite.tutorial.notebook import DEMO_FULL_STEPS, DEMO_QUICK_C, DEMO_QUICK_STEPS, mode_banner

    text = str(mode_banner(True, "01_decompose"))
    assert f"{DEMO_QUICK_STEPS} steps with {DEMO_QUICK_C} components" in text and f"{DEMO_FULL_STEPS} steps" in text


def test_notebooks_pass_their_own_name_to_the_banner():
    import nbformat

    from tests.tutorial.test_course_scaffolding import ROOT

    for name in ("01_decompose", "02_inspect"):
        src = "".join(c.source for c in nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4).cells)
        assert f'notebook.mode_banner(QUICK, "{name}")' in src


def test_shipped_edit_pick_is_notebook_04s_component(tmp_path):
    from vpd_lite.tutorial.notebook import shipped_edit_pick

    (tmp_path / "edit_scan_best.csv").write_text(
        "component,module,c,layer,target,s_best,gain,worst_other,worst_other_lang,s_lo,s_hi\n"
        "m.layers.1.v:61,m.layers.1.v,61,1,de,-7.5,3.4,0.07,es,-7.5,7.0\n"
        "m.layers.1.o:47,m.layers.1.o,47,1,de,-3.0,0.6,0.06,es,-3.0,6.0\n")
    cid, why = shipped_edit_pick("de", tmp_path)
    assert cid == ("m.layers.1.v", 61) and "largest training ΔCE" in why
    assert shipped_edit_pick("de", tmp_path / "missing") is None


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


def test_notebook_02_shows_notebook_04s_pick_as_markdown():
    """The pick's one long line ("... +3.472 nats/token at s = -7.5 ...") as printed text wrapped inside a number
    at JupyterLab's width; as Markdown it wraps between words."""
    import json

    cells = json.loads((Path(__file__).resolve().parents[2] / "notebooks" / "02_inspect.ipynb").read_text())["cells"]
    source = next("".join(c["source"]) for c in cells if "shipped_edit_pick(" in "".join(c["source"]))
    assert "display(Markdown(" in source and "print(" not in source
