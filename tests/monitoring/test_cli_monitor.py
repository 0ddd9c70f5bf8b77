"""``shipml monitor drift|performance`` typed as a user would, from the repo root, with relative paths."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pandas as pd
import pytest
from shipml.data import SCHEMA, make_transactions
from shipml.monitoring.predlog import PredictionLog


def _write_log(directory, predictor, frames, model="fraud-lr", version=1):
    log = PredictionLog(directory, SCHEMA, queue_rows=1_000_000)
    for frame in frames:
        proba = predictor.predict_proba(frame[SCHEMA.names])
        columns = {n: frame[n].to_numpy() for n in SCHEMA.names}
        log.record_columns("tx-" + frame["id"].astype(str), model, version, columns, proba[:, 1], proba.argmax(axis=1),
                           block=True)
    log.close()


def shipml(*args, cwd):
    return subprocess.run([sys.executable, "-m", "shipml", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, lr_bundle):
    from shipml.predictor import load_predictor

    root = tmp_path_factory.mktemp("cli")
    shutil.copytree(lr_bundle, root / "models" / "fraud-lr" / "1")
    predictor = load_predictor(lr_bundle)
    calm = make_transactions(6000, seed=60)
    drifted = make_transactions(6000, seed=61, drift=1.0, start_id=6000)
    _write_log(root / "log", predictor, [calm, drifted])
    labels = pd.concat([calm, drifted])[["id", "is_fraud"]].rename(columns={"is_fraud": "label"})
    labels["id"] = "tx-" + labels["id"].astype(str)
    labels = pd.concat([labels, pd.DataFrame({"id": ["tx-999999"], "label": [1]})])
    labels.to_csv(root / "labels.csv", index=False)
    return root


@pytest.mark.slow
def test_drift_finds_the_drifted_windows_and_writes_a_report(workdir):
    r = shipml("monitor", "drift", "--bundle", "models/fraud-lr/1", "--log", "log", "--window", "3000",
               "--report", "out/report.html", "--fail-on-drift", cwd=workdir)
    assert r.returncode == 4, r.stderr  # the last window drifted
    lines = [line for line in r.stdout.splitlines() if line.strip().startswith("window")]
    assert len(lines) == 4
    assert all("drifted: -" in line for line in lines[:2]) and all("amount" in line for line in lines[2:])
    html = (workdir / "out" / "report.html").read_text()
    assert "<table>" in html and "data:image/png;base64" in html and "drift in" in html


@pytest.mark.slow
def test_performance_joins_labels_and_names_the_drop(workdir):
    r = shipml("monitor", "performance", "--log", "log", "--labels", "labels.csv", "--window", "3000",
               "--bundle", "models/fraud-lr/1", cwd=workdir)
    assert r.returncode == 0, r.stderr
    assert "1 for ids the log does not hold" in r.stdout
    assert "performance dropped in window 2" in r.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["drift", "--bundle", "models/fraud-lr/1", "--log", "nowhere"], "no such prediction log folder"),
    (["drift", "--bundle", "models/fraud-lr/1", "--log", "log", "--window", "7 parsecs"], "give a row count"),
    (["drift", "--bundle", "models/fraud-lr/1", "--log", "log", "--window", "50"], "fewer than 100 rows"),
    (["drift", "--bundle", "models/other/1", "--log", "log"], "not this bundle's 'fraud-other'"),
    (["drift", "--bundle", "models/old/1", "--log", "log"], "no reference in this bundle"),
    (["drift", "--bundle", "models/fraud-lr/1", "--log", "broken"], "cannot read this prediction log file"),
    (["drift", "--bundle", "models/fraud-lr/1", "--log", "notalog"], "not a prediction log"),
    (["performance", "--log", "log", "--labels", "nolabels.csv"], "needs the column"),
    (["performance", "--log", "log", "--labels", "strangers.csv"], "none of its 2 ids is in the log"),
])
def test_mistakes_are_one_line_and_a_non_zero_exit(workdir, args, message, monkeypatch, capsys):
    """In-process (``shipml.cli.main``, what the console script runs), from the folder a user would be in."""
    from shipml.bundle import METADATA_FILE, SUMS_FILE, sha256_file

    other = workdir / "models" / "other" / "1"
    if not other.exists():  # the same model under another name: "a log of another model"
        shutil.copytree(workdir / "models" / "fraud-lr" / "1", other)
        meta = (other / METADATA_FILE).read_text().replace('"name": "fraud-lr"', '"name": "fraud-other"')
        (other / METADATA_FILE).write_text(meta)
        old = shutil.copytree(other, workdir / "models" / "old" / "1")
        (old / "reference.json").unlink()
        for b in (other, old):
            (b / SUMS_FILE).write_text("".join(f"{sha256_file(p)}  {p.name}\n" for p in sorted(b.iterdir())
                                               if p.name != SUMS_FILE))
        (workdir / "broken").mkdir()
        (workdir / "broken" / "a.parquet").write_bytes(b"PAR1 not really")
        (workdir / "notalog").mkdir()
        make_transactions(200, seed=1).to_parquet(workdir / "notalog" / "x.parquet")
        pd.DataFrame({"id": ["a"], "y": [1]}).to_csv(workdir / "nolabels.csv", index=False)
        pd.DataFrame({"id": ["a", "b"], "label": [1, 0]}).to_csv(workdir / "strangers.csv", index=False)
    from shipml.cli import main

    monkeypatch.chdir(workdir)
    code = main(["monitor", *args])
    err = capsys.readouterr().err
    assert code == 1, err
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
