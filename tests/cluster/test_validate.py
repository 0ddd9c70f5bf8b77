"""Validation without a cluster: the overlays pass, the seed and every corpus file fail with
the expected one-line messages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from shipml.cli import main
from shipml.cluster import policy, render, validate_path
from shipml.errors import ShipmlError

CORPUS = sorted((Path(__file__).parent / "corpus").glob("*.yaml"))


def expected_messages(path: Path) -> list[str]:
    return [line.split("# expect: ", 1)[1].strip()
            for line in path.read_text().splitlines() if line.startswith("# expect: ")]


def test_corpus_is_not_empty():
    assert len(CORPUS) >= 15
    assert all(expected_messages(path) for path in CORPUS), "every corpus file states what it expects"


@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_corpus_file_is_rejected_with_the_expected_message(path):
    problems = [str(p) for p in validate_path(path)]
    expected = expected_messages(path)
    assert len(problems) == len(expected), problems
    for message in expected:
        assert any(message in problem for problem in problems), (message, problems)
    assert all("\n" not in problem for problem in problems), "messages are one line"


@pytest.mark.parametrize("overlay", ["canary", "kind", "prod", "realnode"])
def test_overlay_passes_strict_schema_and_policy(overlay):
    assert render.overlay_names() == ["canary", "kind", "prod", "realnode"]
    assert validate_path(overlay) == []


def test_base_passes_too():
    assert validate_path(render.k8s_dir() / "base") == []


def test_seed_manifests_are_rejected_for_what_they_miss():
    problems = " | ".join(str(p) for p in validate_path(render.k8s_dir() / "seed"))
    for missing in ("no readinessProbe", "no livenessProbe", "sets no resources", "may run as root",
                    "uses :latest"):
        assert missing in problems


def deployment(docs):
    return next(d for d in docs if d["kind"] == "Deployment")


def test_kind_overlay_matches_the_lesson():
    docs = render.render("kind")
    dep = deployment(docs)
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert "replicas" not in dep["spec"]  # the HPA owns the count
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert re.fullmatch(r"shipml-serving:\d+\.\d+\.\d+", container["image"])
    assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert {m["mountPath"] for m in container["volumeMounts"]} == {"/tmp", "/etc/shipml/api-keys"}
    kinds = sorted(d["kind"] for d in docs)
    assert kinds == ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Namespace", "NetworkPolicy",
                     "NetworkPolicy", "PodDisruptionBudget", "Secret", "Service"]
    hpa = next(d for d in docs if d["kind"] == "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    secret = next(d for d in docs if d["kind"] == "Secret")
    env = {e["name"]: e for e in container["env"]}  # the key is a mounted file, not an env value
    assert env["SHIPML_API_KEY_FILE"]["value"] == "/etc/shipml/api-keys/api-key" and "SHIPML_API_KEY" not in env
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    assert volumes["api-keys"]["secret"]["secretName"] == secret["metadata"]["name"]
    assert hpa["spec"]["minReplicas"] == 3


@pytest.mark.parametrize("overlay", ["canary", "kind", "prod", "realnode"])
def test_configmap_name_carries_a_content_hash_the_deployment_follows(overlay):
    docs = render.render(overlay)
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    assert re.fullmatch(r"shipml-serving-config-[a-z0-9]{10}", config["metadata"]["name"])
    container = deployment(docs)["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]


def test_a_setting_change_changes_the_pod_template(tmp_path):
    """So a config change rolls the pods: the prod overlay's merged setting gives another name."""
    names = {overlay: next(d for d in render.render(overlay) if d["kind"] == "ConfigMap")["metadata"]["name"]
             for overlay in ("kind", "prod")}
    assert names["kind"] != names["prod"]
    prod = next(d for d in render.render("prod") if d["kind"] == "ConfigMap")
    assert prod["data"]["SHIPML_LOG_LEVEL"] == "warning" and prod["data"]["SHIPML_MAX_BATCH_ROWS"] == "10000"


def test_no_manifest_sets_replicas_where_an_hpa_owns_the_count():
    for overlay in render.overlay_names():
        docs = render.render(overlay)
        targets = {d["spec"]["scaleTargetRef"]["name"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"}
        for dep in docs:
            if dep["kind"] == "Deployment" and dep["metadata"]["name"] in targets:
                assert "replicas" not in dep["spec"], overlay


def test_realnode_overlay_tolerates_the_taint_and_selects_the_node():
    spec = deployment(render.render("realnode"))["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"shipml.io/node": "real"}
    assert spec["tolerations"][0]["key"] == "shipml.io/real-node"
    kind_spec = deployment(render.render("kind"))["spec"]["template"]["spec"]
    assert "nodeSelector" not in kind_spec and "tolerations" not in kind_spec


def test_kind_nodeport_is_the_port_the_kind_config_maps_to_localhost():
    service = next(d for d in render.render("kind") if d["kind"] == "Service")
    config = yaml.safe_load((render.k8s_dir().parent / "kind" / "kind-config.yaml").read_text())
    mappings = config["nodes"][0]["extraPortMappings"]
    assert service["spec"]["type"] == "NodePort"
    assert [m["containerPort"] for m in mappings] == [service["spec"]["ports"][0]["nodePort"]]
    assert mappings[0]["listenAddress"] == "127.0.0.1"


def test_prod_overlay_has_more_replicas_and_larger_limits_than_kind():
    def hpa(overlay):
        return next(d for d in render.render(overlay) if d["kind"] == "HorizontalPodAutoscaler")["spec"]

    kind, prod = deployment(render.render("kind")), deployment(render.render("prod"))
    assert hpa("prod")["minReplicas"] > hpa("kind")["minReplicas"]
    limits = [d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] for d in (kind, prod)]
    assert limits[0] != limits[1]
    service = next(d for d in render.render("prod") if d["kind"] == "Service")
    assert service["spec"]["type"] == "LoadBalancer"


def test_selector_expressions_are_evaluated():
    labels = {"app": "a", "tier": "web"}
    assert policy.selector_matches({"matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["web"]},
        {"key": "debug", "operator": "DoesNotExist"}]}, labels)
    assert not policy.selector_matches({"matchExpressions": [
        {"key": "tier", "operator": "NotIn", "values": ["web"]}]}, labels)
    assert not policy.selector_matches({"matchLabels": {"app": "b"}}, labels)


def test_image_digest_counts_as_pinned():
    assert policy.image_tag_problem("shipml-serving@sha256:" + "0" * 64) is None
    assert "no tag" in policy.image_tag_problem("localhost:5000/shipml-serving")


def test_unknown_overlay_is_a_clear_error():
    with pytest.raises(ShipmlError, match="overlays: canary, kind, prod, realnode"):
        render.resolve("staging")


def test_cli_validate_exit_codes(capsys):
    assert main(["cluster", "validate"]) == 0
    assert "kind: ok" in capsys.readouterr().out
    assert main(["cluster", "validate", str(render.k8s_dir() / "seed")]) == 1
    captured = capsys.readouterr()
    assert "uses :latest" in captured.out
    assert "shipml: error: 8 problem(s) found" in captured.err
