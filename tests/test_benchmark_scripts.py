"""The benchmark scripts' own logic (never their timings): what they count and how they answer bad input."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_flops_of_the_shipped_recipe_are_the_ones_the_recipes_page_quotes():
    """Counted operations do not depend on the machine: the page's "3.8 times" must stay true of the recipe."""
    bench = _script("bench_decompose")
    vpd = bench.run_one("default", 1, "vpd", flops=True)
    target = bench.run_one("default", 1, "target", flops=True)
    ratio = vpd["gflop"] / target["gflop"]
    assert target["gflop"] > 0
    assert round(ratio, 1) == 3.8, f"benchmarks/faster_recipes.md quotes 3.8, the recipe now counts {ratio:.2f}"
    assert "3.8 times" in (BENCH / "faster_recipes.md").read_text()


@pytest.mark.parametrize("argv", [["--threads", "0"], ["--steps", "0"], ["--threads", "two"]])
def test_bench_target_refuses_bad_numbers_in_one_line(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        _script("bench_target").main(argv)
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "error:" in last and argv[0] in last, last
