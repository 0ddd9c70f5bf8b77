"""run_container / build_image: free loopback ports, readiness, logs, and cleanup on every path."""

from __future__ import annotations

import time

import httpx
import pytest
from docker.errors import ImageNotFound, NotFound
from shipml.containers import (
    BuildError,
    build_image,
    image_layers,
    image_size,
    measure_time_to_ready,
    remove_image,
    run_container,
    temporary_image,
)
from shipml.errors import ShipmlError

pytestmark = pytest.mark.docker

HTTP_SERVER = ["python", "-m", "http.server", "8000", "--bind", "0.0.0.0"]
SLEEPER = ["python", "-c", "import time; time.sleep(600)"]
SECOND = 1_000_000_000  # the engine counts healthcheck intervals in nanoseconds


def test_a_container_gets_a_free_loopback_port_and_answers_when_ready(base_image, session_labels):
    with (
        run_container(base_image, HTTP_SERVER, ports=[8000], labels=session_labels) as first,
        run_container(base_image, HTTP_SERVER, ports=[8000], labels=session_labels) as second,
    ):
        assert first.host_port() != second.host_port()  # the engine picked two free ports
        for running in (first, second):
            binding = running.container.attrs["NetworkSettings"]["Ports"]["8000/tcp"]
            assert {entry["HostIp"] for entry in binding} == {"127.0.0.1"}  # not on 0.0.0.0
            seconds = running.wait_until_ready("/", timeout=30)
            assert 0 < seconds < 30
            assert httpx.get(running.url("/")).status_code == 200
        assert "GET / HTTP" in first.logs()


def test_the_container_is_removed_when_the_block_raises(client, base_image, session_labels):
    with (
        pytest.raises(RuntimeError, match="a step failed"),
        run_container(base_image, SLEEPER, labels=session_labels) as running,
    ):
        container_id = running.container.id
        assert running.status() == "running"
        raise RuntimeError("a step failed")
    with pytest.raises(NotFound):
        client.containers.get(container_id)


def test_waiting_fails_fast_with_the_log_when_the_program_dies(client, base_image, session_labels):
    crash = ["python", "-c", "import sys; print('model file not found', flush=True); sys.exit(3)"]
    started = time.perf_counter()
    with (
        pytest.raises(ShipmlError, match=r"exit code 3.*model file not found"),
        run_container(base_image, crash, ports=[8000], labels=session_labels) as running,
    ):
        container_id = running.container.id
        running.wait_until_ready("/", timeout=60)
    assert time.perf_counter() - started < 15  # did not sit out the 60 s timeout
    with pytest.raises(NotFound):
        client.containers.get(container_id)


def test_waiting_gives_up_after_the_timeout(base_image, session_labels):
    with run_container(base_image, SLEEPER, ports=[8000], labels=session_labels) as running:
        started = time.perf_counter()
        with pytest.raises(ShipmlError, match="not ready after 1 s"):
            running.wait_until_ready("/", timeout=1)
        assert 1 <= time.perf_counter() - started < 6


def test_waiting_on_a_healthcheck_until_healthy_or_unhealthy(base_image, session_labels):
    def check(ok: str) -> dict:
        test = ["CMD", "python", "-c", f"import sys; sys.exit(0 if {ok} else 1)"]
        return {"test": test, "interval": SECOND // 5, "timeout": 2 * SECOND, "retries": 2}

    with run_container(base_image, SLEEPER, healthcheck=check("True"), labels=session_labels) as healthy:
        assert healthy.health() == "starting"
        assert 0 < healthy.wait_until_ready(timeout=30) < 30
        assert healthy.health() == "healthy"
    with (
        run_container(base_image, SLEEPER, healthcheck=check("False"), labels=session_labels) as sick,
        pytest.raises(ShipmlError, match="unhealthy"),
    ):
        sick.wait_until_ready(timeout=30)


def test_waiting_without_healthcheck_or_path_says_what_to_pass(base_image, session_labels):
    with (
        run_container(base_image, SLEEPER, labels=session_labels) as running,
        pytest.raises(ShipmlError, match="no HEALTHCHECK"),
    ):
        running.wait_until_ready()


def test_an_unknown_image_is_a_clear_error_and_leaves_nothing(session_labels):
    with (
        pytest.raises(ShipmlError, match="not in the engine"),
        run_container("shipml-no-such-image:0", labels=session_labels),
    ):
        pass


def test_measure_time_to_ready_times_each_start(base_image, session_labels):
    times = measure_time_to_ready(
        base_image, "/", container_port=8000, command=HTTP_SERVER, repeats=2, labels=session_labels
    )
    assert len(times.seconds) == 2
    assert all(0 < s < 30 for s in times.seconds)
    assert min(times.seconds) <= times.median <= max(times.seconds)


def test_memory_of_a_running_container_is_reported(base_image, session_labels):
    with run_container(base_image, HTTP_SERVER, ports=[8000], labels=session_labels) as running:
        running.wait_until_ready("/", timeout=30)
        assert 1_000_000 < running.memory_bytes() < 500_000_000


def test_build_reuses_the_layer_cache_and_lists_layers(base_image, tmp_path, unique_tag):
    (tmp_path / "Dockerfile").write_text(
        f'FROM {base_image}\nRUN head -c 3000000 /dev/urandom > /blob\nCMD ["python", "-c", "print(1)"]\n'
    )
    try:
        first = build_image(tmp_path, unique_tag, progress="none")
        again = build_image(tmp_path, unique_tag, progress="lines")
        assert first.image_id == again.image_id
        assert first.cached_steps == 0
        assert again.cached_steps >= 2
        layers = image_layers(unique_tag)
        blob = next(layer for layer in layers if "/dev/urandom" in layer.instruction)
        assert blob.instruction.startswith("RUN ")
        assert 3_000_000 <= blob.size_bytes < 3_200_000
        assert any(layer.instruction.startswith("CMD") for layer in layers)
        assert image_size(unique_tag) == image_size(base_image) + sum(layer.size_bytes for layer in layers[-3:])
    finally:
        remove_image(unique_tag)


def test_a_failing_build_names_the_step_and_cleans_up(client, base_image, tmp_path, unique_tag):
    (tmp_path / "Dockerfile").write_text(f"FROM {base_image}\nRUN echo about to fail && exit 7\n")
    before = {c.id for c in client.containers.list(all=True)}
    with (
        pytest.raises(BuildError, match="step 2.*returned a non-zero code: 7") as caught,
        temporary_image(tmp_path, unique_tag, progress="none"),
    ):
        pass
    assert "about to fail" in "\n".join(caught.value.log)
    with pytest.raises(ImageNotFound):
        client.images.get(unique_tag)
    mine = [
        c
        for c in client.containers.list(all=True)
        if c.id not in before and c.image and c.image.id == client.images.get(base_image).id
    ]
    assert not mine  # forcerm: the failed step's container was removed
