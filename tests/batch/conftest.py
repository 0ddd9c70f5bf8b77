"""Fixtures for the batch tests: small transaction files in both formats, and a bad-rows frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

N_ROWS = 4_000


@pytest.fixture(scope="session")
def batch_df():
    from shipml.data import make_transactions

    return make_transactions(N_ROWS, seed=11)


@pytest.fixture(scope="session")
def batch_files(tmp_path_factory, batch_df):
    """The same rows as CSV and as Parquet."""
    from shipml.data import write_table

    folder = tmp_path_factory.mktemp("batch-in")
    return {"csv": write_table(batch_df, folder / "tx.csv"), "parquet": write_table(batch_df, folder / "tx.parquet")}


# id -> (column, bad value as text, what the reason must say)
BAD_VALUES = {
    3: ("amount", "nan", "amount is nan"),
    10: ("amount", "inf", "amount is inf"),
    20: ("amount", "-5", "below the minimum"),
    30: ("hour", "25", "above the maximum 23"),
    40: ("hour", "3.5", "not a whole number"),
    50: ("merchant_category", "casino", "'casino' is not one of"),
    60: ("amount", "lots", "amount='lots' is not a number"),
    3_500: ("card_present", "2", "card_present=2"),
    3_900: ("txn_count_24h", "", "txn_count_24h is nan"),
}


@pytest.fixture(scope="session")
def bad_text_df(batch_df):
    """The rows as text, with one bad value in each row listed in BAD_VALUES."""
    df = batch_df.astype({c: "object" for c in batch_df.columns})
    for c in df.columns:
        df[c] = df[c].map(lambda v: str(v).lower() if isinstance(v, bool | np.bool_) else str(v))
    for row_id, (col, value, _) in BAD_VALUES.items():
        df.loc[row_id, col] = value  # the index is the id
    return pd.DataFrame(df)


@pytest.fixture(scope="session")
def bad_values():
    return BAD_VALUES
