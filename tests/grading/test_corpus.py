"""The adversarial corpus: every submission gets exactly the expected row (points, statuses, status, detail).

Regenerated from the lab and its solution by corpus/make_corpus.py, graded with the real CLI
(``--jobs 2 --timeout 45 --wall-timeout 150``: generous for a shared machine; hidden checks from
corpus/hidden_lab00.py).
"""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import nbformat
import pytest
from shipml.cli import main

HERE = Path(__file__).resolve().parent / "corpus"
ARGS = ["--jobs", "2", "--timeout", "45", "--wall-timeout", "150", "--quiet", "--hidden", str(HERE / "hidden_lab00.py")]


def _corpus(folder: Path, lab: str = "lab00") -> list[Path]:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_corpus", HERE / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write(folder, lab)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
@pytest.mark.notebooks
def test_corpus_gradebook_is_exactly_as_expected(tmp_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    written = _corpus(subs)
    assert main(["grade", "lab00", str(subs), "--out", str(out), *ARGS]) == 0
    expected = _rows(HERE / "expected_gradebook.csv")
    got = _rows(out / "gradebook.csv")
    assert [r["student"] for r in got] == sorted(p.stem for p in written)
    assert got == expected, "\n".join(f"{g}\n  expected {e}" for g, e in zip(got, expected, strict=True) if g != e)

    # feedback for everyone, hidden-check details nowhere in it
    for row in got:
        text = (out / "feedback" / "lab00" / f"{row['student']}.md").read_text()
        assert f"**Score: {row['total']} / {row['max_total']}**" in text
        assert "SECRET" not in text and "probabilities vary" not in text and "names the changed" not in text
    # executed notebooks for review, outputs capped
    executed = out / "executed" / "lab00"
    assert (executed / "gigantic_output.ipynb").stat().st_size < 1_000_000
    assert nbformat.read(executed / "correct.ipynb", as_version=4).metadata["papermill"]["parameters"]["seed"] == 0

    # re-running (here: two resubmissions) replaces rows instead of adding them
    again = tmp_path / "again"
    again.mkdir()
    shutil.copy(subs / "empty_file.ipynb", again / "correct.ipynb")
    shutil.copy(subs / "malformed_json.ipynb", again / "empty.ipynb")
    assert main(["grade", "lab00", str(again), "--out", str(out), *ARGS]) == 0
    rerun = {r["student"]: r for r in _rows(out / "gradebook.csv")}
    assert len(rerun) == len(got)
    assert rerun["correct"]["status"] == "invalid" and rerun["correct"]["total"] == "0"
    assert rerun["partly_correct"] == next(r for r in got if r["student"] == "partly_correct")


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.parametrize("lab", ["lab01", "lab05"])
def test_weak_check_attacks_earn_nothing(lab, tmp_path):
    """Issue 12's weak checks: lab01's chunk loop that reads the whole file at once, lab05's duck-typed
    session answering 0.5 (lab00's literal "sha256" is the corpus case refusal_literal_sha256)."""
    subs, out = tmp_path / "subs", tmp_path / "out"
    written = _corpus(subs, lab)
    args = ["--jobs", "2", "--timeout", "240", "--wall-timeout", "900", "--quiet"]
    assert main(["grade", lab, str(subs), "--out", str(out), *args]) == 0
    got = _rows(out / "gradebook.csv")
    assert [r["student"] for r in got] == sorted(p.stem for p in written)
    expected = _rows(HERE / f"expected_gradebook_{lab}.csv")
    assert got == expected, "\n".join(f"{g}\n  expected {e}" for g, e in zip(got, expected, strict=True) if g != e)


def test_cli_mistakes_are_one_line(tmp_path, capsys):
    assert main(["grade", "lab99", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    assert "no lab 'lab99'" in capsys.readouterr().err
    assert main(["grade", "lab00", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    assert "no submissions" in capsys.readouterr().err
    assert main(["grade", "lab00", str(tmp_path), "--out", str(tmp_path / "o"), "--sandbox", "vm"]) == 1
    assert "--sandbox" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.docker
def test_docker_sandbox_grades_without_network(tmp_path, docker_engine):
    subs = tmp_path / "subs"
    _corpus(tmp_path / "all")
    subs.mkdir()
    shutil.copy(tmp_path / "all" / "os_exit.ipynb", subs / "os_exit.ipynb")
    nb = nbformat.read(tmp_path / "all" / "correct.ipynb", as_version=4)
    for cell in nb.cells:  # the correct answers, plus a probe: no network interface but loopback (no traffic)
        if cell.id == "answer-data":
            cell.source += ("\nimport socket\nif [n for _, n in socket.if_nameindex() if n != 'lo']:\n"
                            "    df = None  # a network interface exists: this answer then fails")
    nbformat.write(nb, subs / "correct.ipynb")
    out = tmp_path / "out"
    assert main(["grade", "lab00", str(subs), "--out", str(out), "--sandbox", "docker", "--jobs", "2",
                 "--timeout", "60", "--wall-timeout", "300", "--quiet"]) == 0
    rows = {r["student"]: r for r in _rows(out / "gradebook.csv")}
    assert (rows["correct"]["total"], rows["correct"]["status"]) == ("5", "ok"), rows["correct"]
    assert (rows["os_exit"]["total"], rows["os_exit"]["status"]) == ("3", "exited")
