import numpy as np
import pandas as pd
import pytest
from shipml.data import (
    BLOCK_ROWS,
    SCHEMA,
    fingerprint,
    iter_transactions,
    make_transactions,
    read_table,
    write_table,
    write_transactions,
)
from shipml.errors import ShipmlError


def test_same_seed_same_rows_other_seed_other_rows():
    a, b, c = make_transactions(3_000, seed=5), make_transactions(3_000, seed=5), make_transactions(3_000, seed=6)
    pd.testing.assert_frame_equal(a, b)
    assert fingerprint(a) == fingerprint(b) != fingerprint(c)


def test_columns_types_and_valid_ranges(tiny_df):
    assert list(tiny_df.columns) == ["id", *SCHEMA.names, "is_fraud"]
    assert tiny_df["id"].is_unique and tiny_df["id"].dtype == np.int64
    assert tiny_df["card_present"].dtype == bool
    assert SCHEMA.validate(tiny_df).ok


def test_fraud_rate_is_about_two_percent():
    rate = make_transactions(200_000, seed=3)["is_fraud"].mean()
    assert 0.01 <= rate <= 0.03


def test_features_carry_signal():
    df = make_transactions(200_000, seed=3)
    fraud, legit = df[df.is_fraud == 1], df[df.is_fraud == 0]
    assert (~fraud.card_present).mean() > 2 * (~legit.card_present).mean()
    assert (fraud.hour < 6).mean() > 2 * (legit.hour < 6).mean()
    assert fraud.amount.median() > 1.5 * legit.amount.median()


def test_blocks_do_not_depend_on_how_output_is_chunked():
    n = BLOCK_ROWS + 10
    whole = make_transactions(n, seed=2)
    blocks = list(iter_transactions(n, seed=2))
    assert [len(b) for b in blocks] == [BLOCK_ROWS, 10]
    assert whole["id"].is_unique
    pd.testing.assert_frame_equal(whole.tail(10).reset_index(drop=True), blocks[1])


def test_drift_shifts_the_documented_distributions():
    base, drifted = make_transactions(100_000, seed=1), make_transactions(100_000, seed=1, drift=1.0)
    assert drifted.amount.median() > 1.3 * base.amount.median()
    share = lambda d: (d.merchant_category == "online_retail").mean()  # noqa: E731
    assert share(drifted) > 1.5 * share(base)
    assert drifted.is_fraud.mean() > 1.5 * base.is_fraud.mean()
    assert SCHEMA.validate(drifted).ok


@pytest.mark.parametrize("bad", [-1.0, 1.5])
def test_drift_out_of_range_is_refused(bad):
    with pytest.raises(ShipmlError, match="drift"):
        make_transactions(10, drift=bad)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_round_trip_through_files(tmp_path, tiny_df, suffix):
    path = write_table(tiny_df, tmp_path / f"t{suffix}")
    back = read_table(path)
    assert len(back) == len(tiny_df) and SCHEMA.validate(back).ok
    np.testing.assert_allclose(back["amount"], tiny_df["amount"])


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_streamed_file_equals_in_memory_rows(tmp_path, suffix):
    path = write_transactions(tmp_path / f"s{suffix}", 2_500, seed=4)
    back = read_table(path)
    expected = make_transactions(2_500, seed=4)
    np.testing.assert_array_equal(back["id"], expected["id"])
    np.testing.assert_allclose(back["amount"], expected["amount"])
    assert not list(tmp_path.glob("*.partial"))


def test_unsupported_suffix_is_a_clear_error(tmp_path, tiny_df):
    with pytest.raises(ShipmlError, match="use .csv or .parquet"):
        write_table(tiny_df, tmp_path / "t.xlsx")
