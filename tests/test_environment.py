"""environment.yml (conda) and pyproject.toml (pip) must pin the same versions."""

import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _pyproject_pins() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])


def _conda_pins() -> set[str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return {p for p in pip if p != "-e ."}


def test_environment_yml_matches_pyproject():
    pyproject, conda = _pyproject_pins(), _conda_pins()
    assert conda - pyproject == set(), "pinned in environment.yml only"
    assert pyproject - conda == set(), "pinned in pyproject.toml only"


def test_every_dependency_is_pinned_exactly():
    loose = [d for d in _pyproject_pins() if "==" not in d]
    assert loose == []


def test_python_is_311_in_both():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"] == ">=3.11"
