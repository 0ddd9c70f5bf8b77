"""Run external tools (kubectl, kind) the way a student would type them: print, then run."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from collections.abc import Sequence

from shipml.errors import ShipmlError

INSTALL_HINTS = {
    "kubectl": "install kubectl: https://kubernetes.io/docs/tasks/tools/",
    "kind": "install kind: https://kind.sigs.k8s.io/docs/user/quick-start/#installation",
    "docker": "install Docker (or use `shipml cluster up --fake-nodes` for a cluster without it)",
}


def require_tool(name: str) -> str:
    """The tool's full path, or a ShipmlError that says how to install it."""
    path = shutil.which(name)
    if path is None:
        raise ShipmlError(f"`{name}` is not on PATH; {INSTALL_HINTS.get(name, 'install it')}")
    return path


def show(argv: Sequence[str]) -> None:
    """Print a command as it could be pasted into a terminal."""
    print("$ " + shlex.join(argv), flush=True)


def run(
    argv: Sequence[str],
    *,
    echo: bool = True,
    check: bool = True,
    timeout: float | None = 300,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `argv` (printing it first when `echo`); on failure raise ShipmlError with the tool's
    last error line, so the CLI and notebooks show one clear line instead of a traceback."""
    if echo:
        show(argv)
    require_tool(argv[0])
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, input=input_text
        )
    except subprocess.TimeoutExpired as exc:
        raise ShipmlError(f"`{shlex.join(argv)}` did not finish within {timeout:.0f} s") from exc
    if check and done.returncode != 0:
        raise ShipmlError(f"`{shlex.join(argv)}` failed: {last_error_line(done)}")
    return done


def last_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The most useful single line of a failed command's output."""
    lines = [line.strip() for line in (done.stderr or done.stdout or "").splitlines()]
    lines = [line for line in lines if line]
    errors = [line for line in lines if line.lower().startswith("error")]
    return (errors or lines or [f"exit status {done.returncode}"])[-1]
