"""The kit declares what it imports, pins it in one place, and its base install works on its own.

* every third-party module a part of the package imports (at the top or inside a function) belongs
  to a distribution that part's extras declare in pyproject.toml;
* constraints.txt pins every declared distribution, and the generated files (environment.yml, the
  images' requirements) are up to date (`shipml pins --check`);
* the package installed WITHOUT extras into a fresh virtual environment runs `shipml --help`,
  `shipml doctor` and `shipml info` (everything else imports lazily, and says which extra it needs).
"""

from __future__ import annotations

import ast
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest
from shipml import pins

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "shared" / "shipml"

# Which extras each part may import from (the base install is always allowed). A module not listed
# here belongs to its subpackage's entry, or to the base install when it is a top-level module.
ALLOWED = {
    "shipml.batch": {"batch"},
    "shipml.serving": {"serve", "edge"},  # the API serves ONNX bundles with onnxruntime too
    "shipml.edge": {"edge"},
    "shipml.containers": {"docker"},
    "shipml.cluster": {"cluster", "docker"},
    "shipml.grading": {"grading"},
    "shipml.checks": {"course"},  # instant feedback inside the notebooks
    "shipml.cli": {"course"},  # every command imports its concern lazily (the fresh-venv test proves it)
    "shipml.doctor": {"course"},  # looks for each extra, says which one is missing
    "shipml.labs": {"grading"},
    "shipml.realtime": {"course"},  # matplotlib for the plot only
    "shipml.show": {"course"},  # IPython display in notebooks
    "shipml.pins": {"dev"},  # a maintainer's tool (packaging)
    "shipml.monitoring": {"monitor"},  # scipy tests, prometheus-client gauges, matplotlib reports, httpx clients
    "shipml.diagrams": {"course"},  # the primers' pictures (matplotlib), drawn in notebooks
    "shipml.thresholds": {"course"},  # matplotlib for the plot only
    "shipml.kernel": {"course"},  # installs the course's Jupyter kernel (ipykernel)
    "shipml.pipeline": {"docker", "cluster"},  # the image build and smoke test (Docker SDK, httpx), manifests
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _allowed_extras(module: str) -> set[str]:
    for prefix in sorted(ALLOWED, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return {"base", *ALLOWED[prefix]}
    return {"base"}


def _third_party_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("shipml", "__future__")}


def _declared_names(groups: set[str]) -> set[str]:
    return {pins.canonical(pins._requirement(r).name) for r in pins.expand_groups(sorted(groups), ROOT)}


def test_every_import_is_declared_by_the_extras_of_its_part():
    providers = importlib.metadata.packages_distributions()
    undeclared = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        allowed = _declared_names(_allowed_extras(module))
        for top in sorted(_third_party_imports(path)):
            if (path.parent / f"{top}.py").exists():
                continue  # a sibling module imported by its bare name where it is staged alone (grading.worker)
            dists = {pins.canonical(d) for d in providers.get(top, [])}
            if not dists:
                undeclared.append(f"{module}: imports {top}, which no installed distribution provides")
            elif not dists & allowed:
                undeclared.append(f"{module}: imports {top} ({', '.join(sorted(dists))}), not declared by "
                                  f"{sorted(_allowed_extras(module))}")
    assert undeclared == []


def test_the_scan_sees_lazy_imports():
    """The check above is not vacuous: a function-local import is found (doctor's cluster check)."""
    assert "typer" in _third_party_imports(PACKAGE / "cli" / "labs.py")
    assert "threadpoolctl" in _third_party_imports(PACKAGE / "batch" / "engine.py")  # inside score()


def test_pins_are_one_list_and_the_generated_files_are_current():
    assert pins.problems(ROOT) == []


def test_pins_check_catches_a_stale_file_and_an_unpinned_dependency(tmp_path):
    for name in ("pyproject.toml", "constraints.txt", "environment.yml"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    (tmp_path / "deploy" / "docker").mkdir(parents=True)
    for path in (ROOT / "deploy" / "docker").glob("requirements-*.txt"):
        (tmp_path / "deploy" / "docker" / path.name).write_text(path.read_text())
    assert pins.problems(tmp_path, environment=False) == []
    edge = tmp_path / "deploy" / "docker" / "requirements-edge.txt"
    edge.write_text(edge.read_text().replace("onnxruntime==", "onnxruntime==0.0.1\n# was "))
    assert pins.problems(tmp_path, environment=False) == ["deploy/docker/requirements-edge.txt is stale"]
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("".join(line for line in constraints.read_text().splitlines(keepends=True)
                                   if not line.startswith("tqdm==")))
    found = pins.problems(tmp_path, environment=False)
    assert "image batch: no pin in constraints.txt for tqdm" in found
    assert any(p.startswith("tqdm (base) has no pin") for p in found), found


def test_the_conda_environment_installs_through_the_constraints():
    import yaml

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert "python=3.11" in env["dependencies"]
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert pip == ["-c constraints.txt", "-e .[course,dev]"]


@pytest.mark.slow
def test_the_base_install_alone_runs_help_doctor_and_info(tmp_path, lr_bundle):
    """pip (with its cache) installs the kit without extras into a new venv: the CLI still works."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    install = subprocess.run(  # a regular (not editable) install: what a user of the package gets
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
         "-c", str(ROOT / "constraints.txt"), str(ROOT)], capture_output=True, text=True, timeout=900)
    assert install.returncode == 0, install.stderr[-3000:]
    installed = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "list", "--format=freeze"],
                               capture_output=True, text=True, check=True).stdout
    for extra_only in ("fastapi", "onnxruntime", "docker", "kubernetes-validate", "dask", "papermill"):
        assert f"\n{extra_only}==" not in f"\n{installed.lower()}", f"{extra_only} came with the base install"
    shipml = str(venv / "bin" / "shipml")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([shipml, *args], capture_output=True, text=True, timeout=120, cwd=tmp_path)

    helped = run("--help")
    assert helped.returncode == 0 and "serve" in helped.stdout and "cluster" in helped.stdout, helped.stderr
    doctor = run("doctor")
    assert doctor.returncode == 0, doctor.stderr
    assert "the 'docker' extra is not installed" in doctor.stdout
    assert "the 'cluster' extra is not installed" in doctor.stdout
    assert "02 REST serving" in doctor.stdout and "needs the 'course' extra" in doctor.stdout
    info = run("info", str(lr_bundle))
    assert info.returncode == 0 and "hashes: ok" in info.stdout, info.stderr
    served = run("serve", "--help")
    assert served.returncode == 0, served.stderr  # help needs no server packages either
