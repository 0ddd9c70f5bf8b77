"""Dask gives the local engine's output; the CLI speaks one line on errors; a killed job leaves no output;
real-time latency figures are ordered and sane."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from shipml import batch
from shipml.cli import main
from shipml.waiting import wait_until

N_ROWS = 4_000


@pytest.mark.slow
def test_dask_and_local_engines_give_identical_output(lr_bundle, bad_text_df, tmp_path):
    src = tmp_path / "in.csv"
    bad_text_df.to_csv(src, index=False)
    runs = {}
    for engine in ("local", "dask"):
        summary = batch.score(lr_bundle, src, tmp_path / f"{engine}.parquet", tmp_path / f"{engine}-q.parquet",
                              engine=engine, chunk_rows=1_000, progress=False)
        runs[engine] = (summary, pq.read_table(tmp_path / f"{engine}.parquet"),
                        pq.read_table(tmp_path / f"{engine}-q.parquet"))
    (ls, lt, lq), (ds, dt, dq) = runs["local"], runs["dask"]
    assert ds.engine == "dask" and ds.chunks == ls.chunks > 1
    assert (ds.rows_in, ds.rows_scored, ds.rows_quarantined) == (ls.rows_in, ls.rows_scored, ls.rows_quarantined)
    assert ls.rows_quarantined > 0
    assert dt.equals(lt) and dq.equals(lq)


@pytest.mark.slow
def test_dask_scheduler_address_sends_work_to_an_existing_cluster(lr_bundle, batch_files, tmp_path):
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=None, silence_logs=40) as cluster:
        summary = batch.score(lr_bundle, batch_files["parquet"], tmp_path / "s.csv", engine="dask",
                              scheduler=cluster.scheduler_address, chunk_rows=1_500, progress=False)
    assert summary.rows_scored == N_ROWS


def test_unreachable_scheduler_is_a_clear_error(lr_bundle, batch_files, tmp_path, refused_port):
    code, err = _cli(["batch", "score", "--model", str(lr_bundle), "--input", str(batch_files["csv"]),
                      "--output", str(tmp_path / "s.parquet"), "--scheduler", f"tcp://127.0.0.1:{refused_port}"])
    assert code == 1 and "cannot reach the Dask scheduler" in err
    assert list(tmp_path.iterdir()) == []


def _cli(argv, capsys=None):
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()) as out:
        code = main(argv)
    return code, err.getvalue() + out.getvalue()


def test_cli_scores_and_prints_the_summary(lr_bundle, batch_files, tmp_path):
    code, text = _cli(["batch", "score", "--model", str(lr_bundle), "--input", str(batch_files["parquet"]),
                       "--output", str(tmp_path / "s.csv"), "--chunk-rows", "1000", "--no-progress"])
    assert code == 0
    assert "rows in    4,000" in text and "quarantine 0" in text and "rows/s" in text and "peak RSS" in text


@pytest.mark.parametrize("name, content, message", [
    ("missing.csv", None, "no such file"),
    ("empty.csv", b"", "empty"),
    ("corrupt.parquet", b"not parquet at all", "not a readable Parquet"),
    ("data.json", b"{}", "unsupported file type"),
])
def test_cli_bad_input_is_one_line_and_exit_1(lr_bundle, tmp_path, name, content, message):
    src = tmp_path / name
    if content is not None:
        src.write_bytes(content)
    code, err = _cli(["batch", "score", "--model", str(lr_bundle), "--input", str(src),
                      "--output", str(tmp_path / "out.parquet")])
    assert code == 1
    assert err.startswith("shipml: error:") and message in err and err.count("\n") == 1
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_killed_job_leaves_no_complete_looking_output(lr_bundle, tmp_path, sig):
    from shipml.data import write_transactions

    src = write_transactions(tmp_path / "big.csv", 300_000, seed=5)
    out = tmp_path / "out" / "scores.parquet"
    proc = subprocess.Popen([sys.executable, "-m", "shipml", "batch", "score", "--model", str(lr_bundle),
                             "--input", str(src), "--output", str(out), "--chunk-rows", "2000", "--no-progress"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    partial = out.with_name(".scores.parquet.partial")
    def writing() -> bool:
        assert proc.poll() is None, proc.communicate()
        return partial.exists() and partial.stat().st_size > 0

    wait_until(writing, timeout=120, interval=0.05, what="the job's partial output")
    os.kill(proc.pid, sig)
    proc.wait(timeout=60)
    assert proc.returncode != 0
    assert not out.exists() and not out.with_name("scores.quarantine.csv").exists()
    if sig == signal.SIGTERM:  # a catchable stop cleans up its partial files too
        assert sorted(p.name for p in out.parent.iterdir()) == []


def test_realtime_latency_percentiles_and_sweep(lr_bundle, batch_df):
    from shipml import realtime, timing
    from shipml.predictor import load_predictor

    assert timing.percentiles([1, 2, 3, 4, 100]) == pytest.approx([3.0, 80.8, 96.16])
    predictor = load_predictor(lr_bundle)
    single = realtime.time_single(predictor, batch_df, n=50, warmup=3)
    assert single.n == 50 and single.batch_size == 1
    assert 0 < single.p50_ms <= single.p95_ms <= single.p99_ms <= single.max_ms
    sweep = realtime.batch_size_sweep(predictor, batch_df, sizes=(1, 100, 2_000, 10**6), time_budget_s=0.3,
                                      progress=False)
    assert [s.batch_size for s in sweep] == [1, 100, 2_000]  # sizes above the data are left out
    assert sweep[-1].rows_per_second > sweep[0].rows_per_second  # batching buys throughput
    assert sweep[-1].p50_ms > sweep[0].p50_ms  # and costs latency per call


def test_realtime_refuses_invalid_rows(lr_bundle, batch_df):
    from shipml import realtime
    from shipml.errors import SchemaError
    from shipml.predictor import load_predictor

    bad = batch_df.head(3).assign(hour=99)
    with pytest.raises(SchemaError, match="hour=99"):
        realtime.time_single(load_predictor(lr_bundle), bad, n=2, warmup=0)
