"""The benchmark scripts' own logic (never their timings): what they count and how they answer bad input."""

from __future__ import annotations

import importlib.util
import re
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
    """Counted operations do not depend on the machine's speed: the page's figures must stay true of the recipe
    (they do depend on torch and transformers, which pyproject.toml bounds)."""
    bench = _script("bench_decompose")
    # as the page's command: --steps 5 (the routing draws, hence the routed rows counted, follow the steps run)
    vpd = bench.run_one("default", 5, "vpd", flops=True)
    target = bench.run_one("default", 5, "target", flops=True)
    page = (BENCH / "faster_recipes.md").read_text()
    words = (r"counts ([\d.]+) GFLOP of matrix multiplies and attention in one VPD step and ([\d.]+) GFLOP in one "
             r"forward\+backward of the target at the same batch: ([\d.]+) times")
    quoted = re.search(words.replace(" ", r"\s+"), page)  # the page's lines may wrap anywhere
    assert quoted, "benchmarks/faster_recipes.md no longer quotes the counted GFLOP"
    step, fwd_bwd, ratio = map(float, quoted.groups())
    assert vpd["gflop"] == pytest.approx(step, abs=0.06)
    assert target["gflop"] == pytest.approx(fwd_bwd, abs=0.006)
    assert round(vpd["gflop"] / target["gflop"], 1) == ratio


def test_the_flop_count_includes_attention_and_puts_the_attention_back():
    """The fused CPU attention kernel has no flop formula: the count runs the plain attention instead, which
    adds the attention products, and leaves the model as it was."""
    bench = _script("bench_decompose")
    model, _, _ = bench._setup("default")
    import torch

    ids = torch.zeros(1, 16, dtype=torch.long)
    implementation = model.config._attn_implementation
    counted = bench._count_flops(lambda: model(input_ids=ids), model)
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as plain:
        model(input_ids=ids)
    assert model.config._attn_implementation == implementation
    assert counted > plain.get_total_flops() or implementation == "eager"


def _refused_before_any_work(bench, work: list[str], argv: list[str], monkeypatch, capsys,
                              as_sys_argv: bool = False) -> None:
    """``bench.main`` answers ``argv`` with one ``error:`` line naming the bad option (exit 2), and none of the
    functions named in ``work`` (the benchmark's real work, stubbed to fail) is reached."""

    def no_work(*_a, **_k):
        raise AssertionError(f"bad input {argv} reached the benchmark's work")

    for name in work:
        monkeypatch.setattr(bench, name, no_work)
    if as_sys_argv:
        monkeypatch.setattr(sys, "argv", ["bench", *argv])
    with pytest.raises(SystemExit) as exit_:
        bench.main() if as_sys_argv else bench.main(argv)
    assert exit_.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "error:" in last and argv[0] in last, last


@pytest.mark.parametrize("argv", [["--threads", "0"], ["--steps", "0"], ["--threads", "two"]])
def test_bench_target_refuses_bad_numbers_in_one_line(argv, monkeypatch, capsys):
    _refused_before_any_work(_script("bench_target"), ["load_corpus", "train_target"], argv, monkeypatch, capsys)


@pytest.mark.parametrize("argv", [["--threads", "0"], ["--steps", "0"], ["--threads", "-1"], ["--rounds", "0"],
                                  ["--flops", "--compare-with", "."]])
def test_bench_decompose_refuses_bad_input_in_one_line(argv, monkeypatch, capsys):
    _refused_before_any_work(_script("bench_decompose"), ["run_one", "_child", "_compare"], argv, monkeypatch,
                             capsys, as_sys_argv=True)
