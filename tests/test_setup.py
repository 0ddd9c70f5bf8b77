"""The two commands of the README do what it says."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _dry_run(target: str) -> str:
    return subprocess.run(["make", "-n", "-C", str(ROOT), target], capture_output=True, text=True,
                          check=True).stdout


def test_make_lab_opens_jupyterlab_on_notebooks():
    assert "jupyter lab notebooks/" in _dry_run("lab")


def test_make_test_runs_everything():
    readme = (ROOT / "README.md").read_text()
    assert "make lab" in readme and "make test" in readme
    makefile = (ROOT / "Makefile").read_text()
    for step in ("ruff check", "labs build --check", "--nbval-lax"):
        assert step in makefile
    assert re.search(r"pytest [^\n]*tests$", makefile, re.M), "make unit runs pytest over tests/"


def test_ci_calls_make_test():
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_shipml_kernel_is_registered():
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("shipml")
    assert spec.display_name == "Python (shipml)"
    assert spec.argv[0] == str(ROOT / ".venv" / "bin" / "python")  # the kit's venv, not another Python
