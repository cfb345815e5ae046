"""Every ``python -m vpd_lite.X`` command: bad input gets one clear line, and nothing shipped is touched.

Each command runs as a subprocess of the checkout under test (``PYTHONPATH`` = its root) with its working
directory in ``tmp_path``, so that a default run folder (``./runs``) lands there. For every bad input the
table says the exit code (2: argparse rejected the arguments before any work; 1: the command found a
problem, e.g. a corrupted file) and a fragment of the one ``error:`` line; the test also checks that no
traceback is printed and that no file under ``data/`` or ``results/`` changed.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.checkout_copy import ROOT
from tests.watch import run_watched
from vpd_lite.method.checkpoint import write_training_state
from vpd_lite.method.config import DecomposeConfig

SHIPPED = ("data", "results")


def _snapshot() -> dict[str, str]:
    """sha256 of every file under the checkout's data/ and results/."""
    files = sorted(p for d in SHIPPED for p in (ROOT / d).rglob("*") if p.is_file())
    return {str(p.relative_to(ROOT)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("VPD_LITE_DATA", "VPD_LITE_RUNS")}
    env.update(PYTHONPATH=str(ROOT), VPD_LITE_QUICK="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               HF_DATASETS_OFFLINE="1", OMP_NUM_THREADS="1")
    return env


def run_cli(module: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return run_watched([sys.executable, "-m", f"vpd_lite.{module}", *args], f"python -m vpd_lite.{module}",
                       cwd=cwd, env=_env())


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory) -> dict[str, Path]:
    """Broken copies of the shipped decomposition: truncated tensors, corrupted metrics, no metadata."""
    base = tmp_path_factory.mktemp("bad")
    made = {}
    for name in ("truncated", "bad_metrics", "no_meta", "unfinished_full", "unfinished_targeted"):
        made[name] = shutil.copytree(ROOT / "data" / "decomposition", base / name)
    for name in ("unfinished_full", "unfinished_targeted"):  # a run stopped before its end
        (made[name] / "training_state.pt").write_bytes(b"")
    meta = json.loads((made["unfinished_targeted"] / "decomposition.json").read_text())
    meta["config"]["capability"] = "de"
    (made["unfinished_targeted"] / "decomposition.json").write_text(json.dumps(meta))
    tensors = made["truncated"] / "components.safetensors"
    tensors.write_bytes(tensors.read_bytes()[:100_000])
    (made["bad_metrics"] / "metrics.json").write_text('{"n_tokens": 3')
    (made["no_meta"] / "decomposition.json").unlink()
    # a state that records its recipe (quick, as the tests run) and thread count
    made["unfinished_recorded"] = base / "unfinished_recorded"
    write_training_state(made["unfinished_recorded"], {"step": 3, "config": dataclasses.asdict(DecomposeConfig.quick()),
                                                       "threads": 2})
    return made


# (module, arguments, exit code, fragment of the error line). "{truncated}" etc. name the broken folders above;
# "{missing}" a path that does not exist.
BAD_INPUTS = [
    ("decompose", ["--set", "coeff_minimality=abc"], 2, "--set coeff_minimality: expected a number, got 'abc'"),
    ("decompose", ["--set", "no_such_field=1"], 2, "DecomposeConfig has no field 'no_such_field'"),
    ("decompose", ["--set", "coeff_minimality"], 2, "--set expects FIELD=VALUE"),
    ("decompose", ["--set", "steps=0"], 2, "steps must be at least 1"),
    ("decompose", ["--set", "adversarial_routing=sideways"], 2, "adversarial_routing must be"),
    ("decompose", ["--set", "ci_type=foo"], 2,
     "ci_type must be one of shared_mlp, mlp, vector_mlp, global_mlp, global_transformer; got 'foo'"),
    ("decompose", ["--resume"], 2, "--resume needs --out"),
    ("decompose", ["--resume", "--out", "{missing}"], 2, "holds no unfinished run"),
    ("decompose", ["--steps", "0"], 2, "argument --steps: '0' is not a positive integer"),
    ("decompose", ["--minutes", "-3"], 2, "argument --minutes: '-3' is not a positive number"),
    ("decompose", ["--threads", "0"], 2, "argument --threads: '0' is not a positive integer"),
    ("decompose", ["--seed", "-1"], 2, "argument --seed"),
    ("decompose", ["--capability", "xx"], 2, "--capability: unknown language 'xx': the corpus has en (English)"),
    ("decompose", ["--resume", "--out", "{unfinished_full}", "--capability", "de"], 2,
     "holds a full decomposition: leave out --capability to continue it"),
    ("decompose", ["--resume", "--out", "{unfinished_targeted}"], 2,
     "holds a targeted decomposition of 'de': add --capability de to continue it"),
    ("decompose", ["--resume", "--out", "{unfinished_full}"], 2, "training_state.pt is corrupted or truncated"),
    ("decompose", ["--resume", "--out", "{bad_metrics}"], 2, "holds a finished decomposition"),
    ("decompose", ["--resume", "--out", "{unfinished_recorded}", "--seed", "1", "--steps", "6000"], 2,
     "another configuration (seed = 0 there, 1 now; steps = 40 there, 6000 now)"),
    ("decompose", ["--resume", "--out", "{unfinished_recorded}", "--threads", "1"], 2,
     "computed on 2 torch threads"),
    ("evaluate", ["{missing}"], 2, "is not a folder"),
    ("evaluate", ["{truncated}"], 1, "components.safetensors is corrupted"),
    ("evaluate", ["{truncated}", "--recompute"], 1, "components.safetensors is corrupted"),
    ("evaluate", ["{bad_metrics}"], 1, "metrics.json is corrupted"),
    ("evaluate", ["{no_meta}"], 1, "not a vpd-lite decomposition"),
    ("evaluate", ["--threshold", "0.9", "--write"], 2, "--threshold and --write apply only with --recompute"),
    ("evaluate", ["--out", "{missing}"], 2, "--out applies only with --recompute"),
    ("evaluate", ["--recompute", "--threshold", "-1"], 2, "argument --threshold: '-1' is not a number in [0, 1]"),
    ("evaluate", ["--recompute", "--threshold", "2"], 2, "argument --threshold: '2' is not a number in [0, 1]"),
    ("evaluate", ["--recompute", "--blocks-per-lang", "0"], 2, "argument --blocks-per-lang"),
    ("labelling", ["--decomposition", "{missing}"], 2, "is not a folder"),
    ("labelling", ["--decomposition", "{truncated}"], 1, "components.safetensors is corrupted"),
    ("labelling", ["--reuse-stats", "--stats", "{missing}"], 2, "is not a file"),
    ("target", [], 2, "the following arguments are required"),
    ("target", ["train", "--steps", "0"], 2, "argument --steps: '0' is not a positive integer"),
    ("target", ["train", "--seed", "-3"], 2, "argument --seed"),
    ("target", ["eval", "--path", "{missing}"], 1, "does not exist"),
    ("recipes", ["custom"], 2, "names no model: pass --model"),
    ("recipes", ["no-such-recipe"], 2, "invalid choice"),
    ("recipes", ["pythia-70m", "--steps", "0"], 2, "argument --steps"),
    ("recipes", ["pythia-70m", "--device", "tpu"], 2, "argument --device"),
    ("recipes", ["custom", "--model", "./does-not-exist"], 1, "model folder ./does-not-exist does not exist"),
    ("distributed", ["--model", "./does-not-exist"], 1, "model folder ./does-not-exist does not exist"),
    ("distributed", ["--steps", "0"], 2, "argument --steps"),
    ("distributed", ["--global-batch", "0"], 2, "argument --global-batch"),
    ("distributed", ["--backend", "mpi"], 2, "argument --backend"),
    ("distributed", ["--set", "ci_type=global"], 2, "ci_type must be one of"),
    ("distributed", ["--resume"], 2, "--resume needs --out"),
    ("distributed", ["--resume", "--out", "{missing}"], 2, "holds no unfinished run"),
    ("distributed", ["--resume", "--out", "{bad_metrics}"], 2, "holds a finished decomposition"),
    # reproduce's own checks (its argument handling lives in vpd_lite/reproduce.py)
    ("reproduce", ["--quick", "--seeds", "0"], 2, "--seeds"),
    ("reproduce", ["--seeds", "-3"], 2, "--seeds"),
    ("reproduce", ["--threads", "0"], 2, "--threads"),
    ("reproduce", ["--work", "{missing}"], 2, "--work applies only with --from-scratch"),
    ("across_decompositions", ["{missing}"], 2, "is not a folder"),
    ("across_decompositions", ["data", "--threads", "0"], 2, "argument --threads: '0' is not a positive integer"),
    ("across_decompositions", [], 2, "the following arguments are required"),
    # the component atlas: a folder that is not a decomposition, an id of the wrong form, a matrix it lacks
    ("atlas", ["{missing}"], 2, "is not a folder"),
    ("atlas", ["{no_meta}"], 2, "is not a decomposition folder"),
    ("atlas", ["--components", "v_proj61"], 2, "expected comma-separated ids like model.layers.0.mlp.down_proj:113"),
    ("atlas", ["--components", "model.layers.7.mlp.up_proj:3"], 2, "has no matrix"),
    ("atlas", ["--out", "{truncated}"], 2, "already holds"),
    # the teacher's kit: a folder with files in it, a notebook the course does not have, an unknown exercise
    ("course", ["student-copy", "{truncated}"], 1, "already holds"),
    ("course", ["figures", "{truncated}"], 1, "already holds"),
    ("course", ["reset", "{missing}/notes.ipynb"], 1, "notes.ipynb is not one of the course's notebooks"),
    ("course", ["reset", "{missing}/01_decompose.ipynb", "--exercise", "1"], 1, "does not exist"),
    ("course", ["reset", "{missing}/01_decompose.ipynb", "--exercise", "no such"], 1, "names no exercise"),
    ("course", [], 2, "the following arguments are required"),
    ("course", ["reset", "{missing}/01_decompose.ipynb", "--list", "--exercise", "1"], 2, "takes no --exercise"),
    # --out names a folder: a file there is refused before any work
    ("reproduce", ["--out", "{truncated}/components.safetensors"], 2, "is a file; --out names a folder"),
    ("decompose", ["--out", "{truncated}/components.safetensors"], 2, "is a file; --out names a folder"),
    ("evaluate", ["--recompute", "--out", "{truncated}/components.safetensors"], 2, "is a file; --out names a folder"),
]


class CliResult:
    """What a command line did, as ``subprocess.CompletedProcess`` reports it."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run_cli_batch(cases: list[tuple[str, list[str], Path]], cwd: Path) -> list[CliResult]:
    """Run many command lines in ONE subprocess (``tests/commands/cli_batch.py``: each case through the
    command's own entry point, with its own working directory), so that Python, torch and transformers start
    once for all of them."""
    spec = cwd / "cases.json"
    spec.write_text(json.dumps([[m, a, str(c)] for m, a, c in cases]))
    proc = run_watched([sys.executable, str(Path(__file__).with_name("cli_batch.py")), str(spec)],
                       "the batch of command lines", cwd=cwd, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    return [CliResult(r["code"], r["stdout"], r["stderr"]) for r in json.loads(proc.stdout.strip().splitlines()[-1])]


@pytest.fixture(scope="module")
def bad_input_results(bad_files, tmp_path_factory) -> dict[int, tuple[CliResult, Path]]:
    """Every case of ``BAD_INPUTS``, run in one subprocess, each with an empty working directory of its own;
    with a sha256 snapshot of data/ and results/ before and after."""
    base = tmp_path_factory.mktemp("bad_inputs")
    paths = {name: str(path) for name, path in bad_files.items()} | {"missing": str(base / "no-such-thing")}
    cases = []
    for i, (module, args, _, _) in enumerate(BAD_INPUTS):
        cwd = base / f"cwd{i}"
        cwd.mkdir()
        cases.append((module, [a.format(**paths) for a in args], cwd))
    before = _snapshot()
    results = run_cli_batch(cases, base)
    assert _snapshot() == before, "a shipped file under data/ or results/ changed"
    return {i: (r, c[2]) for i, (r, c) in enumerate(zip(results, cases))}


@pytest.mark.parametrize("case", range(len(BAD_INPUTS)),
                         ids=[f"{m} {' '.join(a)}" for m, a, _, _ in BAD_INPUTS])
def test_bad_input_gets_one_clear_line(case, bad_input_results):
    module, _, code, fragment = BAD_INPUTS[case]
    proc, cwd = bad_input_results[case]
    err_lines = [line for line in proc.stderr.splitlines() if "error:" in line]
    assert proc.returncode == code, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr[-2000:]
    assert len(err_lines) == 1, proc.stderr
    assert err_lines[0].startswith(f"python -m vpd_lite.{module}"), err_lines[0]
    assert fragment in err_lines[0], err_lines[0]
    assert list(cwd.iterdir()) == [], "a failed command left files behind"


def test_a_real_process_gives_the_same_one_line(bad_files, tmp_path):
    """The batch above runs each command's entry point in one process; one case per exit code also runs as a
    real ``python -m`` process, to show that is the same thing."""
    for module, args, code, fragment in [("decompose", ["--steps", "0"], 2, "is not a positive integer"),
                                         ("evaluate", [str(bad_files["truncated"])], 1, "is corrupted")]:
        proc = run_cli(module, args, tmp_path)
        err_lines = [line for line in proc.stderr.splitlines() if "error:" in line]
        assert proc.returncode == code and len(err_lines) == 1 and fragment in err_lines[0], proc.stderr[-2000:]
        assert "Traceback" not in proc.stderr


def test_debug_shows_the_traceback(bad_files, tmp_path):
    proc = run_cli("evaluate", [str(bad_files["truncated"]), "--debug"], tmp_path)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "is corrupted" in proc.stderr


HELP_MODULES = ["across_decompositions", "atlas", "course", "decompose", "evaluate", "labelling", "target", "recipes", "distributed", "reproduce"]


def test_help_names_the_command(tmp_path):
    results = run_cli_batch([(m, ["--help"], tmp_path) for m in HELP_MODULES], tmp_path)
    for module, proc in zip(HELP_MODULES, results):
        assert proc.returncode == 0 and proc.stdout.startswith(f"usage: python -m vpd_lite.{module}"), (
            module, proc.stdout[:300])
        assert "issue" not in proc.stdout.lower()


class _Parsing(Exception):
    """Raised instead of parsing: the parser is complete by then."""


def _options(parser: argparse.ArgumentParser):
    """Every option of ``parser`` and its sub-commands that takes a value and may be left out."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _options(sub)
        elif action.nargs != 0 and not action.required and action.help is not argparse.SUPPRESS:
            yield action


@pytest.mark.parametrize("module", ["across_decompositions", "atlas", "course", "distributed", "edit_scan", "evaluate", "labelling", "recipes", "reproduce",
                                    "target"])
def test_help_gives_every_default(module, monkeypatch):
    """``--help`` says what every option that takes a value does when it is left out (flags are off)."""
    import importlib

    from vpd_lite.commands import cli

    made = []

    def keep(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    def stop(self, *args, **kwargs):
        raise _Parsing

    real = cli.make_parser
    monkeypatch.setattr(cli, "make_parser", keep)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", stop)
    with pytest.raises(_Parsing):
        importlib.import_module(f"vpd_lite.commands.{module}").main([])
    options = list(_options(made[0]))
    assert options
    for action in options:
        text = action.help % {"default": action.default} if action.help else ""
        assert "default" in text, f"{module} {'/'.join(action.option_strings) or action.dest}: {text!r}"


# (module, arguments, a file the run folder must hold, what the command prints before the folder's name)
WRITERS = [
    ("decompose", ["--quick", "--steps", "2", "--threads", "1"], "decomposition.json", "decomposition written to"),
    ("evaluate", ["--recompute", "--write", "--blocks-per-lang", "1"], "metrics.json", "metrics written to"),
    ("labelling", ["--reuse-stats"], "labels.json", "live components labelled ->"),
    ("target", ["train", "--steps", "2"], "model.safetensors", "target model written to"),
]


@pytest.fixture(scope="module")
def writer_results(tmp_path_factory) -> dict[str, tuple[CliResult, Path]]:
    """Every command of ``WRITERS``, without --out, run in one subprocess (``run_cli_batch``), each in an empty
    working directory of its own; checks that nothing under data/ or results/ changed."""
    base = tmp_path_factory.mktemp("writers")
    cases = []
    for module, args, _, _ in WRITERS:
        (base / module).mkdir()
        cases.append((module, args, base / module))
    before = _snapshot()
    results = run_cli_batch(cases, base)
    assert _snapshot() == before, "a shipped file under data/ or results/ changed"
    return {case[0]: (result, case[2]) for case, result in zip(cases, results)}


@pytest.mark.parametrize("module,args,produced,said", WRITERS, ids=[w[0] for w in WRITERS])
def test_default_output_is_a_run_folder(module, args, produced, said, writer_results):
    """No --out: the command writes to ./runs/<command>-<time> and names it; nothing shipped changes."""
    proc, cwd = writer_results[module]
    assert proc.returncode == 0, proc.stderr[-2000:]
    (run,) = (cwd / "runs").iterdir()
    assert run.name.startswith(f"{module}-") and (run / produced).is_file()
    assert f"{said} {Path('runs') / run.name}" in proc.stdout


def test_a_decomposition_of_the_shipped_target_is_shown_beside_the_shipped_one(tmp_path):
    """After training, ``python -m vpd_lite.decompose`` sets the run's held-out quality beside the shipped
    decomposition's where the comparison is fair (same target weights, same held-out tokens, another folder) and
    says why not elsewhere."""
    from vpd_lite.commands.decompose import beside_shipped
    from vpd_lite.models.paths import decomposition_dir

    shipped = decomposition_dir()
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(shipped / "decomposition.json", run)
    metrics = json.loads((shipped / "metrics.json").read_text())
    metrics["ce_gap"]["ci_rounded"], metrics["ce_gap"]["pgd"], metrics["l0_mean"] = 0.25, 0.75, 12.5
    table = beside_shipped(metrics, run).splitlines()
    assert table[0].startswith("beside the shipped decomposition, on the same held-out text")
    assert table[2].split()[-2:] == ["0.250", "0.104"] and table[3].split()[-2:] == ["0.750", "0.446"]
    assert table[4].split()[-2:] == ["12.500", "8.973"]
    assert beside_shipped(metrics, shipped) is None  # the shipped folder itself
    quick = beside_shipped({**metrics, "n_tokens": 640}, run)  # a quick run's smaller evaluation: said, not shown
    assert quick.startswith("not set beside the shipped decomposition: this evaluation used 640 held-out tokens")
    meta = json.loads((run / "decomposition.json").read_text())
    (run / "decomposition.json").write_text(json.dumps({**meta, "target_fingerprint": "another target"}))
    assert beside_shipped(metrics, run).endswith("made from other target weights")
    assert beside_shipped(metrics, tmp_path / "nowhere") is None
