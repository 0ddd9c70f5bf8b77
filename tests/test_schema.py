import math

import numpy as np
import pytest
from shipml.data import SCHEMA
from shipml.errors import SchemaError
from shipml.schema import FeatureSchema


def _row(**overrides):
    row = {"amount": 12.5, "hour": 3, "merchant_category": "fuel", "distance_from_home_km": 2.0,
           "card_present": True, "txn_count_24h": 1, "account_age_days": 400}
    row.update(overrides)
    return row


def _columns(*rows):
    return {k: [r[k] for r in rows] for k in rows[0]}


def test_valid_rows_pass_and_are_converted():
    v = SCHEMA.validate(_columns(_row(), _row(card_present=False)))
    assert v.ok and v.n_rows == 2
    assert v.columns["card_present"].tolist() == [1.0, 0.0]
    assert v.columns["merchant_category"].tolist() == ["fuel", "fuel"]


def test_every_bad_field_of_every_row_is_reported():
    v = SCHEMA.validate(_columns(
        _row(),
        _row(amount=-3, merchant_category="casino"),
        _row(amount=math.nan, hour=3.5, card_present=2),
        _row(amount="x", hour=30, account_age_days=math.inf),
    ))
    assert v.bad_rows.tolist() == [False, True, True, True]
    r1, r2, r3 = v.reasons
    assert "amount=-3 is below the minimum 0" in r1 and "'casino' is not one of" in r1
    assert "amount is nan" in r2 and "hour=3.5 is not a whole number" in r2 and "card_present=2" in r2
    assert "amount='x' is not a number" in r3 and "hour=30 is above the maximum 23" in r3
    assert "account_age_days is inf" in r3


def test_missing_and_extra_columns():
    cols = _columns(_row())
    del cols["hour"]
    cols["colour"] = ["red"]
    v = SCHEMA.validate(cols, allow_extra=False)
    assert v.missing == ["hour"] and v.extra == ["colour"]
    with pytest.raises(SchemaError, match="missing column 'hour'; unexpected column 'colour'"):
        v.raise_if_invalid()


def test_extra_columns_allowed_by_default_and_id_target_never_extra():
    cols = _columns(_row())
    cols.update(id=[1], is_fraud=[0], note=["x"])
    assert SCHEMA.validate(cols).ok
    assert SCHEMA.validate(cols, allow_extra=False).extra == ["note"]


def test_dataframe_input(tiny_df):
    v = SCHEMA.validate(tiny_df)
    assert v.ok and v.n_rows == len(tiny_df)
    assert v.columns["amount"].dtype == np.float64


def test_schema_round_trips_through_dict():
    assert FeatureSchema.from_dict(SCHEMA.to_dict()) == SCHEMA


def test_list_values_and_integers_beyond_float_range_are_refused_not_crashed():
    """JSON lets a client send ``"amount": [1, 2]`` or ``1`` followed by 309 zeros; both are bad rows."""
    v = SCHEMA.validate(_columns(_row(amount=[1, 2])))
    assert not v.ok and v.reasons[0] == "amount=[1, 2] is not a number"
    assert v.columns["amount"].shape == (1,)
    v = SCHEMA.validate(_columns(_row(), _row(hour=[3]), _row(merchant_category=["fuel"])))
    assert v.bad_rows.tolist() == [False, True, True]
    v = SCHEMA.validate(_columns(_row(amount=10**309), _row(txn_count_24h=-(10**400))))
    assert v.reasons == ["amount is inf", "txn_count_24h is -inf"]
