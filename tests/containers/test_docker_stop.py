"""A measured lesson: Python as PID 1 ignores SIGTERM, so `docker stop` waits for its timeout.

The kernel delivers no signal to a namespace's PID 1 unless that process installed a handler, and
Python installs none for SIGTERM. An init (``docker run --init``, tini) forwards the signal.
"""

from __future__ import annotations

import pytest
from shipml.containers import run_container

pytestmark = pytest.mark.docker

SLEEPER = ["python", "-c", "import time; time.sleep(600)"]
STOP_TIMEOUT = 4  # seconds `docker stop` waits before SIGKILL


def _stop_seconds(base_image: str, labels: dict[str, str], *, init: bool) -> tuple[float, int]:
    with run_container(base_image, SLEEPER, init=init, labels=labels) as running:
        assert running.status() == "running"
        seconds = running.stop(timeout=STOP_TIMEOUT)
        running.container.reload()
        return seconds, running.container.attrs["State"]["ExitCode"]


def test_with_an_init_docker_stop_takes_under_two_seconds(base_image, session_labels):
    seconds, exit_code = _stop_seconds(base_image, session_labels, init=True)
    assert seconds < 2, f"docker stop took {seconds:.2f}s with an init"
    assert exit_code == 143  # 128 + SIGTERM: the program ended on the forwarded signal


def test_python_as_pid_1_ignores_sigterm_and_is_killed_after_the_timeout(base_image, session_labels):
    seconds, exit_code = _stop_seconds(base_image, session_labels, init=False)
    assert seconds >= STOP_TIMEOUT - 0.1, f"docker stop took only {seconds:.2f}s without an init"
    assert exit_code == 137  # 128 + SIGKILL: SIGTERM was ignored, the engine had to kill it
