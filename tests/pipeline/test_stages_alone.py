"""Stages run one at a time through the CLI (as the workflow runs them), without Docker: train, then the
gates against a deployed version, export; a failed gate is one line, exit 1, and ends the run."""

from __future__ import annotations

import json

import pytest
from shipml.cli import main
from shipml.pipeline.record import RunRecord, latest_run
from shipml.pipeline.state import DeployedState, load_state, save_state


@pytest.fixture
def cli(small):
    """cli(stage, workdir=..., **settings): `shipml pipeline <stage> --set ...`, its exit code."""
    def run(*args: str, workdir, **more) -> int:
        sets = [f"--set={key}={json.dumps(value)}" for key, value in small(workdir, **more).items()]
        return main(["pipeline", *args, *sets])
    return run


def last(workdir) -> RunRecord:
    return RunRecord.load(latest_run(workdir / "runs"))


def test_bad_settings_are_one_line_errors(tmp_path, capsys):
    assert main(["pipeline", "run", "--set", "rows=lots"]) == 1
    assert capsys.readouterr().err.strip() == ("shipml: error: rows: Input should be a valid integer, unable to "
                                               "parse string as an integer (1 problem(s))")
    assert main(["pipeline", "run", "--set", "gates.max_ece=-1"]) == 1
    assert "gates.max_ece: Input should be greater than 0" in capsys.readouterr().err
    assert main(["pipeline", "run", "--config", str(tmp_path / "missing.yaml")]) == 1
    assert "missing.yaml: no such pipeline config file" in capsys.readouterr().err
    (tmp_path / "p.yaml").write_text("rows: [1\n")
    assert main(["pipeline", "run", "--config", str(tmp_path / "p.yaml")]) == 1
    assert "not valid YAML/JSON" in capsys.readouterr().err
    assert main(["pipeline", "run", "--set", "noequals"]) == 1
    assert "write KEY=VALUE" in capsys.readouterr().err


def test_a_stage_without_a_run_says_what_to_run_first(cli, tmp_path, capsys):
    assert cli("evaluate", workdir=tmp_path) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "start one with `shipml pipeline train`" in err


@pytest.mark.slow
def test_train_evaluate_export_alone_then_a_worse_model_is_stopped_at_the_gate(cli, tmp_path, capsys):
    assert cli("train", workdir=tmp_path) == 0
    assert cli("export", workdir=tmp_path) == 1  # evaluate has not passed yet
    assert "stage 'evaluate' has not passed" in capsys.readouterr().err
    good = last(tmp_path)
    assert good.status == "stopped"  # a stage refused out of order ends the run: start again
    assert cli("train", workdir=tmp_path) == 0 and cli("evaluate", workdir=tmp_path) == 0
    assert cli("export", workdir=tmp_path) == 0
    good = last(tmp_path)
    assert [s.name for s in good.stages] == ["train", "evaluate", "export"]
    assert all(s.status == "passed" and s.seconds > 0 for s in good.stages)
    candidate = good.candidate
    assert candidate.version == 1 and len(candidate.bundle_sha256) == 64 and len(candidate.onnx_sha256) == 64
    assert good.stage("export").detail["checks"][0]["name"] == "parity"
    # pretend this one was promoted earlier: the state file is what the next run compares with
    state = DeployedState(model=candidate.name, version=1, bundle=candidate.bundle, image="shipml-serving:x",
                          bundle_sha256=candidate.bundle_sha256, metrics=candidate.metrics, run_id=good.run_id,
                          promoted_at="2026-12-01T00:00:00Z")
    save_state(tmp_path / "deployed.json", state)
    capsys.readouterr()
    assert cli("train", workdir=tmp_path, label_shuffle=1.0) == 0
    assert last(tmp_path).candidate.version == 2
    assert cli("evaluate", workdir=tmp_path, label_shuffle=1.0) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("shipml: error: evaluate: gate roc_auc 0.")
    assert "below the deployed version's 0.8" in err
    bad = last(tmp_path)
    assert (bad.status, bad.stopped_at) == ("stopped", "evaluate") and bad.reason in err
    gates = {c["name"]: c["passed"] for c in bad.stage("evaluate").detail["checks"]}
    assert gates["roc_auc"] is False and "slice card_present=False" in gates
    assert bad.stage("evaluate").detail["compared"].startswith("re-scored fraud-lr v1")
    assert load_state(tmp_path / "deployed.json") == state  # the deployed version is untouched
    assert cli("export", workdir=tmp_path) == 1
    assert "has ended (stopped at evaluate" in capsys.readouterr().err
    assert cli("status", workdir=tmp_path) == 0
    out = capsys.readouterr().out
    assert "fraud-lr v1, image shipml-serving:x" in out and "stopped at evaluate: gate roc_auc" in out
    assert cli("show", workdir=tmp_path) == 0
    assert "evaluate  failed" in capsys.readouterr().out
