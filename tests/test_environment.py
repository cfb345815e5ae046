"""The set-up files agree with each other: pyproject, environment.yml, README and .ci/run."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _norm(req: str) -> tuple[str, str]:
    """'Foo_Bar >= 1.0, <2' -> ('foo-bar', '>=1.0,<2')."""
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    assert m, f"cannot parse requirement {req!r}"
    return m.group(1).lower().replace("_", "-"), m.group(2).replace(" ", "")


def _pyproject_requirements() -> dict[str, str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"]) + list(meta["optional-dependencies"]["test"])
    return dict(_norm(r) for r in reqs)


def _environment_pip_requirements() -> dict[str, str]:
    text = (ROOT / "environment.yml").read_text()
    reqs = {}
    in_pip = False
    for line in text.splitlines():
        if re.match(r"^\s*-\s*pip:\s*$", line):
            in_pip = True
            continue
        if in_pip:
            m = re.match(r"^\s+-\s+(.*)$", line)
            if not m:
                break
            item = m.group(1).strip()
            if item.startswith("-"):  # pip options such as --extra-index-url or -e .
                continue
            name, spec = _norm(item)
            reqs[name] = spec
    return reqs


def test_environment_yml_matches_pyproject():
    assert _environment_pip_requirements() == _pyproject_requirements()


def test_torch_range_admits_the_local_cpu_wheel_and_nothing_newer():
    spec = _pyproject_requirements()["torch"]
    assert "<=2.13.0" in spec or "==2.13.0" in spec, f"torch must be capped at 2.13.0, got {spec!r}"


def _readme_setup_commands() -> list[str]:
    """The command lines of the README's set-up section's code blocks (the main job, then the tests)."""
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", _readme_section("Set-up"), flags=re.S)
    return [line.strip() for b in blocks for line in b.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_gives_two_setup_commands_the_main_job_and_the_tests():
    commands = _readme_setup_commands()
    assert len(commands) == 2, commands
    assert "vpd_lite.reproduce" in commands[0] and "pytest" in commands[1], commands


def test_ci_runs_the_readme_commands_word_for_word_in_a_fresh_venv():
    """.ci/run installs the way a newcomer does: a fresh virtual environment in the clone, activated, then the
    README's two set-up commands exactly as written (not a hand-prepared interpreter)."""
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    made = next((i for i, line in enumerate(ci) if re.match(r"^python3? -m venv \.venv$", line)), None)
    assert made is not None, ".ci/run does not create a fresh virtual environment (python3 -m venv .venv)"
    activated = ci.index(". .venv/bin/activate") if ". .venv/bin/activate" in ci else None
    assert activated is not None and activated > made, ".ci/run does not activate the venv it made"
    for command in _readme_setup_commands():
        assert command in ci, f"the README's command {command!r} is not a line of .ci/run"
        assert ci.index(command) > activated, f"{command!r} runs before the venv is active"
    assert ".venv/" in (ROOT / ".gitignore").read_text().split(), "the CI venv must be ignored by git"


def _readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:] if end < 0 else text[start:end]


def test_readme_setup_says_where_data_and_outputs_are():
    setup = _readme_section("Set-up")
    for needed in ("VPD_LITE_DATA", "runs/", "--out", "pip install .", "require_data", "--from-scratch",
                   "thread"):
        assert needed in setup, f"the README's set-up section does not mention {needed!r}"
    assert not re.search(r"\bissue \d", setup, flags=re.I), "user-facing text names an internal issue"



def test_console_scripts_point_at_callables():
    """Every ``[project.scripts]`` entry names a module and a function that exist (a moved module breaks it)."""
    import importlib

    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for name, target in scripts.items():
        module, _, attr = target.partition(":")
        assert callable(getattr(importlib.import_module(module), attr, None)), f"{name} = {target!r} is not callable"
