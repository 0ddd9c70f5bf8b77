"""The candidate's serving image: a small build context staged from the checkout plus the ONNX bundle,
built with the kit's Dockerfile (``--target serving``), tagged with the git commit, recorded by its
content digest.

The context holds only what deploy/docker/Dockerfile copies (what .dockerignore allows from the
repository root), so the engine receives ~2 MB, and the layer cache does the rest: dependencies and the
kit's code are cached between runs of one commit, only the model layer changes.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from shipml.errors import ShipmlError
from shipml.paths import repo_root

DOCKERFILE = "deploy/docker/Dockerfile"
MODELS_IN_CONTEXT = "artifacts/models"  # the model repository folder inside the staged context
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".ipynb_checkpoints")


@dataclass
class BuiltImage:
    tag: str
    image_id: str  # sha256:... of the image config: the same content gives the same id
    seconds: float
    steps: int
    cached_steps: int


def git_commit(root: Path | None = None) -> str:
    """The checkout's commit (``GITHUB_SHA`` in Actions), or "nogit" outside a git checkout."""
    import os

    if os.environ.get("GITHUB_SHA"):
        return os.environ["GITHUB_SHA"]
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root or repo_root(), capture_output=True,
                              text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "nogit"
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "nogit"


def image_tag(repository: str, prefix: str, commit: str, version: int, bundle_sha256: str) -> str:
    """``<repository>:<prefix><commit 12>-v<version>-<bundle 8>``: the commit says which code, the
    bundle hash which model (one commit can train several)."""
    return f"{repository}:{prefix}{commit[:12]}-v{version}-{bundle_sha256[:8]}"


def stage_context(onnx_bundle: Path, model: str, version: int, dest: Path) -> Path:
    """A build context: pyproject.toml, README.md, shared/, deploy/docker/ from the checkout and the
    bundle as ``artifacts/models/<model>/<version>``. Replaces ``dest``."""
    root = repo_root()
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(root / name, dest / name)
    shutil.copytree(root / "shared", dest / "shared", ignore=_IGNORED)
    shutil.copytree(root / "deploy" / "docker", dest / "deploy" / "docker", ignore=_IGNORED)
    shutil.copytree(onnx_bundle, dest / MODELS_IN_CONTEXT / model / str(version))
    return dest


def build(context: Path, tag: str, *, base_image: str, labels: dict[str, str], nocache: bool = False) -> BuiltImage:
    """``docker build --target serving`` of a staged context (never pulls: the base image is local)."""
    from shipml.containers.build import build_image

    result = build_image(context, tag, dockerfile=DOCKERFILE, target="serving", progress="none",
                         buildargs={"MODELS": MODELS_IN_CONTEXT, "SKLEARN_MODELS": MODELS_IN_CONTEXT,
                                    "BASE_IMAGE": base_image}, labels=labels, nocache=nocache)
    return BuiltImage(tag, result.image_id, result.seconds, result.steps, result.cached_steps)


def image_id(tag: str) -> str | None:
    """The engine's id (content digest) of ``tag`` now, or None when the engine has no such image."""
    from docker.errors import ImageNotFound

    from shipml.containers.engine import docker_client

    client = docker_client()
    try:
        return client.images.get(tag).id
    except ImageNotFound:
        return None
    finally:
        client.close()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def require_image(tag: str, expected_id: str | None) -> None:
    """The image a later stage uses is the one ``build`` recorded (a retag would be caught here)."""
    found = image_id(tag)
    if found is None:
        raise ShipmlError(f"image {tag} is not in the Docker engine (run `shipml pipeline build`)")
    if expected_id and found != expected_id:
        raise ShipmlError(f"image {tag} is now {found[:19]}, not the {expected_id[:19]} the build recorded")
