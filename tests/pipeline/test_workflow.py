"""The students' workflow: actionlint finds nothing, and every `run:` step calls make targets or shipml
commands that exist (the stages live in the package, the workflow only calls them)."""

from __future__ import annotations

import pytest
from shipml.pipeline import workflow

WORKFLOWS = sorted((workflow.Path(__file__).resolve().parents[2] / ".github" / "workflows").glob("*.yml"))
ROOT = workflow.Path(__file__).resolve().parents[2]


def test_there_is_a_workflow_and_it_runs_the_pipeline_stages_on_a_tag():
    assert [p.name for p in WORKFLOWS] == ["model-pipeline.yml"]
    commands = workflow.run_commands(WORKFLOWS[0])
    assert ("test", "make test") in commands
    stages = [line.split()[2] for job, line in commands if job == "release" and " pipeline " in line]
    assert stages[:6] == ["train", "evaluate", "export", "build", "validate", "smoke"]


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_actionlint_finds_nothing(path):
    if workflow.find_actionlint() is None:
        pytest.skip("actionlint is not built (.ci/setup.d/45-actionlint.sh, needs Go)")
    assert workflow.actionlint(path) == []


def test_actionlint_does_catch_a_broken_workflow(tmp_path):
    if workflow.find_actionlint() is None:
        pytest.skip("actionlint is not built (.ci/setup.d/45-actionlint.sh, needs Go)")
    broken = tmp_path / "broken.yml"
    broken.write_text(WORKFLOWS[0].read_text().replace("runs-on: ubuntu-24.04", "runs-on: ${{ matrix.os }}", 1))
    assert any('property "os" is not defined' in finding for finding in workflow.actionlint(broken))


@pytest.mark.parametrize("path", WORKFLOWS, ids=[p.name for p in WORKFLOWS])
def test_every_run_step_calls_existing_make_targets_or_shipml_commands(path):
    assert workflow.command_problems(path, ROOT / "Makefile") == []


def test_the_command_check_rejects_what_does_not_exist(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  j:\n    runs-on: ubuntu-24.04\n    steps:\n"
                   "      - run: make tset\n      - run: .venv/bin/shipml pipeline deploi\n"
                   "      - run: pip install shipml\n      - run: shipml pipeline\n"
                   "      - run: make test && curl example.org\n      - run: sudo make base-image\n")
    problems = workflow.command_problems(bad, ROOT / "Makefile")
    assert [p.split("`: ")[1] for p in problems] == [
        "no make target tset", "`shipml pipeline` has no command 'deploi'", "runs pip, not make or shipml",
        "`shipml pipeline` needs a sub-command", "one command per line, no shell logic (it belongs in the kit)"]
