"""The rendered overlays keep the security properties issue 17 asks for (kustomize render, no cluster)."""

from __future__ import annotations

import re

import pytest
from shipml.cluster import render

OVERLAYS = ["kind", "prod"]


def _docs(overlay):
    return render.render(overlay)


def _pod_spec(docs):
    return next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_default_deny_both_directions_for_every_pod(overlay):
    policies = {d["metadata"]["name"]: d["spec"] for d in _docs(overlay) if d["kind"] == "NetworkPolicy"}
    deny = policies["default-deny-all"]
    assert deny["podSelector"] == {} and sorted(deny["policyTypes"]) == ["Egress", "Ingress"]
    assert "ingress" not in deny and "egress" not in deny


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_serving_pods_accept_only_their_port_and_call_nothing(overlay):
    docs = _docs(overlay)
    spec = next(d["spec"] for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "shipml-serving")
    labels = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert spec["podSelector"]["matchLabels"].items() <= labels.items()
    assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"] and spec["egress"] == []
    [rule] = spec["ingress"]
    container = _pod_spec(docs)["containers"][0]
    named = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert [(named.get(p["port"], p["port"]), p["protocol"]) for p in rule["ports"]] == [(8080, "TCP")]
    assert "from" not in rule  # any source, but only that port


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_token_and_the_api_key_is_a_mounted_file(overlay):
    pod = _pod_spec(_docs(overlay))
    assert pod["automountServiceAccountToken"] is False
    container = pod["containers"][0]
    assert not any("secretKeyRef" in (e.get("valueFrom") or {}) for e in container.get("env", []))
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["api-keys"]["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == "api-keys")
    assert volume["secret"]["secretName"].startswith("shipml-serving-api-key")


def test_prod_pulls_its_image_by_registry_and_digest():
    image = _pod_spec(_docs("prod"))["containers"][0]["image"]
    assert re.fullmatch(r"[a-z0-9.-]+\.[a-z]+/[a-z0-9/-]+@sha256:[0-9a-f]{64}", image), image
