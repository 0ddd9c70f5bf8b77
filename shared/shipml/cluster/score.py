"""kube-score on the rendered overlays: a second opinion beside the kit's own policy.

kube-score (github.com/zegl/kube-score, built from its Go module by `shipml cluster build-node`)
checks objects against production practice. Every finding the kit accepts is listed, with its
reason, in deploy/k8s/kube-score-ignore.txt; anything else fails the test that runs this.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from shipml.cluster import render
from shipml.errors import ShipmlError

IGNORE_FILE = render.k8s_dir() / "kube-score-ignore.txt"
# `--output-format ci` lines: "[CRITICAL] shipml-serving/shipml apps/v1/Deployment: (serving) message"
_LINE = re.compile(r"^\[(OK|SKIPPED|WARNING|CRITICAL)\] (\S+) (\S+): (.*)$")


@dataclass(frozen=True)
class Finding:
    level: str  # WARNING or CRITICAL
    resource: str
    message: str

    def __str__(self) -> str:
        return f"[{self.level}] {self.resource}: {self.message}"


def ignored_checks(path: Path = IGNORE_FILE) -> dict[str, str]:
    """{check id: reason} from the ignore file (`check-id  # why`, one a line)."""
    checks = {}
    for line in path.read_text().splitlines():
        body, _, reason = line.partition("#")
        if body.strip():
            if not reason.strip():
                raise ShipmlError(f"{path.name}: {body.strip()} is ignored without a reason")
            checks[body.strip()] = reason.strip()
    return checks


def kube_score_binary() -> Path | None:
    from shipml.cluster.realnode.build import kube_score_path

    path = kube_score_path()
    return path if path.exists() else None


def score(overlay: str | Path, *, ignore: dict[str, str] | None = None,
          binary: Path | None = None) -> list[Finding]:
    """WARNING and CRITICAL findings of kube-score on one rendered overlay (ignored checks left out)."""
    binary = binary or kube_score_binary()
    if binary is None:
        raise ShipmlError("kube-score is not built: run `shipml cluster build-node`")
    docs = render.render(overlay)
    ignore = ignored_checks() if ignore is None else ignore
    argv = [str(binary), "score", "--output-format", "ci",
            *(arg for check in ignore for arg in ("--ignore-test", check)), "-"]
    done = subprocess.run(argv, input=render.to_yaml(docs), capture_output=True, text=True, timeout=60)
    if done.returncode not in (0, 1) or (done.returncode == 1 and not done.stdout):
        raise ShipmlError(f"kube-score failed: {done.stderr.strip()[-300:]}")
    findings = []
    for line in done.stdout.splitlines():
        match = _LINE.match(line.strip())
        if match and match.group(1) in ("WARNING", "CRITICAL"):
            kind = match.group(3).rsplit("/", 1)[-1]
            findings.append(Finding(match.group(1), f"{kind} {match.group(2)}", match.group(4)))
    return findings
