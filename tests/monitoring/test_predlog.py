"""The prediction log: rotated Parquet files, nothing lost unless counted, sampling, batch jobs."""

from __future__ import annotations

import time

import numpy as np
import pytest
from shipml.data import SCHEMA, make_transactions
from shipml.monitoring.predlog import PredictionLog
from shipml.monitoring.windows import log_files, read_log

ROW = {"amount": 12.5, "hour": 3, "merchant_category": "fuel", "distance_from_home_km": 1.5,
       "card_present": True, "txn_count_24h": 2, "account_age_days": 400}


def test_rows_written_equal_rows_accepted_and_files_rotate(tmp_path):
    log = PredictionLog(tmp_path, SCHEMA, rotate_bytes=20_000, flush_seconds=0.02)
    for i in range(3000):
        assert log.record_one(f"r{i}", "fraud-lr", 1, ROW, 0.1, 0)
        if i % 500 == 0:
            time.sleep(0.05)
    stats = log.close()
    assert stats.accepted == stats.written == 3000 and stats.dropped == 0
    assert len(stats.files) >= 2  # rotated by size
    assert not list(tmp_path.glob("*.partial"))
    df = read_log(tmp_path)
    assert len(df) == 3000 and df["id"].is_unique
    assert df["merchant_category"].iloc[0] == "fuel" and bool(df["card_present"].iloc[0]) is True
    assert str(df["time"].dtype).startswith("datetime64") and df["model_version"].iloc[0] == 1


def test_a_full_queue_drops_and_counts_never_waits(tmp_path):
    dropped = []
    log = PredictionLog(tmp_path, SCHEMA, queue_rows=10, flush_seconds=0.5, on_dropped=dropped.append)
    started = time.perf_counter()
    results = [log.record_one(f"r{i}", "m", 1, ROW, 0.1, 0) for i in range(1000)]
    took = time.perf_counter() - started
    stats = log.close()
    assert took < 2.0  # the producer never waited for the writer (it sleeps 0.5 s between drains)
    assert stats.dropped == sum(dropped) == results.count(False) > 0
    assert stats.written + stats.dropped == stats.accepted == 1000
    assert len(read_log(tmp_path)) == stats.written


def test_sampling_logs_about_the_rate(tmp_path):
    log = PredictionLog(tmp_path, SCHEMA, sample_rate=0.25, seed=1, flush_seconds=0.02)
    for i in range(4000):
        log.record_one(f"r{i}", "m", 1, ROW, 0.1, 0)
    stats = log.close()
    assert 800 < stats.written < 1200 and stats.written + stats.sampled_out == 4000


def test_files_by_time_and_partial_files_are_not_read(tmp_path):
    log = PredictionLog(tmp_path, SCHEMA, rotate_seconds=0.2, flush_seconds=0.05)
    log.record_one("a", "m", 1, ROW, 0.1, 0)
    time.sleep(0.6)
    log.record_one("b", "m", 1, ROW, 0.1, 0)
    time.sleep(0.2)
    assert len(log_files(tmp_path)) >= 1  # the first file completed by age while the log runs
    (tmp_path / "x.parquet.partial").write_bytes(b"half")
    log.close()
    assert len(read_log(tmp_path)) == 2


def test_the_batch_engine_logs_every_scored_row_with_its_features(tmp_path, lr_bundle):
    from shipml.batch import score
    from shipml.data import write_table

    df = make_transactions(5000, seed=4)
    df.loc[7, "amount"] = -1.0  # quarantined: not logged
    src = write_table(df, tmp_path / "in.csv")
    log = PredictionLog(tmp_path / "log", SCHEMA, queue_rows=1000)  # smaller than a chunk: the job waits
    summary = score(lr_bundle, src, tmp_path / "out.parquet", chunk_rows=1500, progress=False, prediction_log=log)
    stats = log.close()
    logged = read_log(tmp_path / "log")
    assert stats.dropped == 0 and len(logged) == summary.rows_scored == 4999
    assert "7" not in set(logged["id"])
    row = logged[logged["id"] == "10"].iloc[0]
    assert row["amount"] == pytest.approx(df.loc[10, "amount"]) and row["merchant_category"] == str(
        df.loc[10, "merchant_category"])
    assert np.isfinite(logged["score"]).all()


def test_the_dask_engine_refuses_the_log_clearly(tmp_path, lr_bundle):
    from shipml.batch import score
    from shipml.errors import ShipmlError

    with PredictionLog(None, SCHEMA) as log, pytest.raises(ShipmlError, match="local engine"):
        score(lr_bundle, tmp_path / "x.csv", tmp_path / "o.parquet", engine="dask", prediction_log=log)
