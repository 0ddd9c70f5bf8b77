"""The canary release's manifests (deploy/k8s/overlays/canary through render_release): two tracks behind
one Service, split by pod counts, each track's facts as annotations, in the config's namespace."""

from __future__ import annotations

import pytest
from shipml.cluster import policy
from shipml.cluster.validate import check_docs
from shipml.errors import ShipmlError
from shipml.pipeline.config import PipelineConfig
from shipml.pipeline.release import CANARY, STABLE, render_release

STABLE_TRACK = {"image": "shipml-serving:abc-v1-11111111", "model_version": 1, "image_id": "sha256:" + "1" * 64}
CANARY_TRACK = {"image": "shipml-serving:abc-v2-22222222", "model_version": 2, "image_id": "sha256:" + "2" * 64}


def by_name(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_two_tracks_behind_one_service_split_by_replicas():
    config = PipelineConfig(namespace="team-a", canary_replicas=2)
    docs = render_release(config, STABLE_TRACK, CANARY_TRACK, node_port=None)
    assert check_docs(docs) == []  # strict schema and the kit's policy
    deployments, service = by_name(docs, "Deployment"), by_name(docs, "Service")["shipml-serving"]
    assert set(deployments) == {STABLE, CANARY}
    stable, canary = deployments[STABLE], deployments[CANARY]
    pods = {name: d["spec"]["template"]["metadata"]["labels"] for name, d in deployments.items()}
    assert pods[STABLE]["track"] == "stable" and pods[CANARY]["track"] == "canary"
    for name, labels in pods.items():  # the Service sends traffic to both tracks ...
        assert policy.selector_matches({"matchLabels": service["spec"]["selector"]}, labels), name
    # ... and neither Deployment adopts the other's pods
    assert not policy.selector_matches(stable["spec"]["selector"], pods[CANARY])
    assert not policy.selector_matches(canary["spec"]["selector"], pods[STABLE])
    assert canary["spec"]["replicas"] == 2 and "replicas" not in stable["spec"]  # the HPA owns the stable's
    assert by_name(docs, "HorizontalPodAutoscaler")["shipml-serving"]["spec"]["scaleTargetRef"]["name"] == STABLE
    image = {n: d["spec"]["template"]["spec"]["containers"][0]["image"] for n, d in deployments.items()}
    assert image == {STABLE: STABLE_TRACK["image"], CANARY: CANARY_TRACK["image"]}
    assert canary["spec"]["template"]["metadata"]["annotations"]["shipml.io/image-id"] == CANARY_TRACK["image_id"]
    assert all(d["metadata"].get("namespace") == "team-a" for d in docs if d["kind"] != "Namespace")
    assert by_name(docs, "Namespace") == {"team-a": by_name(docs, "Namespace")["team-a"]}
    assert "nodePort" not in service["spec"]["ports"][0]
    configs = {c["configMapRef"]["name"] for d in deployments.values()
               for c in d["spec"]["template"]["spec"]["containers"][0]["envFrom"]}
    assert configs == set(by_name(docs, "ConfigMap"))  # one ConfigMap, both tracks read it


def test_without_a_canary_only_the_stable_track_is_rendered():
    docs = render_release(PipelineConfig(), CANARY_TRACK, None)
    assert set(by_name(docs, "Deployment")) == {STABLE}
    assert by_name(docs, "Service")["shipml-serving"]["spec"]["ports"][0]["nodePort"] == 30080


def test_an_overlay_without_the_two_tracks_is_refused():
    with pytest.raises(ShipmlError, match="must hold the Deployments shipml-serving and shipml-serving-canary"):
        render_release(PipelineConfig(overlay="kind"), STABLE_TRACK, CANARY_TRACK)
