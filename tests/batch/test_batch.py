"""The batch engine: formats, quarantine, the rows-in invariant, bad input, atomic output, folders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from shipml import batch
from shipml.errors import ShipmlError
from shipml.predictor import load_predictor

N_ROWS = 4_000  # conftest.N_ROWS


def _read(path) -> pd.DataFrame:
    if str(path).endswith(".parquet"):
        return pq.read_table(path).to_pandas()
    return pd.read_csv(path)


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("fmt_in", ["csv", "parquet"])
@pytest.mark.parametrize("fmt_out", ["csv", "parquet"])
def test_scores_every_row_like_the_predictor(lr_bundle, batch_files, batch_df, tmp_path, fmt_in, fmt_out):
    out = tmp_path / f"scores.{fmt_out}"
    summary = batch.score(lr_bundle, batch_files[fmt_in], out, chunk_rows=1_000, progress=False)
    assert (summary.rows_in, summary.rows_scored, summary.rows_quarantined) == (N_ROWS, N_ROWS, 0)
    assert summary.chunks >= 2 and summary.peak_memory_mb > 0 and summary.rows_per_second > 0
    scores = _read(out)
    assert list(scores.columns) == ["id", "prediction", "probability", "model", "model_version"]
    assert scores.id.tolist() == batch_df.id.tolist()
    expected = load_predictor(lr_bundle).predict_proba(batch_df)[:, 1]
    np.testing.assert_allclose(scores.probability.to_numpy(), expected, rtol=1e-9, atol=1e-12)
    assert (scores.prediction.to_numpy() == (expected > 0.5)).all()
    assert set(scores.model.astype(str)) == {"fraud-lr"} and set(scores.model_version) == {1}
    assert _read(summary.quarantine).empty  # written, with its header, even when nothing was bad


@pytest.mark.parametrize("fmt_in", ["csv", "parquet"])
def test_bad_rows_are_quarantined_with_reasons_and_nothing_is_lost(lr_bundle, bad_text_df, bad_values, tmp_path,
                                                                   fmt_in):
    src = tmp_path / f"bad.{fmt_in}"
    if fmt_in == "csv":
        bad_text_df.to_csv(src, index=False)
    else:  # every column as text: Parquet keeps what the producer wrote, wrong types included
        pq.write_table(pa.Table.from_pandas(bad_text_df.astype(str), preserve_index=False), src)
    q = tmp_path / "bad-rows.csv"
    summary = batch.score(lr_bundle, src, tmp_path / "scores.parquet", q, chunk_rows=1_000, progress=False)
    assert summary.rows_in == N_ROWS == summary.rows_scored + summary.rows_quarantined
    assert summary.rows_quarantined == len(bad_values)
    quarantined = pd.read_csv(q, dtype=str, keep_default_na=False)
    assert sorted(map(int, quarantined.id)) == sorted(bad_values)
    for _, row in quarantined.iterrows():
        column, value, reason = bad_values[int(row.id)]
        assert reason in row.reason, (row.id, row.reason)
        assert row[column].lower() in ({value, ""} if value in ("nan", "") else {value})  # original, not cleaned
        assert row.source == src.name and int(row.row) == int(row.id)
    scored = pq.read_table(tmp_path / "scores.parquet").column("id").to_pylist()
    assert len(scored) == N_ROWS - len(bad_values) and not set(scored) & set(bad_values)


def test_malformed_csv_lines_are_quarantined(lr_bundle, batch_files, tmp_path):
    lines = batch_files["csv"].read_text().splitlines(keepends=True)
    lines[100] = lines[100].rstrip("\n") + ",surplus\n"
    lines[2000] = "1999,12.5\n"
    src = tmp_path / "ragged.csv"
    src.write_text("".join(lines))
    summary = batch.score(lr_bundle, src, tmp_path / "s.parquet", chunk_rows=1_000, progress=False)
    assert summary.rows_in == N_ROWS and summary.rows_quarantined == 2
    quarantined = pd.read_csv(summary.quarantine, dtype=str, keep_default_na=False)
    reasons = quarantined.reason.tolist()
    assert all("malformed line" in r for r in reasons) and "'1999,12.5'" in reasons[1]
    # where: the line number in the file (the header is line 1) and the id the line starts with
    assert quarantined.line.tolist() == ["101", "2001"]
    assert quarantined.id.tolist() == [lines[100].split(",")[0], "1999"]
    assert quarantined.row.tolist() == ["", ""]  # not a data row: the parser could not split it


def test_a_malformed_line_without_an_id_field_still_says_where(lr_bundle, batch_files, tmp_path):
    lines = batch_files["csv"].read_text().splitlines(keepends=True)
    lines[5] = ",\n"  # two empty fields: no id to report
    src = tmp_path / "short.csv"
    src.write_text("".join(lines))
    summary = batch.score(lr_bundle, src, tmp_path / "s.csv", chunk_rows=50_000, progress=False)
    quarantined = pd.read_csv(summary.quarantine, dtype=str, keep_default_na=False)
    assert (quarantined.line.tolist(), quarantined.id.tolist()) == (["6"], [""])
    assert summary.rows_in == N_ROWS and summary.rows_scored == N_ROWS - 1


def test_missing_column_is_a_clear_error_and_writes_nothing(lr_bundle, batch_df, tmp_path):
    src = tmp_path / "no-hour.parquet"
    batch_df.drop(columns=["hour"]).to_parquet(src)
    with pytest.raises(ShipmlError, match="missing column.*hour"):
        batch.score(lr_bundle, src, tmp_path / "out" / "s.parquet", progress=False)
    assert not (tmp_path / "out").exists() or _leftovers(tmp_path / "out") == []


def test_missing_id_column_is_a_clear_error(lr_bundle, batch_df, tmp_path):
    src = tmp_path / "no-id.csv"
    batch_df.drop(columns=["id"]).to_csv(src, index=False)
    with pytest.raises(ShipmlError, match="no 'id' column"):
        batch.score(lr_bundle, src, tmp_path / "s.csv", progress=False)


def test_extra_columns_are_ignored_and_reported(lr_bundle, batch_df, tmp_path):
    src = tmp_path / "extra.csv"
    batch_df.assign(colour="red", note="x").to_csv(src, index=False)
    summary = batch.score(lr_bundle, src, tmp_path / "s.parquet", progress=False)
    assert summary.rows_scored == N_ROWS and summary.ignored_columns == ["colour", "note"]
    assert "ignored" in str(summary)


@pytest.mark.parametrize("case, message", [
    ("empty", "empty"),
    ("header-only", "no rows"),
    ("truncated-csv", "truncated"),
    ("truncated-parquet", "not a readable Parquet"),
    ("corrupt-parquet", "not a readable Parquet"),
    ("missing", "no such file"),
    ("suffix", "unsupported file type"),
    ("empty-folder", "no .csv or .parquet"),
    ("mixed-folder", "mixes CSV and Parquet"),
])
def test_bad_input_files_are_clear_errors(lr_bundle, batch_files, tmp_path, case, message):
    src = tmp_path / "in" / {"truncated-parquet": "x.parquet", "corrupt-parquet": "x.parquet",
                             "suffix": "x.xlsx"}.get(case, "x.csv")
    src.parent.mkdir()
    csv_bytes, pq_bytes = batch_files["csv"].read_bytes(), batch_files["parquet"].read_bytes()
    if case == "empty":
        src.write_bytes(b"")
    elif case == "header-only":
        src.write_bytes(csv_bytes.split(b"\n")[0] + b"\n")
    elif case == "truncated-csv":
        src.write_bytes(csv_bytes[: len(csv_bytes) // 2 + 7])
    elif case == "truncated-parquet":
        src.write_bytes(pq_bytes[: len(pq_bytes) // 2])
    elif case == "corrupt-parquet":
        src.write_bytes(b"PAR1" + bytes(range(256)) * 40)
    elif case == "suffix":
        src.write_bytes(csv_bytes)
    elif case == "empty-folder":
        src = src.parent
    elif case == "mixed-folder":
        (src.parent / "a.csv").write_bytes(csv_bytes)
        (src.parent / "b.parquet").write_bytes(pq_bytes)
        src = src.parent
    out = tmp_path / "out"
    with pytest.raises(ShipmlError, match=message):
        batch.score(lr_bundle, src, out / "s.parquet", progress=False)
    assert not out.exists() or _leftovers(out) == []


def test_parquet_corrupt_after_its_header_fails_without_output(lr_bundle, batch_df, tmp_path):
    src = tmp_path / "x.parquet"
    batch_df.to_parquet(src, row_group_size=1_000)
    blob = bytearray(src.read_bytes())
    for i in range(len(blob) // 2, len(blob) // 2 + 2_000):  # scramble the middle row groups, keep the footer
        blob[i] ^= 0x5A
    src.write_bytes(bytes(blob))
    with pytest.raises(ShipmlError, match=str(src.name)):
        batch.score(lr_bundle, src, tmp_path / "out" / "s.parquet", chunk_rows=1_000, progress=False)
    assert _leftovers(tmp_path / "out") == []


def test_unreadable_file(lr_bundle, batch_files, tmp_path):
    import os

    if os.geteuid() == 0:
        pytest.skip("running as root: file permissions do not stop root from reading")
    src = tmp_path / "secret.csv"
    src.write_bytes(batch_files["csv"].read_bytes())
    src.chmod(0)
    with pytest.raises(ShipmlError, match="permission denied"):
        batch.score(lr_bundle, src, tmp_path / "s.parquet", progress=False)


def test_a_path_through_a_file_is_unreadable(lr_bundle, batch_files, tmp_path):
    with pytest.raises(ShipmlError, match="no such file"):
        batch.score(lr_bundle, batch_files["csv"] / "inside.csv", tmp_path / "s.parquet", progress=False)


def test_failure_half_way_leaves_no_output(lr_bundle, batch_files, tmp_path):
    out, q = tmp_path / "run" / "s.parquet", tmp_path / "run" / "q.csv"

    def explode(rows_done: int) -> None:
        if rows_done >= 2_000:
            raise RuntimeError("disk full (simulated)")

    with pytest.raises(RuntimeError, match="disk full"):
        batch.score(lr_bundle, batch_files["parquet"], out, q, chunk_rows=1_000, progress=False, on_chunk=explode)
    assert _leftovers(tmp_path / "run") == []



def test_a_stop_while_the_quarantine_file_opens_leaves_no_partial_file(lr_bundle, batch_files, tmp_path, monkeypatch):
    """SIGTERM (KeyboardInterrupt, as the CLI turns it) can land after a table's file exists but before the job
    holds the table: the job still removes that file. (Seen once in the killed-job test under load.)"""
    from shipml.batch import engine

    real = engine.AtomicTable

    def opened_then_stopped(path, *args, **kwargs):
        table = real(path, *args, **kwargs)
        if "quarantine" in path.name:
            assert table.tmp.exists()
            raise KeyboardInterrupt  # the signal arrives before `bad = ...` completes
        return table

    monkeypatch.setattr(engine, "AtomicTable", opened_then_stopped)
    out = tmp_path / "run" / "s.parquet"
    with pytest.raises(KeyboardInterrupt):
        batch.score(lr_bundle, batch_files["parquet"], out, chunk_rows=1_000, progress=False)
    assert _leftovers(tmp_path / "run") == []

def test_a_previous_output_is_replaced_only_on_success(lr_bundle, batch_files, tmp_path):
    out = tmp_path / "s.csv"
    out.write_text("old,complete,file\n")
    with pytest.raises(KeyboardInterrupt):
        batch.score(lr_bundle, batch_files["parquet"], out, chunk_rows=1_000, progress=False,
                    on_chunk=lambda n: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert out.read_text() == "old,complete,file\n"
    batch.score(lr_bundle, batch_files["parquet"], out, progress=False)
    assert len(pd.read_csv(out)) == N_ROWS


def test_folder_input_scores_every_file_in_order(lr_bundle, batch_df, tmp_path):
    folder = tmp_path / "day"
    folder.mkdir()
    parts = [batch_df.iloc[:1_500], batch_df.iloc[1_500:2_500], batch_df.iloc[2_500:]]
    for i, part in enumerate(parts):
        part.to_parquet(folder / f"part-{i}.parquet", index=False)
    (folder / "README.txt").write_text("not data")
    summary = batch.score(lr_bundle, folder, tmp_path / "s.parquet", chunk_rows=700, progress=False)
    assert len(summary.inputs) == 3 and summary.rows_in == N_ROWS
    assert pq.read_table(tmp_path / "s.parquet").column("id").to_pylist() == batch_df.id.tolist()


def test_chunk_size_does_not_change_results(hgb_bundle, batch_files, tmp_path):
    a = batch.score(hgb_bundle, batch_files["csv"], tmp_path / "a.parquet", chunk_rows=500, progress=False)
    b = batch.score(hgb_bundle, batch_files["csv"], tmp_path / "b.parquet", chunk_rows=100_000, progress=False)
    assert a.chunks > b.chunks
    np.testing.assert_allclose(_read(tmp_path / "a.parquet").probability, _read(tmp_path / "b.parquet").probability,
                               rtol=1e-12)


def test_output_must_not_overwrite_input(lr_bundle, batch_files):
    with pytest.raises(ShipmlError, match="overwrite"):
        batch.score(lr_bundle, batch_files["csv"], batch_files["csv"], progress=False)
