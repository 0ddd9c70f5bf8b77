"""The release on Kubernetes, classic form: the stable Deployment and a canary Deployment behind one
Service (deploy/k8s/overlays/canary), the split set by their pod counts.

- :func:`render_release` renders the overlay with the stable and candidate images (and the facts the
  pipeline knows about each as annotations), in the config's namespace;
- :func:`apply_release` applies it (server-side, strict) and waits until both tracks are Ready;
- promote = :func:`render_release` with the candidate as stable and no canary, applied, then the
  canary deleted; rollback = the canary deleted (:func:`remove_canary`), the stable untouched.
"""

from __future__ import annotations

import copy
from typing import Any

from shipml.cluster import render, shell, workflow
from shipml.cluster.kubectl import Kubectl
from shipml.errors import ShipmlError
from shipml.pipeline.config import PipelineConfig

STABLE = workflow.APP
CANARY = f"{workflow.APP}-canary"
ANNOTATION = "shipml.io/"


def cluster_kubectl(config: PipelineConfig) -> Kubectl:
    """kubectl for the config's cluster, bound to its namespace."""
    if config.cluster == "fake":
        from shipml.cluster.controlplane import running

        cluster = running()
        if cluster is None:
            raise ShipmlError("no fake-node cluster is running: `shipml cluster up --fake-nodes` "
                              "(or set cluster: kind / kubeconfig, or none to skip deploying)")
        return cluster.kubectl(config.namespace)
    if config.cluster == "kind":
        from shipml.cluster.kind import kind_context

        return Kubectl(context=config.context or kind_context(), namespace=config.namespace)
    if config.cluster == "kubeconfig":
        return Kubectl(config.kubeconfig, config.context, config.namespace)
    raise ShipmlError("cluster is 'none': nothing to deploy to")


def render_release(config: PipelineConfig, stable: dict[str, Any], canary: dict[str, Any] | None,
                   node_port: int | None = 30080) -> list[dict[str, Any]]:
    """The overlay's objects for ``stable`` (and ``canary``, or no canary Deployment), each a dict with
    ``image`` and the facts to annotate (version, bundle_sha256, image_id, run_id)."""
    docs = [copy.deepcopy(d) for d in render.render(config.overlay)]
    names = {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"}
    if names != {STABLE, CANARY}:
        raise ShipmlError(f"overlay {config.overlay} must hold the Deployments {STABLE} and {CANARY}, "
                          f"it holds {', '.join(sorted(names)) or 'none'}")
    out = []
    for doc in docs:
        meta = doc["metadata"]
        if doc["kind"] == "Namespace":
            meta["name"] = config.namespace
        elif "namespace" in meta:
            meta["namespace"] = config.namespace
        if doc["kind"] == "Deployment":
            track = stable if meta["name"] == STABLE else canary
            if track is None:
                continue
            _set_track(doc, track)
            if meta["name"] == CANARY:
                doc["spec"]["replicas"] = config.canary_replicas
        if doc["kind"] == "Service":
            for port in doc["spec"].get("ports", []):
                if node_port is None:
                    port.pop("nodePort", None)
                elif "nodePort" in port:
                    port["nodePort"] = node_port
        out.append(doc)
    return out


def _set_track(doc: dict[str, Any], track: dict[str, Any]) -> None:
    pod = doc["spec"]["template"]
    container = next(c for c in pod["spec"]["containers"] if c["name"] == workflow.CONTAINER)
    container["image"] = track["image"]
    facts = {f"{ANNOTATION}{key.replace('_', '-')}": str(value) for key, value in track.items()
             if key != "image" and value is not None}
    doc["metadata"].setdefault("annotations", {}).update(facts)
    # on the pod template too: a new model with the same tag would still roll the pods
    pod.setdefault("metadata", {}).setdefault("annotations", {}).update(facts)


def apply_release(kubectl: Kubectl, docs: list[dict[str, Any]], timeout: int) -> dict[str, Any]:
    """Apply, remove a canary the manifests no longer hold, wait for every track to be Ready."""
    argv = kubectl.argv("apply", "--server-side", "--field-manager=shipml-pipeline", "--force-conflicts",
                        "--validate=strict", "-f", "-")
    done = shell.run(argv, input_text=render.to_yaml(docs), echo=False, timeout=timeout)
    deployments = [d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"]
    if CANARY not in deployments:
        remove_canary(kubectl)
    for name in deployments:
        workflow.wait_for_rollout(kubectl, timeout=timeout, deployment=name)
    if STABLE in deployments:
        workflow.wait_for_hpa_floor(kubectl, timeout=timeout)
    return {"applied": done.stdout.splitlines(), "tracks": tracks(kubectl)}


def tracks(kubectl: Kubectl) -> dict[str, dict[str, Any]]:
    """{deployment: {image, ready, desired, annotations}} of the tracks that exist now."""
    found = {}
    for name in (STABLE, CANARY):
        got = kubectl.run("get", f"deployment/{name}", "-o", "json", echo=False, check=False)
        if got.returncode != 0:
            continue
        import json

        dep = json.loads(got.stdout)
        container = next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == workflow.CONTAINER)
        found[name] = {"image": container["image"], "desired": dep["spec"].get("replicas", 0),
                       "ready": dep.get("status", {}).get("readyReplicas", 0),
                       "annotations": {k: v for k, v in (dep["metadata"].get("annotations") or {}).items()
                                       if k.startswith(ANNOTATION)}}
    return found


def canary_share(kubectl: Kubectl) -> float:
    """The canary's share of the Ready pods behind the Service: its share of new connections."""
    now = tracks(kubectl)
    stable, canary = now.get(STABLE, {}).get("ready", 0), now.get(CANARY, {}).get("ready", 0)
    return canary / (stable + canary) if stable + canary else 0.0


def remove_canary(kubectl: Kubectl) -> None:
    kubectl.run("delete", f"deployment/{CANARY}", "--ignore-not-found", "--wait=true", echo=False)


def remove_stable(kubectl: Kubectl) -> None:
    """A first release that failed: nothing was deployed before it, so nothing of it stays."""
    kubectl.run("delete", f"deployment/{STABLE}", "--ignore-not-found", "--wait=true", echo=False)
