"""A valid transaction for the serving tests (importable from test modules: tests/serving is on sys.path)."""

RECORD = {"amount": 182.4, "hour": 23, "merchant_category": "online_retail", "distance_from_home_km": 12.5,
          "card_present": False, "txn_count_24h": 5, "account_age_days": 420}
