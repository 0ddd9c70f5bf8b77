"""Checks of the students' workflow (.github/workflows/): actionlint, and that every ``run:`` step calls
only ``make`` targets and ``shipml`` commands that exist, so the workflow is never the place where a
stage is defined (the stages live in :mod:`shipml.pipeline.stages`; the workflow only calls them).
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import yaml

from shipml.errors import ShipmlError

ACTIONLINT_VERSION = "v1.7.12"  # built by .ci/setup.d/45-actionlint.sh


def find_actionlint() -> Path | None:
    """actionlint on PATH, else the one .ci/setup.d/45-actionlint.sh built into the kit's cache."""
    from shipml.containers.base_image import default_cache_dir

    found = shutil.which("actionlint")
    cached = default_cache_dir() / "actionlint" / ACTIONLINT_VERSION / "actionlint"
    return Path(found) if found else (cached if cached.is_file() else None)


def actionlint(path: Path) -> list[str]:
    """actionlint's findings on one workflow file (empty: clean)."""
    binary = find_actionlint()
    if binary is None:
        raise ShipmlError("actionlint is not installed: run .ci/setup.d/45-actionlint.sh (needs Go)")
    done = subprocess.run([str(binary), "-no-color", "-oneline", str(path)], capture_output=True, text=True,
                          timeout=120)
    if done.returncode not in (0, 1):
        raise ShipmlError(f"actionlint failed: {done.stderr.strip()[-300:]}")
    return [line for line in done.stdout.splitlines() if line.strip()]


def run_commands(path: Path) -> list[tuple[str, str]]:
    """(job, command line) for every command of every ``run:`` step (continuations joined)."""
    workflow = yaml.safe_load(Path(path).read_text())
    found = []
    for job, spec in (workflow.get("jobs") or {}).items():
        for step in spec.get("steps") or []:
            script = step.get("run")
            if not script:
                continue
            for line in script.replace("\\\n", " ").splitlines():
                if line.strip() and not line.strip().startswith("#"):
                    found.append((job, line.strip()))
    return found


def makefile_targets(makefile: Path) -> set[str]:
    return set(re.findall(r"^([A-Za-z0-9_.-]+):(?!=)", makefile.read_text(), flags=re.MULTILINE))


def command_problems(path: Path, makefile: Path) -> list[str]:
    """Every command line that is not ``make <existing targets>`` or ``shipml <existing command>``."""
    import typer

    from shipml.cli import app

    root = typer.main.get_command(app)
    targets = makefile_targets(makefile)
    problems = []
    for job, line in run_commands(path):
        if any(op in line for op in ("&&", "||", ";", "|", "`", "$(")):
            problems.append(f"{job}: `{line}`: one command per line, no shell logic (it belongs in the kit)")
            continue
        words = shlex.split(line)
        if words and words[0] == "sudo":
            words = words[1:]
        if not words:
            continue
        if words[0] == "make":
            missing = [w for w in words[1:] if not w.startswith("-") and "=" not in w and w not in targets]
            if missing:
                problems.append(f"{job}: `{line}`: no make target {', '.join(missing)}")
        elif Path(words[0]).name == "shipml":
            command, path_so_far = root, ["shipml"]
            for word in words[1:]:
                if word.startswith("-") or not hasattr(command, "commands"):
                    break
                sub = command.commands.get(word)  # type: ignore[attr-defined]
                if sub is None:
                    problems.append(f"{job}: `{line}`: `{' '.join(path_so_far)}` has no command '{word}'")
                    break
                command, path_so_far = sub, [*path_so_far, word]
            else:
                if hasattr(command, "commands"):
                    problems.append(f"{job}: `{line}`: `{' '.join(path_so_far)}` needs a sub-command")
        else:
            problems.append(f"{job}: `{line}`: runs {words[0]}, not make or shipml")
    return problems
