"""Running containers from Python: a free loopback port, waiting until ready, logs, sure cleanup.

Everything started here is stopped and removed when its ``with`` block ends, whatever happens
inside it, and carries the ``io.shipml.owner`` label so leftovers can be found
(:func:`leftover_containers`) after a crash of the Python process itself.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import docker
import httpx
from docker.errors import APIError, ImageNotFound, NotFound
from docker.models.containers import Container

from shipml.containers.engine import LABEL, docker_client
from shipml.errors import ShipmlError
from shipml.waiting import wait_until

LOOPBACK = "127.0.0.1"


@dataclass
class RunningContainer:
    """A container started by :func:`run_container`, with its published loopback ports."""

    container: Container
    ports: dict[int, int]  # container port -> host port on 127.0.0.1
    started_at: float  # time.perf_counter() just before the engine was asked to start it
    ready_after: float | None = None  # seconds from start to ready, once waited for
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.container.name

    def host_port(self, container_port: int | None = None) -> int:
        """The loopback port that reaches ``container_port`` (default: the only published one)."""
        if container_port is None:
            if len(self.ports) != 1:
                raise ShipmlError(f"{self.name} publishes {sorted(self.ports)}: say which port")
            return next(iter(self.ports.values()))
        try:
            return self.ports[container_port]
        except KeyError:
            raise ShipmlError(
                f"{self.name} does not publish port {container_port} (it publishes "
                f"{sorted(self.ports) or 'none'}): pass ports=[{container_port}]"
            ) from None

    def url(self, path: str = "/", container_port: int | None = None) -> str:
        """``http://127.0.0.1:<host port><path>`` for a published container port."""
        return f"http://{LOOPBACK}:{self.host_port(container_port)}/{path.lstrip('/')}"

    def status(self) -> str:
        """The engine's view: ``created``, ``running``, ``exited``, ..."""
        self.container.reload()
        return self.container.status

    def health(self) -> str | None:
        """The HEALTHCHECK status (``starting``, ``healthy``, ``unhealthy``) or None without one."""
        self.container.reload()
        return (self.container.attrs["State"].get("Health") or {}).get("Status")

    def logs(self, tail: int | str = 50) -> str:
        """The last ``tail`` lines of stdout and stderr (``"all"`` for everything)."""
        return self.container.logs(tail=tail).decode(errors="replace")

    def show_logs(self, tail: int | str = 50) -> None:
        """Print the last lines of the log, prefixed by the container's name."""
        for line in self.logs(tail).splitlines():
            print(f"[{self.name}] {line}")

    def memory_bytes(self) -> int:
        """Memory the container uses now, as the engine reports it (one stats sample)."""
        stats = self.container.stats(stream=False)
        return int(stats.get("memory_stats", {}).get("usage", 0))

    def wait_until_ready(
        self,
        path: str | None = None,
        *,
        container_port: int | None = None,
        timeout: float = 60.0,
        interval: float = 0.1,
    ) -> float:
        """Wait until ``GET path`` answers 200, or (without ``path``) the HEALTHCHECK says healthy.

        Returns the seconds from start to ready. Fails fast, with the log's last lines, when the
        container exits or turns unhealthy; fails after ``timeout`` seconds otherwise.
        """
        if path is None and self.health() is None:
            raise ShipmlError(
                f"{self.name} has no HEALTHCHECK: pass the readiness path to wait for, e.g. "
                "wait_until_ready('/v2/health/ready')"
            )
        url = self.url(path, container_port) if path is not None else None
        last = ["no answer yet"]
        with httpx.Client(timeout=min(2.0, timeout)) as http:

            def ready() -> bool:
                state = self.status()
                if state in ("exited", "dead"):
                    code = self.container.attrs["State"].get("ExitCode")
                    raise ShipmlError(
                        f"{self.name} stopped (exit code {code}) before it was ready; "
                        f"last log line: {self._last_log_line()}"
                    )
                if url is not None:
                    try:
                        answer = http.get(url)
                    except httpx.HTTPError as exc:
                        last[0] = type(exc).__name__
                        return False
                    last[0] = f"HTTP {answer.status_code}"
                    return answer.status_code == 200
                health = self.health()
                if health == "unhealthy":
                    raise ShipmlError(f"{self.name} is unhealthy; last log line: {self._last_log_line()}")
                last[0] = f"health {health}"
                return health == "healthy"

            wait_until(ready, timeout, interval=interval, what=self.name,
                       detail=lambda: f"{last[0]}; last log line: {self._last_log_line()}")
        self.ready_after = time.perf_counter() - self.started_at
        return self.ready_after

    def stop(self, timeout: int = 10) -> float:
        """``docker stop``: SIGTERM, then SIGKILL after ``timeout`` s; returns seconds taken."""
        started = time.perf_counter()
        self.container.stop(timeout=timeout)
        return time.perf_counter() - started

    def _last_log_line(self) -> str:
        lines = [line for line in self.logs(20).splitlines() if line.strip()]
        return lines[-1].strip() if lines else "(empty log)"


def _port_key(port: int | str) -> str:
    return str(port) if "/" in str(port) else f"{port}/tcp"


def _published_ports(container: Container, ports: Sequence[int | str]) -> dict[int, int]:
    """Read back the host ports the engine chose (it picks free ones; no race with other users)."""
    container.reload()
    bindings = container.attrs["NetworkSettings"]["Ports"] or {}
    published = {}
    for port in ports:
        entries = bindings.get(_port_key(port)) or []
        chosen = [e for e in entries if e.get("HostIp") in (LOOPBACK, "")] or entries
        if not chosen:
            raise ShipmlError(f"the engine did not publish port {port} of {container.name}")
        published[int(str(port).split("/")[0])] = int(chosen[0]["HostPort"])
    return published


def remove_container(container: Container) -> None:
    """Kill and remove a container and its anonymous volumes; quiet if it is already gone."""
    with contextlib.suppress(NotFound):
        container.remove(force=True, v=True)


@contextmanager
def run_container(
    image: str,
    command: str | Sequence[str] | None = None,
    *,
    ports: Sequence[int | str] = (),
    environment: Mapping[str, str] | None = None,
    init: bool = True,
    name: str | None = None,
    labels: Mapping[str, str] | None = None,
    client: docker.DockerClient | None = None,
    **options,
) -> Iterator[RunningContainer]:
    """Start ``image`` detached, publishing ``ports`` on free loopback ports; always clean up.

    ``init=True`` runs an init (tini) as PID 1 so SIGTERM reaches the program and ``docker stop``
    is quick. Other keyword ``options`` go to the SDK's ``containers.create`` (``user``,
    ``read_only``, ``mem_limit``, ``nano_cpus``, ``volumes``, ``healthcheck``, ...). When the block
    ends, by success or by an exception, the container is killed and removed.
    """
    own_client = client is None
    client = client or docker_client()
    container = None
    try:
        try:
            container = client.containers.create(
                image,
                command,
                detach=True,
                init=init,
                name=name,
                environment=dict(environment or {}),
                ports={_port_key(p): (LOOPBACK, None) for p in ports},
                labels={LABEL: "run", **(labels or {})},
                **options,
            )
        except ImageNotFound:
            raise ShipmlError(
                f"image {image} is not in the engine: build it first (no registry is used)"
            ) from None
        except APIError as exc:
            raise ShipmlError(
                f"cannot create a container from {image}: {exc.explanation}"
            ) from None
        started_at = time.perf_counter()
        try:
            container.start()
        except APIError as exc:
            raise ShipmlError(f"cannot start {container.name}: {exc.explanation}") from None
        yield RunningContainer(container, _published_ports(container, ports), started_at)
    finally:
        try:
            if container is not None:
                remove_container(container)
        finally:
            if own_client:
                client.close()


def leftover_containers(
    labels: Mapping[str, str] | None = None, client: docker.DockerClient | None = None
) -> list[Container]:
    """Containers (running or not) with the kit's label and ``labels``: none outside a block."""
    own_client = client is None
    client = client or docker_client()
    try:
        wanted = [LABEL] + [f"{key}={value}" for key, value in (labels or {}).items()]
        return client.containers.list(all=True, filters={"label": wanted})
    finally:
        if own_client:
            client.close()


@dataclass
class ReadyTimes:
    """Start-to-ready seconds over several runs (the figure to compare with a VM's boot time)."""

    image: str
    seconds: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def measure_time_to_ready(
    image: str,
    path: str | None = None,
    *,
    container_port: int | None = None,
    repeats: int = 3,
    timeout: float = 60.0,
    **run_options,
) -> ReadyTimes:
    """Start ``image`` ``repeats`` times; time each start until ready (HTTP 200 or healthy)."""
    if path is not None and container_port is not None:
        run_options.setdefault("ports", [container_port])
    seconds = []
    for _ in range(repeats):
        with run_container(image, **run_options) as running:
            seconds.append(
                running.wait_until_ready(path, container_port=container_port, timeout=timeout)
            )
    return ReadyTimes(image, seconds)
