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
    assert reason.startswith("needs cluster: no kind cluster, no real node and no fake-node control plane")
    assert "fake nodes: no (kubectl is not on PATH)" in reason
    assert "real node: no (" in reason and "kind: no (" in reason


def test_doctor_says_which_clusters_this_machine_can_run():
    options = doctor.cluster_options()
    assert set(options) == {"kind", "real node", "fake nodes"}
    text = doctor.cluster().detail
    for name in options:
        assert f"{name}: " in text


def test_unknown_requirement_is_a_bug_in_the_notebook(tmp_path):
    with pytest.raises(KeyError):
        doctor.unmet_requirement(_notebook(tmp_path, ["gpu"]))


def test_the_real_node_is_switched_off_by_shipml_real_node_0(monkeypatch):
    monkeypatch.setenv("SHIPML_REAL_NODE", "0")
    assert doctor.cluster_options()["real node"] == "switched off (SHIPML_REAL_NODE=0)"
    assert "real node: no (switched off (SHIPML_REAL_NODE=0))" in doctor.cluster().detail
