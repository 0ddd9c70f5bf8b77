"""`shipml docker build`: two releases of the serving image that serve different models (v2 retrained on
more data), so the cluster's rolling update changes the model, not only the tag."""

from __future__ import annotations

import httpx
import pytest
from shipml.cli import main
from shipml.cluster.workflow import transactions
from shipml.containers import run_container
from shipml.containers.releases import RELEASES, build_releases, releases
from shipml.errors import ShipmlError


def test_the_two_releases_are_different_models():
    v1, v2 = releases()
    assert (v1.image, v2.image) == ("shipml-serving:0.1.0", "shipml-serving:0.2.0")
    assert (v1.model_version, v2.model_version) == (1, 2)
    assert v2.rows > v1.rows and v1.artifacts != v2.artifacts


def test_an_unknown_release_is_a_one_line_error(capsys):
    with pytest.raises(ShipmlError, match="known: 0.1.0, 0.2.0"):
        releases(["0.3.0"])
    assert main(["docker", "build", "--release", "9.9"]) == 1
    assert "unknown release(s) 9.9" in capsys.readouterr().err


@pytest.mark.docker
@pytest.mark.slow
def test_release_0_2_0_serves_model_version_2(engine, base_image, session_labels):
    built = build_releases(["0.2.0"], base_image=base_image, progress="none")
    assert built[0].release == RELEASES["0.2.0"]
    with run_container("shipml-serving:0.2.0", ports=[8080], labels=session_labels) as container:
        container.wait_until_ready("/v2/health/ready", timeout=90)
        url = f"http://127.0.0.1:{container.host_port()}"
        answer = httpx.post(f"{url}/predict", json=transactions(1)[0], timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["version"] == 2
        models = httpx.get(f"{url}/v2/models/fraud-lr", timeout=10).json()
        assert models["versions"] == ["2"]
