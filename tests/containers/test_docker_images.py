"""The kit's images (deploy/docker/): built, run, queried and stopped for real.

Predictions from a container must equal in-process predictions for the same rows; the containers
run as uid 10001, stop in under 2 s with their own init (tini), and fit their size targets. The
default serving target serves ONNX bundles without scikit-learn; ``serving-sklearn`` serves the
scikit-learn bundles they were exported from.
"""

from __future__ import annotations

import json
import shutil

import httpx
import numpy as np
import pytest
from shipml.containers import image_layers, image_size, run_container
from shipml.predictor import load_predictor

pytestmark = [pytest.mark.docker, pytest.mark.slow]

SERVING_PORT = 8080
EDGE_PORT = 8080
SERVING_TARGET_BYTES = 300_000_000
# The scikit-learn target measures ~370 MB (python:3.11-slim ~120 MB, then numpy, scipy,
# scikit-learn and pandas ~250 MB even trimmed): a regression guard, not a target.
SKLEARN_BUDGET_BYTES = 385_000_000
EDGE_TARGET_BYTES = 200_000_000
TRAINING_STACK = ("sklearn", "pandas", "scipy", "joblib", "pyarrow")


def _records(df, predictor, n: int = 40) -> list[dict]:
    """The first ``n`` rows as JSON records of the model's features (what a client would send)."""
    return json.loads(df[predictor.schema.names].head(n).to_json(orient="records"))


def _columns(records: list[dict]) -> dict[str, list]:
    return {key: [record[key] for record in records] for key in records[0]}


def test_serving_image_runs_as_uid_10001_with_tini_and_a_healthcheck(client, serving_image):
    config = client.images.get(serving_image).attrs["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"][0] == "/usr/bin/tini"
    assert "/v2/health/ready" in " ".join(config["Healthcheck"]["Test"])
    assert f"{SERVING_PORT}/tcp" in config["ExposedPorts"]


def _served_probabilities(api, name: str, records: list[dict]) -> np.ndarray:
    answer = httpx.post(api.url("/predict/batch"), params={"model": name}, json={"records": records}, timeout=30)
    assert answer.status_code == 200, answer.text
    return np.array([row["probabilities"]["fraud"] for row in answer.json()["predictions"]])


def _probe_modules(image: str, labels: dict[str, str], modules) -> list[str]:
    """The modules of ``modules`` that the image's Python can import."""
    script = f"import importlib.util as u; print([m for m in {tuple(modules)!r} if u.find_spec(m)])"
    with run_container(image, ["python", "-c", script], labels=labels) as probe:
        assert probe.container.wait(timeout=60)["StatusCode"] == 0, probe.logs()
        return json.loads(probe.logs().strip().splitlines()[-1].replace("'", '"'))


def _served_and_in_process(image, repository, backend: str, df, labels) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each model of the image's repository: what the running container (as uid 10001) answers for the
    first rows of ``df``, and what the same bundle predicts in this process."""
    pairs = []
    with run_container(image, ports=[SERVING_PORT], init=False, labels=labels) as api:
        api.wait_until_ready("/v2/health/ready", timeout=120)
        assert api.container.exec_run("id -u").output.decode().strip() == "10001"
        for name in ("fraud-lr", "fraud-hgb"):
            predictor = load_predictor(repository / name / "1")
            assert predictor.backend == backend
            records = _records(df, predictor)
            pairs.append((_served_probabilities(api, name, records), predictor.predict_proba(_columns(records))[:, 1]))
    return pairs


def test_serving_container_predicts_like_the_onnx_model(serving_image, image_inputs, tiny_df, session_labels):
    for served, expected in _served_and_in_process(serving_image, image_inputs["onnx"], "onnx", tiny_df,
                                                   session_labels):
        # The same graph on the same onnxruntime build: equal, not merely close.
        np.testing.assert_array_equal(served, expected.astype(np.float64))


def test_serving_image_holds_onnxruntime_and_no_training_stack(serving_image, session_labels):
    found = _probe_modules(serving_image, session_labels, ("onnxruntime", "fastapi", "uvicorn") + TRAINING_STACK)
    assert found == ["onnxruntime", "fastapi", "uvicorn"]


def test_serving_sklearn_container_predicts_like_the_model_in_process(
    serving_sklearn_image, image_inputs, tiny_df, session_labels
):
    for served, expected in _served_and_in_process(serving_sklearn_image, image_inputs["repository"], "sklearn",
                                                   tiny_df, session_labels):
        np.testing.assert_allclose(served, expected, rtol=0, atol=1e-12)


def test_serving_sklearn_image_stays_within_its_budget(serving_sklearn_image):
    assert image_size(serving_sklearn_image) <= SKLEARN_BUDGET_BYTES


def test_serving_container_turns_healthy_and_stops_in_under_two_seconds(serving_image, session_labels):
    with run_container(serving_image, init=False, labels=session_labels) as api:
        assert 0 < api.wait_until_ready(timeout=120) < 120  # Docker's HEALTHCHECK says healthy
        seconds = api.stop(timeout=10)
        assert seconds < 2, f"docker stop took {seconds:.2f}s"


def test_serving_container_runs_with_a_read_only_root_filesystem(serving_image, session_labels):
    with run_container(
        serving_image,
        ports=[SERVING_PORT],
        init=False,
        read_only=True,
        tmpfs={"/tmp": "rw,size=64m"},
        labels=session_labels,
    ) as api:
        api.wait_until_ready("/v2/health/ready", timeout=120)
        assert api.container.exec_run("touch /opt/venv/x").exit_code != 0


def test_a_mounted_model_repository_replaces_the_baked_in_one(serving_image, image_inputs, tmp_path, session_labels):
    mounted = tmp_path / "models"
    shutil.copytree(image_inputs["onnx"] / "fraud-lr" / "1", mounted / "only-this" / "3")
    for folder in (mounted, mounted / "only-this", mounted / "only-this" / "3"):
        folder.chmod(0o755)  # readable by the image's uid 10001 (a mount keeps the host's modes)
    with run_container(
        serving_image,
        ports=[SERVING_PORT],
        init=False,
        labels=session_labels,
        volumes={str(mounted): {"bind": "/models", "mode": "ro"}},
    ) as api:
        api.wait_until_ready("/v2/health/ready", timeout=120)
        assert httpx.get(api.url("/v2/models/only-this")).status_code == 200
        assert httpx.get(api.url("/v2/models/fraud-hgb")).status_code == 404


def test_serving_image_meets_the_300_mb_target(serving_image):
    assert image_size(serving_image) <= SERVING_TARGET_BYTES


def test_serving_image_code_sits_above_dependencies(serving_image):
    # The last three copies: dependencies (big, rarely change), the kit's code, the models (change
    # most). In that order an edit to the code or a new model reuses the big layer from the cache.
    copies = [layer.size_bytes for layer in image_layers(serving_image) if layer.instruction.startswith("COPY")]
    dependencies, code, models = copies[-3:]
    assert dependencies == max(copies) > 50_000_000
    assert code < 5_000_000 and models < 5_000_000


def test_edge_image_fits_its_target_and_holds_no_training_stack(edge_image, session_labels):
    size = image_size(edge_image)
    print(f"edge image: {size / 1e6:.1f} MB (target {EDGE_TARGET_BYTES / 1e6:.0f} MB)")
    assert size <= EDGE_TARGET_BYTES
    found = _probe_modules(edge_image, session_labels, ("onnxruntime", "fastapi") + TRAINING_STACK)
    assert found == ["onnxruntime"]


def test_edge_container_answers_on_a_small_device_like_in_process(edge_image, image_inputs, tiny_df, session_labels):
    predictor = load_predictor(image_inputs["edge"])
    records = _records(tiny_df, predictor, n=20)
    with run_container(
        edge_image,
        ports=[EDGE_PORT],
        init=False,
        nano_cpus=500_000_000,
        mem_limit="256m",
        labels=session_labels,
    ) as device:
        device.wait_until_ready("/health", timeout=60)
        assert device.container.exec_run("id -u").output.decode().strip() == "10001"
        answer = httpx.post(device.url("/predict"), json={"instances": records}, timeout=30)
        assert answer.status_code == 200, answer.text
        served = np.array([row["probabilities"]["fraud"] for row in answer.json()["predictions"]])
        expected = predictor.predict_proba(_columns(records))[:, 1]
        np.testing.assert_allclose(served, expected, rtol=0, atol=1e-6)
        assert device.memory_bytes() < 256 * 2**20
        assert device.stop(timeout=10) < 2
