"""A synthetic card-transactions dataset: seeded, vectorised, nothing downloaded.

Each row is one card payment. Fraud (about 2 %) is drawn from a logistic model of the features, so
the signal is real and explainable: large amounts for the merchant type, night-time, card not
present, far from home, many transactions in the last 24 h, young accounts — and an interaction
(night *and* far from home) that a tree model can learn and a linear model cannot.

Generation runs in fixed blocks of ``BLOCK_ROWS`` rows, each seeded from ``(seed, block index)``,
so the same ``seed`` gives the same rows however the output is chunked or written.

``drift`` (0 = none, 1 = full) shifts the world for the monitoring lesson, in documented ways:

==========================  ==========================================================
what drifts                 at ``drift=1``
==========================  ==========================================================
amount                      prices up 50 % (inflation)
merchant mix                online retail share doubles (more card-not-present)
hour                        the daily peak moves 2 hours later
fraud                       base fraud odds x2 and a new pattern: mid-sized online
                            amounts (a pattern the trained model has never seen)
==========================  ==========================================================
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from shipml.errors import ShipmlError
from shipml.schema import Feature, FeatureSchema

BLOCK_ROWS = 1 << 20
TARGET = "is_fraud"
CLASS_NAMES = ("legit", "fraud")
MERCHANT_CATEGORIES = (
    "grocery",
    "restaurant",
    "fuel",
    "online_retail",
    "electronics",
    "travel",
    "entertainment",
    "health",
)
_CATEGORY_SHARE = np.array([0.25, 0.18, 0.12, 0.15, 0.07, 0.05, 0.10, 0.08])
_MEDIAN_AMOUNT = np.array([45.0, 30.0, 50.0, 60.0, 250.0, 400.0, 40.0, 80.0])
_CATEGORY_RISK = np.array([-0.6, -0.4, -0.3, 0.5, 0.9, 0.5, 0.0, -0.5])
_CARD_PRESENT_P = np.array([0.97, 0.95, 0.98, 0.02, 0.6, 0.5, 0.85, 0.95])
_BASE_LOGIT = -6.7  # calibrated so that about 2 % of rows are fraud at drift=0

SCHEMA = FeatureSchema(
    features=(
        Feature("amount", "float", "payment amount", 0.0, 25_000.0, unit="USD"),
        Feature("hour", "int", "hour of day in the card holder's time zone", 0, 23),
        Feature("merchant_category", "category", "kind of shop", categories=MERCHANT_CATEGORIES),
        Feature("distance_from_home_km", "float", "distance from the holder's home", 0.0, 20_000.0, unit="km"),
        Feature("card_present", "bool", "the physical card was used (not online or by phone)"),
        Feature("txn_count_24h", "int", "payments on this card in the previous 24 hours", 0, 500),
        Feature("account_age_days", "int", "days since the account was opened", 0, 36_500, unit="days"),
    ),
    id_column="id",
    target=TARGET,
)


def make_transactions(n_rows: int, seed: int = 0, drift: float = 0.0, start_id: int = 0) -> pd.DataFrame:
    """Generate ``n_rows`` transactions (id, the features, ``is_fraud``) as one DataFrame."""
    blocks = list(iter_transactions(n_rows, seed=seed, drift=drift, start_id=start_id))
    if len(blocks) == 1:
        return blocks[0]
    return pd.concat(blocks, ignore_index=True)


def iter_transactions(
    n_rows: int, seed: int = 0, drift: float = 0.0, start_id: int = 0
) -> Iterator[pd.DataFrame]:
    """Yield the same rows as :func:`make_transactions`, one block at a time (flat memory)."""
    if n_rows < 0:
        raise ShipmlError(f"--rows must be positive, got {n_rows}")
    if not 0.0 <= drift <= 1.0:
        raise ShipmlError(f"drift must be between 0 and 1, got {drift}")
    done, block = 0, 0
    while done < n_rows:
        size = min(BLOCK_ROWS, n_rows - done)
        rng = np.random.default_rng([seed, block])
        yield _make_block(rng, size, drift, start_id + block * BLOCK_ROWS)
        done += size
        block += 1


def _make_block(rng: np.random.Generator, n: int, drift: float, first_id: int) -> pd.DataFrame:
    share = _CATEGORY_SHARE.copy()
    share[3] *= 1.0 + drift  # online retail grows
    share /= share.sum()
    cat = rng.choice(len(MERCHANT_CATEGORIES), size=n, p=share)

    amount = _MEDIAN_AMOUNT[cat] * rng.lognormal(0.0, 0.8, n) * (1.0 + 0.5 * drift)
    amount = np.clip(np.round(amount, 2), 0.01, 25_000.0)
    hour = np.floor(rng.normal(14.0 + 2.0 * drift, 4.5, n)).astype(np.int64) % 24
    card_present = rng.random(n) < _CARD_PRESENT_P[cat]
    far_trip = rng.random(n) < 0.03
    distance = np.where(far_trip, rng.lognormal(6.0, 1.0, n), rng.exponential(8.0, n))
    distance = np.clip(np.round(distance, 1), 0.0, 20_000.0)
    txn_count = np.minimum(rng.poisson(3.0, n), 500)
    account_age = np.minimum(rng.exponential(1500.0, n).astype(np.int64), 36_500)

    night = (hour < 6).astype(np.float64)
    far = (distance > 100.0).astype(np.float64)
    logit = (
        _BASE_LOGIT
        + np.log(2.0) * drift
        + 1.6 * np.log(amount / _MEDIAN_AMOUNT[cat])
        + 1.5 * _CATEGORY_RISK[cat]
        + 1.8 * night
        + 1.6 * (~card_present)
        + 0.9 * np.log1p(distance / 50.0)
        + 0.45 * np.clip(txn_count - 3, 0, 20)
        + 2.0 * (account_age < 30)
        + 3.0 * night * far
        + 1.5 * drift * ((cat == 3) & (amount > 100) & (amount < 400))
    )
    is_fraud = rng.random(n) < 1.0 / (1.0 + np.exp(-logit))

    return pd.DataFrame(
        {
            "id": np.arange(first_id, first_id + n, dtype=np.int64),
            "amount": amount,
            "hour": hour,
            "merchant_category": pd.Categorical.from_codes(cat, categories=MERCHANT_CATEGORIES),
            "distance_from_home_km": distance,
            "card_present": card_present,
            "txn_count_24h": txn_count.astype(np.int64),
            "account_age_days": account_age,
            TARGET: is_fraud.astype(np.int8),
        }
    )


def fingerprint(df: pd.DataFrame) -> str:
    """A sha256 of the frame's content (values and column names), for a bundle's provenance."""
    h = hashlib.sha256(",".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()


TABLE_SUFFIXES = (".csv", ".parquet")


def table_format(path: str | Path) -> str:
    """'csv' or 'parquet' from the file name, or a clear error."""
    suffix = Path(path).suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise ShipmlError(f"{path}: unsupported file type '{suffix or '(none)'}'; use .csv or .parquet")
    return suffix[1:]


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write CSV or Parquet by suffix."""
    path = Path(path)
    fmt = table_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return path


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a whole CSV or Parquet file (for training-sized data; batch scoring streams instead)."""
    path = Path(path)
    fmt = table_format(path)
    if not path.exists():
        raise ShipmlError(f"{path}: no such file")
    try:
        if fmt == "parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype={"merchant_category": "category"})
    except (OSError, ValueError) as exc:
        raise ShipmlError(f"{path}: cannot read {fmt}: {exc}") from None


def write_transactions(
    path: str | Path, n_rows: int, seed: int = 0, drift: float = 0.0, progress: bool = False
) -> Path:
    """Generate straight to a file block by block, so 10 million rows need little memory.

    The file appears under its name only when complete (written as ``NAME.partial``, then renamed).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    path = Path(path)
    fmt = table_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".partial")
    header = make_transactions(1, seed).iloc[:0]
    schema = pa.Table.from_pandas(header, preserve_index=False).schema
    try:
        with open(tmp, "wb") as sink:
            if fmt == "parquet":
                writer = pq.ParquetWriter(sink, schema)
            else:  # plain CSV as pandas writes it: no field here holds a comma or a quote
                sink.write((",".join(header.columns) + "\n").encode())
                options = pacsv.WriteOptions(include_header=False, quoting_style="none")
                writer = pacsv.CSVWriter(sink, schema, write_options=options)
            with tqdm(total=n_rows, unit="rows", unit_scale=True, disable=not progress, desc="generate") as bar:
                for block in iter_transactions(n_rows, seed=seed, drift=drift):
                    writer.write_table(pa.Table.from_pandas(block, schema=schema, preserve_index=False))
                    bar.update(len(block))
            writer.close()
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
