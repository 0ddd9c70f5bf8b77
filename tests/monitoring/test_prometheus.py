"""Alerts on a real Prometheus: promtool checks and unit-tests the rules; a drift alert fires on replayed traffic.

Prometheus is Debian's package (``.ci/setup.d/40-prometheus.sh``); without it these tests skip with that reason.
"""

from __future__ import annotations

import shutil
import subprocess
import time

import httpx
import pytest
from shipml.data import make_transactions
from shipml.monitoring.prometheus import PrometheusServer, monitoring_dir, prometheus_binary
from shipml.serving import BackgroundServer

needs_prometheus = pytest.mark.skipif(prometheus_binary() is None or shutil.which("promtool") is None,
                                      reason="prometheus/promtool not installed (run .ci/setup.d/40-prometheus.sh)")


@needs_prometheus
def test_promtool_checks_the_rules_and_the_config():
    rules = monitoring_dir() / "alerts.yml"
    r = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "6 rules found" in r.stdout, r.stdout + r.stderr
    r = subprocess.run(["promtool", "check", "config", "prometheus.yml"], cwd=monitoring_dir(), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


@needs_prometheus
def test_promtool_unit_tests_of_every_alert_pass():
    r = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"], cwd=monitoring_dir(), capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "SUCCESS" in r.stdout, r.stdout + r.stderr
    names = {line.split(":", 1)[1].strip() for line in (monitoring_dir() / "alerts.yml").read_text().splitlines()
             if line.strip().startswith("- alert:")}
    tested = (monitoring_dir() / "alerts_test.yml").read_text()
    assert all(f"alertname: {n}" in tested for n in names)  # every alert has a unit test


@needs_prometheus
def test_promtool_unit_tests_can_fail(tmp_path):
    """A wrong expectation fails: the unit tests above test something."""
    shutil.copy(monitoring_dir() / "alerts.yml", tmp_path / "alerts.yml")
    text = (monitoring_dir() / "alerts_test.yml").read_text().replace("10% of requests", "11% of requests")
    (tmp_path / "alerts_test.yml").write_text(text)
    r = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0


@needs_prometheus
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_drift_alert_fires_while_drifted_traffic_is_replayed(tmp_path, lr_bundle):
    from shipml.monitoring.replay import replay
    from shipml.schema import FeatureSchema  # noqa: F401  (the schema's names are the request's fields)

    repo = tmp_path / "models"
    shutil.copytree(lr_bundle, repo / "fraud-lr" / "1")
    env = {"SHIPML_MONITOR": "1", "SHIPML_MONITOR_LOG_DIR": str(tmp_path / "log"),
           "SHIPML_MONITOR_WINDOW_ROWS": "600", "SHIPML_MONITOR_DRIFT_SECONDS": "1"}
    features = ["amount", "hour", "merchant_category", "distance_from_home_km", "card_present", "txn_count_24h",
                "account_age_days"]
    with BackgroundServer(repo, env=env) as server, PrometheusServer([server.url], interval="1s") as prom:
        deadline = time.monotonic() + 30
        while not prom.targets_up() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert prom.targets_up(), prom.logs()
        calm = replay(server.url, make_transactions(700, seed=70), features, connections=4)
        assert calm.failed == 0
        time.sleep(3)
        assert not [a for a in prom.alerts() if a["labels"]["alertname"] == "ShipmlFeatureDrift"]
        assert prom.query('shipml_drift_window_rows{model="fraud-lr"}'), "no drift gauges scraped"
        drifted = make_transactions(3000, seed=71, drift=1.0, start_id=700)
        fired = None
        for start in range(0, 3000, 300):  # keep replaying until the alert fires (bounded: 3,000 rows)
            replay(server.url, drifted.iloc[start:start + 300], features, connections=4)
            firing = [a for a in prom.alerts() if a["labels"]["alertname"] == "ShipmlFeatureDrift"
                      and a["state"] == "firing"]
            if firing:
                fired = firing
                break
        if fired is None:
            fired = [prom.wait_for_alert("ShipmlFeatureDrift", timeout=30)]
        assert {a["labels"]["feature"] for a in fired} & {"amount", "hour", "merchant_category", "card_present",
                                                          "score"}
        psi = {r["metric"]["feature"]: float(r["value"][1]) for r in prom.query("shipml_feature_psi")}
        assert psi["amount"] > psi["account_age_days"]
        hist = prom.query('sum(shipml_prediction_score_count{model="fraud-lr"})')
        assert float(hist[0]["value"][1]) > 700
        metrics = httpx.get(server.url + "/metrics").text
        assert "shipml_prediction_log_dropped_total 0.0" in metrics
    logged = sum(1 for _ in (tmp_path / "log").glob("*.parquet"))
    assert logged >= 1  # the server completed its log files when it stopped
