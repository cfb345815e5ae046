"""The README's speed table is the one ``benchmarks/bench_table.py --readme`` renders from the recorded figures."""

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _bench():
    spec = importlib.util.spec_from_file_location("bench_table", ROOT / "benchmarks" / "bench_table.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_table", module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_readme_table_is_rendered_from_measured_json():
    bench = _bench()
    measured = json.loads(bench.MEASURED.read_text()) if bench.MEASURED.is_file() else {}
    assert bench.readme_block((ROOT / "README.md").read_text()) == bench.render(measured), (
        "README's speed table is out of date: run python benchmarks/bench_table.py --readme")


def test_render_shows_every_run_and_the_goal():
    bench = _bench()
    rec = {"median": 200.0, "runs": [190.0, 200.0, 260.0], "command": "python -m vpd_lite.reproduce --out {tmp}/out",
           "date": "2026-12-04", "cpu": "Some CPU", "cores": 2}
    table = bench.render({"main_job": rec})
    line = next(line for line in table.splitlines() if line.startswith("| main job ("))
    assert "**200 s**" in line and "190 s, 200 s, 260 s" in line and "≤ 180 s" in line
    assert "not measured yet" in table and "Some CPU, 2 cores, 2026-12-04" in table


def test_the_test_command_is_timed_before_anything_is_recorded(monkeypatch):
    """The timed test suite checks the README's table against the recorded figures, so it must run before this
    call records any figure (each row is recorded as soon as it is measured)."""
    bench = _bench()
    order: list[str] = []
    monkeypatch.setattr(bench, "measure", lambda key, repeats: order.append(key) or {})
    bench.main(["--rows", "step_ratio", "main_job", "test_command"])
    assert order == ["test_command", "step_ratio", "main_job"]
