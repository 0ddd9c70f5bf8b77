"""Reaching the Docker engine, with a reason a student can act on when it does not answer."""

from __future__ import annotations

import os
from dataclasses import dataclass

import docker
from docker.errors import DockerException

from shipml.errors import ShipmlError

# Every container the kit starts carries this label, so leftovers can be found and removed.
LABEL = "io.shipml.owner"
DEFAULT_TIMEOUT = 10


@dataclass(frozen=True)
class EngineStatus:
    """Whether a Docker engine answers; ``reason`` says why not (or which engine answered)."""

    ok: bool
    reason: str
    server_version: str | None = None
    api_version: str | None = None

    def __bool__(self) -> bool:
        return self.ok


def _engine_address() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def _explain(exc: Exception) -> str:
    """Turn the SDK's nested connection errors into one line that says what to do."""
    text = str(exc)
    address = _engine_address()
    if "FileNotFoundError" in text or "No such file" in text:
        why = "the socket does not exist (dockerd is not running)"
    elif "PermissionError" in text or "Permission denied" in text:
        why = "permission denied on the socket (join the 'docker' group, then log in again)"
    elif "Connection refused" in text:
        why = "connection refused (dockerd is not listening)"
    elif "timed out" in text.lower():
        why = "it did not answer in time"
    else:
        why = text.splitlines()[0] if text else type(exc).__name__
    return (
        f"no Docker engine answers at {address}: {why}; start one "
        "(Linux: `sudo dockerd` or `sudo systemctl start docker`; macOS/Windows: Docker Desktop)"
    )


def engine_available(timeout: float = DEFAULT_TIMEOUT) -> EngineStatus:
    """Ask the engine for its version; never raises, so tests and notebooks can decide to skip."""
    try:
        client = docker.from_env(timeout=timeout)
        try:
            version = client.version()
        finally:
            client.close()
    except (DockerException, OSError) as exc:
        return EngineStatus(False, _explain(exc))
    server = version.get("Version", "?")
    api = version.get("ApiVersion", "?")
    return EngineStatus(
        True, f"Docker engine {server} (API {api}) at {_engine_address()}", server, api
    )


def docker_client(timeout: float = 120) -> docker.DockerClient:
    """A client for the engine, or a :class:`ShipmlError` with the reason none answers."""
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
    except (DockerException, OSError) as exc:
        raise ShipmlError(_explain(exc)) from None
    return client
