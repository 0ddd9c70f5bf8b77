"""The README's two commands do what it says: run for real, in a scratch copy of the repository's
Makefile and CI script that uses this checkout's virtual environment (so nothing is reinstalled)."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from shipml.waiting import wait_for_log, wait_until

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.executable).parent.parent


@pytest.fixture
def scratch(tmp_path) -> Path:
    """A folder with the repository's Makefile and install inputs (mtimes kept: `install` is up to date)."""
    stamp = (VENV / ".installed").stat().st_mtime
    for name in ("Makefile", "pyproject.toml", "constraints.txt"):
        shutil.copy2(ROOT / name, tmp_path / name)
        os.utime(tmp_path / name, (stamp - 1, stamp - 1))  # older than the install: make never reinstalls
    (tmp_path / ".venv").symlink_to(VENV, target_is_directory=True)
    (tmp_path / "tests").mkdir()
    return tmp_path


def _make(folder: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["make", "--no-print-directory", "-C", str(folder), *args], capture_output=True,
                          text=True, timeout=timeout)


def test_make_unit_runs_the_tests_folder_and_fails_when_a_test_fails(scratch):
    (scratch / "tests" / "test_passes.py").write_text("def test_passes():\n    assert True\n")
    ok = _make(scratch, "unit")
    assert ok.returncode == 0 and "1 passed" in ok.stdout, ok.stdout + ok.stderr
    (scratch / "tests" / "test_fails.py").write_text("def test_fails():\n    assert 1 == 2\n")
    failed = _make(scratch, "unit")
    assert failed.returncode != 0 and "test_fails.py" in failed.stdout and "1 failed" in failed.stdout


def test_make_test_stops_at_a_lint_error_before_running_anything_else(scratch):
    (scratch / "tests" / "test_passes.py").write_text("import os\n\n\ndef test_passes():\n    assert True\n")
    run = _make(scratch, "test")
    assert run.returncode != 0
    assert "F401" in run.stdout and "`os` imported but unused" in run.stdout, run.stdout + run.stderr
    assert "passed" not in run.stdout  # ruff runs first and stops the chain


def test_ci_installs_then_runs_setup_scripts_then_make_test(tmp_path):
    """`.ci/run` on a scratch tree whose `make` records what it is asked for."""
    (tmp_path / ".ci" / "setup.d").mkdir(parents=True)
    shutil.copy2(ROOT / ".ci" / "run", tmp_path / ".ci" / "run")
    log = tmp_path / "calls.log"
    (tmp_path / ".ci" / "setup.d" / "50-probe.sh").write_text(f"echo setup >> {log}\n")
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "make").write_text(f"#!/bin/sh\necho \"make $*\" >> {log}\n")
    (tools / "make").chmod(0o755)
    env = {**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run(["bash", str(tmp_path / ".ci" / "run")], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    assert log.read_text().splitlines() == ["make install", "setup", "make test"]


@pytest.mark.slow
def test_make_lab_serves_the_repository_root_and_passes_lab_flags(scratch):
    """`make lab` starts JupyterLab at the root (notebooks/ and labs/ both reachable), with the course's
    config from jupyter/ and the port, token and --no-browser from LAB_FLAGS (as root: --allow-root)."""
    for folder, name in (("notebooks", "00_probe.ipynb"), ("labs", "lab00_probe.ipynb")):
        (scratch / folder).mkdir()
        (scratch / folder / name).write_text('{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}')
    shutil.copytree(ROOT / "jupyter", scratch / "jupyter")
    flags = "--no-browser --port=0 --ServerApp.ip=127.0.0.1 --IdentityProvider.token=probe-token"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_")}
    log = scratch / "lab.log"
    with open(log, "w") as out:
        lab = subprocess.Popen(["make", "--no-print-directory", "-C", str(scratch), "lab", f"LAB_FLAGS={flags}"],
                               stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        base = wait_for_log(lab, log, r"http://127\.0\.0\.1:\d+/", timeout=120, interval=0.5, what="make lab")[0]
        token = {"token": "probe-token"}
        contents = wait_until(lambda: httpx.get(f"{base}api/contents", params=token, timeout=5),
                              timeout=60, interval=0.5, what="the contents API", retry_on=(httpx.HTTPError,))
        names = {item["name"] for item in contents.json()["content"]}
        assert {"notebooks", "labs", "jupyter"} <= names, names  # the root, not notebooks/
        lab00 = httpx.get(f"{base}api/contents/labs/lab00_probe.ipynb", params=token, timeout=10)
        assert lab00.status_code == 200
        specs = httpx.get(f"{base}api/kernelspecs", params=token, timeout=10).json()
        assert list(specs["kernelspecs"]) == ["shipml"] and specs["default"] == "shipml"  # one kernel in the launcher
        page = httpx.get(f"{base}lab", params=token, timeout=10).text
        assert "@jupyterlab/apputils-extension:announcements" in page  # listed as disabled: no news pop-up
        assert (scratch / "build" / "jupyter" / "runtime").is_dir()  # Jupyter's files under build/, not ~
        assert ("--allow-root" in log.read_text()) == (os.getuid() == 0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(lab.pid, signal.SIGTERM)
        try:
            lab.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(lab.pid, signal.SIGKILL)
            lab.wait(timeout=10)


def test_notebooks_go_through_nbstripout_keeping_cell_ids():
    """The git filter make install sets strips outputs but keeps cell ids (labs and the grader use them)."""
    assert "*.ipynb filter=nbstripout" in (ROOT / ".gitattributes").read_text()
    dry = subprocess.run(["make", "-n", "-C", str(ROOT), "git-filters"], capture_output=True, text=True).stdout
    assert "filter.nbstripout.clean" in dry and ".venv/bin/nbstripout --keep-id" in dry, dry
    nb = (ROOT / "notebooks" / "00_welcome.ipynb").read_text()
    stripped = subprocess.run([str(VENV / "bin" / "nbstripout"), "--keep-id"], input=nb, capture_output=True,
                              text=True, check=True).stdout
    assert '"id": "parameters"' in stripped


def test_shipml_kernel_is_registered():
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("shipml")
    assert spec.display_name == "Python (shipml)"
    assert spec.env["PATH"] == f"{VENV / 'bin'}:${{PATH}}"  # `!shipml ...` works in a notebook
    assert all(spec.env[k].startswith(str(ROOT / "build")) for k in ("MPLCONFIGDIR", "XDG_CACHE_HOME", "KUBECACHEDIR"))
    assert spec.argv[0] == str(ROOT / ".venv" / "bin" / "python")  # the kit's venv, not another Python
