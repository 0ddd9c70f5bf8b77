"""The two commands of the README do what it says."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _dry_run(target: str) -> str:
    return subprocess.run(["make", "-n", "-C", str(ROOT), target], capture_output=True, text=True,
                          check=True).stdout


def test_make_lab_serves_the_repository_root_with_the_course_config():
    """The file browser starts at the root (notebooks/, labs/, solutions/); root gets --allow-root;
    LAB_FLAGS reaches jupyter; the course config in jupyter/ is on the config path."""
    import os

    dry = subprocess.run(["make", "-n", "-C", str(ROOT), "lab", "LAB_FLAGS=--no-browser --port=1"],
                         capture_output=True, text=True, check=True).stdout
    line = next(x for x in dry.splitlines() if "jupyter lab" in x)
    assert "notebooks/" not in line and line.rstrip().endswith("--no-browser --port=1")
    assert ("--allow-root" in line) == (os.getuid() == 0)
    assert f"JUPYTER_CONFIG_PATH={ROOT}/jupyter" in line and f"JUPYTER_CONFIG_DIR={ROOT}/build/" in line


def test_course_jupyter_config_hides_other_kernels_and_the_news():
    import json

    server = json.loads((ROOT / "jupyter" / "jupyter_server_config.json").read_text())
    assert server["KernelSpecManager"]["allowed_kernelspecs"] == ["shipml"]
    assert server["KernelSpecManager"]["ensure_native_kernel"] is False
    page = json.loads((ROOT / "jupyter" / "labconfig" / "page_config.json").read_text())
    assert page["disabledExtensions"]["@jupyterlab/apputils-extension:announcements"] is True


def test_notebooks_go_through_nbstripout():
    assert "*.ipynb filter=nbstripout" in (ROOT / ".gitattributes").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "filter.nbstripout.clean" in makefile and "git-filters" in makefile


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
    assert spec.env["PATH"] == f"{ROOT / '.venv' / 'bin'}:${{PATH}}"  # `!shipml ...` works in a notebook
    assert all(spec.env[k].startswith(str(ROOT / "build")) for k in ("MPLCONFIGDIR", "XDG_CACHE_HOME", "KUBECACHEDIR"))
