"""What an image is made of: its size and its layers, for plotting in the notebook."""

from __future__ import annotations

from dataclasses import dataclass

import docker
from docker.errors import ImageNotFound

from shipml.containers.engine import docker_client
from shipml.errors import ShipmlError

_NOP = "/bin/sh -c #(nop) "
_SHELL = "/bin/sh -c "


@dataclass(frozen=True)
class Layer:
    """One step of an image's history: the instruction that made it and the bytes it added."""

    instruction: str
    size_bytes: int
    created: int  # seconds since the epoch

    @property
    def size_mb(self) -> float:
        return self.size_bytes / 1e6


def _get(image: str, client: docker.DockerClient):
    try:
        return client.images.get(image)
    except ImageNotFound:
        raise ShipmlError(f"image {image} is not in the engine: build it first") from None


def _instruction(created_by: str) -> str:
    """``/bin/sh -c #(nop)  CMD ["python3"]`` -> ``CMD ["python3"]``; RUN gets its keyword back."""
    text = created_by.strip()
    if text.startswith(_NOP):
        return text[len(_NOP) :].strip()
    if text.startswith(_SHELL):
        return "RUN " + text[len(_SHELL) :].strip()
    if text.startswith("|"):  # a RUN with build arguments: "|2 A=1 B=2 /bin/sh -c ..."
        _, _, rest = text.partition(_SHELL)
        return "RUN " + rest.strip() if rest else text
    return text or "(imported root filesystem)"


def image_size(image: str, client: docker.DockerClient | None = None) -> int:
    """Bytes the image takes, all layers included (what ``docker images`` shows)."""
    own_client = client is None
    client = client or docker_client()
    try:
        return int(_get(image, client).attrs["Size"])
    finally:
        if own_client:
            client.close()


def image_layers(image: str, client: docker.DockerClient | None = None) -> list[Layer]:
    """The image's history, oldest first: one entry per instruction, with the bytes it added."""
    own_client = client is None
    client = client or docker_client()
    try:
        history = _get(image, client).history()
    finally:
        if own_client:
            client.close()
    return [
        Layer(_instruction(entry.get("CreatedBy", "")), int(entry.get("Size", 0)), entry["Created"])
        for entry in reversed(history)
    ]
