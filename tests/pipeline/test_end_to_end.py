"""The whole pipeline against the kit's real control plane (fake nodes) and the real Docker engine:
a first good model released as stable, a worse one stopped at the gate, one that passes the gates but
fails the smoke test (rolled back: its canary deleted), and a good retrain promoted through the canary
— run stage by stage through the CLI, as the workflow does. After each failure the deployed version
(state file and cluster) is exactly what it was. The tests run in order and share one release."""

from __future__ import annotations

import json

import pytest
from shipml.cli import main
from shipml.errors import ShipmlError
from shipml.pipeline.config import PipelineConfig
from shipml.pipeline.record import RunRecord, latest_run
from shipml.pipeline.release import CANARY, STABLE, tracks
from shipml.pipeline.run import run_pipeline
from shipml.pipeline.state import load_state

pytestmark = [pytest.mark.controlplane, pytest.mark.docker, pytest.mark.slow]

NAMESPACE = "shipml-pipeline-test"


@pytest.fixture(scope="module")
def release(fake_cluster, docker_ready, small, tmp_path_factory):
    """settings(**more) for a workdir and a namespace of this module on the session's control plane."""
    workdir = tmp_path_factory.mktemp("pipeline")
    kubectl = fake_cluster.kubectl(NAMESPACE)

    def settings(**more):
        return small(workdir, cluster="kubeconfig", kubeconfig=str(fake_cluster.kubeconfig),
                     context=fake_cluster.context, namespace=NAMESPACE, node_port=None, **more)

    settings.workdir, settings.kubectl = workdir, kubectl
    yield settings
    kubectl.run("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false", namespaced=False,
                check=False, echo=False)


def deployed_now(release):
    return load_state(release.workdir / "deployed.json"), tracks(release.kubectl)


def test_1_first_good_model_becomes_the_stable_version(release):
    record = run_pipeline(PipelineConfig.load(None, **release()))
    assert record.status == "promoted", record.summary()
    assert [s.name for s in record.stages] == ["train", "evaluate", "export", "build", "validate", "deploy",
                                               "smoke", "canary", "promote"]
    assert record.stage("canary").status == "skipped"  # nothing to compare with yet
    state, now = deployed_now(release)
    assert state.version == 1 and state.image == record.candidate.image
    assert state.image_id == record.candidate.image_id and state.image_id.startswith("sha256:")
    assert set(now) == {STABLE} and now[STABLE]["image"] == state.image and now[STABLE]["ready"] == 3
    assert now[STABLE]["annotations"]["shipml.io/bundle-sha256"] == state.bundle_sha256
    smoke = record.stage("smoke").detail
    assert smoke["image"]["requests"] == 12 and smoke["image"]["max_probability_diff"] <= 1e-5
    assert record.candidate.image.startswith(f"shipml-serving:dev-pipeline-test-{record.commit[:12]}-v1-")


def test_2_a_worse_model_is_stopped_at_the_gate_and_nothing_changes(release, capsys):
    before = deployed_now(release)
    sets = [f"--set={k}={json.dumps(v)}" for k, v in release(label_shuffle=1.0).items()]
    assert main(["pipeline", "run", *sets]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("shipml: error: evaluate: gate roc_auc")
    record = RunRecord.load(latest_run(release.workdir / "runs"))
    assert (record.status, record.stopped_at) == ("stopped", "evaluate")
    assert [s.name for s in record.stages] == ["train", "evaluate"]
    assert deployed_now(release) == before


def test_3_a_model_passing_the_gates_but_failing_the_smoke_test_is_rolled_back(release):
    before = deployed_now(release)
    # a decision threshold of 1e-6 flags every payment: ranking and calibration (the gates) are unchanged
    config = PipelineConfig.load(None, **release(decision_threshold=1e-6))
    with pytest.raises(ShipmlError, match=r"^smoke: known answer wrong: a legit case was labelled 1"):
        run_pipeline(config)
    record = RunRecord.load(latest_run(release.workdir / "runs"))
    assert (record.status, record.stopped_at) == ("rolled_back", "smoke")
    assert record.passed("evaluate") and record.passed("deploy")
    assert record.stage("deploy").detail["tracks"][CANARY]["image"] == record.candidate.image  # it was out
    assert record.stage("rollback").status == "passed"
    assert deployed_now(release) == before  # canary gone, stable and state file unchanged


def test_4_a_good_retrain_goes_through_the_canary_stage_by_stage_and_is_promoted(release, capsys):
    sets = [f"--set={k}={json.dumps(v)}" for k, v in release(rows=24_000).items()]
    for stage in ("train", "evaluate", "export", "build", "validate", "deploy"):
        assert main(["pipeline", stage, *sets]) == 0, capsys.readouterr().err
    now = tracks(release.kubectl)
    assert now[CANARY]["ready"] == 1 and now[STABLE]["ready"] == 3  # split by replicas: 1 of 4 pods
    for stage in ("smoke", "canary", "promote"):
        assert main(["pipeline", stage, *sets]) == 0, capsys.readouterr().err
    record = RunRecord.load(latest_run(release.workdir / "runs"))
    assert record.status == "promoted", record.summary()
    canary = record.stage("canary").detail
    assert canary["verdict"]["decision"] == "promote" and canary["share"] == 0.25
    assert canary["requests"]["candidate"] >= 60
    state, now = deployed_now(release)
    assert state.version == 2 and state.image == record.candidate.image
    assert set(now) == {STABLE} and now[STABLE]["image"] == record.candidate.image
    assert now[STABLE]["annotations"]["shipml.io/image-id"] == record.candidate.image_id
