"""The adversarial corpus: every submission gets exactly the expected row, with the default sandbox.

The cases are regenerated from each lab and its solution by corpus/make_corpus.py (the attacks' code is
corpus/attacks.py) and graded with the real CLI typed as an instructor would, with relative paths from
the folder that holds them (``--jobs 2 --timeout 90 --wall-timeout 180``: ten times a lab00 run on a quiet
machine; lab01 and lab05 ``--timeout 240 --wall-timeout 900``: their setup trains models; hidden checks
from corpus/hidden_lab00.py). After each run: nothing outside the job folders
changed (the checkout's package, labs/, solutions/, the submissions, the hidden checks), no process of a
submission survives, and no feedback was rewritten.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import shutil
import subprocess
import time
from pathlib import Path

import nbformat
import psutil
import pytest
from shipml.cli import main
from shipml.grading.sandbox import UID_BASE, UID_SPAN

HERE = Path(__file__).resolve().parent / "corpus"
ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--jobs", "2", "--timeout", "90", "--wall-timeout", "180", "--quiet"]
LAB_ARGS = {"lab00": ARGS, "lab01": ["--jobs", "2", "--timeout", "240", "--wall-timeout", "900", "--quiet"],
            "lab05": ["--jobs", "2", "--timeout", "240", "--wall-timeout", "900", "--quiet"]}
LABS = ["lab00", "lab01", "lab05"]


def _corpus(folder: Path, lab: str) -> list[Path]:
    spec = importlib.util.spec_from_file_location("make_corpus", HERE / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write(folder, lab)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def _tree_hash(*folders: Path) -> dict[str, str]:
    out = {}
    for folder in folders:
        files = [folder] if folder.is_file() else sorted(p for p in folder.rglob("*") if p.is_file()
                                                         and "__pycache__" not in p.parts)
        for p in files:
            out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _sandbox_processes() -> list[str]:
    """Processes running as a grading slot's uid (docker and bwrap alike), and grader containers."""
    left = []
    for p in psutil.process_iter(["uids", "cmdline", "pid"]):
        uids = p.info["uids"]
        if uids and UID_BASE <= uids.real < UID_BASE + UID_SPAN:
            left.append(f"pid {p.info['pid']}: {' '.join(p.info['cmdline'] or [])[:120]}")
    if shutil.which("docker"):
        done = subprocess.run(["docker", "ps", "-q", "--filter", "label=io.shipml.owner=grader"],
                              capture_output=True, text=True, timeout=60)
        left += [f"container {c}" for c in done.stdout.split()]
    return left


def grade_corpus(lab: str, where: Path, monkeypatch) -> tuple[list[dict[str, str]], float]:
    """Grade ``lab``'s corpus from ``where`` with relative paths; check what must not have changed."""
    monkeypatch.chdir(where)
    _corpus(where / "subs", lab)
    shutil.copy(HERE / "hidden_lab00.py", where / "hidden_lab00.py")
    hidden = ["--hidden", "hidden_lab00.py"] if lab == "lab00" else []
    watched = [ROOT / "shared" / "shipml", ROOT / "labs", ROOT / "solutions", where / "subs", where / "hidden_lab00.py"]
    before = _tree_hash(*watched)
    started = time.monotonic()
    assert main(["grade", lab, "subs", "--out", "out", *LAB_ARGS[lab], *hidden]) == 0
    seconds = time.monotonic() - started
    assert _tree_hash(*watched) == before, "a submission changed files outside its job folder"
    deadline = time.monotonic() + 10
    while _sandbox_processes() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _sandbox_processes(), _sandbox_processes()
    got = _rows(where / "out" / "gradebook.csv")
    for row in got:
        text = (where / "out" / "feedback" / lab / f"{row['student'].lstrip(chr(39))}.md").read_text()
        assert f"**Score: {row['total']} / {row['max_total']}**" in text, "feedback rewritten"
        assert "SECRET" not in text and "probabilities vary" not in text and "names the changed" not in text
    return got, seconds


def _diff(got: list[dict], expected: list[dict]) -> str:
    g, e = {r["student"]: r for r in got}, {r["student"]: r for r in expected}
    lines = [f"missing: {sorted(set(e) - set(g))}", f"unexpected: {sorted(set(g) - set(e))}"]
    for name in sorted(set(g) & set(e)):
        if g[name] != e[name]:
            lines.append(f"{name}:\n  got      {g[name]}\n  expected {e[name]}")
    return "\n".join(lines)


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.timeout(2400)  # a whole corpus (48 lab00 notebooks, one stuck for its 180 s wall clock) at --jobs 2
@pytest.mark.parametrize("lab", LABS)
def test_corpus_gradebook_is_exactly_as_expected(lab, tmp_path, monkeypatch):
    got, seconds = grade_corpus(lab, tmp_path, monkeypatch)
    expected = _rows(HERE / f"expected_{lab}.csv")
    print(f"{lab}: {len(got)} rows in {seconds:.0f}s")
    assert got == expected, _diff(got, expected)
    if lab != "lab00":
        return
    executed = tmp_path / "out" / "executed" / "lab00"
    assert (executed / "gigantic_output.ipynb").stat().st_size < 1_000_000  # outputs capped
    assert nbformat.read(executed / "correct.ipynb", as_version=4).metadata["papermill"]["parameters"]["seed"] == 0
    notes = (tmp_path / "out" / "feedback" / "lab00" / "helper_cell_added.md").read_text()
    assert "Notes from the grader" in notes and "were not run" in notes

    # re-running (here: two resubmissions) replaces rows instead of adding them
    again = tmp_path / "again"
    again.mkdir()
    shutil.copy(tmp_path / "subs" / "empty_file.ipynb", again / "correct.ipynb")
    shutil.copy(tmp_path / "subs" / "malformed_json.ipynb", again / "empty.ipynb")
    assert main(["grade", "lab00", "again", "--out", "out", *ARGS, "--hidden", "hidden_lab00.py"]) == 0
    rerun = {r["student"]: r for r in _rows(tmp_path / "out" / "gradebook.csv")}
    assert len(rerun) == len(got)
    assert rerun["correct"]["status"] == "invalid" and rerun["correct"]["total"] == "0"
    assert rerun["partly_correct"] == next(r for r in got if r["student"] == "partly_correct")


ESCAPES = ["correct", "network", "daemon", "fill_job_folder", "read_solutions", "copycat"]


@pytest.mark.slow
@pytest.mark.notebooks
@pytest.mark.parametrize("sandbox", ["bwrap", "docker"])
def test_each_sandbox_holds_against_the_escapes(sandbox, tmp_path, monkeypatch):
    """The default picks one sandbox; the other one must hold as well (same rows as the corpus)."""
    from shipml.grading.sandbox import bwrap_unavailable, docker_unavailable

    why = bwrap_unavailable() if sandbox == "bwrap" else docker_unavailable()
    if why:
        pytest.skip(why)
    monkeypatch.chdir(tmp_path)
    _corpus(tmp_path / "all", "lab00")
    (tmp_path / "subs").mkdir()
    for name in ESCAPES:
        shutil.copy(tmp_path / "all" / f"{name}.ipynb", tmp_path / "subs")
    before = _tree_hash(ROOT / "shared" / "shipml", ROOT / "labs", ROOT / "solutions", tmp_path / "all")
    assert main(["grade", "lab00", "subs", "--out", "out", *ARGS, "--sandbox", sandbox]) == 0
    assert _tree_hash(ROOT / "shared" / "shipml", ROOT / "labs", ROOT / "solutions", tmp_path / "all") == before
    assert not _sandbox_processes()
    expected = {r["student"]: r for r in _rows(HERE / "expected_lab00.csv")}
    strip = ("hidden_", "max_total", "total")  # this run has no hidden checks
    for row in _rows(tmp_path / "out" / "gradebook.csv"):
        want = {k: v for k, v in expected[row["student"]].items() if not k.startswith(strip)}
        assert {k: v for k, v in row.items() if not k.startswith(strip)} == want, row["student"]


def test_cli_mistakes_are_one_line(tmp_path, capsys):
    assert main(["grade", "lab99", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    assert "no lab 'lab99'" in capsys.readouterr().err
    assert main(["grade", "lab00", str(tmp_path), "--out", str(tmp_path / "o")]) == 1
    assert "no submissions" in capsys.readouterr().err
    assert main(["grade", "lab00", str(tmp_path), "--out", str(tmp_path / "o"), "--sandbox", "vm"]) == 1
    assert "--sandbox" in capsys.readouterr().err
