"""Every ``!command`` in notebooks/ and solutions/ runs in the kernel's environment, and fails loudly.

nbval and papermill pass a cell whose shell command failed (IPython only stores ``_exit_code``), which is
how ``!shipml info`` printed "command not found" unnoticed. So: (1) statically, each ``!`` line's program
resolves on the PATH the ``shipml`` kernelspec gives a kernel started from a bare desktop (venv *not*
activated), and each ``shipml`` sub-command it calls parses (``--help`` exits 0); (2) in a real kernel, a
failing ``!command`` raises, so the cell fails for nbval, papermill, the browser test and the student.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from shipml.kernel import KERNEL_NAME, resolved_kernel_env

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for d in ("notebooks", "solutions") for p in (ROOT / d).glob("*.ipynb"))
BARE = {"PATH": "/usr/bin:/bin", "HOME": str(ROOT / "build" / "home"), "LANG": "C.UTF-8"}


def _spec():
    return KernelSpecManager().get_kernel_spec(KERNEL_NAME)


def _kernel_env() -> dict[str, str]:
    return resolved_kernel_env(_spec().env, BARE)


def _shell_lines() -> list[tuple[str, str]]:
    found = []
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code":
                found += [(f"{path.parent.name}/{path.name}", line.strip()[1:]) for line in cell.source.splitlines()
                          if line.strip().startswith("!") and not line.strip().startswith("!!")]
    return found


LINES = _shell_lines()


def _program_and_subcommand(line: str) -> tuple[str, list[str]]:
    """``{sys.executable} -m shipml info {x}`` -> (kernel python, [-m, shipml, info]); other ``{...}`` stay opaque."""
    line = line.replace("{sys.executable}", _spec().argv[0]).split(";")[0].split("||")[0].split("|")[0]
    words = shlex.split(line)
    program, rest = words[0], words[1:]
    sub = []
    for word in rest:
        if word.startswith("-") and word != "-m" or "{" in word:
            break
        sub.append(word)
    return program, sub


def test_there_are_shell_lines():
    assert any("shipml info" in line for _, line in LINES)


def test_kernelspec_puts_the_venv_first_and_loads_the_extension():
    spec = _spec()
    venv_bin = Path(spec.argv[0]).parent
    assert spec.env["PATH"].startswith(f"{venv_bin}:"), spec.env
    assert "--ext=shipml.kernel" in spec.argv
    # SHIPML_CACHE_DIR is the machine-wide kit cache (control-plane binaries): the one path meant to be outside build/
    assert not any(v.startswith(str(Path.home())) for k, v in spec.env.items()
                   if k not in ("PATH", "SHIPML_CACHE_DIR")), spec.env


@pytest.mark.parametrize(("where", "line"), LINES, ids=[f"{w}: {line[:50]}" for w, line in LINES])
def test_shell_line_runs_in_the_kernel_environment(where, line):
    env = _kernel_env()
    program, sub = _program_and_subcommand(line)
    found = subprocess.run(["bash", "-c", f"command -v {shlex.quote(program)}"], env=env, capture_output=True,
                           text=True)
    assert found.returncode == 0, f"{where}: `{program}` is not on the kernel's PATH {env['PATH']}"
    if Path(program).name == "shipml" or sub[:2] in (["-m", "shipml"], ["-m", "shipml.edge"]):
        cmd = [program, *sub, "--help"]
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{where}: {' '.join(cmd)} -> {done.returncode}\n{done.stdout}{done.stderr}"


@pytest.mark.slow
def test_a_failing_shell_command_fails_its_cell():
    """A real ``shipml`` kernel, started from a bare PATH: ``!shipml --help`` works, ``!false`` raises."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name=KERNEL_NAME, env=BARE, cwd=str(ROOT))
    try:
        def run(code: str) -> tuple[str, str]:
            out: list[str] = []
            reply = kc.execute_interactive(code, timeout=60, output_hook=lambda m: out.append(
                m["content"].get("text", "") + m["content"].get("evalue", "")))
            return reply["content"]["status"], "".join(out)

        status, out = run("!shipml --help")
        assert status == "ok" and "Usage" in out, out
        status, out = run("!false")
        assert status == "error" and "exited with status 1" in out, out
        status, out = run("!no-such-command-here")
        assert status == "error" and "command not found" in out, out
        status, out = run('!false; echo "exit status $?"')
        assert status == "ok" and "exit status 1" in out, out
        status, out = run("import os; print(os.environ['MPLCONFIGDIR'], os.environ['TMPDIR'])")
        assert status == "ok" and str(ROOT / "build") in out, out
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_the_interpreter_is_the_venvs():
    assert Path(_spec().argv[0]).parent == Path(sys.executable).parent
