"""Lab 04 — repair a Deployment the way the seed would write it, prove it valid, apply it
server-side and roll it forward and back.

Instant feedback only for question 1 (which findings are the three mistakes is the grader's:
``shipml.grading.keys.lab04``); the other questions judge what the validator and the cluster say."""

from __future__ import annotations

from typing import Any

from shipml.checks import Context, Question, Unanswered

APP = "fraud-api"

# What a student might copy from slides: three mistakes the validator and the API server catch.
BROKEN_MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: fraud-api
spec:
  replicas: 3
  selector:
    matchLabels:
      app: fraud
  template:
    metadata:
      labels:
        app: fraud-api
    spec:
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
      containers:
        - name: serving
          image: shipml-serving:latest
          ports:
            - name: http
              containerPort: 8080
          livenessProbe:
            httpGet:
              path: /v2/health/live
              port: http
          resources:
            requests: {cpu: 250m, memory: 256Mi}
            limits: {cpu: "1", memory: 512Mi}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: [ALL]
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir: {}
---
apiVersion: v1
kind: Service
metadata:
  name: fraud-api
spec:
  selector:
    app: fraud-api
  ports:
    - name: http
      port: 80
      targetPort: http
"""

def collect_problems(problems: Any, ctx: Context) -> list[str]:
    return [str(p) for p in problems]


def evaluate_problems(found: list[str], ctx: Context) -> tuple[bool, str]:
    if len(found) < 3:
        return False, f"{len(found)} problem(s) listed: the manifest has at least three mistakes"
    return True, f"{len(found)} problems listed (grading checks the three mistakes are among them)"


def collect_repaired(docs: Any, ctx: Context) -> list[dict]:
    from shipml.cluster.render import parse_yaml

    if isinstance(docs, str):
        return parse_yaml(docs, source="your manifest")
    return [dict(doc) for doc in docs]


def deployment_of(docs: list[dict]) -> dict | None:
    return next((d for d in docs if d.get("kind") == "Deployment"
                 and d.get("metadata", {}).get("name") == APP), None)


def evaluate_repaired(docs: list[dict], ctx: Context) -> tuple[bool, str]:
    from shipml.cluster.validate import check_docs

    problems = check_docs(docs)
    if problems:
        return False, f"{len(problems)} problem(s) left, first: {problems[0]}"
    dep = deployment_of(docs)
    if dep is None or not any(d.get("kind") == "Service" for d in docs):
        return False, f"keep both objects: the Deployment {APP!r} and its Service"
    container = dep["spec"]["template"]["spec"]["containers"][0]
    if not container["image"].startswith("shipml-serving:"):
        return False, f"keep the shipml-serving image, with a version tag (not {container['image']!r})"
    if container["readinessProbe"].get("httpGet", {}).get("path") != "/v2/health/ready":
        return False, "the readiness probe should ask the server /v2/health/ready (the model is loaded)"
    if container.get("imagePullPolicy", "IfNotPresent") != "IfNotPresent":
        return False, "with kind, images are loaded, never pulled: imagePullPolicy IfNotPresent"
    return True, "valid against the Kubernetes 1.37 schemas and the kit's policy"


def collect_applied(kubectl: Any, ctx: Context) -> dict:
    if not hasattr(kubectl, "get_json"):
        raise Unanswered
    dep = kubectl.get_json(f"deployment/{APP}", "--show-managed-fields")  # kubectl hides them
    return {
        "ready": dep.get("status", {}).get("readyReplicas", 0),
        "operations": sorted({m.get("operation", "") for m in dep["metadata"].get("managedFields", [])}),
        "image": dep["spec"]["template"]["spec"]["containers"][0]["image"],
    }


def evaluate_applied(state: dict, ctx: Context) -> tuple[bool, str]:
    if "Apply" not in state["operations"]:
        return False, "the Deployment was not server-side applied (use --server-side)"
    if state["ready"] != 3:
        return False, f"{state['ready']} of 3 replicas are Ready: wait for the rollout"
    return True, f"server-side applied, 3 replicas Ready on {state['image']}"


def collect_rolled_back(kubectl: Any, ctx: Context) -> dict:
    if not hasattr(kubectl, "get_json"):
        raise Unanswered
    sets = kubectl.get_json("replicasets", "-l", f"app={APP}")["items"]
    dep = kubectl.get_json(f"deployment/{APP}")
    return {
        "image": dep["spec"]["template"]["spec"]["containers"][0]["image"],
        "revision": int(dep["metadata"].get("annotations", {}).get(
            "deployment.kubernetes.io/revision", 0)),
        "images_seen": sorted({rs["spec"]["template"]["spec"]["containers"][0]["image"]
                               for rs in sets}),
        "ready": dep.get("status", {}).get("readyReplicas", 0),
    }


def evaluate_rolled_back(state: dict, ctx: Context) -> tuple[bool, str]:
    if "shipml-serving:0.2.0" not in state["images_seen"]:
        return False, "no ReplicaSet ever ran shipml-serving:0.2.0: roll out v2 first"
    if state["image"] != "shipml-serving:0.1.0":
        return False, f"the Deployment runs {state['image']}; roll back to shipml-serving:0.1.0"
    if state["revision"] < 3 or state["ready"] != 3:
        return False, "rolled back, but not through `kubectl rollout undo` with 3 Ready replicas"
    return True, f"v2 rolled out and back: revision {state['revision']}, 3 replicas on v1"


QUESTIONS = [
    Question("problems", 1, collect_problems, evaluate_problems,
             "the setup cell imported the kit's validator; it takes a file and returns a list: keep every "
             "item of it, not only the first", "Find the mistakes"),
    Question("repaired", 3, collect_repaired, evaluate_repaired,
             "the message names what is left: run check_docs on your objects after each change and read its "
             "first problem", "Repair the manifest"),
    Question("applied", 2, collect_applied, evaluate_applied,
             "look at what shipml.cluster.workflow offers for applying objects and for waiting until a "
             "Deployment is ready", "Apply it server-side"),
    Question("rolled_back", 2, collect_rolled_back, evaluate_rolled_back,
             "kubectl has a sub-command to change a container's image and one for rollouts (its history, "
             "undo); wait after each change", "Roll forward and back"),
]
