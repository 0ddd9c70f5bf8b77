"""``shipml cluster ...``: Kubernetes manifests, the kind workflow and the fake-node control plane."""

from __future__ import annotations

from pathlib import Path

import typer

from shipml.errors import ShipmlError

app = typer.Typer(
    help="Kubernetes: validate manifests, run the kind workflow, start a fake-node control plane.",
    no_args_is_help=True,
)

KUBECONFIG = typer.Option(None, "--kubeconfig", help="kubeconfig file (default: kubectl's own)")
CONTEXT = typer.Option(None, "--context", help="kubeconfig context (default: the current one)")
NAMESPACE = typer.Option("shipml", "--namespace", "-n", help="namespace of the app")
FAKE = typer.Option(False, "--fake-nodes", help="target the running fake-node control plane")


def target(kubeconfig: Path | None, context: str | None, namespace: str, fake: bool):
    """The Kubectl every workflow command talks through."""
    from shipml.cluster import Kubectl
    from shipml.cluster.controlplane import running

    if fake:
        cluster = running()
        if cluster is None:
            raise ShipmlError("no fake-node cluster is running; start one with "
                              "`shipml cluster up --fake-nodes`")
        return cluster.kubectl(namespace)
    return Kubectl(kubeconfig, context, namespace)


@app.command("up")
def up(fake_nodes: bool = typer.Option(False, "--fake-nodes", help="kwok fake nodes (no containers run)"),
       real_node: bool = typer.Option(False, "--real-node", help="a real node on this machine: containerd, "
                                      "kubelet, kube-proxy, metrics-server (root; tainted beside fake nodes)"),
       nodes: int = typer.Option(3, help="number of fake nodes (with --fake-nodes)"),
       image: list[str] = typer.Option(["shipml-serving:0.1.0", "shipml-serving:0.2.0"], "--image",
                                       help="Docker images to import into the real node")) -> None:
    """Start a real control plane on 127.0.0.1 with kwok fake nodes and/or a real node (builds the
    programs the first time)."""
    from shipml.cluster import controlplane

    if not fake_nodes and not real_node:
        raise ShipmlError("say which nodes: `--fake-nodes`, `--real-node` or both; for a kind cluster "
                          "use `shipml cluster create`")
    cluster = controlplane.up(nodes if fake_nodes else 0, real_node=real_node, images=tuple(image))
    typer.echo(f"export KUBECONFIG={cluster.kubeconfig}  # context {cluster.context}")


@app.command("down")
def down() -> None:
    """Stop the control plane (and the real node: its pods, kubelet, containerd, firewall rules,
    host settings restored) and delete its state."""
    from shipml.cluster import controlplane

    controlplane.down()


@app.command("status")
def status() -> None:
    """Whether the fake-node control plane runs, and its kubeconfig."""
    from shipml.cluster import controlplane

    cluster = controlplane.running()
    typer.echo(f"running: --kubeconfig={cluster.kubeconfig} --context={cluster.context}"
               if cluster else "no fake-node cluster is running")


@app.command("build-controlplane")
def build_controlplane(force: bool = typer.Option(False, help="rebuild even when cached")) -> None:
    """Build kube-apiserver, kube-controller-manager, kube-scheduler, etcd and kwok (cached)."""
    from shipml.cluster.controlplane import build, versions

    report = build.build_controlplane(force=force)
    typer.echo(f"built {', '.join(report.built)} in {report.seconds:.0f} s" if report.built
               else f"cached: {versions.bin_dir()}")


@app.command("build-node")
def build_node(force: bool = typer.Option(False, help="rebuild even when cached"),
               kube_score_only: bool = typer.Option(False, "--kube-score-only",
                                                    help="only kube-score (the manifest test's linter)")) -> None:
    """Build kubelet, kube-proxy, pause, metrics-server and kube-score for the real node (cached)."""
    from shipml.cluster.controlplane import versions
    from shipml.cluster.realnode import build_node as build

    report = build(force=force, node=not kube_score_only)
    typer.echo(f"built {', '.join(report.built)} in {report.seconds:.0f} s" if report.built
               else f"cached: {versions.bin_dir()}")


@app.command("validate")
def validate(paths: list[str] = typer.Argument(None, help="overlay names or paths (default: all overlays)")) -> None:
    """Render with kustomize, check strictly against the Kubernetes schemas and the kit's policy."""
    from shipml.cluster import render, validate_path
    from shipml.cluster.validate import KUBERNETES_SCHEMA_VERSION

    failed = 0
    for path in paths or render.overlay_names():
        problems = validate_path(path)
        failed += len(problems)
        typer.echo(f"{path}: " + ("ok" if not problems else f"{len(problems)} problem(s)")
                   + f" (Kubernetes {KUBERNETES_SCHEMA_VERSION} schemas, strict)")
        for problem in problems:
            typer.echo(f"  {problem}")
    if failed:
        raise ShipmlError(f"{failed} problem(s) found")


@app.command("create")
def create(name: str = "shipml") -> None:
    """kind create cluster with deploy/kind/kind-config.yaml (localhost:30080 -> NodePort)."""
    from shipml.cluster import kind

    kind.create_cluster(name)


@app.command("load")
def load(image: str, name: str = "shipml") -> None:
    """kind load docker-image IMAGE: copy a local image into the kind nodes."""
    from shipml.cluster import kind

    kind.load_image(image, name)


@app.command("delete")
def delete(name: str = "shipml") -> None:
    """kind delete cluster."""
    from shipml.cluster import kind

    kind.delete_cluster(name)


@app.command("apply")
def apply(overlay: str = typer.Argument("kind"), force_conflicts: bool = False,
          kubeconfig: Path = KUBECONFIG, context: str = CONTEXT, namespace: str = NAMESPACE,
          fake: bool = FAKE) -> None:
    """Server-side apply an overlay with strict field validation, then wait for the rollout."""
    from shipml.cluster import workflow

    kubectl = target(kubeconfig, context, namespace, fake)
    workflow.apply_overlay(kubectl, overlay, force_conflicts=force_conflicts)
    workflow.wait_for_rollout(kubectl)


@app.command("rollout")
def rollout(kubeconfig: Path = KUBECONFIG, context: str = CONTEXT, namespace: str = NAMESPACE,
            fake: bool = FAKE) -> None:
    """Wait until every pod of the Deployment is Ready."""
    from shipml.cluster import workflow

    workflow.wait_for_rollout(target(kubeconfig, context, namespace, fake))


@app.command("url")
def url(kubeconfig: Path = KUBECONFIG, context: str = CONTEXT, namespace: str = NAMESPACE,
        fake: bool = FAKE) -> None:
    """Where the Service answers from this machine."""
    from shipml.cluster import workflow

    found = workflow.service_url(target(kubeconfig, context, namespace, fake))
    typer.echo(found or "no external URL (ClusterIP, or LoadBalancer <pending>): "
               "use `kubectl port-forward service/shipml-serving 8080:80`")


@app.command("scale")
def scale(replicas: int, kubeconfig: Path = KUBECONFIG, context: str = CONTEXT,
          namespace: str = NAMESPACE, fake: bool = FAKE) -> None:
    """kubectl scale, then wait for that many Ready pods."""
    from shipml.cluster import workflow

    step = workflow.scale(target(kubeconfig, context, namespace, fake), replicas)
    typer.echo(f"{replicas} pods Ready in {step.seconds:.1f} s")


@app.command("delete-pod")
def delete_pod(kubeconfig: Path = KUBECONFIG, context: str = CONTEXT,
               namespace: str = NAMESPACE, fake: bool = FAKE) -> None:
    """Delete one pod and watch Kubernetes replace it (self-healing)."""
    from shipml.cluster import workflow

    workflow.delete_pod_and_wait(target(kubeconfig, context, namespace, fake))


@app.command("rolling-update")
def rolling_update(image: str = typer.Argument("shipml-serving:0.2.0"),
                   load_url: str = typer.Option(None, "--load-url", help="URL to load meanwhile "
                                                "(localhost only), e.g. http://localhost:30080/v2/health/ready"),
                   kubeconfig: Path = KUBECONFIG, context: str = CONTEXT,
                   namespace: str = NAMESPACE, fake: bool = FAKE) -> None:
    """Roll the Deployment to IMAGE, counting failed requests with --load-url."""
    from shipml.cluster import workflow

    workflow.rolling_update(target(kubeconfig, context, namespace, fake), image, url=load_url)


@app.command("rollback")
def rollback(kubeconfig: Path = KUBECONFIG, context: str = CONTEXT, namespace: str = NAMESPACE,
             fake: bool = FAKE) -> None:
    """kubectl rollout undo, then wait for the previous version to be Ready."""
    from shipml.cluster import workflow

    workflow.rollback(target(kubeconfig, context, namespace, fake))
