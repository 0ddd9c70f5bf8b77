"""On a fresh clone (no artifacts/ yet) the README's image builds stop at once with the step to run first.

`docker build -f deploy/docker/Dockerfile .` and `docker compose up --build api` used to fail after minutes
of building wheels with "COPY failed: file not found in build context ... artifacts/model-repository-onnx".
The Dockerfile's first stage now checks the build context and names `shipml docker models`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
STEP = "run 'shipml docker models' first"


@pytest.fixture
def fresh_clone(tmp_path) -> Path:
    """The tracked files only: what `git clone` gives (artifacts/ is git-ignored, so it is absent)."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    copy = tmp_path / "shipml"
    for name in filter(None, names.decode().split("\0")):
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    assert not (copy / "artifacts").exists()
    return copy


def test_docker_build_on_a_fresh_clone_names_the_step_to_run_first(engine, base_image, fresh_clone):
    tag = f"shipml-serving:dev-student-fresh-{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    done = subprocess.run(["docker", "build", "-f", "deploy/docker/Dockerfile", "--build-arg",
                           f"BASE_IMAGE={base_image}", "-t", tag, "."], cwd=fresh_clone, capture_output=True,
                          text=True, timeout=600)
    seconds = time.monotonic() - started
    output = done.stdout + done.stderr
    assert done.returncode != 0, f"the build of a fresh clone succeeded?\n{output[-2000:]}"
    assert STEP in output, output[-3000:]
    assert "pip wheel" not in output, "the build ran dependency steps before stopping"
    assert seconds < 180, f"took {seconds:.0f} s to stop"
    assert subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode != 0


def test_compose_up_build_on_a_fresh_clone_names_the_step_to_run_first(engine, base_image, fresh_clone):
    compose = (["docker", "compose"] if subprocess.run(["docker", "compose", "version"],
                                                       capture_output=True).returncode == 0
               else [shutil.which("docker-compose")] if shutil.which("docker-compose") else None)
    if compose is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    project = ["-p", f"shipml-fresh-{uuid.uuid4().hex[:8]}"]
    env = {**os.environ, "SHIPML_BASE_IMAGE": base_image, "SHIPML_API_PORT": "0",
           "SHIPML_SERVING_IMAGE": f"shipml-serving:dev-student-fresh-{uuid.uuid4().hex[:6]}"}
    try:
        done = subprocess.run([*compose, *project, "up", "--build", "--no-start", "api"], cwd=fresh_clone, env=env,
                              capture_output=True, text=True, timeout=600)
    finally:
        subprocess.run([*compose, *project, "down", "--timeout", "5"], cwd=fresh_clone, env=env, capture_output=True)
    output = done.stdout + done.stderr
    assert done.returncode != 0 and STEP in output, output[-3000:]
