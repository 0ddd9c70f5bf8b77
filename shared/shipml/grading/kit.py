"""What a sandboxed notebook may see of the kit, and proof that nothing of the kit changed while grading.

- :func:`stage` copies the installed ``shipml`` package *without* ``shipml/grading/`` (answer keys,
  verdicts, hidden-check loading: grader-only) into a private folder the sandbox mounts read-only where
  the package was installed, plus the two files the sandbox runs itself (the worker and its limits).
- :func:`fingerprint` hashes every file of the package and of ``labs/``; the grader compares it before
  judging each row and refuses to judge once anything changed (an edited module, a rewritten lab).
- :func:`preimport` imports every module the grader uses *before* any submission runs, so no code a
  submission could have planted is imported into the grader later.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import pkgutil
import shutil
from pathlib import Path

from shipml.paths import PACKAGE_DIR

KERNEL = "shipml"
GRADER_ONLY = "grading"  # shipml/grading/: never inside a sandbox
SANDBOX_FILES = ("worker.py", "limits.py")  # run inside the sandbox as plain scripts (not as shipml.grading)


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def fingerprint(package: Path = PACKAGE_DIR, labs: Path | None = None) -> dict[str, str]:
    """sha256 of every file of the package (and of ``labs``): relative path -> hex digest."""
    out: dict[str, str] = {}
    for base, name in ((package, "shipml"), (labs, "labs")):
        if base is None or not base.is_dir():
            continue
        for path in _files(base):
            out[f"{name}/{path.relative_to(base)}"] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Files added, removed or edited between two fingerprints (sorted)."""
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def stage(dest: Path, package: Path = PACKAGE_DIR) -> tuple[Path, Path]:
    """Copy the package minus ``grading/`` to ``dest/shipml`` and the sandbox scripts to ``dest/grader``."""
    kit = dest / "shipml"
    shutil.copytree(package, kit, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.rmtree(kit / GRADER_ONLY)
    grader = dest / "grader"
    grader.mkdir(parents=True)
    for name in SANDBOX_FILES:
        shutil.copyfile(package / GRADER_ONLY / name, grader / name)
    kernelspec(grader / "jupyter" / "kernels" / KERNEL)
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # readable by the sandbox's unprivileged uid
    return kit, grader


def kernelspec(folder: Path, name: str = KERNEL) -> Path:
    """The installed kernelspec ``name`` with its ``env`` dropped (it points into the checkout, which a
    sandbox does not mount): the worker puts this folder first on ``JUPYTER_PATH``."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec(name)
    folder.mkdir(parents=True, exist_ok=True)
    data = {**spec.to_dict(), "env": {}}
    (folder / "kernel.json").write_text(json.dumps(data, indent=1))
    return folder


def preimport() -> list[str]:
    """Import every ``shipml.checks`` and ``shipml.grading`` module, and the worker's libraries."""
    names = []
    for package in map(importlib.import_module, ("shipml.checks", "shipml.grading")):  # by name: no import cycle
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            importlib.import_module(info.name)
            names.append(info.name)
    for name in ("nbformat", "nbformat.v3", "nbformat.v4", "csv", "unicodedata", "numpy"):
        importlib.import_module(name)
    return names
