"""shipml.timing: the figures' sampling and where they were measured (every benchmark writes through it)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from shipml.timing import Measurement, describe, percentiles, time_calls, write_results

ROOT = Path(__file__).resolve().parent.parent


def test_time_calls_warms_up_then_times_each_call():
    seen = []
    samples = time_calls(seen.append, 7, warmup=3)
    assert len(samples) == 7 and seen == [0, 1, 2, *range(7)] and (samples >= 0).all()
    assert percentiles([1.0, 2.0, 3.0, 4.0], (50,)) == [2.5]
    with pytest.raises(ValueError):
        percentiles([])


def test_a_measurement_records_the_commit_and_the_load_at_both_ends(tmp_path):
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()
    measurement = Measurement()
    out = tmp_path / "results" / "bench_x.json"

    def table(doc: dict) -> str:
        return f"| rps |\n|---|\n| {doc['rps']} |\n\n{describe(doc['context'])}\n"

    document = measurement.write({"rps": 1234.5, "path": tmp_path}, out, markdown=table)
    written = json.loads(out.read_text())
    assert written == json.loads(json.dumps(document, default=str)) and written["path"] == str(tmp_path)
    context = written["context"]
    assert context["commit"] == head and len(context["load_average"]) == len(context["load_average_after"]) == 3
    assert context["measured_at"] <= context["finished_at"] and "cores" in context["machine"]
    table = out.with_suffix(".md").read_text()
    assert table.startswith("| rps |") and f"Commit {head}" in table and "at the end" in table


def test_results_go_where_they_are_asked_and_nowhere_else(tmp_path):
    assert write_results({"a": 1}, None, markdown="# t\n") == []  # no --json: nothing written
    md = tmp_path / "elsewhere" / "table.md"
    assert write_results({"a": 1}, tmp_path / "r.json", markdown="# t\n", md_path=md) == [tmp_path / "r.json", md]
    assert not (tmp_path / "r.md").exists() and md.read_text() == "# t\n"
