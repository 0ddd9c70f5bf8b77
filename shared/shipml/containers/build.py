"""Building images from Python with progress a notebook can show, and cleaning them up again."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import docker
from docker.errors import APIError, ImageNotFound

from shipml.containers.engine import docker_client
from shipml.errors import ShipmlError

Progress = Literal["bar", "lines", "none"]
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")


class BuildError(ShipmlError):
    """``docker build`` failed; ``log`` holds everything the builder printed."""

    def __init__(self, message: str, log: list[str]) -> None:
        super().__init__(message)
        self.log = log


@dataclass
class BuildResult:
    """One build: the image, how long it took, and how many steps came from the layer cache."""

    tag: str
    image_id: str
    seconds: float
    steps: int = 0
    cached_steps: int = 0
    log: list[str] = field(default_factory=list, repr=False)


def build_image(
    context: str | Path,
    tag: str,
    *,
    dockerfile: str | Path | None = None,
    buildargs: dict[str, str] | None = None,
    target: str | None = None,
    labels: dict[str, str] | None = None,
    nocache: bool = False,
    progress: Progress = "bar",
    client: docker.DockerClient | None = None,
) -> BuildResult:
    """Build ``context`` into ``tag``, streaming the builder's output as it happens.

    ``progress="bar"`` shows one tqdm step per Dockerfile instruction (and the log's tail if a
    step fails); ``"lines"`` prints every line; ``"none"`` stays quiet. Never pulls: the kit works
    where no registry answers, so base images must already be in the engine.
    """
    context = Path(context)
    if not context.is_dir():
        raise ShipmlError(f"build context {context} is not a directory")
    if dockerfile is not None:
        dockerfile = Path(dockerfile)
        if dockerfile.is_absolute():
            dockerfile = dockerfile.resolve().relative_to(context.resolve())
    own_client = client is None
    client = client or docker_client()
    try:
        return _stream_build(
            client, context, tag, dockerfile, buildargs, target, labels, nocache, progress
        )
    finally:
        if own_client:
            client.close()


def _stream_build(
    client, context, tag, dockerfile, buildargs, target, labels, nocache, progress
) -> BuildResult:
    log: list[str] = []
    steps = cached = 0
    bar = None
    started = time.perf_counter()
    try:
        stream = client.api.build(
            path=str(context),
            dockerfile=str(dockerfile) if dockerfile else None,
            tag=tag,
            buildargs=buildargs,
            target=target,
            labels={"io.shipml.built-by": "shipml.containers", **(labels or {})},
            nocache=nocache,
            pull=False,
            rm=True,
            forcerm=True,
            decode=True,
        )
        for chunk in stream:
            if "error" in chunk:
                if bar is not None:
                    bar.close()
                    bar = None
                if progress == "bar":  # the failing step's output was hidden behind the bar
                    print("\n".join(log[-20:]), file=sys.stderr)
                detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                where = f" at step {steps}" if steps else ""
                raise BuildError(f"docker build of {tag} failed{where}: {detail.strip()}", log)
            for line in chunk.get("stream", "").splitlines():
                if not line.strip():
                    continue
                log.append(line)
                step = _STEP.match(line)
                if step:
                    steps = int(step.group(1))
                if "Using cache" in line:
                    cached += 1
                if progress == "lines":
                    print(line)
                elif progress == "bar" and step:
                    if bar is None:
                        from tqdm.auto import tqdm

                        bar = tqdm(total=int(step.group(2)), desc=f"build {tag}", unit="step")
                    bar.update(steps - bar.n)
                    bar.set_postfix_str(step.group(3)[:40])
    except APIError as exc:
        raise BuildError(f"docker build of {tag} failed: {exc.explanation or exc}", log) from None
    finally:
        if bar is not None:
            bar.close()
    image = client.images.get(tag)
    return BuildResult(tag, image.id, time.perf_counter() - started, steps, cached, log)


def remove_image(tag: str, client: docker.DockerClient | None = None) -> bool:
    """Remove ``tag`` if it exists (and its now-unused layers); True when something was removed."""
    own_client = client is None
    client = client or docker_client()
    try:
        client.images.remove(tag, force=True)
        return True
    except ImageNotFound:
        return False
    finally:
        if own_client:
            client.close()


def remove_tags(repository: str, prefix: str, client: docker.DockerClient | None = None) -> list[str]:
    """Remove every ``repository:<tag>`` whose tag starts with ``prefix`` (a run's own tags; shared layers stay)."""
    own_client = client is None
    client = client or docker_client()
    removed = []
    try:
        for image in client.images.list(name=repository):
            for tag in image.tags:
                if tag.split(":", 1)[1].startswith(prefix):
                    client.images.remove(tag)
                    removed.append(tag)
    finally:
        if own_client:
            client.close()
    return removed


@contextmanager
def temporary_image(context: str | Path, tag: str, **build_options) -> Iterator[BuildResult]:
    """Build an image for the length of a ``with`` block; remove it afterwards, even on errors."""
    client = docker_client()
    try:
        try:
            yield build_image(context, tag, client=client, **build_options)
        finally:
            remove_image(tag, client)
    finally:
        client.close()
