"""The image recipes in deploy/docker/ agree with the project (no engine needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
REQUIREMENTS = sorted(DOCKER.glob("requirements-*.txt"))


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[\[=<>!~; ]", requirement, maxsplit=1)[0]).lower()


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[\w.]+", line), f"{path.name}: not pinned: {line}"
            pins[_name(line)] = line.split("==", 1)[1]
    return pins


def test_there_are_requirements_for_the_serving_and_edge_images():
    assert {p.name for p in REQUIREMENTS} >= {"requirements-serving.txt", "requirements-edge.txt"}


@pytest.mark.parametrize("requirements", REQUIREMENTS, ids=lambda p: p.name)
def test_image_requirements_are_generated_from_the_one_list_of_pins(requirements):
    from shipml import pins

    expected = pins.generated(ROOT)[requirements]
    assert requirements.read_text() == expected, f"{requirements.name} is stale: run `shipml pins --write`"
    constraints = pins.read_constraints(ROOT / "constraints.txt")
    assert all(constraints[n] == v for n, v in _pins(requirements).items())


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "edge.Dockerfile"])
def test_dockerfiles_take_a_base_image_and_run_as_uid_10001_under_tini(dockerfile):
    text = (DOCKER / dockerfile).read_text()
    assert text.count("ARG BASE_IMAGE=python:3.11-slim") == 1
    assert "FROM ${BASE_IMAGE} AS runtime" in text
    assert "USER 10001:10001" in text
    assert 'ENTRYPOINT ["/usr/bin/tini", "--"]' in text
    assert "HEALTHCHECK" in text
    assert "RUN --mount" not in text  # classic builder only: Debian's engine, compose 1.29, the SDK


def test_dockerignore_sends_only_what_the_images_copy():
    from docker.utils.build import exclude_paths

    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    sent = exclude_paths(str(ROOT), patterns, dockerfile="deploy/docker/Dockerfile")
    tops = {path.split("/")[0] for path in sent}
    assert tops <= {".dockerignore", "pyproject.toml", "README.md", "shared", "deploy", "artifacts"}
    assert "shared/shipml/serving/app.py" in sent
    assert not any("__pycache__" in path or path.endswith(".pyc") for path in sent)
    assert not any(path.startswith(("deploy/k8s", ".venv", ".git/")) for path in sent)


def test_the_serving_dockerfile_has_its_targets_with_the_onnx_server_first_and_default():
    stages = re.findall(r"^FROM (\S+) AS (\S+)$", (DOCKER / "Dockerfile").read_text(), re.M)
    names = [name for _, name in stages]
    assert {"serving", "serving-sklearn", "batch"} <= set(names)
    # The classic builder builds every stage above the target: ONNX stages come before scikit-learn's.
    assert names.index("serving") < names.index("wheels-sklearn")
    assert stages[-1] == ("serving", "serving-default")  # no --target: the ONNX server


def test_the_onnx_serving_requirements_hold_no_training_stack():
    pins = _pins(DOCKER / "requirements-serving.txt")
    assert "onnxruntime" in pins and "numpy" in pins
    assert not {"scikit-learn", "scipy", "pandas", "joblib", "pyarrow"} & set(pins)
