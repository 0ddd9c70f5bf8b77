"""House rules for notebooks, enforced: no outputs, a parameters cell first, the shipml kernel,
and no function or class that the package also defines (show package code, don't copy it)."""

import ast
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for d in ("notebooks", "solutions", "labs") for p in (ROOT / d).glob("*.ipynb"))
IDS = [str(p.relative_to(ROOT)) for p in NOTEBOOKS]


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _python(source: str) -> str:
    """Drop IPython-only lines (!shell, %magic, obj?) so the rest parses as Python."""
    keep = []
    for line in source.splitlines():
        s = line.strip()
        keep.append("" if s.startswith(("!", "%")) or s.endswith("?") else line)
    return "\n".join(keep)


def _defined_names(tree: ast.AST) -> set[str]:
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)}


def _package_names() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "shared" / "shipml").rglob("*.py"):
        names |= _defined_names(ast.parse(path.read_text()))
    return names


def test_there_are_notebooks():
    assert (ROOT / "notebooks" / "00_welcome.ipynb") in NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(_code_cells(nb)) if c.outputs or c.execution_count]
    assert dirty == [], f"{path.name}: strip outputs (nbstripout) from code cells {dirty}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_valid_and_uses_the_shipml_kernel(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "shipml"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_first_code_cell_is_the_papermill_parameters_cell(path):
    first = _code_cells(nbformat.read(path, as_version=4))[0]
    assert "parameters" in first.metadata.get("tags", []), f"{path.name}: tag the first code cell 'parameters'"


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if p.parent.name != "notebooks"],
                         ids=[i for i in IDS if not i.startswith("notebooks")])
def test_labs_take_seed_and_answers_path(path):
    """papermill (what the grader and CI use) finds both parameters, and the defaults are what a student runs."""
    import papermill

    found = papermill.inspect_notebook(str(path))
    assert {"seed", "answers_path"} <= set(found), f"{path.name}: papermill parameters are {sorted(found)}"
    defaults: dict = {}
    exec(compile(_python(_code_cells(nbformat.read(path, as_version=4))[0].source), str(path), "exec"), defaults)
    assert isinstance(defaults["seed"], int) and defaults["answers_path"] is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=IDS)
def test_no_name_defined_both_in_notebook_and_package(path):
    nb = nbformat.read(path, as_version=4)
    names = set()
    for cell in _code_cells(nb):
        names |= _defined_names(ast.parse(_python(cell.source)))
    assert names & _package_names() == set(), "import it from shipml and show it with shipml.show.source"


@pytest.mark.slow
def test_pre_commit_strips_outputs_and_runs_ruff(tmp_path):
    """The hooks, run by pre-commit itself on a scratch repository: outputs go, ruff's fixes land."""
    import os
    import shutil
    import subprocess
    import sys

    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
           "PRE_COMMIT_HOME": str(tmp_path / "cache"), "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    repo = tmp_path / "repo"
    repo.mkdir()
    shutil.copy(ROOT / ".pre-commit-config.yaml", repo)
    shutil.copy(ROOT / "pyproject.toml", repo)  # ruff's settings
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)", execution_count=1, outputs=[
        nbformat.v4.new_output("stream", name="stdout", text="1\n")])])
    nbformat.write(nb, repo / "dirty.ipynb")
    (repo / "mod.py").write_text("import os\nimport sys\n\nprint(sys.argv)\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], cwd=repo, check=True, env=env)
    subprocess.run([*git, "add", "."], cwd=repo, check=True, env=env)
    run = subprocess.run([sys.executable, "-m", "pre_commit", "run", "--all-files"], cwd=repo, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode != 0, run.stdout  # files were changed: the commit would be stopped
    stripped = nbformat.read(repo / "dirty.ipynb", as_version=4).cells[0]
    assert stripped.outputs == [] and stripped.execution_count is None, run.stdout
    assert (repo / "mod.py").read_text() == "import sys\n\nprint(sys.argv)\n", run.stdout


LESSONS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", LESSONS, ids=[p.name for p in LESSONS])
def test_lesson_opens_with_objectives_and_ends_with_a_recap(path):
    """Learning objectives right after the parameters cell; a recap with "try this next" at the end."""
    cells = nbformat.read(path, as_version=4).cells
    params = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    after = cells[params + 1]
    assert after.cell_type == "markdown" and after.source.startswith("## What you will learn"), \
        f"{path.name}: put '## What you will learn' right after the parameters cell"
    tail = [c.source for c in cells[-2:] if c.cell_type == "markdown"]
    assert any("## Recap" in s and "**Try this next**" in s for s in tail), \
        f"{path.name}: end with a '## Recap' cell that has a '**Try this next**' list"
