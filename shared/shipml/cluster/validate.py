"""Validation without a cluster: strict OpenAPI schema checks plus the kit's policy.

Schema checks use kubernetes-validate's library (the engine behind `kubernetes-validate --strict`)
with the JSON schemas of one Kubernetes release; `--strict` rejects fields the API does not know
(a misspelt `readinessprobe` would otherwise be silently dropped by kubectl's client).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate

from shipml.cluster import policy, render
from shipml.cluster.render import resource_name

KUBERNETES_SCHEMA_VERSION = "1.37.0"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one object, printable as one line."""

    resource: str  # "Deployment/shipml-serving"
    message: str

    def __str__(self) -> str:
        return f"{self.resource}: {self.message}"


def schema_problems(
    docs: list[dict[str, Any]], version: str = KUBERNETES_SCHEMA_VERSION
) -> list[Problem]:
    """Objects that break the OpenAPI schema of Kubernetes `version` (strict: no unknown fields)."""
    problems = []
    for doc in docs:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(part) for part in exc.path) or "(top level)"
            problems.append(Problem(resource_name(doc), f"schema: {where}: {exc.message}"))
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(
                Problem(resource_name(doc), f"schema: no {doc.get('apiVersion')} "
                        f"{doc.get('kind')} in Kubernetes {version}")
            )
    return problems


def check_docs(docs: list[dict[str, Any]], version: str = KUBERNETES_SCHEMA_VERSION) -> list[Problem]:
    """Schema problems, then policy problems, of already-rendered objects."""
    found = schema_problems(docs, version)
    found += [Problem(resource, message) for resource, message in policy.problems(docs)]
    return found


def validate_path(
    path_or_overlay: str | Path, version: str = KUBERNETES_SCHEMA_VERSION
) -> list[Problem]:
    """Render a path or overlay name and return every problem (empty list: it passes)."""
    return check_docs(render.render(path_or_overlay), version)
