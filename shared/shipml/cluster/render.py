"""Turn a path (an overlay, a folder of manifests, or one file) into Kubernetes objects."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from shipml.cluster import shell
from shipml.errors import ShipmlError
from shipml.paths import repo_root

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")


def resource_name(doc: dict[str, Any]) -> str:
    """``Kind/name`` of a Kubernetes object, for messages."""
    return f"{doc.get('kind', '?')}/{(doc.get('metadata') or {}).get('name', '?')}"


def k8s_dir() -> Path:
    """deploy/k8s in the checkout."""
    return repo_root() / "deploy" / "k8s"


def overlay_names() -> list[str]:
    """Every overlay under deploy/k8s/overlays (kind, prod, ...)."""
    return sorted(p.name for p in (k8s_dir() / "overlays").iterdir() if is_kustomization(p))


def resolve(path_or_overlay: str | Path) -> Path:
    """An existing path, or an overlay name such as "kind" (deploy/k8s/overlays/kind)."""
    path = Path(path_or_overlay)
    if path.exists():
        return path
    overlay = k8s_dir() / "overlays" / str(path_or_overlay)
    if is_kustomization(overlay):
        return overlay
    raise ShipmlError(
        f"{path_or_overlay} is neither a file or folder nor an overlay "
        f"(overlays: {', '.join(overlay_names())})"
    )


def is_kustomization(path: Path) -> bool:
    """Whether `path` is a folder kustomize can build."""
    return path.is_dir() and any((path / name).exists() for name in KUSTOMIZATION_FILES)


def render(path_or_overlay: str | Path, *, echo: bool = False) -> list[dict[str, Any]]:
    """The objects a path stands for: `kubectl kustomize` for a kustomization, else every
    YAML file (sorted) in a folder, or the one file."""
    path = resolve(path_or_overlay)
    if is_kustomization(path):
        text = shell.run(["kubectl", "kustomize", str(path)], echo=echo).stdout
        return parse_yaml(text, source=str(path))
    files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
    if not files:
        raise ShipmlError(f"{path} holds no .yaml files")
    return [doc for file in files for doc in parse_yaml(file.read_text(), source=str(file))]


def parse_yaml(text: str, *, source: str) -> list[dict[str, Any]]:
    """Every non-empty document of a multi-document YAML text."""
    try:
        docs = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        raise ShipmlError(f"{source} is not valid YAML: {str(exc).splitlines()[0]}") from exc
    for doc in docs:
        if not isinstance(doc, dict) or "kind" not in doc:
            raise ShipmlError(f"{source} holds a document that is not a Kubernetes object")
    return docs


def to_yaml(docs: list[dict[str, Any]]) -> str:
    """Objects back to one multi-document YAML text (for `kubectl apply -f -`)."""
    return yaml.safe_dump_all(docs, sort_keys=False)
