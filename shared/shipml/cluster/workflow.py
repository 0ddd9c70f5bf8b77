"""The orchestration workflow on any cluster: apply, roll out, scale, self-heal, update, roll back.

Every step prints the kubectl command it runs (so students can type it themselves) and returns a
small record with the time it took. `kubectl` is a `Kubectl` bound to the cluster and the app's
namespace, so the same code runs on kind, an existing cluster, or the fake-node control plane.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipml.cluster import render, shell
from shipml.cluster.kubectl import Kubectl
from shipml.cluster.loadgen import LoadGenerator
from shipml.errors import ShipmlError
from shipml.load import LoadResult
from shipml.waiting import wait_until

APP = "shipml-serving"
SELECTOR = "app.kubernetes.io/name=shipml-serving"
CONTAINER = "serving"


@dataclass
class Step:
    """What a step did and how long it took (seconds, wall clock)."""

    name: str
    seconds: float
    detail: dict[str, Any] = field(default_factory=dict)


def apply_overlay(kubectl: Kubectl, overlay: str | Path = "kind", *,
                  force_conflicts: bool = False) -> Step:
    """Server-side apply with strict field validation: the API server rejects unknown or
    duplicate fields instead of kubectl silently dropping them."""
    started = time.perf_counter()
    path = render.resolve(overlay)
    args = ["apply", "--server-side", "--field-manager=shipml", "--validate=strict", "-k", str(path)]
    if force_conflicts:
        args.append("--force-conflicts")
    done = kubectl.run(*args, namespaced=False)
    print(done.stdout, end="")
    return Step("apply", time.perf_counter() - started, {"applied": done.stdout.splitlines()})


def apply_manifests(kubectl: Kubectl, docs: list[dict[str, Any]]) -> Step:
    """Server-side apply of objects held in memory (piped to `kubectl apply -f -`), into the
    Kubectl's namespace, with strict field validation."""
    started = time.perf_counter()
    done = shell.run(
        kubectl.argv("apply", "--server-side", "--field-manager=shipml", "--validate=strict",
                     "-f", "-"),
        input_text=render.to_yaml(docs),
    )
    print(done.stdout, end="")
    return Step("apply", time.perf_counter() - started, {"applied": done.stdout.splitlines()})


def wait_for_rollout(kubectl: Kubectl, timeout: int = 180, deployment: str = APP) -> Step:
    """Block until the Deployment's new pods are all Ready (`kubectl rollout status`)."""
    started = time.perf_counter()
    done = kubectl.run("rollout", "status", f"deployment/{deployment}", f"--timeout={timeout}s",
                       timeout=timeout + 30)
    print(done.stdout.strip().splitlines()[-1])
    return Step("rollout", time.perf_counter() - started)


def deployment_status(kubectl: Kubectl, deployment: str = APP) -> dict[str, Any]:
    """replicas / ready / updated / available counts and the current image."""
    dep = kubectl.get_json(f"deployment/{deployment}")
    status = dep.get("status", {})
    containers = dep["spec"]["template"]["spec"]["containers"]
    return {
        "desired": dep["spec"].get("replicas", 0),
        "ready": status.get("readyReplicas", 0),
        "updated": status.get("updatedReplicas", 0),
        "available": status.get("availableReplicas", 0),
        "total": status.get("replicas", 0),
        "image": next(c["image"] for c in containers if c["name"] == CONTAINER),
        "generation": dep["metadata"]["generation"],
        "observed": status.get("observedGeneration", 0),
    }


def pods(kubectl: Kubectl, echo: bool = False) -> list[dict[str, Any]]:
    """The app's pods: name, phase, ready, image, node (deleting ones left out)."""
    found = []
    for pod in kubectl.get_json("pods", "-l", SELECTOR, echo=echo)["items"]:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        conditions = pod.get("status", {}).get("conditions", [])
        found.append({
            "name": pod["metadata"]["name"],
            "phase": pod.get("status", {}).get("phase"),
            "ready": any(c["type"] == "Ready" and c["status"] == "True" for c in conditions),
            "image": pod["spec"]["containers"][0]["image"],
            "node": pod["spec"].get("nodeName"),
            "ip": pod.get("status", {}).get("podIP"),
        })
    return found


def service_url(kubectl: Kubectl, service: str = APP) -> str | None:
    """Where the Service answers from this machine: a NodePort (kind maps it to localhost) or a
    load balancer's address; None for a ClusterIP (use `kubectl port-forward`)."""
    svc = kubectl.get_json(f"service/{service}", echo=True)
    spec = svc["spec"]
    if spec.get("type") == "NodePort":
        return f"http://localhost:{spec['ports'][0]['nodePort']}"
    if spec.get("type") == "LoadBalancer":
        ingress = svc.get("status", {}).get("loadBalancer", {}).get("ingress") or []
        if not ingress:
            return None  # <pending>: no load-balancer controller (kind has none)
        address = ingress[0].get("ip") or ingress[0].get("hostname")
        return f"http://{address}:{spec['ports'][0]['port']}"
    return None


def endpoints(kubectl: Kubectl, service: str = APP) -> list[str]:
    """Ready pod addresses behind the Service, from its EndpointSlices."""
    slices = kubectl.get_json("endpointslices", "-l", f"kubernetes.io/service-name={service}")
    return sorted(
        address
        for item in slices["items"]
        for endpoint in item.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready")
        for address in endpoint.get("addresses", [])
    )


def scale(kubectl: Kubectl, replicas: int, timeout: int = 120) -> Step:
    """Scale by hand, then wait until that many pods are Ready. Where an HPA owns the count, its
    floor moves too (`kubectl patch hpa`): an HPA that reads CPU (metrics-server) undoes a bare
    `kubectl scale` at its next sync, seconds later, back to what the metrics and its bounds say."""
    started = time.perf_counter()
    bounds = hpa_bounds(kubectl)
    if bounds is not None:
        import json

        spec = {"minReplicas": replicas, "maxReplicas": max(replicas, bounds[1])}
        kubectl.run("patch", f"hpa/{APP}", "--type=merge", "-p", json.dumps({"spec": spec}))
    kubectl.run("scale", f"deployment/{APP}", f"--replicas={replicas}")
    wait_for_ready_count(kubectl, replicas, timeout)
    return Step("scale", time.perf_counter() - started, {"replicas": replicas})


def wait_for_ready_count(kubectl: Kubectl, count: int, timeout: float) -> None:
    last: dict[str, Any] = {}

    def reached() -> bool:
        last.update(deployment_status(kubectl))
        return (last["ready"] == count and last["total"] == count
                and last["observed"] >= last["generation"])

    wait_until(reached, timeout, interval=0.25, what=f"{count} ready replicas", detail=lambda: str(last))


def delete_pod_and_wait(kubectl: Kubectl, timeout: float = 120) -> Step:
    """Self-healing: delete one pod, then watch the ReplicaSet replace it until all are Ready."""
    started = time.perf_counter()
    before = pods(kubectl, echo=True)
    if not before:
        raise ShipmlError(f"no pods with label {SELECTOR}: apply an overlay first")
    victim = before[0]["name"]
    desired = deployment_status(kubectl)["desired"]
    kubectl.run("delete", "pod", victim, "--wait=false")
    old_names = {b["name"] for b in before}

    def replacement() -> str | None:
        now = pods(kubectl)
        new = [p["name"] for p in now if p["name"] not in old_names]
        return new[0] if new and sum(p["ready"] for p in now) == desired and len(now) == desired else None

    name = wait_until(replacement, timeout, interval=0.2, what=f"a Ready replacement for {victim}")
    seconds = time.perf_counter() - started
    print(f"{victim} deleted; {name} replaced it, Ready after {seconds:.1f} s")
    return Step("self-heal", seconds, {"deleted": victim, "replacement": name})


def api_key(kubectl: Kubectl, deployment: str = APP) -> str | None:
    """The API key the Deployment's pods expect, read from the Secret its env refers to (the kind
    overlay's throw-away key; a real one never leaves the cluster this way)."""
    import base64

    dep = kubectl.get_json(f"deployment/{deployment}")
    pod = dep["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == CONTAINER)
    env = {e["name"]: e for e in container.get("env", [])}
    ref = (env.get("SHIPML_API_KEY") or {}).get("valueFrom", {}).get("secretKeyRef")
    if ref is None and "SHIPML_API_KEY_FILE" in env:  # the key as a file from a mounted Secret
        path = env["SHIPML_API_KEY_FILE"]["value"]
        mounts = {m["name"]: m["mountPath"].rstrip("/") for m in container.get("volumeMounts", [])}
        for volume in pod.get("volumes", []):
            where = mounts.get(volume["name"])
            if "secret" in volume and where and path.startswith(where + "/"):
                ref = {"name": volume["secret"]["secretName"], "key": path[len(where) + 1:]}
    if ref is None:
        return None
    data = kubectl.get_json(f"secret/{ref['name']}")["data"]
    keys = base64.b64decode(data[ref["key"]]).decode().split()
    return keys[0] if keys else None  # a key file may hold several (one per line, while rotating)


def transactions(n: int = 50, seed: int = 0) -> list[dict[str, Any]]:
    """`n` valid /predict bodies (one transaction each), from the kit's seeded data generator."""
    from shipml.data import SCHEMA, make_transactions

    frame = make_transactions(n, seed=seed)[list(SCHEMA.names)]
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in frame.to_dict(orient="records")]


def predict_load(kubectl: Kubectl, url: str, *, max_requests: int = 3000, max_seconds: float = 180,
                 workers: int = 1, max_rps: float | None = 100, networks: tuple[str, ...] = ()
                 ) -> LoadGenerator:
    """A bounded load on POST {url}/predict with the app's API key: every answer names the model
    version that served it. One fresh connection per request, so the Service routes each anew."""
    key = api_key(kubectl)
    return LoadGenerator(f"{url.rstrip('/')}/predict", max_requests=max_requests, max_seconds=max_seconds,
                         json_bodies=transactions(), headers={"X-API-Key": key} if key else {},
                         networks=networks, workers=workers, max_rps=max_rps, keep_alive=False)


def hpa_bounds(kubectl: Kubectl, hpa: str = APP) -> tuple[int, int] | None:
    """The HPA's (minReplicas, maxReplicas), None when there is no HPA."""
    done = kubectl.run("get", f"hpa/{hpa}", "-o", "json", echo=False, check=False)
    if done.returncode != 0:
        return None
    import json

    spec = json.loads(done.stdout)["spec"]
    return spec.get("minReplicas", 1), spec["maxReplicas"]


def hpa_floor(kubectl: Kubectl, hpa: str = APP) -> int | None:
    """The HPA's minReplicas (None when there is no HPA)."""
    bounds = hpa_bounds(kubectl, hpa)
    return None if bounds is None else bounds[0]


def wait_for_hpa_floor(kubectl: Kubectl, timeout: float = 120) -> Step:
    """After the first apply: the Deployment has no `replicas` (the HPA owns the count), so it starts
    with 1 pod and the HPA raises it to minReplicas. Wait until that many pods are Ready."""
    started = time.perf_counter()
    floor = hpa_floor(kubectl)
    if floor is not None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = deployment_status(kubectl)
            if status["desired"] >= floor and status["ready"] == status["desired"] == status["total"]:
                break
            time.sleep(0.5)
        else:
            raise ShipmlError(f"the HPA did not bring the Deployment to {floor} Ready pods in {timeout:.0f} s")
        print(f"the HPA raised the Deployment to its minimum: {floor} Ready pods")
    return Step("hpa-floor", time.perf_counter() - started, {"replicas": floor})


def rolling_update(kubectl: Kubectl, image: str, *, url: str | None = None,
                   timeout: int = 180, max_requests: int = 5000,
                   load: LoadGenerator | None = None) -> Step:
    """Change the image and watch the rollout. The lowest number of Ready pods seen is recorded
    (maxUnavailable: 0 keeps it at the desired count); with `load` (see predict_load) or a `url`
    to GET, a load generator counts the requests that fail meanwhile."""
    started = time.perf_counter()
    desired = deployment_status(kubectl)["desired"]
    if load is None and url:
        load = LoadGenerator(url, max_requests=max_requests, max_seconds=timeout)
    if load:
        load.__enter__()
    try:
        kubectl.run("set", "image", f"deployment/{APP}", f"{CONTAINER}={image}")
        kubectl.run("annotate", f"deployment/{APP}", "--overwrite",
                    f"kubernetes.io/change-cause=image {image}")
        timeline: list[dict[str, Any]] = []
        lowest = watch_rollout(kubectl, image, desired, timeout, timeline)
    finally:
        if load:
            load.__exit__(None, None, None)
    seconds = time.perf_counter() - started
    result: LoadResult | None = load.result if load else None
    print(f"rolled out {image} in {seconds:.1f} s; fewest Ready pods during the update: {lowest}"
          + (f"; load: {result}" if result else ""))
    return Step("rolling-update", seconds,
                {"image": image, "min_ready": lowest, "load": result, "timeline": timeline,
                 "samples": load.samples if load else []})


def watch_rollout(kubectl: Kubectl, image: str, desired: int, timeout: float,
                  timeline: list[dict[str, Any]] | None = None) -> int:
    """Poll until every pod runs `image` and is Ready; return the fewest Ready pods seen.
    With `timeline`, append {"t": seconds, "new": ready pods on `image`, "old": other ready pods}."""
    lowest = desired
    started = time.perf_counter()

    def rolled_out() -> bool:
        nonlocal lowest
        now = pods(kubectl)
        ready = [p for p in now if p["ready"]]
        lowest = min(lowest, len(ready))
        if timeline is not None:
            new = sum(p["image"] == image for p in ready)
            timeline.append({"t": time.perf_counter() - started, "new": new, "old": len(ready) - new})
        status = deployment_status(kubectl)
        return (status["observed"] >= status["generation"] and status["updated"] == desired
                and status["ready"] == desired and status["total"] == desired
                and all(p["image"] == image and p["ready"] for p in now))

    wait_until(rolled_out, timeout, interval=0.2, what=f"the rollout of {image}",
               detail=lambda: f"`kubectl describe deployment/{APP}` says why")
    return lowest


def rollback(kubectl: Kubectl, timeout: int = 180) -> Step:
    """`kubectl rollout undo`: back to the previous ReplicaSet's pod template."""
    started = time.perf_counter()
    print(kubectl.run("rollout", "history", f"deployment/{APP}").stdout.strip())
    kubectl.run("rollout", "undo", f"deployment/{APP}")
    status = deployment_status(kubectl)
    timeline: list[dict[str, Any]] = []
    watch_rollout(kubectl, status["image"], status["desired"], timeout, timeline)
    seconds = time.perf_counter() - started
    print(f"rolled back to {status['image']} in {seconds:.1f} s")
    return Step("rollback", seconds, {"image": status["image"], "timeline": timeline})


def delete_app(kubectl: Kubectl, overlay: str | Path = "kind") -> Step:
    """Remove everything the overlay created."""
    started = time.perf_counter()
    kubectl.run("delete", "-k", str(render.resolve(overlay)), "--ignore-not-found", "--wait=true",
                namespaced=False)
    return Step("delete", time.perf_counter() - started)
