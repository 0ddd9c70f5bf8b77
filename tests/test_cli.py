"""The CLI as a user runs it: a real subprocess, exit codes and stderr."""

import shutil
import subprocess
import sys

import pytest


def shipml(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "shipml", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


def assert_one_line_error(result, fragment):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("shipml: error: ") and fragment in lines[0], lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_data_train_info_end_to_end(tmp_path):
    data = tmp_path / "tx.parquet"
    r = shipml("data", "make", "--rows", 20_000, "--seed", 3, "--out", data)
    assert r.returncode == 0, r.stderr
    assert "wrote 20,000 rows" in r.stdout and data.exists()
    r = shipml("train", "--data", data, "--model", "lr", "--out", tmp_path / "b")
    assert r.returncode == 0, r.stderr
    assert "saved fraud-lr v1" in r.stdout
    r = shipml("info", tmp_path / "b")
    assert r.returncode == 0 and "hashes: ok" in r.stdout and "merchant_category" in r.stdout


def test_csv_output(tmp_path):
    r = shipml("data", "make", "--rows", 1000, "--out", tmp_path / "tx.csv")
    assert r.returncode == 0 and (tmp_path / "tx.csv").read_text().startswith("id,amount,hour")


def test_missing_data_file(tmp_path):
    assert_one_line_error(shipml("train", "--data", tmp_path / "nope.csv", "--out", tmp_path / "b"),
                          "no such file")


def test_wrong_suffix(tmp_path):
    assert_one_line_error(shipml("data", "make", "--rows", 10, "--out", tmp_path / "x.txt"),
                          "use .csv or .parquet")


def test_wrong_column(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,amount\n1,2.0\n")
    assert_one_line_error(shipml("train", "--data", bad, "--out", tmp_path / "b"),
                          "training data lacks column(s): hour")


def test_tampered_bundle(lr_bundle, tmp_path):
    copy = shutil.copytree(lr_bundle, tmp_path / "b")
    with open(copy / "model.joblib", "r+b") as f:
        f.seek(100)
        byte = f.read(1)
        f.seek(100)
        f.write(bytes([byte[0] ^ 1]))
    assert_one_line_error(shipml("info", copy), "does not match its sha256")


def test_unknown_model(tmp_path):
    data = tmp_path / "tx.parquet"
    shipml("data", "make", "--rows", 2000, "--out", data)
    assert_one_line_error(shipml("train", "--data", data, "--model", "svm", "--out", tmp_path / "b"),
                          "unknown model 'svm'")


def test_usage_error_is_one_line():
    r = shipml("train", "--bogus")
    assert r.returncode == 2 and "No such option" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("args", [["--help"], ["data", "--help"], ["labs", "--help"]])
def test_help(args):
    r = shipml(*args)
    assert r.returncode == 0 and "Usage" in r.stdout


def test_doctor_reports_parts():
    r = shipml("doctor")
    assert r.returncode == 0
    for part in ("docker engine", "kubectl", "03 containers", "04 Kubernetes"):
        assert part in r.stdout
