"""The kit's rules for manifests, beyond what the API schema enforces.

Each rule reads rendered objects and yields (resource, one-line message). The rules are the
lessons of the orchestration notebook: what the seed's two manifests miss.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from shipml.cluster.render import resource_name

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}
REQUIRED_RESOURCES = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory")

Finding = tuple[str, str]


def problems(docs: list[dict[str, Any]]) -> list[Finding]:
    """Every policy finding for a set of objects rendered together."""
    found: list[Finding] = []
    for doc in docs:
        if doc.get("kind") in WORKLOAD_KINDS:
            found += workload_problems(doc)
        elif doc.get("kind") == "Service":
            found += service_problems(doc, docs)
    return found


def pod_template(doc: dict[str, Any]) -> dict[str, Any]:
    return (doc.get("spec") or {}).get("template") or {}


def workload_problems(doc: dict[str, Any]) -> list[Finding]:
    """Selector, probes, resources, security and image rules for one workload."""
    who = resource_name(doc)
    template = pod_template(doc)
    found = [(who, message) for message in selector_problems(doc)]
    pod_spec = template.get("spec") or {}
    pod_security = pod_spec.get("securityContext") or {}
    for container in pod_spec.get("containers") or []:
        found += [(who, message) for message in container_problems(container, pod_security, doc)]
    return found


def selector_problems(doc: dict[str, Any]) -> Iterator[str]:
    """A workload whose selector does not match its own pod template's labels."""
    selector = (doc.get("spec") or {}).get("selector")
    if doc.get("kind") == "Job" and selector is None:
        return  # Jobs generate their selector
    labels = (pod_template(doc).get("metadata") or {}).get("labels") or {}
    if not selector:
        yield "spec.selector is missing (it must match spec.template.metadata.labels)"
    elif not selector_matches(selector, labels):
        yield (
            f"spec.selector {format_selector(selector)} does not match the pod template labels "
            f"{format_labels(labels)}: the workload would never own its pods"
        )


def container_problems(
    container: dict[str, Any], pod_security: dict[str, Any], doc: dict[str, Any]
) -> Iterator[str]:
    """Probe, resource, security and image rules for one container."""
    name = container.get("name", "?")
    where = f"container {name!r}"
    if doc.get("kind") != "Job":
        for probe in ("readinessProbe", "livenessProbe"):
            if not container.get(probe):
                yield f"{where} has no {probe}: " + (
                    "traffic reaches it before the model is loaded"
                    if probe == "readinessProbe"
                    else "a hung server is never restarted"
                )
    resources = container.get("resources") or {}
    missing = [
        key for key in REQUIRED_RESOURCES
        if not (resources.get(key.split(".")[0]) or {}).get(key.split(".")[1])
    ]
    if missing:
        yield (f"{where} sets no resources {', '.join(missing)} "
               "(the scheduler and HPA need requests; limits protect neighbours)")
    security = container.get("securityContext") or {}
    if not runs_as_non_root(security, pod_security):
        yield f"{where} may run as root: set securityContext.runAsNonRoot: true (and a non-zero runAsUser)"
    if security.get("allowPrivilegeEscalation") is not False:
        yield f"{where} allows privilege escalation: set securityContext.allowPrivilegeEscalation: false"
    if "ALL" not in ((security.get("capabilities") or {}).get("drop") or []):
        yield f"{where} keeps Linux capabilities: set securityContext.capabilities.drop: [ALL]"
    if security.get("readOnlyRootFilesystem") is not True:
        yield (f"{where} has a writable root filesystem: set "
               "securityContext.readOnlyRootFilesystem: true (mount an emptyDir on /tmp)")
    image = container.get("image", "")
    tag_problem = image_tag_problem(image)
    if tag_problem:
        yield f"{where} {tag_problem}"


def runs_as_non_root(security: dict[str, Any], pod_security: dict[str, Any]) -> bool:
    """Container settings override pod settings; uid 0 is root whatever runAsNonRoot says."""
    uid = security.get("runAsUser", pod_security.get("runAsUser"))
    if uid == 0:
        return False
    non_root = security.get("runAsNonRoot", pod_security.get("runAsNonRoot"))
    return non_root is True or (uid is not None and uid > 0)


def image_tag_problem(image: str) -> str | None:
    """Why an image reference is not pinned to a version, or None."""
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {image!r} has no tag, which means :latest: use a versioned tag such as {image}:0.1.0"
    if last.endswith(":latest"):
        return (
            f"image {image!r} uses :latest, which implies imagePullPolicy Always "
            "(ImagePullBackOff on kind after `kind load`): use a versioned tag"
        )
    return None


def service_problems(service: dict[str, Any], docs: list[dict[str, Any]]) -> list[Finding]:
    """A Service must select some pod template, and its targetPorts must exist there."""
    who = resource_name(service)
    spec = service.get("spec") or {}
    selector = spec.get("selector") or {}
    if not selector or spec.get("type") == "ExternalName":
        return []
    namespace = (service.get("metadata") or {}).get("namespace")
    templates = [
        pod_template(doc) for doc in docs
        if doc.get("kind") in WORKLOAD_KINDS
        and (doc.get("metadata") or {}).get("namespace") == namespace
        and selector_matches({"matchLabels": selector},
                             (pod_template(doc).get("metadata") or {}).get("labels") or {})
    ]
    if not templates:
        return [(who, f"selector {format_labels(selector)} matches no pod template in these "
                      "manifests: the Service would have no endpoints")]
    ports = [
        port
        for template in templates
        for container in (template.get("spec") or {}).get("containers") or []
        for port in container.get("ports") or []
    ]
    found = []
    for port in spec.get("ports") or []:
        target = port.get("targetPort", port.get("port"))
        if isinstance(target, int) or (isinstance(target, str) and target.isdigit()):
            if not any(p.get("containerPort") == int(target) for p in ports):
                numbers = sorted({p.get("containerPort") for p in ports})
                found.append((who, f"targetPort {target} is not a container port of the "
                                   f"selected pods (they expose {numbers or 'none'})"))
        elif not any(p.get("name") == target for p in ports):
            names = sorted({p["name"] for p in ports if p.get("name")})
            found.append((who, f"targetPort {target!r} names no container port of the "
                               f"selected pods (named ports: {names or 'none'})"))
    return found


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against a set of labels."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if (op == "In" and labels.get(key) not in values) or (
            op == "NotIn" and key in labels and labels[key] in values
        ) or (op == "Exists" and key not in labels) or (op == "DoesNotExist" and key in labels):
            return False
    return True


def format_labels(labels: dict[str, str]) -> str:
    return "{" + ", ".join(f"{k}={v}" for k, v in labels.items()) + "}"


def format_selector(selector: dict[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in (selector.get("matchLabels") or {}).items()]
    parts += [
        f"{e.get('key')} {e.get('operator')} {e.get('values', [])}"
        for e in selector.get("matchExpressions") or []
    ]
    return "{" + ", ".join(parts) + "}"
