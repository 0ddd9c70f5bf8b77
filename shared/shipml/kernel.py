"""The course's Jupyter kernel and server environment: one place that says where things live.

`make install` registers the ``shipml`` kernel with :func:`install_kernelspec`; `make lab` starts
JupyterLab with :func:`server_env`. The kernel's ``env`` puts the venv's ``bin/`` first on ``PATH``
(so ``!shipml info`` works in a notebook, whichever shell started JupyterLab) and points every cache
the course's libraries write (matplotlib's fonts, onnxruntime's device id under ``~/.cache``,
kubectl's discovery cache, IPython's history, temporary folders) into the repository's ``build/``
folder, so running the course leaves nothing in the home folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

KERNEL_NAME = "shipml"
DISPLAY_NAME = "Python (shipml)"


def build_dir(root: Path) -> Path:
    return Path(root) / "build"


def cache_env(root: Path) -> dict[str, str]:
    """Environment variables that keep the course's caches under ``build/`` (created on demand)."""
    build = build_dir(root)
    return {
        "MPLCONFIGDIR": str(build / "home" / "matplotlib"),  # matplotlib's font cache
        "XDG_CACHE_HOME": str(build / "home" / "cache"),  # onnxruntime's ~/.cache/Microsoft, pip, others
        "KUBECACHEDIR": str(build / "home" / "kube-cache"),  # kubectl's ~/.kube/cache
        "IPYTHONDIR": str(build / "home" / "ipython"),  # the kernel's history database
        "TMPDIR": str(build / "tmp"),  # scratch folders of notebooks and servers
    }


def kernel_env(root: Path, venv_bin: Path) -> dict[str, str]:
    """The kernelspec's ``env``: the venv first on PATH (``${PATH}`` is filled in by jupyter_client)."""
    return {"PATH": f"{venv_bin}:${{PATH}}", **cache_env(root)}


def server_env(root: Path) -> dict[str, str]:
    """What `make lab` sets for JupyterLab: the course's config (``jupyter/``) and Jupyter's own files in build/."""
    build = build_dir(root)
    return {
        "JUPYTER_CONFIG_PATH": str(Path(root) / "jupyter"),
        "JUPYTER_CONFIG_DIR": str(build / "jupyter" / "config"),
        "JUPYTER_DATA_DIR": str(build / "jupyter" / "data"),
        "JUPYTER_RUNTIME_DIR": str(build / "jupyter" / "runtime"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }


class ShellCommandFailed(RuntimeError):
    """A notebook's ``!command`` exited non-zero: the cell fails, so nbval, papermill and you all see it."""


def load_ipython_extension(ip: Any) -> None:
    """Make ``!cmd`` raise when the command fails (IPython only stores the status in ``_exit_code``).

    Loaded by the ``shipml`` kernel (``--ext=shipml.kernel`` in its argv). A lesson that shows a failing
    command on purpose ends the line with ``; echo "exit status $?"``, which makes the status visible."""
    run = ip.system

    def system(cmd: str) -> None:
        run(cmd)
        status = ip.user_ns.get("_exit_code", 0)
        if status:
            raise ShellCommandFailed(f"!{cmd.strip()}  exited with status {status}"
                                     + (" (command not found: is the venv's bin/ on PATH?)" if status == 127 else ""))

    ip.system = system


def make_dirs(root: Path) -> None:
    """Create the cache folders (some tools refuse a folder that does not exist)."""
    for value in [*cache_env(root).values(), *list(server_env(root).values())[1:4]]:
        Path(value).mkdir(parents=True, exist_ok=True)


def install_kernelspec(root: Path, prefix: str = sys.prefix) -> Path:
    """Register the ``shipml`` kernel in this venv (``--sys-prefix``), with :func:`kernel_env`."""
    from ipykernel.kernelspec import install

    venv_bin = Path(sys.executable).parent
    path = Path(install(kernel_name=KERNEL_NAME, display_name=DISPLAY_NAME, prefix=prefix))
    spec = json.loads((path / "kernel.json").read_text())
    spec["argv"][0] = str(venv_bin / "python")  # the venv's python, not the interpreter it links to
    spec["argv"].append("--ext=shipml.kernel")  # a failing `!command` fails its cell
    spec["env"] = kernel_env(root, venv_bin)
    (path / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n")
    make_dirs(root)
    return path


def resolved_kernel_env(spec_env: dict[str, str], base: dict[str, str]) -> dict[str, str]:
    """The environment a kernel process gets: ``base`` updated with the spec's env, ``${VAR}`` filled in
    (what jupyter_client's local provisioner does)."""
    from string import Template

    return {**base, **{k: Template(v).safe_substitute(base) for k, v in spec_env.items()}}


if __name__ == "__main__":  # python -m shipml.kernel ROOT  (make install)
    print(install_kernelspec(Path(sys.argv[1]).resolve()))
