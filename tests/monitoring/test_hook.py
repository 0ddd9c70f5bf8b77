"""The monitor as a server extension (the serving hooks API): started, fed prediction events, stopped."""

from __future__ import annotations

import asyncio
import shutil
from types import SimpleNamespace

import numpy as np
from shipml.monitoring.hook import MonitoringExtension
from shipml.monitoring.windows import read_log
from shipml.serving.metrics import Metrics
from shipml.serving.repository import ModelRepository
from shipml.settings import Settings


def test_extension_logs_every_event_and_exports_gauges(tmp_path, lr_bundle):
    shutil.copytree(lr_bundle, tmp_path / "models" / "fraud-lr" / "1")
    repo = ModelRepository(tmp_path / "models")
    repo.refresh()
    metrics = Metrics()
    app = SimpleNamespace(state=SimpleNamespace(repository=repo, metrics=metrics))
    settings = Settings(monitor=True, monitor_log_dir=tmp_path / "log", monitor_window_rows=100,
                        monitor_drift_seconds=0.1)
    ext = MonitoringExtension(settings)
    asyncio.run(ext.startup(app))
    features = {"amount": [10.0, 20.0], "hour": [3, 4], "merchant_category": ["fuel", "travel"],
                "distance_from_home_km": [1.0, 2.0], "card_present": [True, False], "txn_count_24h": [1, 2],
                "account_age_days": [100, 200]}
    for i in range(300):
        event = SimpleNamespace(request_id=f"r{i}", model="fraud-lr", version=1, features=features,
                                scores=np.array([[0.9, 0.1], [0.2, 0.8]]), labels=[0, 1])
        ext.on_prediction(event)
    asyncio.run(ext.shutdown(app))
    logged = read_log(tmp_path / "log")
    assert len(logged) == 600 and {"r0:0", "r0:1", "r299:1"} <= set(logged["id"])
    assert logged.loc[logged["id"] == "r0:1", "score"].iloc[0] == 0.8
    text = metrics.render().decode()
    assert 'shipml_prediction_log_rows_total 600.0' in text
    assert 'shipml_feature_psi{feature="amount",model="fraud-lr",version="1"}' in text
    assert 'shipml_drift_reference{model="fraud-lr",version="1"} 1.0' in text
