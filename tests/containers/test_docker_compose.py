"""docker-compose.yml, for real, with both implementations: Debian's docker-compose 1.29 and the
Compose v2 CLI plugin (``docker compose``, installed by .ci/setup.d/25-compose-v2.sh).

The stack runs the images this session built (``SHIPML_SERVING_IMAGE`` / ``SHIPML_BATCH_IMAGE``,
``--no-build``): building them again through compose would only repeat the cached build.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from shipml.errors import ShipmlError
from shipml.predictor import load_predictor
from shipml.waiting import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"


def _v1() -> tuple[list[str] | None, str]:
    path = shutil.which("docker-compose")
    if path is None:
        return None, "docker-compose (1.29, Debian's package) is not installed: `apt-get install docker-compose`"
    return [path], ""


def _v2() -> tuple[list[str] | None, str]:
    docker = shutil.which("docker")
    if docker is None:
        return None, "no docker CLI on PATH"
    probe = subprocess.run([docker, "compose", "version", "--short"], capture_output=True, text=True, check=False)
    if probe.returncode != 0:
        return None, (
            "the Compose v2 CLI plugin is not installed (`docker compose` fails: "
            f"{(probe.stderr or probe.stdout).strip().splitlines()[-1:] or ['no output']}); "
            "run `bash .ci/setup.d/25-compose-v2.sh` to build it from the Go module proxy"
        )
    return [docker, "compose"], ""


IMPLEMENTATIONS = {"v1": _v1, "v2": _v2}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def compose(request) -> list[str]:
    command, reason = IMPLEMENTATIONS[request.param]()
    if command is None:
        pytest.skip(reason)
    return command


class Stack:
    """One compose project: unique name, its own variables, always taken down."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self.command = command
        self.project = f"shipmltest{uuid.uuid4().hex[:12]}"
        self.env = {**os.environ, **env}

    def run(self, *args: str, timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess:
        done = subprocess.run(
            [*self.command, "-f", str(COMPOSE_FILE), "-p", self.project, *args],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{' '.join(self.command)} {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def down(self) -> None:
        self.run("--profile", "batch", "down", "--volumes", "--remove-orphans", "--timeout", "5", check=False)


def _wait_healthy(client, container_id: str, timeout: float = 120) -> float:
    started = time.monotonic()

    def healthy() -> bool:
        container = client.containers.get(container_id)
        state = container.attrs["State"]
        health = (state.get("Health") or {}).get("Status")
        if health == "unhealthy" or state["Status"] in ("exited", "dead"):
            raise ShipmlError(f"api turned {health or state['Status']}: {container.logs(tail=20).decode()}")
        return health == "healthy"

    wait_until(healthy, timeout, interval=0.25, what="the compose stack's api")
    return time.monotonic() - started


def test_the_compose_file_asks_for_what_the_issue_lists():
    spec = yaml.safe_load(COMPOSE_FILE.read_text())
    assert "version" not in spec  # the Compose Specification: both implementations read it
    api, batch = spec["services"]["api"], spec["services"]["batch"]
    assert api["build"]["target"] == "serving" and batch["build"]["target"] == "batch"
    assert all(port.startswith("127.0.0.1:") for port in api["ports"])
    assert api["healthcheck"]["test"][0] == "CMD" and api["restart"] == "unless-stopped"
    assert api["read_only"] is True and any(t.startswith("/tmp") for t in api["tmpfs"])
    assert api["cpus"] and api["mem_limit"]
    assert batch["profiles"] == ["batch"] and batch["read_only"] is True


@pytest.mark.parametrize("implementation", sorted(IMPLEMENTATIONS))
def test_both_implementations_accept_the_compose_file(implementation):
    command, reason = IMPLEMENTATIONS[implementation]()
    if command is None:
        pytest.skip(reason)
    done = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), "--profile", "batch", "config", "--services"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    services = set(done.stdout.split())
    # v2 lists the services of the active profiles only; 1.29 lists every service whatever the profile
    expected = {"api", "batch"} if implementation == "v2" else {"api", "batch", "prometheus"}
    assert services == expected, services


@pytest.mark.docker
@pytest.mark.slow
def test_compose_up_turns_healthy_predicts_and_comes_down(
    compose, client, serving_image, image_inputs, tiny_df, free_port
):
    stack = Stack(compose, {"SHIPML_SERVING_IMAGE": serving_image, "SHIPML_API_PORT": str(free_port)})
    try:
        stack.run("up", "-d", "--no-build", "api")
        container_id = stack.run("ps", "-q", "api").stdout.strip()
        assert container_id, "compose started no api container"
        seconds = _wait_healthy(client, container_id)
        print(f"{' '.join(compose)}: up to healthy in {seconds:.1f}s")
        container = client.containers.get(container_id)
        host = container.attrs["HostConfig"]
        assert host["ReadonlyRootfs"] is True and host["RestartPolicy"]["Name"] == "unless-stopped"
        assert host["NanoCpus"] == 1_000_000_000 and host["Memory"] == 512 * 2**20
        assert {b["HostIp"] for b in container.attrs["NetworkSettings"]["Ports"]["8080/tcp"]} == {"127.0.0.1"}

        predictor = load_predictor(image_inputs["onnx"] / "fraud-hgb" / "1")
        frame = tiny_df[predictor.schema.names].head(25)
        records = frame.to_dict(orient="records")
        answer = httpx.post(
            f"http://127.0.0.1:{free_port}/predict/batch", params={"model": "fraud-hgb"},
            json={"records": [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()} for r in records]},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        served = np.array([row["probabilities"]["fraud"] for row in answer.json()["predictions"]])
        expected = predictor.predict_proba({c: frame[c].to_numpy() for c in frame.columns})[:, 1]
        np.testing.assert_array_equal(served, expected.astype(np.float64))
    finally:
        stack.down()
    assert not stack.run("ps", "-q").stdout.strip(), "compose down left containers"


@pytest.mark.docker
@pytest.mark.slow
def test_the_batch_profile_scores_a_mounted_file_into_a_mounted_folder(
    compose, batch_image, image_inputs, tiny_df, tmp_path
):
    import pandas as pd

    inbox, outbox = tmp_path / "in", tmp_path / "out"
    inbox.mkdir()
    outbox.mkdir()
    rows = tiny_df.head(1_000)
    rows.to_csv(inbox / "transactions.csv", index=False)
    inbox.chmod(0o755)
    (inbox / "transactions.csv").chmod(0o644)
    stack = Stack(compose, {
        "SHIPML_BATCH_IMAGE": batch_image,
        "SHIPML_BATCH_IN": str(inbox),
        "SHIPML_BATCH_OUT": str(outbox),
        "SHIPML_UID": str(os.getuid()),
        "SHIPML_GID": str(os.getgid()),
    })
    try:
        done = stack.run("--profile", "batch", "run", "--rm", "--no-deps", "-T", "batch", timeout=300)
    finally:
        stack.down()
    scores = pd.read_parquet(outbox / "scores.parquet")
    assert len(scores) == len(rows), done.stdout
    # The image scored with the baked-in scikit-learn bundle; the test's copy gives the same numbers.
    predictor = load_predictor(image_inputs["repository"] / "fraud-lr" / "1")
    expected = pd.Series(predictor.predict_proba(rows[predictor.schema.names])[:, 1], index=rows["id"])
    served = scores.set_index("id")["probability"]
    np.testing.assert_allclose(served.to_numpy(), expected.loc[served.index].to_numpy(), rtol=0, atol=1e-12)


def test_compose_v2_is_a_docker_cli_plugin_when_installed():
    command, reason = _v2()
    if command is None:
        pytest.skip(reason)
    done = subprocess.run([*command, "version", "--short"], capture_output=True, text=True, check=True)
    assert done.stdout.strip().lstrip("v").startswith("2.")
