"""The doctor decides which course parts run here; notebooks declare what they need."""

import json

import pytest
from shipml import doctor


def _notebook(tmp_path, requires):
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps({"cells": [], "metadata": {"shipml": {"requires": requires}},
                                "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_notebook_without_requirements_runs(tmp_path):
    assert doctor.unmet_requirement(_notebook(tmp_path, [])) is None


def test_missing_docker_engine_gives_the_reason(tmp_path, monkeypatch, refused_port):
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{refused_port}")  # nobody listens there
    reason = doctor.unmet_requirement(_notebook(tmp_path, ["docker"]))
    assert reason and reason.startswith("needs docker: no engine answers")


def test_missing_cluster_gives_the_reason(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no kubectl, no kind, no go
    reason = doctor.unmet_requirement(_notebook(tmp_path, ["cluster"]))
    assert reason == "needs cluster: no kind cluster, and no fake-node control plane: kubectl is not on PATH"


def test_unknown_requirement_is_a_bug_in_the_notebook(tmp_path):
    with pytest.raises(KeyError):
        doctor.unmet_requirement(_notebook(tmp_path, ["gpu"]))
